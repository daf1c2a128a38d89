"""Marker databases and gene lists: ScTypeDB, PanglaoDB, Lambert 2018 transcription factors."""

from __future__ import annotations

import pandas as pd

from ..exceptions import InputError
from ._fetch import fetch

_SCTYPE_DBS = {"full": "markers/ScTypeDB_full.xlsx", "short": "markers/ScTypeDB_short.xlsx"}
_DIRECTIONS = (("geneSymbolmore1", "positive"), ("geneSymbolmore2", "negative"))


def _split_genes(cell) -> list[str]:
    """scType's parsing of one marker cell: comma-separated, spaces removed, "NA"/empty dropped, upper case,
    sorted, unique (``gene_sets_prepare.R``, which also turns "///" into separators)."""
    if cell is None or (isinstance(cell, float) and pd.isna(cell)):
        return []
    parts = str(cell).replace("///", ",").replace(" ", "").split(",")
    genes = {p.strip().upper() for p in parts}
    return sorted(g for g in genes if g and g != "NA")


def sctype_markers(tissue: str = "Immune system", db: str = "full", as_dict: bool = False):
    """Positive and negative marker genes per cell type from the scType database (ScTypeDB).

    Ianevski A., Giri A.K., Aittokallio T., "Fully-automated and ultra-fast cell-type identification using
    specific marker combinations from single-cell transcriptomic data", Nat Commun 13, 1246 (2022).
    Licence GPL-3; source IanevskiAleksandr/sc-type@630e15cf ``ScTypeDB_full.xlsx`` / ``ScTypeDB_short.xlsx``
    (16 / 6 tissues; "Immune system" has 34 cell types in both).

    Parsing follows sc-type's ``gene_sets_prepare``: ``geneSymbolmore1`` = positive markers,
    ``geneSymbolmore2`` = negative markers, comma-separated; whitespace removed, empty cells and "NA" dropped,
    symbols upper-cased, sorted and de-duplicated per cell type. Differs from sc-type: HGNChelper's symbol
    correction (``checkGeneSymbols``, which needs the HGNC table online) is not applied, so outdated symbols
    stay as written in the database.

    Parameters
    ----------
    tissue : str, default "Immune system"
        The ``tissueType`` to select (exact match).
    db : {"full", "short"} or path, default "full"
        ScTypeDB's full or short database, or the path of your own marker database as an ``.xlsx`` file in
        ScTypeDB's layout (columns ``tissueType``, ``cellName``, ``geneSymbolmore1``, ``geneSymbolmore2``).
    as_dict : bool, default False
        Return ``{"positive": {cell_type: [genes]}, "negative": {cell_type: [genes]}}`` (every cell type of
        the tissue is a key of both, possibly with an empty list; database order) instead of a table.

    Returns
    -------
    pandas.DataFrame or dict
        Tidy table with columns ``tissue``, ``cell_type``, ``gene``, ``direction`` ("positive"/"negative"),
        one row per marker, cell types in database order.

    Raises
    ------
    InputError, UnknownNameError
        If ``db`` is neither "full"/"short" nor an existing ``.xlsx`` file, or ``tissue`` is not in the database
        (the message lists the tissues).

    Examples
    --------
    >>> import perturblab as plab
    >>> markers = plab.datasets.sctype_markers("Immune system")
    >>> markers.shape, list(markers.columns)
    ((798, 4), ['tissue', 'cell_type', 'gene', 'direction'])
    """
    from pathlib import Path

    from ..exceptions import InputError, UnknownNameError

    if db in _SCTYPE_DBS:
        path = fetch(_SCTYPE_DBS[db])
    elif Path(db).suffix == ".xlsx" and Path(db).is_file():
        path = Path(db)
    else:
        raise InputError(f"db must be 'full', 'short' or the path of an existing .xlsx marker database, got {db!r}")
    table = pd.read_excel(path)
    tissues = list(dict.fromkeys(table["tissueType"].astype(str)))
    if tissue not in tissues:
        raise UnknownNameError("tissue", tissue, tissues)
    table = table[table["tissueType"] == tissue]
    sets: dict[str, dict[str, list[str]]] = {direction: {} for _, direction in _DIRECTIONS}
    rows = []
    for record in table.itertuples(index=False):
        cell_type = str(record.cellName).strip()
        for column, direction in _DIRECTIONS:
            genes = _split_genes(getattr(record, column))
            sets[direction][cell_type] = genes
            rows += [(tissue, cell_type, g, direction) for g in genes]
    if as_dict:
        return sets
    return pd.DataFrame(rows, columns=["tissue", "cell_type", "gene", "direction"])


def panglaodb_markers(species: str | None = "Hs") -> pd.DataFrame:
    """PanglaoDB cell-type marker genes (release 27 March 2020).

    Franzen O., Gan L.-M., Bjorkegren J.L.M., "PanglaoDB: a web server for exploration of mouse and human
    single-cell RNA sequencing data", Database 2019, baz046. Licence: free for academic use (panglaodb.se).
    Source: PanglaoDB_markers_27_Mar_2020.tsv (via ClemensKohl/CAdir@de74a008): 8,286 rows, 178 cell types.

    Parameters
    ----------
    species : {"Hs", "Mm", None}, default "Hs"
        Keep rows whose ``species`` field ("Mm Hs", "Hs", "Mm") contains this code; None keeps all rows.

    Returns
    -------
    pandas.DataFrame
        The database's columns renamed to snake case: ``species``, ``gene`` (official gene symbol),
        ``cell_type``, ``nicknames``, ``ubiquitousness_index``, ``product_description``, ``gene_type``,
        ``canonical_marker``, ``germ_layer``, ``organ``, ``sensitivity_human``, ``sensitivity_mouse``,
        ``specificity_human``, ``specificity_mouse``.

    Raises
    ------
    ValueError
        If ``species`` is not "Hs", "Mm" or None.

    Examples
    --------
    >>> import perturblab as plab
    >>> plab.datasets.panglaodb_markers("Hs").shape
    (7851, 14)
    """
    if species not in ("Hs", "Mm", None):
        raise InputError(f"species must be 'Hs', 'Mm' or None, got {species!r}")
    table = pd.read_csv(fetch("markers/PanglaoDB_markers_27_Mar_2020.tsv"), sep="\t")
    table.columns = [c.strip().replace(" ", "_") for c in table.columns]
    table = table.rename(columns={"official_gene_symbol": "gene"})
    if species is not None:
        keep = table["species"].astype(str).str.split().apply(lambda codes: species in codes)
        table = table[keep].reset_index(drop=True)
    return table


def lambert_tfs() -> list[str]:
    """The 1,639 human transcription factors of Lambert et al. 2018 (census v1.01), as gene symbols.

    Lambert S.A. et al., "The Human Transcription Factors", Cell 172, 650-665 (2018). Source:
    ``TF_names_v_1.01.txt`` (humantfs.ccbr.utoronto.ca; our copy via yhr91/GEARS_misc@f8821187).

    Returns
    -------
    list of str
        Symbols in file order (alphabetical), whitespace and Windows line endings stripped.

    Examples
    --------
    >>> import perturblab as plab
    >>> len(plab.datasets.lambert_tfs())
    1639
    """
    text = fetch("references/lambert2018_human_TFs_v1.01.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
