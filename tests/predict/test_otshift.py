"""OTShift on synthetic cells with known responses, its shrinkage choice, and once on the Kang subset; the
E-distance test, power and noise floor on cases with known answers."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturblab.exceptions import InputError
from perturblab.predict import MODELS, OTShift, evaluate, loco_split, make_model
from perturblab.predict.edistance_test import (
    edistance_check,
    edistance_permutation_test,
    edistance_power,
    noise_floor,
)
from perturblab.predict.metrics import edistance
from perturblab.predict.models import SOURCE_KEY


def _types(spec: dict, genes: int = 6, n: int = 12, seed: int = 0) -> ad.AnnData:
    """Cell types with control cells around ``base`` and stimulated cells = the same cells + ``shift`` (exact)."""
    rng = np.random.default_rng(seed)
    blocks, obs = [], []
    for t, (base, shift, with_stim) in spec.items():
        ctrl = np.asarray(base, float)[None, :] + rng.normal(0, 0.05, size=(n, genes))
        blocks.append(ctrl)
        obs += [(t, "control")] * n
        if with_stim:
            blocks.append(ctrl + np.asarray(shift, float))
            obs += [(t, "stimulated")] * n
    a = ad.AnnData(np.vstack(blocks).astype(np.float32), obs=pd.DataFrame(obs, columns=["cell_type", "condition"]))
    a.obs_names = [f"c{i}" for i in range(a.n_obs)]
    a.var_names = [f"g{i}" for i in range(genes)]
    return a


def test_responses_transfer_from_the_nearest_type():
    far = np.zeros(6)
    far[3:] = 5.0
    shift_a, shift_b = np.r_[1.0, 0, 0, 0, 0, 0], np.r_[0, 0, 2.0, 0, 0, 0]
    train = _types({"A": (np.zeros(6), shift_a, True), "B": (far, shift_b, True),
                    "T": (np.r_[0.1, 0, 0, 0, 0, 0], None, False)})
    model = make_model("ot_shift", train, n_pcs=3, k=5, shrinkage=0.0)
    # within each type the stimulated cells are the control cells shifted: OT pairs each cell with its copy,
    # so every response is the type's shift exactly
    np.testing.assert_allclose(model.responses_[model.ref_type_ == "A"], np.tile(shift_a, (12, 1)), atol=1e-5)
    assert model.reference_types_ == ["A", "B"]
    target = train[(train.obs["cell_type"] == "T").to_numpy()].copy()
    pred = model.predict(target)
    # T's cells sit next to A's: they get A's shift, added to each real cell, paired with it
    np.testing.assert_allclose(pred.X - target.X, np.tile(shift_a, (12, 1)), atol=1e-5)
    assert list(pred.obs[SOURCE_KEY]) == list(target.obs_names)
    # full shrinkage: the pooled shift of A and B (half of each)
    pooled = make_model("ot_shift", train, n_pcs=3, k=5, shrinkage=1.0).predict(target)
    np.testing.assert_allclose((pooled.X - target.X)[0], (shift_a + shift_b) / 2, atol=1e-5)


def test_shrinkage_auto_and_errors():
    train = _types({"A": (np.zeros(6), np.r_[1.0, 0, 0, 0, 0, 0], True),
                    "B": (np.full(6, 0.2), np.r_[1.0, 0, 0, 0, 0, 0], True),
                    "C": (np.full(6, 0.4), np.r_[1.0, 0, 0, 0, 0, 0], True)})
    m = make_model("ot_shift", train, n_pcs=3, k=5)
    # every type has the same response: each candidate predicts it exactly, ties go to the smallest
    assert set(m.inner_errors_) == {0.0, 0.25, 0.5, 0.75} and m.shrinkage_ == 0.0
    assert max(m.inner_errors_.values()) < 1e-8
    with pytest.raises(InputError, match="shrinkage must be in"):
        make_model("ot_shift", train, shrinkage=1.5)
    only_ctrl = _types({"A": (np.zeros(6), None, False)})
    only_ctrl.obs.loc[only_ctrl.obs_names[0], "condition"] = "stimulated"
    with pytest.raises(InputError, match="no training cell type has >= 2 cells in both conditions"):
        make_model("ot_shift", only_ctrl)


def test_min_response_moves_only_the_responding_genes():
    # four types of 40 cells whose stimulated cells are their control cells + 1.0 on gene 0 + noise on every gene
    rng = np.random.default_rng(1)
    blocks, obs = [], []
    for i, t in enumerate("ABCD"):
        ctrl = np.abs(rng.normal(i * 0.3, 0.3, size=(40, 6)))
        ctrl[:, 5] = 0.0
        ctrl[:20, 4] = 0.0                                             # gene 4 expressed in half of the cells
        stim = ctrl + np.r_[1.0, 0, 0, 0, 0, 0] + rng.normal(0, 0.03, size=(40, 6))
        blocks += [ctrl, stim]
        obs += [(t, "control")] * 40 + [(t, "stimulated")] * 40
    train = ad.AnnData(np.vstack(blocks), obs=pd.DataFrame(obs, columns=["cell_type", "condition"]))
    train.obs_names = [f"c{i}" for i in range(train.n_obs)]
    target = train[((train.obs["cell_type"] == "B") & (train.obs["condition"] == "control")).to_numpy()].copy()
    every = make_model("ot_shift", train, n_pcs=3, k=5, min_response=0.0)
    assert (np.abs(every.response(target)).mean(0) > 0).all()            # the noise moves every gene
    m = make_model("ot_shift", train, n_pcs=3, k=5)
    # leave-one-type-out: the real DEGs of each type are gene 0 alone, so a threshold between the noise and
    # the response wins (F1 1) over 0 (F1 of 1 gene among 6 moved: 2/7)
    assert m.inner_de_f1_[0.0] == pytest.approx(2 / 7) and m.min_response_ > 0.0
    assert m.inner_de_f1_[m.min_response_] == pytest.approx(1.0)
    d = m.response(target)
    assert np.allclose(d[:, 0], d[:, 0].mean(), atol=0.1) and d[:, 0].mean() == pytest.approx(1.0, abs=0.05)
    # a small response changes only the expressing cells, keeping the gene's mean; no expressing cell: none
    raw = every.response(target)
    assert np.all(d[:20, 4] == 0.0) and d[:, 4].mean() == pytest.approx(raw[20:, 4].mean())
    assert np.all(d[:, 5] == 0.0)
    for bad in (-0.1, "high", float("nan")):
        with pytest.raises(InputError, match="min_response must be a number >= 0"):
            make_model("ot_shift", train, min_response=bad)


def test_ot_shift_on_kang_beats_mean_delta(kang_small):
    assert MODELS["ot_shift"][0] is OTShift
    split = loco_split(kang_small, "CD14 Mono")
    ours = evaluate(make_model("ot_shift", split.train).predict(split.target_ctrl), split.target_stim,
                    split.target_ctrl, n_bootstrap=0).set_index(["metric", "gene_set"])["value"]
    base = evaluate(make_model("mean_delta", split.train).predict(split.target_ctrl), split.target_stim,
                    split.target_ctrl, n_bootstrap=0).set_index(["metric", "gene_set"])["value"]
    assert ours[("r2_pearson_mean", "all")] > base[("r2_pearson_mean", "all")]
    assert ours[("edistance", "pca")] < base[("edistance", "pca")]


def test_edistance_test_power_and_floor_known_cases():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(50, 3))
    e, p = edistance_permutation_test(X, Y, 199)
    assert e == pytest.approx(edistance(X, Y)) and 0 < p <= 1
    # under the null the test rejects at about its level (binomial: 20 datasets, at most 4 rejections)
    null = [edistance_permutation_test(rng.normal(size=(30, 3)), rng.normal(size=(30, 3)), 99, random_state=i)[1]
            for i in range(20)]
    assert sum(q <= 0.05 for q in null) <= 4
    _, p2 = edistance_permutation_test(X + 3.0, Y, 199)
    assert p2 == pytest.approx(1 / 200)                                 # no permutation reaches it
    floor, floor95 = noise_floor(Y, n_splits=10)
    assert abs(floor) < 0.2 and floor95 >= floor
    # power against missing 20% of a response of 5 SD is 1; of a response of 0 SD it is about alpha
    assert edistance_power(Y, Y - 5.0, 25, n_repeats=5, n_permutations=99) == 1.0
    assert edistance_power(Y, Y, 25, n_repeats=10, n_permutations=99) <= 0.3
    with pytest.raises(InputError, match="at least 2 cells"):
        edistance_permutation_test(X[:1], Y)


def test_edistance_check_on_kang(kang_small):
    split = loco_split(kang_small, "B")
    pred = make_model("identity", split.train).predict(split.target_ctrl)
    c = edistance_check(pred, split.target_stim, split.target_ctrl, n_permutations=99, n_repeats=3)
    assert c.p_value < 0.05 and c.edistance > c.noise_floor_95 and 0 <= c.power <= 1
    assert c.n_pred == split.target_ctrl.n_obs and c.as_dict()["shortfall"] == 0.2
