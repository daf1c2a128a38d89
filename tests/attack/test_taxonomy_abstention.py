"""Flip taxonomy and abstention outcomes: hand-made cases with known categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perturblab.attack import (
    FLIP_CATEGORIES,
    abstention_table,
    flip_taxonomy,
    probability_margin,
    taxonomy_counts,
)
from perturblab.classifiers import ScTypeClassifier

from ._toy import Lin


def test_flip_taxonomy_categories():
    t = pd.DataFrame({
        "classifier": ["sctype"] * 7,
        "cluster": ["B", "B", "NK", "NK", "NK", "B", "CD8 T"],
        "original_label": ["Naive B cells", "Naive B cells", "Pro-B cells", "Natural killer  cells", "Pro-B cells",
                           "Naive B cells", "Natural killer  cells"],
        "new_label": ["Memory B cells", "Cancer cells", "Natural killer  cells", "Unknown", "Cancer cells",
                      None, "CD8+ NKT-like cells"],
    })
    out = flip_taxonomy(t, label_map="pbmc3k")
    assert out["flip_category"].tolist() == ["within_label", "real_flip", "to_correct", "to_abstention",
                                             "already_wrong", "no_flip", "to_correct"]
    assert out["is_vulnerability"].tolist() == [False, True, False, False, False, False, False]
    assert out.loc[2, "original_mapped"] == "B" and not out.loc[2, "original_correct"] and out.loc[2, "new_correct"]
    # the classifier's own map gives the same answer; without a map ScTypeDB names are never "correct"
    clf = ScTypeClassifier(label_map="pbmc3k")
    clf.classes_ = np.array(sorted(set(t["original_label"]) | set(t["new_label"].dropna()) - {"Unknown"}), dtype=object)
    assert flip_taxonomy(t, classifier=clf)["flip_category"].tolist() == out["flip_category"].tolist()
    raw = flip_taxonomy(t)
    assert set(raw["flip_category"]) == {"already_wrong", "no_flip"}
    counts = taxonomy_counts(out).set_index("classifier")
    assert list(counts.columns[: len(FLIP_CATEGORIES)]) == list(FLIP_CATEGORIES)
    assert counts.loc["sctype", "n_flips"] == 6 and counts.loc["sctype", "n_vulnerabilities"] == 1
    with pytest.raises(KeyError, match="true_col"):
        flip_taxonomy(t, true_col="cell_type")


def test_abstention_outcomes():
    clf = Lin(threshold=0.7)
    # clusters: "a" (A, confident), "b" (B, confident), "c" (A), "d" (A)
    X = np.array([[3, 0, 0]] * 3 + [[0, 3, 0]] * 3 + [[3, 0, 0]] * 3 + [[3, 0, 0]] * 3, dtype=np.float32)
    cl = np.repeat(["a", "b", "c", "d"], 3)
    Xa = X.copy()
    Xa[0, :2] = [1, 1]        # a: one cell to Unknown (p = 0.5), majority still A -> only_abstention
    Xa[3:6, :2] = [1, 1.2]    # b: all cells Unknown (p = 0.55) -> flip_to_abstention
    Xa[6:8, :2] = [0, 3]      # c: two cells to B -> flip
    Xa[9, :2] = [0, 3]        # d: one to B -> partial (majority A)
    tab = abstention_table(clf, X, Xa, cl, attack="toy").set_index("cluster")
    assert tab["outcome"].to_dict() == {"a": "only_abstention", "b": "flip_to_abstention", "c": "flip", "d": "partial"}
    assert tab.loc["a", "abstention_before"] == 0 and tab.loc["a", "abstention_after"] == pytest.approx(1 / 3)
    assert tab.loc["b", "majority_after"] == "Unknown" and tab.loc["b", "n_to_abstention"] == 3
    assert tab.loc["c", "n_to_label"] == 2 and tab.loc["c", "majority_after"] == "B"
    m = probability_margin(clf.predict_proba(X[:1]))[0]
    assert m == pytest.approx(np.tanh(1.5))  # p_A - p_B = tanh(3 / 2) for scores 3 and 0
    assert tab.loc["a", "margin_before"] == pytest.approx(m) and tab.loc["a", "margin_after"] < m
    # only changed clusters by default; an unchanged one reads no_change
    assert abstention_table(clf, X, Xa, cl)["cluster"].tolist() == ["a", "b", "c", "d"]
    assert abstention_table(clf, X, X, cl, ["a"])["outcome"].tolist() == ["no_change"]
    with pytest.raises(ValueError, match="same cells"):
        abstention_table(clf, X, Xa[:5], cl)
