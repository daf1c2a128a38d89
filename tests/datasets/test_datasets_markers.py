"""Marker databases: real ScTypeDB / PanglaoDB / Lambert files and a synthetic ScTypeDB with known parsing."""

from __future__ import annotations

import pandas as pd
import pytest

from perturblab import datasets


def test_sctype_immune_system_full():
    table = datasets.sctype_markers("Immune system", db="full")
    assert list(table.columns) == ["tissue", "cell_type", "gene", "direction"]
    assert table["cell_type"].nunique() == 34
    assert set(table["direction"]) == {"positive", "negative"}
    assert not table.duplicated().any()
    assert (table["gene"] == table["gene"].str.strip().str.upper()).all()
    naive_b = set(table.query("cell_type == 'Naive B cells' and direction == 'positive'")["gene"])
    assert {"MS4A1", "CD79A", "PAX5", "IGD"} <= naive_b


def test_sctype_as_dict_has_every_cell_type():
    sets = datasets.sctype_markers(db="short", as_dict=True)
    assert set(sets) == {"positive", "negative"}
    assert len(sets["positive"]) == 34 and sets["positive"].keys() == sets["negative"].keys()
    assert sets["negative"]["Naive B cells"] == ["CD27"]


def test_sctype_unknown_tissue_lists_tissues():
    with pytest.raises(ValueError, match="unknown tissue 'Blood'.*choices: .*Immune system.*Thymus"):
        datasets.sctype_markers("Blood")
    with pytest.raises(ValueError, match="db must be 'full', 'short' or the path"):
        datasets.sctype_markers(db="medium")


def test_sctype_parsing_of_messy_cells(tmp_path):
    """Whitespace, empty items, 'NA', duplicates, lower case and empty cells, as gene_sets_prepare parses them."""
    db = pd.DataFrame({
        "tissueType": ["Toy", "Toy", "Other"],
        "cellName": ["A cells", "B cells", "C cells"],
        "geneSymbolmore1": [" cd3e, CD3D ,,CD3E,NA ", "MS4A1///cd79a", "X"],
        "geneSymbolmore2": [None, " CD3E ,", ""],
    })
    path = tmp_path / "my_markers.xlsx"
    db.to_excel(path, index=False)
    sets = datasets.sctype_markers("Toy", db=str(path), as_dict=True)
    assert sets == {
        "positive": {"A cells": ["CD3D", "CD3E"], "B cells": ["CD79A", "MS4A1"]},
        "negative": {"A cells": [], "B cells": ["CD3E"]},
    }
    table = datasets.sctype_markers("Toy", db=str(path))
    assert table.values.tolist() == [
        ["Toy", "A cells", "CD3D", "positive"],
        ["Toy", "A cells", "CD3E", "positive"],
        ["Toy", "B cells", "CD79A", "positive"],
        ["Toy", "B cells", "MS4A1", "positive"],
        ["Toy", "B cells", "CD3E", "negative"],
    ]


def test_panglaodb_markers():
    everything = datasets.panglaodb_markers(species=None)
    assert everything.shape == (8286, 14)
    assert everything["cell_type"].nunique() == 178
    human = datasets.panglaodb_markers()
    assert human["species"].str.contains("Hs").all()
    assert len(human) == everything["species"].astype(str).str.split().apply(lambda s: "Hs" in s).sum()
    assert {"gene", "sensitivity_human", "specificity_human", "canonical_marker"} <= set(human.columns)
    with pytest.raises(ValueError, match="species must be"):
        datasets.panglaodb_markers("Human")


def test_lambert_tfs():
    tfs = datasets.lambert_tfs()
    assert len(tfs) == 1639 == len(set(tfs))
    assert all(t == t.strip() and "\r" not in t for t in tfs)
    assert {"STAT1", "SPI1", "GATA1", "ZZZ3"} <= set(tfs)
