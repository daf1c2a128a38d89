"""The benchmark runner on a real Kang 2018 subset: table, report, resume, joblib and Dask."""

from __future__ import annotations

import pandas as pd
import pytest

from perturblab.predict import BASELINES
from perturblab.predict import benchmark_exec
from perturblab.predict.benchmark import benchmark_units, run_benchmark
from perturblab.predict.benchmark_units import BenchmarkUnit, UnitStore

KEYS = ["model", "target", "variant", "seed", "metric", "gene_set"]


def _sorted(table):
    return table.sort_values(KEYS).reset_index(drop=True)[KEYS + ["value", "ci_low", "ci_high"]]


def test_units_have_unique_safe_names_and_always_include_baselines():
    units = benchmark_units(["scgen"], ["CD4 Naive T", "CD4/Naive T"], [0, 1], ["balanced"])
    assert {u.model for u in units} == {"scgen", *BASELINES}
    assert len({u.key for u in units}) == len(units) == (1 + len(BASELINES)) * 2 * 2
    assert all("/" not in u.key and " " not in u.key for u in units)
    with pytest.raises(ValueError, match="unknown model"):
        benchmark_units(["scgan"], ["B"], [0])
    with pytest.raises(ValueError, match="unknown variant"):
        benchmark_units(["scgen"], ["B"], [0], ["shifted"])


def test_benchmark_table_report_and_variants(kang_small, tiny_settings, tmp_path):
    res = run_benchmark(kang_small, tmp_path, models=["scgen"], targets=["B", "CD14 Mono"], seeds=[0],
                        variants=["balanced", "unbalanced"], settings=tiny_settings, progress=False)
    t = res.table
    assert set(t["model"]) == {"scgen", *BASELINES}
    assert set(t["variant"]) == {"balanced", "unbalanced"} and set(t["target"]) == {"B", "CD14 Mono"}
    assert {"value", "ci_low", "ci_high", "train_seconds", "n_train_stimulated"} <= set(t.columns)
    assert res.n_run == len(res.units) == (1 + len(BASELINES)) * 2 * 2
    # the unbalanced variant trained on 20% of the stimulated cells of the 3 other cell types (60 each -> 12)
    n_stim = t.groupby("variant")["n_train_stimulated"].first()
    assert n_stim["balanced"] == 3 * 60 and n_stim["unbalanced"] == 3 * 12
    # the truth is the same in every variant: identity's prediction ignores training, so its metrics match
    ident = t[t["model"] == "identity"].pivot_table(index=["target", "metric", "gene_set"], columns="variant",
                                                     values="value")
    pd.testing.assert_series_equal(ident["balanced"], ident["unbalanced"], check_names=False)
    for name in ("benchmark.parquet", "ranking.csv", "paired_tests.csv", "summary.json", "report.html"):
        assert (tmp_path / name).exists()
    html = (tmp_path / "report.html").read_text()
    for section in ("Ranking per metric", "Model x target", "Paired tests", "Degradation"):
        assert section in html
    assert set(res.ranking["rank"].dropna()) <= set(range(1, 2 + len(BASELINES)))


def test_resume_after_interruption_runs_only_missing_units(kang_small, tiny_settings, tmp_path, monkeypatch):
    kwargs = dict(models=["scgen"], targets=["B"], seeds=[0], variants=["balanced"], settings=tiny_settings,
                  progress=False)
    calls = []
    real = benchmark_exec.run_unit

    def interrupted(adata, unit, settings):
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run dies after two finished units
        calls.append(unit)
        return real(adata, unit, settings)

    monkeypatch.setattr(benchmark_exec, "run_unit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(kang_small, tmp_path, **kwargs)
    store = UnitStore(tmp_path)
    assert [u for u in calls if store.is_done(u)] == calls
    stamps = {u: store.path(u).stat().st_mtime_ns for u in calls}
    monkeypatch.setattr(benchmark_exec, "run_unit", real)
    res = run_benchmark(kang_small, tmp_path, **kwargs)
    assert res.n_run == len(res.units) - 2
    assert {u: store.path(u).stat().st_mtime_ns for u in calls} == stamps  # finished units untouched
    assert not list((tmp_path / "units").glob("*.tmp"))
    # a different configuration is refused rather than mixed in
    tiny_settings.evaluate_params = {"n_bootstrap": 3}
    with pytest.raises(ValueError, match="another configuration"):
        run_benchmark(kang_small, tmp_path, **kwargs)


def test_joblib_and_dask_give_the_sequential_numbers(kang_small, tiny_settings, tmp_path):
    from distributed import Client, LocalCluster

    kwargs = dict(models=["scpram"], targets=["CD4 Naive T"], seeds=[1], variants=["proportion_shift"],
                  settings=tiny_settings, progress=False)
    seq = run_benchmark(kang_small, tmp_path / "seq", report=False, **kwargs)
    par = run_benchmark(kang_small, tmp_path / "joblib", n_jobs=2, report=False, **kwargs)
    pd.testing.assert_frame_equal(_sorted(seq.table), _sorted(par.table))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        dsk = run_benchmark(kang_small, tmp_path / "dask", scheduler=client, report=False, **kwargs)
        assert dsk.n_run == len(dsk.units)
    pd.testing.assert_frame_equal(_sorted(seq.table), _sorted(dsk.table))


def test_unit_failure_names_the_unit(kang_small, tiny_settings, tmp_path):
    with pytest.raises(RuntimeError, match="BenchmarkUnit.*Eryth"):
        benchmark_exec.execute_units(kang_small, [BenchmarkUnit("identity", "Eryth", "balanced", 0)],
                                     tiny_settings, UnitStore(tmp_path), progress=False)
