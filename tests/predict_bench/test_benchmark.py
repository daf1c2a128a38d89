"""The benchmark runner on a real Kang 2018 subset: table, report, resume, joblib and Dask."""

from __future__ import annotations

import pandas as pd
import pytest

from perturblab.exceptions import RunFailedError, SettingsMismatchError, UnknownNameError
from perturblab.predict import BASELINES
from perturblab.predict.benchmark import benchmark_units, run_benchmark, runner
from perturblab.runs import UnitStore

KEYS = ["model", "target", "variant", "seed", "metric", "gene_set"]


def _sorted(table):
    return table.sort_values(KEYS).reset_index(drop=True)[KEYS + ["value", "ci_low", "ci_high"]]


def test_units_always_include_baselines_and_check_names():
    units = benchmark_units(["scgen"], ["CD4 Naive T", "CD4/Naive T"], [0, 1], ["balanced"])
    assert {u.model for u in units} == {"scgen", *BASELINES, "ceiling"}
    assert len({str(u.key) for u in units}) == len(units) == (2 + len(BASELINES)) * 2 * 2
    # one ceiling unit per target and seed, whatever the number of variants (its truth is the same in all)
    two = benchmark_units(["scgen"], ["B"], [0], ["balanced", "unbalanced"])
    assert [u.variant for u in two if u.model == "ceiling"] == ["balanced"]
    assert {u.model for u in benchmark_units(["scgen"], ["B"], [0], baselines=["identity"])} == {
        "scgen", "identity", "ceiling"}
    with pytest.raises(UnknownNameError, match="did you mean 'scgen'"):
        benchmark_units(["scgan"], ["B"], [0])
    with pytest.raises(UnknownNameError, match="unknown dataset variant"):
        benchmark_units(["scgen"], ["B"], [0], ["shifted"])


def test_benchmark_table_report_and_variants(kang_small, tiny_settings, tmp_path):
    res = run_benchmark(kang_small, tmp_path, models=["scgen"], targets=["B", "CD14 Mono"], seeds=[0],
                        variants=["balanced", "unbalanced"], settings=tiny_settings)
    t = res.table
    n_models = len({"scgen", *BASELINES, "ceiling"})
    assert set(t["model"]) == {"scgen", *BASELINES, "ceiling"}
    assert set(t["variant"]) == {"balanced", "unbalanced"} and set(t["target"]) == {"B", "CD14 Mono"}
    assert {"value", "ci_low", "ci_high", "train_seconds", "n_train_stimulated"} <= set(t.columns)
    # one ceiling unit per target (shared by both variants)
    assert res.n_run == len(res.units) == (n_models - 1) * 2 * 2 + 2
    # the unbalanced variant trained on 20% of the stimulated cells of the 3 other cell types (60 each -> 12)
    n_stim = t[t["model"] == "scgen"].groupby("variant")["n_train_stimulated"].first()
    assert n_stim["balanced"] == 3 * 60 and n_stim["unbalanced"] == 3 * 12
    # the truth is the same in every variant: identity's prediction ignores training, so its metrics match
    ident = t[t["model"] == "identity"].pivot_table(index=["target", "metric", "gene_set"], columns="variant",
                                                     values="value")
    pd.testing.assert_series_equal(ident["balanced"], ident["unbalanced"], check_names=False)
    for name in ("benchmark.parquet", "ranking.parquet", "paired_tests.parquet", "training.parquet", "summary.json",
                 "report.html", "target_metrics.parquet", "calibration.parquet"):
        assert (tmp_path / name).exists()
    html = (tmp_path / "report.html").read_text()
    for section in ("Ranking per metric", "Model x target", "Paired tests", "Degradation", "Metrics over targets",
                    "Calibration", "Data", "ceiling", "AnnData given in Python", "protocol: custom", "data checksum"):
        assert section in html
    assert set(res.ranking["rank"].dropna()) <= set(range(1, n_models + 1))


def test_resume_after_interruption_runs_only_missing_units(kang_small, tiny_settings, tmp_path, monkeypatch):
    kwargs = dict(models=["scgen"], targets=["B"], seeds=[0], variants=["balanced"], settings=tiny_settings)
    calls = []
    real = runner.run_unit

    def interrupted(inputs, unit):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run dies after two finished units
        calls.append(unit)
        return real(inputs, unit)

    monkeypatch.setattr(runner, "run_unit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(kang_small, tmp_path, **kwargs)
    monkeypatch.setattr(runner, "run_unit", real)
    res = run_benchmark(kang_small, tmp_path, resume=True, **kwargs)
    store = UnitStore(_run(tmp_path))
    assert res.n_run == len(res.units) - 2
    assert all(store.done(u.key) for u in calls)
    # a different configuration is refused rather than mixed in, naming the difference
    tiny_settings.evaluate_params = {"n_bootstrap": 3}
    with pytest.raises(SettingsMismatchError, match="evaluate_params.n_bootstrap: 2 -> 3"):
        run_benchmark(kang_small, tmp_path, resume=True, **kwargs)


def _run(path):
    from perturblab.io import read_json
    from perturblab.runs import RunFolder

    info = read_json(path / "run.json")
    return RunFolder(path, info["command"], info["settings"], info["data"], info["fingerprint"], True)


def test_joblib_and_dask_give_the_sequential_numbers(kang_small, tiny_settings, tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(var, raising=False)  # distributed's nannies set these in the parent: undone at teardown

    kwargs = dict(models=["scpram"], targets=["CD4 Naive T"], seeds=[1], variants=["proportion_shift"],
                  settings=tiny_settings, report=False)
    seq = run_benchmark(kang_small, tmp_path / "seq", **kwargs)
    par = run_benchmark(kang_small, tmp_path / "joblib", n_jobs=2, **kwargs)
    pd.testing.assert_frame_equal(_sorted(seq.table), _sorted(par.table))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dsk = run_benchmark(kang_small, tmp_path / "dask", scheduler=client, **kwargs)
        assert dsk.n_run == len(dsk.units)
    pd.testing.assert_frame_equal(_sorted(seq.table), _sorted(dsk.table))


def test_unit_failure_names_the_unit(kang_small, tiny_settings, tmp_path, monkeypatch):
    def broken(inputs, unit):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(runner, "run_unit", broken)
    with pytest.raises(RunFailedError, match="unit identity / B / balanced / seed 0 failed: ZeroDivisionError"):
        run_benchmark(kang_small, tmp_path, models=["identity"], targets=["B"], variants=["balanced"],
                      settings=tiny_settings)
    with pytest.raises(UnknownNameError, match="unknown cell type"):
        run_benchmark(kang_small, tmp_path / "x", models=["identity"], targets=["Eryth"], settings=tiny_settings)
