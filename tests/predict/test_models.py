"""Tiny ScGen / ScPRAM / baselines on a Kang subset: training, prediction, reproducibility, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab._validation import to_dense
from perturblab.exceptions import NotFittedError, RunFolderError
from perturblab.predict import BASELINES, MODELS, ScGen, ScPRAM, loco_split, make_model
from perturblab.predict.models import ot_match

TINY = dict(n_hidden=32, n_latent=8, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def split(kang_small):
    return loco_split(kang_small, "CD14 Mono")


@pytest.fixture(scope="module")
def scgen(split):
    m = ScGen(split.train, n_layers=1, **TINY)
    m.train(max_epochs=4, batch_size=64)
    return m


def test_scgen_trains_predicts_and_is_seeded(split, scgen):
    h = scgen.history
    assert list(h.history["epoch"]) == [1, 2, 3, 4]
    assert np.isfinite(h.history[["train_loss", "val_loss"]].to_numpy()).all()
    pred = scgen.predict(split.target_ctrl)
    assert pred.shape == split.target_ctrl.shape
    assert list(pred.var_names) == list(split.train.var_names)
    assert (pred.obs["condition"] == "predicted").all()
    # two runs with the same seed give identical numbers, weights and predictions
    again = ScGen(split.train, n_layers=1, **TINY)
    again.train(max_epochs=4, batch_size=64)
    np.testing.assert_array_equal(again.history.history["train_loss"], h.history["train_loss"])
    np.testing.assert_array_equal(again.predict(split.target_ctrl).X, pred.X)
    assert scgen.get_latent_representation().shape == (split.train.n_obs, TINY["n_latent"])
    # balanced and plain deltas differ; restricting the arithmetic to one cell type works
    assert not np.allclose(scgen.delta(balance=True), scgen.delta(balance=False))
    d_b = scgen.delta(restrict_arithmetic_to={"cell_type": ["B"]})
    assert d_b.shape == (TINY["n_latent"],)
    with pytest.raises(ValueError, match="restrict_arithmetic_to"):
        scgen.delta(restrict_arithmetic_to=["B"])


def test_callback_stops_and_early_stopping(split):
    seen = []

    def cb(epoch, train_loss, val_loss):
        seen.append((epoch, train_loss, val_loss))
        return epoch >= 2

    m = ScGen(split.train, **TINY)
    h = m.train(max_epochs=10, batch_size=64, callback=cb)
    assert h.stopped_by == "callback" and len(seen) == 2 and len(h.history) == 2
    m2 = ScGen(split.train, **TINY)
    h2 = m2.train(max_epochs=30, batch_size=64, patience=1, min_delta=1e9)
    assert h2.stopped_by == "early_stopping" and len(h2.history) == 2 and h2.best_epoch == 1


def test_scgen_decoder_layouts(tmp_path, split):
    import json

    import torch

    def n_bn(module):
        return sum(isinstance(layer, torch.nn.BatchNorm1d) for layer in module.modules())

    def n_linear(module):
        return sum(isinstance(layer, torch.nn.Linear) for layer in module.modules())

    m = ScGen(split.train, n_layers=2, **TINY)  # default: pertpy's layout, no BatchNorm in the decoder
    assert n_bn(m.module.decoder) == 0 and n_bn(m.module.encoder) == 2 and n_linear(m.module.decoder) == 3
    spec = ScGen(split.train, n_layers=2, decoder_batch_norm=True, **TINY)
    assert n_bn(spec.module.decoder) == 2
    anchor_depth = ScGen(split.train, n_layers=2, decoder_hidden_layers=1, **TINY)
    assert n_linear(anchor_depth.module.decoder) == 2
    assert anchor_depth.module.decoder[-1].out_features == split.train.n_vars
    linear = ScGen(split.train, n_layers=2, decoder_hidden_layers=0, **TINY)
    assert isinstance(linear.module.decoder[-1], torch.nn.Linear) and n_linear(linear.module.decoder) == 1
    with pytest.raises(ValueError, match="decoder_hidden_layers must be >= 0"):
        ScGen(split.train, decoder_hidden_layers=-1, **TINY)
    anchor_depth.train(max_epochs=2, batch_size=64)
    anchor_depth.save(tmp_path / "m")
    loaded = ScGen.load(tmp_path / "m", split.train, device="cpu")  # the layout travels with the checkpoint
    np.testing.assert_array_equal(loaded.predict(split.target_ctrl).X, anchor_depth.predict(split.target_ctrl).X)
    # a checkpoint from before decoder_batch_norm existed was trained with decoder BatchNorm and loads so
    spec.train(max_epochs=1, batch_size=64)
    spec.save(tmp_path / "old")
    cfg = json.loads((tmp_path / "old" / "config.json").read_text())
    for key in ("decoder_batch_norm", "decoder_hidden_layers"):
        del cfg["module_kwargs"][key]
    (tmp_path / "old" / "config.json").write_text(json.dumps(cfg))
    old = ScGen.load(tmp_path / "old", split.train, device="cpu")
    assert n_bn(old.module.decoder) == 2
    np.testing.assert_array_equal(old.predict(split.target_ctrl).X, spec.predict(split.target_ctrl).X)


def test_save_load_round_trip(tmp_path, split, scgen):
    scgen.save(tmp_path / "m")
    with pytest.raises(RunFolderError, match="overwrite=True"):
        scgen.save(tmp_path / "m")
    loaded = ScGen.load(tmp_path / "m", split.train, device="cpu")
    np.testing.assert_array_equal(loaded.predict(split.target_ctrl).X, scgen.predict(split.target_ctrl).X)
    with pytest.raises(ValueError, match="ScGen model, not a ScPRAM"):
        ScPRAM.load(tmp_path / "m", split.train)
    with pytest.raises(ValueError, match="genes differ"):
        ScGen.load(tmp_path / "m", split.train[:, :50].copy())


def test_scpram_variants(split):
    m = ScPRAM(split.train, **TINY)
    with pytest.raises(NotFittedError):
        m.predict(split.target_ctrl)
    m.train(max_epochs=3, batch_size=64)
    per_cell = m.predict(split.target_ctrl)
    np.testing.assert_array_equal(per_cell.X, m.predict(split.target_ctrl).X)  # deterministic (posterior means)
    twin = ScPRAM(split.train, **TINY)
    twin.train(max_epochs=3, batch_size=64)
    np.testing.assert_array_equal(twin.predict(split.target_ctrl).X, per_cell.X)  # same seed, same numbers
    first = m.predict(split.target_ctrl, attention="first_cell")
    sink = m.predict(split.target_ctrl, ot_method="sinkhorn")
    assert per_cell.X.min() >= 0  # decoder ends in ReLU
    assert per_cell.shape == first.shape == sink.shape == split.target_ctrl.shape
    assert not np.allclose(per_cell.X, first.X)
    # first-cell variant adds one latent delta: identical to per-cell for the first cell
    np.testing.assert_allclose(per_cell.X[0], first.X[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="OT method"):
        m.predict(split.target_ctrl, ot_method="greedy")
    # residual: each real control cell plus the decoded response, so residual - decoded is the control cell minus
    # its reconstruction, and the registered name gives the same cells
    residual = m.predict(split.target_ctrl, output="residual")
    X = to_dense(split.target_ctrl.X)
    reconstruction = m._decode(m._encode(X))
    np.testing.assert_allclose(residual.X - per_cell.X, X - reconstruction, atol=1e-5)
    assert list(residual.obs["source_cell"]) == list(split.target_ctrl.obs_names)
    named = make_model("scpram_residual", split.train, **TINY)
    named.train(max_epochs=3, batch_size=64)
    np.testing.assert_array_equal(named.predict(split.target_ctrl).X, residual.X)
    with pytest.raises(ValueError, match="unknown output"):
        m.predict(split.target_ctrl, output="mean")
    with pytest.raises(ValueError, match="unknown output"):  # at construction, before any training
        ScPRAM(split.train, output="mean", **TINY)


def test_ot_match_exact_on_known_case():
    # spread-out cells shifted by a small constant: each control is matched to its own shifted copy
    rng = np.random.default_rng(0)
    ctrl = rng.normal(scale=10.0, size=(20, 3))
    perm = rng.permutation(20)
    stim = (ctrl + np.array([0.5, 0, 0]))[perm]
    match = ot_match(stim, ctrl, "emd")
    np.testing.assert_array_equal(perm[match], np.arange(20))
    np.testing.assert_array_equal(ot_match(stim, ctrl, "sinkhorn", reg=0.01), match)


def test_factory_and_baselines(split):
    assert set(BASELINES) <= set(MODELS)
    with pytest.raises(ValueError, match="unknown model"):
        make_model("gears", split.train)
    ident = make_model("identity", split.train).predict(split.target_ctrl)
    np.testing.assert_allclose(ident.X, split.target_ctrl.X)
    md = make_model("mean_delta", split.train)
    X = split.train.X
    stim = (split.train.obs["condition"] == "stimulated").to_numpy()
    np.testing.assert_allclose(md.delta_, X[stim].mean(0) - X[~stim].mean(0), rtol=1e-5)
    pca = make_model("pca_mean_delta", split.train, n_components=20).predict(split.target_ctrl)
    assert pca.shape == split.target_ctrl.shape
    assert make_model("scgen_unbalanced", split.train, **TINY).balance is False


def test_bad_input_to_models(split, scgen, kang_small):
    with pytest.raises(ValueError, match="genes"):
        scgen.predict(split.target_ctrl[:, :100].copy())
    bad = split.target_ctrl.copy()
    bad.X[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        scgen.predict(bad)
    with pytest.raises(KeyError, match="condition"):
        ScGen(split.train, condition_key="stim_state")
    with pytest.raises(ValueError, match="unknown control condition .*'ctrl'; did you mean 'control'"):
        make_model("mean_delta", split.train, control="ctrl")
    counts = split.target_ctrl.copy()
    counts.X = np.asarray(split.target_ctrl.layers["counts"].todense() if hasattr(
        split.target_ctrl.layers["counts"], "todense") else split.target_ctrl.layers["counts"], dtype=np.float32)
    with pytest.warns(UserWarning, match="raw counts"):
        scgen.predict(counts)
