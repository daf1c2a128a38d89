"""White-box attacks under biological budgets: known answers on a linear model, the MLP on PBMC3k."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.attack import (
    Budget,
    budget_curve,
    gene_bounds,
    rank_genes,
    whitebox_attack,
)
from perturblab.attack.budget import closure_gradient

from ._toy import Lin

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy():
    # cluster t: 3 cells at (2, 1); others span g0 in [0, 3], g1 in [0, 1.2]
    X = np.array([[2, 1, 5], [2, 1, 5], [2, 1, 5], [0, 0, 0], [3, 1.2, 9]], dtype=np.float32)
    return X, np.array(["t", "t", "t", "o", "o"])


def test_bounds_and_ranking_by_hand():
    X, _ = toy()
    lo, hi = gene_bounds(X)
    np.testing.assert_allclose(lo, [0, 0, 0])
    np.testing.assert_allclose(hi, [3, 1.2, 9])
    plo, phi = gene_bounds(X, "percentile")
    np.testing.assert_allclose(phi, np.quantile(X, 0.99, axis=0), rtol=1e-6)
    np.testing.assert_allclose(plo, np.quantile(X, 0.01, axis=0), rtol=1e-6)
    # gradient of the loss (away from A): dL/dx0 < 0, dL/dx1 > 0 with equal magnitude p_B
    g = np.tile([-0.27, 0.27, 0.0], (3, 1))
    order, score = rank_genes(g, X[:3], lo, hi, amplitude=1.0)
    # g0 may fall by 2 (to 0), g1 rise by 0.2 (to 1.2): gains 0.54 and 0.054; g2 has no gradient
    np.testing.assert_allclose(score, [0.54, 0.054, 0.0], rtol=1e-6)
    assert order.tolist() == [0, 1]
    order, score = rank_genes(g, X[:3], lo, hi, amplitude=0.05)  # eps 0.15 / 0.06: g0 still first
    np.testing.assert_allclose(score, [0.27 * 0.15, 0.27 * 0.06, 0.0], rtol=1e-6)
    assert rank_genes(g, X[:3], lo, hi, 1.0, how="gradient")[1][2] == 0
    assert rank_genes(g, X[:3], lo, hi, 1.0, candidates=[1])[0].tolist() == [1]
    with pytest.raises(ValueError, match="amplitude"):
        Budget(k=2, amplitude=1.5)
    with pytest.raises(ValueError, match="k"):
        Budget(k=0)


def test_closure_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    C = rng.poisson(5, size=(2, 6)).astype(float) + 1
    w = rng.normal(size=6)
    L = C.sum(axis=1)  # loss = sum_g w_g log1p(1e4 C_g / L), the library held at L
    G = w / (1 + C / L[:, None] * 1e4) * 1e4 / L[:, None]  # d loss / d C at fixed L
    got = closure_gradient(G, C, L)
    for j in range(6):
        d = 1e-4
        Cp = C.copy()
        f = (L - C[:, j] - d) / (L - C[:, j])
        Cp *= f[:, None]
        Cp[:, j] = C[:, j] + d
        num = np.array([(np.log1p(Cp[i] / L[i] * 1e4) - np.log1p(C[i] / L[i] * 1e4)) @ w / d for i in range(2)])
        np.testing.assert_allclose(got[:, j], num, rtol=1e-3)


def test_pgd_known_answer_on_a_linear_classifier():
    X, cl = toy()
    r = whitebox_attack(Lin(), X, cl, "t", k=1, amplitude=1.0)
    # g0 (gain 0.54) is the only gene attacked: 2 -> 0 (its lower bound), then B = 1 > A = 0 everywhere
    assert r.genes == ["g0"] and r.flipped and r.summary["new_label"] == "B" and r.summary["cell_success_rate"] == 1
    np.testing.assert_allclose(r.X[:3, 0], 0.0, atol=1e-6)
    np.testing.assert_array_equal(r.X[:3, 1:], X[:3, 1:])
    np.testing.assert_array_equal(r.X[3:], X[3:])
    d = r.label_distribution.set_index("label")
    assert d.loc["A", "n_before"] == 3 and d.loc["B", "n_after"] == 3
    # 30% of the range (0.9) is not enough with one gene: x0 = 1.1 > x1 = 1
    small = whitebox_attack(Lin(), X, cl, "t", k=1, amplitude=0.3, method="fgsm")
    np.testing.assert_allclose(small.X[:3, 0], 1.1, atol=1e-6)
    assert not small.flipped and small.summary["cell_success_rate"] == 0
    # two genes: g1 also rises to its upper bound 1.2 > 1.1
    both = whitebox_attack(Lin(), X, cl, "t", k=2, amplitude=0.3)
    np.testing.assert_allclose(both.X[:3, :2], [[1.1, 1.2]] * 3, atol=1e-6)
    assert both.flipped and both.summary["n_genes"] == 2
    # targeted towards A (already A): nothing to gain, cells stay A
    tgt = whitebox_attack(Lin(), X, cl, "t", k=1, new_target="A")
    assert not tgt.flipped and tgt.summary["cell_success_rate"] == 1.0


def test_whitebox_errors():
    X, cl = toy()

    class NotDiff(Lin):
        torch_module = None

    with pytest.raises(ValueError, match="not differentiable"):
        whitebox_attack(NotDiff(), X, cl, "t")
    with pytest.raises(KeyError, match="unknown cluster"):
        whitebox_attack(Lin(), X, cl, "zz")
    with pytest.raises(ValueError, match="method"):
        whitebox_attack(Lin(), X, cl, "t", method="cw")
    with pytest.raises(ValueError, match="negative"):
        whitebox_attack(Lin(), X - 5, cl, "t", space="counts", var_names=Lin().genes_)


def test_mlp_budget_curve_on_pbmc3k(mlp_hvg):
    clf, test = mlp_hvg
    X = clf.preprocess(test)
    cl = test.obs["cell_type"].astype(str).to_numpy()
    tab = budget_curve(clf, X, cl, ["NK"], ks=(1, 20), amplitudes=(1.0,), methods=("pgd",), name="mlp")
    assert tab.shape[0] == 2 and set(tab["classifier"]) == {"mlp"}
    one, twenty = tab.iloc[0], tab.iloc[1]
    assert twenty["flipped"] and twenty["cell_success_rate"] > one["cell_success_rate"]
    assert one["n_genes"] == 1 and len(twenty["genes"].split(";")) == 20
    r = whitebox_attack(clf, X, cl, "NK", k=5)
    rows = cl == "NK"
    changed = np.abs(r.X[rows] - X[rows]) > 1e-6
    assert changed.any(axis=0).sum() <= 5 and np.array_equal(r.X[~rows], X[~rows])  # L0 and cluster only
    lo, hi = gene_bounds(X)
    assert (lo - 1e-6 <= r.X).all() and (hi + 1e-6 >= r.X).all()
    again = whitebox_attack(clf, X, cl, "NK", k=5)
    np.testing.assert_array_equal(r.X, again.X)  # deterministic


def test_mlp_raw_counts_keep_the_library_size(mlp_hvg, pbmc_split):
    clf, _ = mlp_hvg
    test = pbmc_split[1]  # all genes: the library size sums over them
    C = np.asarray(test.X.toarray(), dtype=np.float32)
    cl = test.obs["cell_type"].astype(str).to_numpy()
    r = whitebox_attack(clf, C, cl, "NK", k=5, space="counts", var_names=test.var_names)
    rows = cl == "NK"
    np.testing.assert_allclose(r.X[rows].sum(axis=1), C[rows].sum(axis=1), rtol=1e-5)
    idx = [list(test.var_names).index(g) for g in r.genes]
    np.testing.assert_array_equal(r.X[rows][:, idx], np.rint(r.X[rows][:, idx]))  # attacked counts are integers
    assert r.summary["library_rel_error"] < 1e-5 and r.summary["space"] == "counts"
    free = whitebox_attack(clf, C, cl, "NK", k=5, space="counts", var_names=test.var_names, library_size="free")
    others = np.setdiff1d(np.arange(C.shape[1]), [list(test.var_names).index(g) for g in free.genes])
    np.testing.assert_array_equal(free.X[rows][:, others], C[rows][:, others])  # only the k genes change


def test_scaled_inputs_keep_negative_bounds():
    X, cl = toy()
    Xs = X - 2.5  # a "scaled" input: negative values are legitimate

    class Scaled(Lin):
        representation = "scaled"

    r = whitebox_attack(Scaled(), Xs, cl, "t", k=1)
    assert not r.summary["nonnegative"] and r.X[:3, 0].min() == pytest.approx(-2.5)  # g0 -> its observed minimum
    np.testing.assert_array_equal(r.X[3:], Xs[3:])  # other cells (negative values) untouched
    assert whitebox_attack(Lin(), X, cl, "t", k=1).summary["nonnegative"]  # log1p input: non-negative


def test_margin_loss_does_not_saturate():
    import torch

    from perturblab.attack.whitebox import MarginLoss

    s = torch.tensor([[3000.0, 0.0, -5.0], [0.0, 2.0, 1.0]], requires_grad=True)
    loss = MarginLoss()(s, torch.tensor([0, 1]))
    assert loss.item() == pytest.approx((0 - 3000) + (1 - 2))
    loss.backward()
    np.testing.assert_array_equal(s.grad.numpy(), [[-1, 1, 0], [0, -1, 1]])
    onehot = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    assert MarginLoss()(s, onehot).item() == pytest.approx(loss.item())
    X, cl = toy()
    big = X * 1000  # scores thousands apart: the cross-entropy gradient underflows, the margin's does not
    assert whitebox_attack(Lin(), big, cl, "t", k=1).flipped
    r = whitebox_attack(Lin(), big, cl, "t", k=1, loss="cross_entropy")
    assert r.summary["n_genes"] == 0 and not r.flipped and r.summary["loss"] == "cross_entropy"
