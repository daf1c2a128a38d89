"""Single-gene attacks: dichotomic (adverSCarial) vs exhaustive, fast paths, counts, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.attack import AttackTarget, MClassifier, single_gene_attack
from perturblab.classifiers.base import CellTypeClassifier


def test_loom_fixture_mclassifier_both_modes_agree(loom_short):
    X, cl, genes = loom_short
    clf = MClassifier(genes)
    for mod, expected in [("perc99", {"GZMK", "LST1", "CD74", "PF4", "CCR7"}), ("perc1", {"GZMB"})]:
        ex = single_gene_attack(clf, X, cl, "NK", mod, gene_names=genes)
        di = single_gene_attack(clf, X, cl, "NK", mod, mode="dichotomic", gene_names=genes)
        assert set(ex.genes) == set(di.genes) == expected
        # 200 genes in 100 round-robin buckets of 2: baseline + 2 halves per bucket, hits are single genes
        assert di.n_classifier_calls == 201
        assert ex.n_genes_evaluated == 10 and ex.n_genes_skipped == 190 and ex.n_classifier_calls == 11
        assert (ex.table["original_label"] == "NK").all()


def test_pbmc3k_mclassifier_nk_matches_the_anchor(pbmc_split):
    # spec: the anchor's MClassifier on the PBMC3k test half, NK: perc99 hits CCR7, CD74, LST1, GZMK; perc1 1 hit
    _, test = pbmc_split
    X = test.X.toarray().astype(np.float32)
    cl = test.obs["cell_type"].astype(str).to_numpy()
    clf = MClassifier(test.var_names)
    for mode in ("exhaustive", "dichotomic"):
        r99 = single_gene_attack(clf, X, cl, "NK", "perc99", mode=mode, gene_names=test.var_names)
        r1 = single_gene_attack(clf, X, cl, "NK", "perc1", mode=mode, gene_names=test.var_names)
        assert set(r99.genes) == {"CCR7", "CD74", "LST1", "GZMK"}
        assert r1.genes == ["GZMB"] and r1.table["new_label"].tolist() == ["UNDETERMINED"]
    row = r99.table.set_index("gene").loc["CCR7"]
    assert row["new_label"] == "Naive CD4 T" and row["original_label"] == "NK"


def masked_classifier(X, clusters, target):
    """Flips to 'hit' when gene 0 is high unless gene 2 is high too (gene 2 masks gene 0)."""
    m = np.asarray(clusters) == target
    a, b = X[m, 0].mean(), X[m, 2].mean()
    return ("hit", 0.9) if a > 5 and b <= 5 else ("orig", 1.0)


def test_masked_gene_missed_by_dichotomic_found_by_exhaustive():
    X = np.zeros((6, 4), dtype=np.float32)
    X[3:, :] = 10  # other cells: perc99 writes ~10 into the target cells
    cl = np.array(["t"] * 3 + ["o"] * 3)
    names = ["A", "C", "B", "D"]  # one bucket: halves [A, B] (masked) and [C, D]
    di = single_gene_attack(masked_classifier, X, cl, "t", mode="dichotomic", first_dichot=1, gene_names=names)
    ex = single_gene_attack(masked_classifier, X, cl, "t", mode="exhaustive", gene_names=names)
    assert di.genes == [] and di.n_classifier_calls == 3
    assert ex.genes == ["A"] and ex.table["new_label"].tolist() == ["hit"] and ex.n_classifier_calls == 5
    # with a bucket per gene the dichotomic search finds it too
    assert single_gene_attack(masked_classifier, X, cl, "t", mode="dichotomic", gene_names=names).genes == ["A"]


def test_dichotomic_recursion_max_split_and_first_found():
    # genes 0..7; cluster flips when any of genes 1, 6 is high (perc99 -> 10)
    X = np.zeros((4, 8), dtype=np.float32)
    X[2:] = 10
    cl = np.array(["t", "t", "o", "o"])

    def clf(X, clusters, target):
        m = np.asarray(clusters) == target
        return ("hit", 1.0) if X[m][:, [1, 6]].max() > 5 else ("orig", 1.0)

    names = [f"g{i}" for i in range(8)]
    full = single_gene_attack(clf, X, cl, "t", mode="dichotomic", first_dichot=1, gene_names=names)
    # bucket [0..7] -> evens [0,2,4,6] (flip) -> [0,4],[2,6](flip) -> [2],[6]; odds [1,3,5,7] -> [1,5](flip) -> [1],[5]
    assert full.genes == ["g6", "g1"]  # the anchor's depth-first order
    assert full.n_classifier_calls == 1 + 2 + 2 + 2 + 2 + 2
    grouped = single_gene_attack(clf, X, cl, "t", mode="dichotomic", first_dichot=1, max_split_size=2, gene_names=names)
    assert grouped.genes == ["g2__g6", "g1__g5"] and grouped.table["n_genes"].tolist() == [2, 2]
    first = single_gene_attack(clf, X, cl, "t", mode="dichotomic", first_dichot=1, return_first_found=True,
                               gene_names=names)
    assert first.genes == ["g6"] and first.n_classifier_calls == 6  # baseline, [0,2,4,6], [0,4], [2,6], [2], [6]


def test_change_type_not_na_and_excluded_genes():
    X = np.zeros((4, 3), dtype=np.float32)
    X[2:] = 10
    cl = np.array(["t", "t", "o", "o"])

    def clf(X, clusters, target):
        m = np.asarray(clusters) == target
        if X[m, 0].mean() > 5:
            return ("NA", 0.0)
        return ("hit", 1.0) if X[m, 1].mean() > 5 else ("orig", 1.0)

    names = ["a", "b", "c"]
    assert single_gene_attack(clf, X, cl, "t", gene_names=names).genes == ["a", "b"]
    for mode in ("exhaustive", "dichotomic"):
        assert single_gene_attack(clf, X, cl, "t", mode=mode, change_type="not_na", gene_names=names).genes == ["b"]
    r = single_gene_attack(clf, X, cl, "t", excluded_genes=["b"], gene_names=names)
    assert r.genes == ["a"] and r.n_genes == 2
    assert single_gene_attack(clf, X, cl, "t", genes=["b", "c"], gene_names=names).genes == ["b"]


def test_sctype_exhaustive_superset_and_fast_path_exact(sctype_test):
    clf, X, cl = sctype_test
    for mod in ("perc99", "perc1"):
        fast = single_gene_attack(clf, X, cl, "B", mod)
        slow = single_gene_attack(clf, X, cl, "B", mod, use_fast_path=False)
        assert fast.table.equals(slow.table)
        if mod == "perc1":  # the anchor's hits on this split: MS4A1 and SSR4
            assert set(fast.genes) == {"MS4A1", "SSR4"}
            di = single_gene_attack(clf, X, cl, "B", mod, mode="dichotomic")
            assert set(di.genes) <= set(fast.genes)
        assert fast.n_genes_evaluated == len(clf.used_genes_)
        assert fast.n_genes_skipped == X.shape[1] - len(clf.used_genes_)
        assert fast.n_classifier_calls == 1 + fast.n_genes_evaluated
        assert fast.n_batched_calls < slow.n_batched_calls
    assert fast.baseline_label == "Naive B cells"


def test_fast_paths_equal_brute_force_per_gene_calls(sctype_test):
    clf, X, cl = sctype_test
    res = single_gene_attack(clf, X, cl, "B", "perc99")
    from perturblab.attack import apply_modification

    base = clf.predict_cluster(X, cl, "B").label
    for g in clf.used_genes_[:40]:
        label = clf.predict_cluster(apply_modification(X, cl, "B", [g], "perc99"), cl, "B").label
        assert (label != base) == (clf.genes_[g] in set(res.genes))


def test_mlp_fast_path_equals_generic_and_brute_force(loom_short):
    import anndata as ad

    from perturblab.attack import apply_modification
    from perturblab.classifiers.mlp import MLPClassifier

    counts, cl, genes = loom_short
    adata = ad.AnnData(counts, obs={"cell_type": cl}, var={"gene": genes})
    adata.var_names = genes
    clf = MLPClassifier(epochs=5, random_state=0, device="cpu").fit(adata, "cell_type")
    X = clf.preprocess(adata)
    for mod in ("perc1", "positive_aberrant", "decile+5"):
        fast = single_gene_attack(clf, X, cl, "NK", mod)
        slow = single_gene_attack(clf, X, cl, "NK", mod, use_fast_path=False)
        assert fast.table.equals(slow.table)
        assert fast.n_genes_evaluated == 200 and fast.n_classifier_calls == 201
    assert len(fast.genes) > 0
    hits = set(single_gene_attack(clf, X, cl, "NK", "perc1").genes)
    base = clf.predict_cluster(X, cl, "NK").label
    for g in range(60):
        label = clf.predict_cluster(apply_modification(X, cl, "NK", [g], "perc1"), cl, "NK").label
        assert (label != base) == (genes[g] in hits)


class _Linear(CellTypeClassifier):
    """A tiny per-cell linear classifier (scores = X @ W), used for engine semantics."""

    representation = "log1p"

    def __init__(self, W, classes, used=None):
        self.W, self.classes_ = np.asarray(W, float), np.asarray(classes, dtype=object)
        self.genes_ = np.array([f"g{i}" for i in range(self.W.shape[0])])
        self.used_genes_ = used

    def preprocess(self, adata):
        return adata

    def fit(self, adata, label_key):
        return self

    def predict_proba(self, X):
        S = np.asarray(X, float) @ self.W
        P = np.exp(S - S.max(axis=1, keepdims=True))
        return P / P.sum(axis=1, keepdims=True)


def test_engine_rescores_only_cluster_rows_and_counts():
    W = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    X = np.array([[2, 1, 0], [2, 1, 0], [0, 5, 0], [0, 9, 9]], dtype=np.float32)
    cl = np.array(["t", "t", "o", "o"])
    clf = _Linear(W, ["A", "B"], used=np.array([0, 1]))
    seen = []
    orig = clf.predict

    def spy(Z):
        seen.append(len(Z))
        return orig(Z)

    clf.predict = spy
    tgt = AttackTarget(clf, X, cl, "t", max_batch_values=2 * 3 * 2)  # two variants per batch
    assert tgt.baseline().label == "A" and seen == [2]
    calls = tgt.classify_single_genes(np.array([0, 1, 2]), np.array([[0, 9, 0], [0, 9, 0]], np.float32))
    assert [c.label for c in calls] == ["B", "B", "A"]
    assert seen == [2, 4, 2] and tgt.n_calls == 4 and tgt.n_batched_calls == 3
    r = single_gene_attack(clf, X, cl, "t", "perc99")
    assert r.genes == ["g1"] and r.n_genes_skipped == 1 and r.n_genes_evaluated == 2


def test_bad_input_errors(loom_short):
    X, cl, genes = loom_short
    clf = MClassifier(genes)
    with pytest.raises(ValueError, match="unknown modification"):
        single_gene_attack(clf, X, cl, "NK", "perc98", gene_names=genes)
    with pytest.raises(ValueError, match="unknown cluster"):
        single_gene_attack(clf, X, cl, "Martian", gene_names=genes)
    with pytest.raises(ValueError, match="unknown cluster"):
        single_gene_attack(clf, X, np.where(cl == "NK", "x", cl), "NK", gene_names=genes)
    with pytest.raises(ValueError, match="excluded gene"):
        single_gene_attack(clf, X, cl, "NK", excluded_genes=["NOT_A_GENE"], gene_names=genes)
    with pytest.raises(ValueError, match="mode"):
        single_gene_attack(clf, X, cl, "NK", mode="greedy", gene_names=genes)
    with pytest.raises(ValueError, match="change_type"):
        single_gene_attack(clf, X, cl, "NK", change_type="some", gene_names=genes)
    with pytest.raises(ValueError, match="gene_names"):
        single_gene_attack(lambda X, c, t: ("NK", 1.0), X, cl, "NK")
    with pytest.raises(ValueError, match="clusters has"):
        single_gene_attack(clf, X, cl[:-1], "NK", gene_names=genes)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        single_gene_attack(clf, bad, cl, "NK", gene_names=genes)
