"""Baselines on tiny synthetic cases with known answers, and once on the real Kang subset."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturblab.predict import (
    BASELINES,
    MODELS,
    baselines_for,
    evaluate,
    loco_split,
    make_model,
    prepare,
)
from perturblab.predict.models import SOURCE_KEY


def _adata(blocks) -> ad.AnnData:
    """AnnData from ``[(cell_type, condition, matrix), ...]`` (log-normalised-looking values)."""
    X = np.vstack([np.asarray(m, dtype=np.float32) for _, _, m in blocks])
    obs = pd.DataFrame({"cell_type": [t for t, _, m in blocks for _ in range(len(m))],
                        "condition": [c for _, c, m in blocks for _ in range(len(m))]})
    obs.index = [f"c{i}" for i in range(len(obs))]
    a = ad.AnnData(X, obs=obs)
    a.var_names = [f"g{i}" for i in range(X.shape[1])]
    return a


def _cells(mean, n=4, spread=0.1):
    """``n`` cells with exact mean ``mean`` (symmetric offsets)."""
    offsets = np.linspace(-spread, spread, n)[:, None]
    return np.asarray(mean, dtype=float)[None, :] + offsets


def test_registry():
    assert "scgen_unbalanced" in MODELS and "scgen_unbalanced" not in BASELINES
    assert set(BASELINES) <= set(MODELS)
    assert {"train_mean", "matching_mean", "linear"} <= set(BASELINES) and "additive" not in BASELINES
    single = _adata([("A", "control", _cells([1, 1])), ("A", "stim", _cells([2, 1]))])
    combo = _adata([("A", "control", _cells([1, 1])), ("A", "X+Y", _cells([2, 1]))])
    assert baselines_for(single) == BASELINES
    assert baselines_for(combo) == (*BASELINES, "additive")


def test_train_mean_draws_around_the_training_stimulated_mean():
    train = _adata([("A", "control", _cells([1, 1, 1])), ("A", "stimulated", _cells([3, 1, 0.5])),
                    ("B", "control", _cells([2, 2, 2])), ("B", "stimulated", _cells([5, 3, 1.5]))])
    model = make_model("train_mean", train, random_state=0)
    np.testing.assert_allclose(model.mean_, [4.0, 2.0, 1.0])
    # a control input without spread: every drawn cell is the training stimulated mean exactly
    flat = _adata([("C", "control", np.tile([7.0, 7.0, 7.0], (5, 1)))])
    pred = model.predict(flat)
    np.testing.assert_allclose(pred.X, np.tile([4.0, 2.0, 1.0], (5, 1)), rtol=1e-6)
    assert SOURCE_KEY not in pred.obs  # not made cell by cell from control cells
    # with spread: mean near the training mean, SD near the control's (ddof 0), seeded
    rng = np.random.default_rng(0)
    big = _adata([("C", "control", rng.normal(3.0, 0.5, (4000, 3)))])
    X = make_model("train_mean", train, random_state=1).predict(big).X
    np.testing.assert_allclose(X.mean(0), [4.0, 2.0, 1.0], atol=0.03)
    np.testing.assert_allclose(X.std(0), big.X.std(0), rtol=0.05)
    assert np.array_equal(X, make_model("train_mean", train, random_state=1).predict(big).X)


def test_matching_mean_single_and_combinations():
    train = _adata([("A", "control", _cells([1, 1])), ("A", "stimulated", _cells([3, 1])),
                    ("B", "control", _cells([2, 2])), ("B", "stimulated", _cells([5, 1]))])
    ctrl = _adata([("C", "control", _cells([0.0, 2.0]))])
    pred = make_model("matching_mean", train).predict(ctrl)
    # centroid = mean of all training stimulated cells (4, 1); the cells keep the control spread
    np.testing.assert_allclose(pred.X.mean(0), [4.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(pred.X - pred.X.mean(0), ctrl.X - ctrl.X.mean(0), atol=1e-6)
    assert list(pred.obs[SOURCE_KEY]) == list(ctrl.obs_names)
    combo = _adata([("A", "control", _cells([1, 1])), ("A", "P", _cells([3, 1])), ("A", "Q", _cells([1, 5])),
                    ("A", "P+Q", _cells([9, 9]))])
    m = make_model("matching_mean", combo, stimulated="P+Q")
    np.testing.assert_allclose(m.centroid_, [2.0, 3.0])  # (mean P + mean Q) / 2, not the P+Q cells
    fallback = _adata([("A", "control", _cells([1, 1])), ("A", "P", _cells([3, 1])), ("A", "Z", _cells([1, 7])),
                       ("A", "P+Q", _cells([9, 9]))])
    m = make_model("matching_mean", fallback, stimulated="P+Q")
    # Q never measured alone: Systema uses all perturbed cells (P, Z, P+Q pooled: (13/3, 17/3))
    assert m.fallback_ == ["Q"]
    np.testing.assert_allclose(m.centroid_, [(3 + 13 / 3) / 2, (1 + 17 / 3) / 2])


def test_linear_recovers_an_affine_response_of_the_control_profile():
    rng = np.random.default_rng(0)
    # the gene embedding is a PCA of pseudobulks centred over genes (R's prcomp, as in the paper), so the
    # part of the response that varies between cell types must average 0 over genes to be representable
    A = (np.eye(3) - 1 / 3) @ rng.normal(0, 0.5, (3, 3))
    b = np.array([0.5, -0.2, 1.0])
    blocks = []
    for t in range(6):
        c = rng.normal(2.0, 1.0, 3)
        blocks += [(f"T{t}", "control", _cells(c)), (f"T{t}", "stimulated", _cells(c + A @ c + b))]
    train = _adata(blocks)
    model = make_model("linear", train, ridge=1e-9)
    c_new = np.array([1.5, 2.5, 2.0])
    np.testing.assert_allclose(model.change(c_new), A @ c_new + b, atol=1e-4)
    ctrl = _adata([("new", "control", _cells(c_new))])
    pred = model.predict(ctrl)
    np.testing.assert_allclose(pred.X, ctrl.X + (A @ c_new + b), atol=1e-4)
    assert list(pred.obs[SOURCE_KEY]) == list(ctrl.obs_names)
    one = _adata([("T0", "control", _cells([1, 1])), ("T0", "stimulated", _cells([2, 2])),
                  ("T1", "control", _cells([1, 2]))])
    with pytest.raises(ValueError, match="at least 2 training cell types"):
        make_model("linear", one)


def test_additive_sums_the_single_shifts():
    train = _adata([("A", "control", _cells([1, 1, 1])), ("A", "P", _cells([3, 1, 1])),
                    ("A", "Q", _cells([1, 1, 4]))])
    ctrl = _adata([("A", "control", _cells([2, 2, 2]))])
    model = make_model("additive", train, stimulated="P+Q")
    pred = model.predict(ctrl)
    np.testing.assert_allclose(pred.X, ctrl.X + np.array([2.0, 0.0, 3.0]), atol=1e-6)
    assert model.components_ == ["P", "Q"] and list(pred.obs[SOURCE_KEY]) == list(ctrl.obs_names)
    with pytest.raises(ValueError, match=r"\['R'\] has no training cells"):
        make_model("additive", train, stimulated="P+R")
    # no combination (Kang): the single-perturbation shift, i.e. the mean delta
    single = make_model("additive", train, stimulated="P").predict(ctrl)
    np.testing.assert_allclose(single.X, ctrl.X + np.array([2.0, 0.0, 0.0]), atol=1e-6)


@pytest.fixture(scope="module")
def kang500(kang):
    return prepare(kang, n_top_genes=500)


def test_every_baseline_on_kang(kang500):
    s = loco_split(kang500, "CD14 Mono")
    r2 = {}
    for name in BASELINES:
        pred = make_model(name, s.train, random_state=0).predict(s.target_ctrl)
        assert pred.shape == s.target_ctrl.shape and np.isfinite(pred.X).all()
        assert (SOURCE_KEY in pred.obs) == (name != "train_mean")
        t = evaluate(pred, s.target_stim, s.target_ctrl, n_bootstrap=0).set_index(["metric", "gene_set"])
        r2[name] = t.loc[("r2_pearson_mean", "top100_degs"), "value"]
    # control as prediction explains least; the type-specific shifts (mean delta, linear) beat the
    # type-agnostic train mean on the held-out monocytes
    assert r2["identity"] < min(v for k, v in r2.items() if k != "identity")
    assert min(r2["mean_delta"], r2["linear"]) > r2["train_mean"]
    assert r2["linear"] > r2["identity"] + 0.2
