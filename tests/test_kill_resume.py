"""A run killed mid-way and resumed with ``--resume`` gives the tables of an uninterrupted run (every command).

Each case runs the command once uninterrupted (the reference), then again in a separate process that is killed
(SIGKILL) as soon as its first unit of work is persisted, then resumes it; the resumed tables must equal the
reference, timing columns aside.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

TIMING = ("seconds", "time", "peak_", "wall")


@pytest.fixture(scope="module")
def kang_file(tmp_path_factory, kang):
    """Four Kang cell types, 60 cells per condition each, raw counts."""
    import numpy as np

    rng = np.random.default_rng(0)
    ct, cond = kang.obs["cell_type"].astype(str).to_numpy(), kang.obs["condition"].astype(str).to_numpy()
    keep = [rng.choice(np.flatnonzero((ct == t) & (cond == c)), 60, replace=False)
            for t in ("CD14 Mono", "CD4 Naive T", "CD4 Memory T", "B") for c in ("control", "stimulated")]
    path = tmp_path_factory.mktemp("data") / "kang_small.h5ad"
    kang[np.sort(np.concatenate(keep))].copy().write_h5ad(path)
    return str(path)


def _cases(kang_file):
    predict = ["predict", "--data", kang_file, "--model", "baselines", "--target", "all", "--n-top-genes", "200",
               "--n-bootstrap", "150", "--min-cells", "30"]
    return {
        "audit": (["audit", "--classifier", "sctype", "--classifier", "svm", "--cluster", "NK", "--cluster", "B",
                   "--cluster", "DC", "--cluster", "CD8 T", "--n-bootstrap", "0"], ["tables/attacks.parquet",
                                                                                    "tables/genes.parquet"]),
        "predict": (predict, ["metrics.parquet"]),
        "benchmark": (["benchmark", "--data", kang_file, "--model", "identity", "--target", "B", "--target",
                       "CD14 Mono", "--seed", "0", "--seed", "1", "--variant", "balanced", "--variant", "unbalanced",
                       "--n-top-genes", "200", "--n-bootstrap", "100"], ["benchmark.parquet"]),
        "interpret": (["interpret", "--data", "papalexi2021", "--cells-per-group", "40", "--n-cells", "40",
                       "--epochs", "1", "--d-model", "16", "--n-layers", "2", "--n-heads", "2", "--max-length", "48",
                       "--n-label-null", "30", "--n-degree-null", "10", "--n-bootstrap", "30", "--ablation-k", "1",
                       "--ablation-seeds", "1", "--ablation-intervention", "top", "--ablation-intervention",
                       "random", "--cssi-null-repeats", "1", "--cssi-min-cells", "10", "--reference", "trrust",
                       "--reference", "string", "--device", "cpu"],
                      ["reference_recovery.parquet", "perturbation_auroc.parquet", "registry.parquet"]),
    }


def _table(path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    return df[[c for c in df.columns if not any(t in c for t in TIMING)]]


def _finished(out) -> int:
    return len(list((out / "units").glob("*/unit.json"))) if (out / "units").is_dir() else 0


@pytest.mark.parametrize("command", ["audit", "predict", "benchmark", "interpret"])
def test_killed_run_resumes_to_the_uninterrupted_tables(command, kang_file, tmp_path):
    args, tables = _cases(kang_file)[command]
    ref = tmp_path / "ref"
    # every run in a fresh process, as a user's runs are (float32 torch results depend on a process's state,
    # e.g. the thread count and the kernels earlier tests loaded)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "perturblab", *args, "--out", str(ref)], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    n_units = _finished(ref)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "perturblab", *args, "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None and _finished(out) < 1:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    persisted = _finished(out)
    assert 1 <= persisted < n_units, f"killed after {persisted} of {n_units} units: the kill must land mid-run"
    assert not (out / "summary.json").exists()
    resumed = subprocess.run([sys.executable, "-m", "perturblab", *args, "--out", str(out), "--resume"], env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for name in tables:
        pd.testing.assert_frame_equal(_table(out / name), _table(ref / name))
    assert json.loads((out / "run.json").read_text())["fingerprint"] == \
        json.loads((ref / "run.json").read_text())["fingerprint"]
