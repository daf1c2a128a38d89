"""Tuning without leakage on a real Kang 2018 subset: the objective never sees the target's
stimulated cells, studies resume, pruning uses the validation loss, the report is written."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from perturblab.exceptions import InputError, RunFolderError, SettingsMismatchError, UnknownNameError
from perturblab.predict import tuning
from perturblab.predict.tuning import tune

TARGET = "B"
SPACE = {"n_latent": CategoricalDistribution([4, 8]), "n_hidden": CategoricalDistribution([16, 32]),
         "lr": FloatDistribution(1e-3, 1e-2, log=True)}
FAST = dict(space=SPACE, n_inner=2, max_epochs=1, fixed_params={"n_layers": 1}, final=False, report=False,
            n_top_genes=100)


def _stim_barcodes(adata, target=TARGET):
    obs = adata.obs
    return set(adata.obs_names[(obs["cell_type"] == target).to_numpy() & (obs["condition"] == "stimulated").to_numpy()])


def _study_numbers(res):
    return [(t.number, t.state.name, t.value, t.params) for t in res.study.trials]


def test_objective_never_sees_the_target_stimulated_cells(kang_small_counts, tmp_path, monkeypatch):
    held_out = _stim_barcodes(kang_small_counts)
    assert len(held_out) == 60
    seen = []
    real = tuning.make_model

    def spy(name, train_adata, **kw):
        seen.append(set(train_adata.obs_names))
        return real(name, train_adata, **kw)

    monkeypatch.setattr(tuning, "make_model", spy)
    res = tune(kang_small_counts, "scgen", TARGET, out=tmp_path / "a", n_trials=2, **FAST)
    assert len(seen) == 2 * 2  # trials x inner folds
    assert all(not (cells & held_out) for cells in seen)
    assert TARGET not in res.inner_targets and len(res.inner_targets) == 2
    # the inner folds hold out each inner type's stimulated cells in turn
    for inner in res.inner_targets:
        assert any(not (cells & _stim_barcodes(kang_small_counts, inner)) for cells in seen)

    # perturbing the held-out cells' expression does not change the study at all
    monkeypatch.setattr(tuning, "make_model", real)
    changed = kang_small_counts.copy()
    idx = np.flatnonzero(changed.obs_names.isin(list(held_out)))
    X = changed.X.toarray() if hasattr(changed.X, "toarray") else changed.X
    X[idx] = np.random.default_rng(1).poisson(2.0, size=(len(idx), changed.n_vars)).astype(np.float32)
    changed.X = X
    again = tune(changed, "scgen", TARGET, out=tmp_path / "b", n_trials=2, **FAST)
    assert _study_numbers(again) == _study_numbers(res)


def test_study_resumes_and_refuses_other_settings(kang_small_counts, tmp_path):
    first = tune(kang_small_counts, "scgen", TARGET, out=tmp_path, n_trials=2, **FAST)
    before = _study_numbers(first)
    with pytest.raises(RunFolderError, match="--resume"):
        tune(kang_small_counts, "scgen", TARGET, out=tmp_path, n_trials=3, **FAST)
    more = tune(kang_small_counts, "scgen", TARGET, out=tmp_path, n_trials=3, resume=True, **FAST)
    assert len(more.study.trials) == 3 and _study_numbers(more)[:2] == before
    assert (tmp_path / "study.db").exists()
    with pytest.raises(SettingsMismatchError, match="max_epochs: 1 -> 2"):
        tune(kang_small_counts, "scgen", TARGET, out=tmp_path, n_trials=3, resume=True, **{**FAST, "max_epochs": 2})


def test_pruning_on_validation_loss(kang_small_counts, tmp_path):
    # the study maximises R2, so -val_loss is reported; a threshold of 0 prunes at the first epoch
    res = tune(kang_small_counts, "scgen", TARGET, out=tmp_path, n_trials=2,
               pruner=optuna.pruners.ThresholdPruner(lower=0.0), **FAST)
    for t in res.study.trials:
        assert t.state == optuna.trial.TrialState.PRUNED
        assert list(t.intermediate_values) == [1] and t.intermediate_values[1] < 0


def test_final_comparison_and_report(kang_small_counts, tmp_path):
    fast = {**FAST, "final": True, "report": True}
    res = tune(kang_small_counts, "scgen", TARGET, out=tmp_path, n_trials=2, n_bootstrap=2, **fast)
    assert set(res.final["config"]) == {"tuned", "default", "baseline"}
    assert set(res.final.loc[res.final["config"] == "baseline", "model"]) >= {"identity", "mean_delta"}
    assert set(res.final["target"]) == {TARGET}
    assert set(res.best_params) == set(SPACE)
    for name in ("trials.parquet", "final_metrics.parquet", "importances.parquet", "best_params.json", "report.html"):
        assert (tmp_path / name).exists()
    html = (tmp_path / "report.html").read_text()
    for section in ("Optimisation history", "Parameter importances", "Best parameters", "tuned vs default",
                    "value [95% CI]", "ci_method", "its own defaults"):
        assert section in html
    assert "No trial completed" not in html  # trials completed: no NaN note


def test_bad_settings_are_named(kang_small_counts, tmp_path):
    with pytest.raises(ValueError, match="no default search space"):
        tune(kang_small_counts, "identity", TARGET, out=tmp_path)
    with pytest.raises(InputError, match="give out"):
        tune(kang_small_counts, "scgen", TARGET)
    with pytest.raises(UnknownNameError, match="cell type"):
        tune(kang_small_counts, "scgen", "Eryth", out=tmp_path)
    for kw, msg in ((dict(n_trials=-1), "n_trials"), (dict(max_epochs=0), "max_epochs"),
                    (dict(n_bootstrap=-1), "n_bootstrap"), (dict(device="bogus"), "unknown device")):
        with pytest.raises(InputError, match=msg):
            tune(kang_small_counts, "scgen", TARGET, out=tmp_path / "bad", **kw)


@pytest.mark.parametrize("url, msg", [
    ("not a url", "cannot parse the storage URL"),
    ("mysql://u:secret@127.0.0.1:1/db", "pip install pymysql"),
    ("postgresql://u:secret@127.0.0.1:1/db", "cannot open the Optuna storage postgresql\\+psycopg2://u:\\*\\*\\*@"),
])
def test_unusable_storage_urls_are_one_clear_error(url, msg):
    from perturblab.predict.tuning_storage import open_storage

    with pytest.raises(InputError, match=msg) as err:
        open_storage(url)
    assert "secret" not in str(err.value)
