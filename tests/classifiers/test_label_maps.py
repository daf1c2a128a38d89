"""scType's label map: the shipped table, user-replaceable maps, and the unmapped fraction on PBMC3k."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from perturblab.classifiers import (
    PBMC3K_BROAD_LABEL_MAP,
    PBMC3K_LABEL_MAP,
    ScTypeClassifier,
    evaluate_classifier,
    label_map_coverage,
    read_label_map,
    sctype_label_map,
    unmapped_fraction,
)


def test_shipped_table_lists_every_sctype_immune_name():
    from perturblab.datasets import sctype_markers

    full = sctype_label_map("pbmc3k", "all")
    names = set(sctype_markers(tissue="Immune system", db="full", as_dict=True)["positive"])
    assert set(full["sctype_name"]) == names and len(full) == 34
    assert (full["rationale"].str.len() > 3).all()
    strict = sctype_label_map("pbmc3k", "strict")
    assert dict(zip(strict["sctype_name"], strict["label"], strict=True)) == PBMC3K_LABEL_MAP
    broad = read_label_map("pbmc3k")
    assert broad == PBMC3K_BROAD_LABEL_MAP and set(PBMC3K_LABEL_MAP.items()) < set(broad.items())
    assert broad["Pre-B cells"] == "B" and "Basophils" not in broad and "γδ-T cells" not in broad
    with pytest.raises(ValueError, match="did you mean 'strict'"):
        sctype_label_map("pbmc3k", "strikt")


def test_read_label_map_forms(tmp_path):
    as_dict = {"Naive B cells": "B", "Classical Monocytes": "CD14+ Mono"}
    df = pd.DataFrame({"sctype_name": list(as_dict) + ["Basophils"], "label": list(as_dict.values()) + [""]})
    assert read_label_map(df) == as_dict  # an empty label documents an unmapped name
    assert read_label_map(pd.DataFrame({"a": ["x"], "b": ["y"]})) == {"x": "y"}
    path = tmp_path / "map.tsv"
    df.to_csv(path, sep="\t", index=False)
    assert read_label_map(path) == as_dict and read_label_map(str(path)) == as_dict
    assert read_label_map(as_dict) == as_dict and read_label_map(None) is None
    assert read_label_map("pbmc3k_strict") == PBMC3K_LABEL_MAP
    with pytest.raises(ValueError, match="both"):
        read_label_map(pd.DataFrame({"sctype_name": ["x", "x"], "label": ["a", "b"]}))
    with pytest.raises(KeyError, match="unknown label map"):
        read_label_map("pbmc4k")
    assert ScTypeClassifier(label_map=df).label_map == as_dict
    assert ScTypeClassifier(label_map="pbmc3k").label_map == PBMC3K_BROAD_LABEL_MAP


def test_coverage_counts_cells_without_counterpart():
    clf = ScTypeClassifier(label_map={"Naive B cells": "B"})
    clf.classes_ = np.array(["Basophils", "Naive B cells"], dtype=object)
    cov = label_map_coverage(clf, ["Naive B cells", "Basophils", "Naive B cells", "Unknown"], ["B", "NK"])
    row = cov.set_index("answer")
    assert row.loc["Naive B cells", "n_cells"] == 2 and row.loc["Naive B cells", "mapped_label"] == "B"
    assert not row.loc["Basophils", "has_counterpart"] and row.loc["Unknown", "abstention"]
    assert unmapped_fraction(clf, ["Naive B cells", "Basophils", "Naive B cells", "Unknown"], ["B"]) == 0.5


def test_broad_map_on_pbmc3k(pbmc_split):
    train, test = pbmc_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf = ScTypeClassifier(label_map="pbmc3k_strict").fit(train)
    pred = clf.predict(clf.preprocess(test))
    labels = test.obs["cell_type"].astype(str).unique()
    strict = evaluate_classifier(clf, test, "cell_type").iloc[0]
    assert unmapped_fraction(clf, pred, labels) == pytest.approx(strict["not_a_label"])
    clf.label_map = read_label_map("pbmc3k")
    broad = evaluate_classifier(clf, test, "cell_type").iloc[0]
    # the broader map reads more answers as dataset labels: fewer cells without counterpart, better scores
    assert broad["accuracy"] > strict["accuracy"] + 0.05 and broad["macro_f1"] > strict["macro_f1"]
    assert unmapped_fraction(clf, pred, labels) < 0.3 < strict["not_a_label"]
