"""Parallel execution (joblib, Dask LocalCluster) and resuming a killed audit give the same results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from perturblab.audit import run_audit

CHEAP = dict(classifiers=("sctype",), clusters=("NK", "DC", "B", "CD8 T"), attacks=("single_gene", "max_change"))
TIMING = ["attack_wall_time_s", "unit_wall_time_s"]


def _results(r) -> pd.DataFrame:
    cols = ["classifier", "attack", "cluster", "modification"]
    return r.attacks.drop(columns=TIMING).sort_values(cols).reset_index(drop=True)


def _genes(r) -> pd.DataFrame:
    return r.tables["max_change_genes"].sort_values(["cluster", "modification", "order"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run_audit(out=tmp_path_factory.mktemp("ref") / "out", n_jobs=1, **CHEAP)


def test_joblib_two_processes(reference, tmp_path):
    r = run_audit(out=tmp_path / "out", n_jobs=2, **CHEAP)
    pd.testing.assert_frame_equal(_results(r), _results(reference))
    pd.testing.assert_frame_equal(_genes(r), _genes(reference))


def test_dask_local_cluster(reference, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        r = run_audit(out=tmp_path / "out", scheduler=cluster.scheduler_address, **CHEAP)
    pd.testing.assert_frame_equal(_results(r), _results(reference))
    pd.testing.assert_frame_equal(_genes(r), _genes(reference))


def test_resume_after_kill(reference, tmp_path):
    out = tmp_path / "out"
    code = textwrap.dedent(f"""
        import perturblab as plab
        plab.audit.run_audit(out={str(out)!r}, n_jobs=1, **{CHEAP!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy(), start_new_session=True)
    units = out / "units"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if units.is_dir() and len(list(units.glob("*/unit.json"))) >= 1:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    persisted = len(list(units.glob("*/unit.json")))
    n_units = reference.summary["n_units"]
    assert 1 <= persisted < n_units, "the run must be killed after some but not all units"
    assert not (out / "summary.json").exists()
    resumed = run_audit(out=out, resume=True, **CHEAP)
    assert resumed.summary["n_units_resumed"] == persisted
    assert resumed.summary["n_units_run"] == n_units - persisted
    pd.testing.assert_frame_equal(_results(resumed), _results(reference))
    pd.testing.assert_frame_equal(_genes(resumed), _genes(reference))
