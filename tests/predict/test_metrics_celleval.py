"""cell-eval's, Systema's, scPerturBench's and Mejia et al.'s metrics on small hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from perturblab.predict import de as DE
from perturblab.predict import metrics as M
from perturblab.predict import metrics_de as MD
from perturblab.predict.metrics_targets import (
    centroid_accuracy,
    discrimination_score,
    perfect_discrimination_l2,
)


def test_mae_and_delta_errors_hand_computed():
    real, pred, ctrl = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0]), np.array([0.5, 0.5, 0.5])
    assert M.mae(real, pred) == pytest.approx((1 + 0 + 2) / 3)
    # the control cancels when both sides use the same control
    assert M.mse_delta(pred, real, ctrl) == pytest.approx((1 + 0 + 4) / 3)
    assert M.mae_delta(pred, real, ctrl) == pytest.approx(1.0)


def test_pearson_delta_reference_systema():
    # deltas from the reference: pred (1, 2, 3), real (2, 4, 6) -> r = 1; a reversed prediction -> r = -1
    ref = np.ones(3)
    assert M.pearson_delta_reference([2.0, 3.0, 4.0], [3.0, 5.0, 7.0], ref) == pytest.approx(1.0)
    assert M.pearson_delta_reference([4.0, 3.0, 2.0], [3.0, 5.0, 7.0], ref) == pytest.approx(-1.0)
    # predicting the reference itself (the average perturbed state) is undefined, not a score
    assert np.isnan(M.pearson_delta_reference(ref, [3.0, 5.0, 7.0], ref))


def test_weighted_mse_and_weighted_r2_delta_hand_computed():
    from sklearn.metrics import r2_score

    t, p, w = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), np.array([1.0, 1.0, 2.0])
    # weights normalised to (.25, .25, .5): only gene 3 errs, by 2 -> .5 * 4
    assert M.weighted_mse(t, p, w) == pytest.approx(2.0)
    # weighted mean of t = 2.25; SS_tot = .25*1.5625 + .25*.0625 + .5*.5625 = .6875; SS_res = 2
    assert M.weighted_r2_delta(p, t, np.zeros(3), w) == pytest.approx(1 - 2 / 0.6875)
    assert M.weighted_r2_delta(p, t, np.zeros(3), w) == pytest.approx(r2_score(t, p, sample_weight=w))
    with pytest.raises(ValueError, match="one weight per gene"):
        M.weighted_mse(t, p, [1.0, 1.0])


@pytest.mark.filterwarnings("ignore:invalid value encountered in log2:RuntimeWarning")
def test_deg_weights_transform_and_t_scores_match_scanpy():
    import anndata as ad
    import scanpy as sc

    # |t| = (1, 2, 3) -> min-max (0, .5, 1) -> squared (0, .25, 1) -> sum 1: (0, .2, .8)
    np.testing.assert_allclose(DE.weights_from_scores([1.0, -2.0, 3.0]), [0.0, 0.2, 0.8])
    assert DE.weights_from_scores([0.0, 0.0]).tolist() == [0.5, 0.5]  # nothing differs: uniform
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(1.0, 1.0, (12, 5)), rng.normal(0.0, 0.5, (30, 5))])
    a = ad.AnnData(X.astype(np.float32))
    a.obs["g"] = ["a"] * 12 + ["b"] * 30
    for method, over in (("t-test", False), ("t-test_overestim_var", True)):
        sc.tl.rank_genes_groups(a, "g", groups=["a"], reference="b", method=method, n_genes=5)
        names = a.uns["rank_genes_groups"]["names"]["a"].astype(int)
        ref = np.empty(5)
        ref[names] = a.uns["rank_genes_groups"]["scores"]["a"]
        np.testing.assert_allclose(DE.welch_t_scores(X[:12], X[12:], overestimate_var=over), ref, rtol=1e-4)
    assert set(DE.top_degs_ttest(X[:12], X[12:], n=2)) == set(np.argsort(-np.abs(ref))[:2])


def test_mann_whitney_hand_computed_and_equal_to_scipy():
    # gene 0 perfectly separated, 4 vs 4 cells, two tie runs of 4: U1 = 16, T = 2 * (64 - 4) = 120,
    # var = 16/12 * (9 - 120/56), z = (16 - 8 - .5) / sqrt(var), p = 2 Phi(-z) = 0.013125...
    g = np.array([[2.0, 0.0, 1.0]] * 4)
    r = np.array([[1.0, 0.0, 0.0]] * 4)
    U, p = DE.mann_whitney(g, r)
    assert U[0] == 16.0 and p[0] == pytest.approx(0.0131246, abs=1e-6)
    assert p[1] == 1.0  # all values tied: no evidence
    rng = np.random.default_rng(1)
    X = np.round(rng.normal(0, 1, (50, 30)), 1)
    X[:, :4] = 0
    X[:5, :2] = 1
    U, p = DE.mann_whitney(X[:20], X[20:])
    ref = mannwhitneyu(X[:20], X[20:], method="asymptotic", axis=0)
    np.testing.assert_allclose(U, ref.statistic)
    np.testing.assert_allclose(p, np.nan_to_num(ref.pvalue, nan=1.0))


def test_differential_expression_fold_changes_pdex():
    # geometric means in count space: expm1(mean(log1p x)); group 3 vs ref 1 -> log2(3); 0 vs 0 -> 0; 1 vs 0 -> inf
    g = np.log1p(np.array([[3.0, 0.0, 1.0]] * 4))
    r = np.log1p(np.array([[1.0, 0.0, 0.0]] * 4))
    res = DE.differential_expression(g, r)
    assert res.log2_fold_change[0] == pytest.approx(np.log2(3.0), rel=1e-6)
    assert res.log2_fold_change[1] == 0.0 and np.isposinf(res.log2_fold_change[2])
    assert res.log2_fold_change.dtype == np.float32 and res.fdr.dtype == np.float32
    # BH over the 3 genes: p = (.0131, 1, .0131) -> fdr = (.0197, 1, .0197)
    np.testing.assert_allclose(res.fdr, [0.0131246 * 3 / 2, 1.0, 0.0131246 * 3 / 2], rtol=1e-4)
    assert res.significant().tolist() == [0, 2]
    assert res.ranked_significant().tolist() == [2, 0]  # |inf| before |log2 3|
    # ties of |log2FC| (one-sided zeros: inf) go to the smaller p-value, then the gene order
    tied = DE.DEResult(*[np.ones(4)] * 2, np.array([np.inf, -np.inf, 2.0, np.inf], np.float32),
                       np.array([0.01, 0.001, 1e-4, 0.01]), np.full(4, 0.01, np.float32), np.zeros(4))
    assert tied.ranked_significant().tolist() == [1, 0, 3, 2]


def _de(lfc, fdr) -> DE.DEResult:
    n = len(lfc)
    return DE.DEResult(np.ones(n), np.ones(n), np.asarray(lfc, np.float32), np.asarray(fdr, float),
                       np.asarray(fdr, np.float32), np.zeros(n))


# real DEGs {0, 1, 3, 4} (gene 2 has FDR .2), by |lfc|: 4, 0, 1, 3
REAL = _de([3.0, -2.0, 1.0, 0.5, -4.0], [0.01, 0.01, 0.2, 0.01, 0.04])
# predicted DEGs {0, 1, 2, 4}, by |lfc|: 1, 2, 0, 4
PRED = _de([1.0, -5.0, 2.0, 0.1, 0.3], [0.01, 0.01, 0.01, 0.5, 0.01])
# only 2 predicted DEGs {0, 1}, by |lfc|: 1, 0
PRED2 = _de([1.0, -5.0, 2.0, 0.1, 0.3], [0.01, 0.01, 0.5, 0.5, 0.5])


def test_overlap_and_precision_at_n_hand_computed():
    # N = #real DEGs = 4: {4,0,1,3} & {1,2,0,4} = 3 -> 3/4
    assert MD.overlap_at_n(REAL, PRED) == pytest.approx(0.75)
    assert MD.overlap_at_n(REAL, PRED, 2) == 0.0            # {4,0} & {1,2}
    assert MD.overlap_at_n(REAL, PRED, 3) == pytest.approx(2 / 3)  # {4,0,1} & {1,2,0}
    assert MD.overlap_at_n(REAL, PRED, 50) == pytest.approx(0.75)  # k capped at the 4 real DEGs
    # with 2 predicted DEGs: overlap k = 4 -> {4,0,1,3} & {1,0} = 2/4; precision k = 2 -> {4,0} & {1,0} = 1/2
    # (cell-eval cuts the real list at k too: the textbook precision would be 2/2)
    assert MD.overlap_at_n(REAL, PRED2) == pytest.approx(0.5)
    assert MD.precision_at_n(REAL, PRED2) == pytest.approx(0.5)
    assert MD.precision_at_n(REAL, PRED) == pytest.approx(0.75)
    none = _de([1.0, 1.0], [0.5, 0.5])
    assert MD.overlap_at_n(none, none) == 0.0 and MD.precision_at_n(none, none) == 0.0
    with pytest.raises(ValueError, match="N must be"):
        MD.overlap_at_n(REAL, PRED, 0)


def test_de_agreement_metrics_hand_computed():
    # signs over real DEGs {0,1,3,4}: real (+,-,+,-), pred (+,-,+,+) -> 3/4
    assert MD.de_direction_match(REAL, PRED) == pytest.approx(0.75)
    # ranks real (4,2,3,1), pred (4,1,2,3): Pearson of ranks = 2 / 5
    assert MD.de_spearman_lfc_sig(REAL, PRED) == pytest.approx(0.4)
    assert MD.de_sig_genes_recall(REAL, PRED) == pytest.approx(0.75)
    assert MD.de_nsig_counts(REAL, PRED) == (4, 4)
    empty = _de([1.0] * 5, [0.9] * 5)
    assert np.isnan(MD.de_direction_match(empty, PRED)) and np.isnan(MD.de_sig_genes_recall(empty, PRED))


def test_de_pr_and_roc_auc_hand_computed():
    # labels (1,1,0,1,1); scores -log10 FDR_pred = (2,2,2,.3,2)
    # threshold 2: TP 3 of 4 predicted, recall 3/4; then all: precision 4/5, recall 1 -> AP = .75*.75 + .25*.8
    assert MD.de_pr_auc(REAL, PRED) == pytest.approx(0.7625)
    # the only negative scores 2: no positive above it, 3 ties -> AUC = .5 * 3/4
    assert MD.de_roc_auc(REAL, PRED) == pytest.approx(0.375)
    all_pos = _de([1.0, 1.0], [0.01, 0.01])
    assert np.isnan(MD.de_pr_auc(all_pos, all_pos)) and np.isnan(MD.de_roc_auc(all_pos, all_pos))


def test_de_spearman_sig_over_targets():
    assert MD.de_spearman_sig([10, 20, 30], [1, 2, 3]) == pytest.approx(1.0)
    assert MD.de_spearman_sig([10, 20, 30], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(MD.de_spearman_sig([0, 0, 0], [1, 2, 3]))  # cell-eval would report 1.0


def test_discrimination_score_hand_computed():
    real = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    pred = np.array([[0.9, 0.0], [1.1, 0.0], [0.2, 0.0]])
    # target 0: L1 distances (.9, .1, 2.1) -> own rank 1 -> 1 - 1/3; target 1: (1.1, .1, 1.9) -> rank 0;
    # target 2: (.2, .8, 2.8) -> rank 2 -> 1/3
    np.testing.assert_allclose(discrimination_score(pred, real, "l1"), [2 / 3, 1.0, 1 / 3])
    np.testing.assert_allclose(discrimination_score(pred, real, "l2"), [2 / 3, 1.0, 1 / 3])
    # leaving gene 0 out of target 0's distances: all 0, the stable order puts target 0 first
    assert discrimination_score(pred, real, "l1", exclude=[[0], [], []])[0] == 1.0
    real_c = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    pred_c = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, -0.2]])
    # target 2: cosine distances to (1,0) .019, (0,1) 1.196, (1,1) .445 -> rank 1
    np.testing.assert_allclose(discrimination_score(pred_c, real_c, "cosine"), [1.0, 1.0, 2 / 3])
    with pytest.raises(ValueError, match="unknown distance"):
        discrimination_score(pred, real, "l3")
    with pytest.raises(ValueError, match="at least 2 targets"):
        discrimination_score(pred[:1], real[:1])


def test_perfect_discrimination_l2_hand_computed_and_simulated():
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # squared distances: 0-1 1, 0-2 9, 1-2 10
    # rank = #{b : ||R_a - R_b||^2 < 2 v_a}: a=0: 1 < 1.2 -> 1; a=1: none; a=2: 9 < 10, 10 !< 10 -> 1
    np.testing.assert_allclose(perfect_discrimination_l2(real, [0.6, 0.1, 5.0]), [2 / 3, 1.0, 2 / 3])
    with pytest.raises(ValueError, match="one variance per target"):
        perfect_discrimination_l2(real, [0.1, 0.1])
    with pytest.raises(ValueError, match="variances >= 0"):
        perfect_discrimination_l2(real, [0.1, -0.1, 0.1])
    with pytest.raises(ValueError, match="finite"):
        perfect_discrimination_l2(real, [0.1, np.nan, 0.1])
    # simulated: real deltas = known means + Gaussian noise; the predictor equal to the means scores as expected
    rng = np.random.default_rng(0)
    n_genes = 2000
    mu = np.array([np.zeros(n_genes), np.full(n_genes, 0.05), np.full(n_genes, 0.5)])
    var = np.array([0.005, 0.0005, 0.0005])  # per gene; target 0 noisy: own 10 vs 5 + 1 to target 1
    scores = []
    for _ in range(20):
        noisy = mu + rng.normal(size=mu.shape) * np.sqrt(var)[:, None]
        expected = perfect_discrimination_l2(noisy, var * n_genes)
        np.testing.assert_allclose(expected, [2 / 3, 1.0, 1.0])
        scores.append(discrimination_score(mu, noisy, "l2"))
    np.testing.assert_allclose(np.mean(scores, axis=0), [2 / 3, 1.0, 1.0])


def test_centroid_accuracy_hand_computed():
    real = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    pred = np.array([[0.9, 0.0], [1.1, 0.0], [0.2, 0.0]])
    # target 0: own .9, others .1 and 2.1 -> 1 of 2 farther; target 1: own .1 -> 2 of 2; target 2: own 2.8 -> 0
    np.testing.assert_allclose(centroid_accuracy(pred, real), [0.5, 1.0, 0.0])
    with pytest.raises(ValueError, match="shape"):
        centroid_accuracy(pred, real[:, :1])
