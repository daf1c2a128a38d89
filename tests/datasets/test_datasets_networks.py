"""Reference networks as tidy edge tables (real files from the data directory)."""

from __future__ import annotations

import pytest

from perturblab import datasets


def test_trrust():
    edges = datasets.trrust()
    assert len(edges) == 9396
    assert list(edges.columns[:2]) == ["source", "target"]
    signs = edges.groupby("regulation")["sign"].unique().apply(list).to_dict()
    assert signs == {"Activation": [1], "Repression": [-1], "Unknown": [0]}
    first = edges.iloc[0]
    assert (first["source"], first["target"], first["sign"], first["pmid"]) == ("AATF", "BAX", -1, "22909821")


def test_dorothea_levels():
    abc = datasets.dorothea()
    assert set(abc["confidence"]) == {"A", "B", "C"}
    assert list(abc.columns) == ["source", "target", "confidence", "mor"]
    assert set(abc["mor"]) <= {-1.0, 1.0}
    a_only = datasets.dorothea(levels=["a"])
    assert set(a_only["confidence"]) == {"A"} and len(a_only) < len(abc)
    assert len(datasets.dorothea(levels="ABCDE")) == 454504
    with pytest.raises(ValueError, match="subset of A, B, C, D, E"):
        datasets.dorothea(levels=("A", "F"))


def test_collectri():
    edges = datasets.collectri()
    assert len(edges) == 64186
    assert {"source", "target", "mor"} <= set(edges.columns)
    assert set(edges["mor"]) == {-1, 1}
    no_complex = datasets.collectri(complexes=False)
    assert not no_complex["source"].str.startswith("COMPLEX:").any()
    assert len(no_complex) == len(edges) - edges["source"].str.startswith("COMPLEX:").sum()


def test_string_ppi_undirected_and_scored():
    edges = datasets.string_ppi()
    assert list(edges.columns[:3]) == ["source", "target", "score"]
    assert edges["score"].min() >= 700
    pairs = edges[["source", "target"]].apply(lambda r: frozenset(r), axis=1)
    assert pairs.is_unique  # undirected: each edge once
    stricter = datasets.string_ppi(min_score=900)
    assert len(stricter) == (edges["score"] >= 900).sum()
    with pytest.warns(UserWarning, match="incomplete below 700"):
        loose = datasets.string_ppi(min_score=400)
    assert len(loose) == 174962
    with pytest.raises(ValueError, match="min_score"):
        datasets.string_ppi(min_score=1200)
