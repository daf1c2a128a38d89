"""What every command shares: --version, -h, valid choices in --help, one-line errors, --quiet, no third-party
noise at default verbosity, files readable by others."""

from __future__ import annotations

import os
import stat

import pytest
from typer.testing import CliRunner

from perturblab import __version__
from perturblab.cli import app

COMMANDS = ("audit", "predict", "benchmark", "tune", "interpret", "datasets")


def test_version_and_help():
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"perturblab {__version__}"
    assert CliRunner().invoke(app, ["-h"]).exit_code == 0
    for cmd in COMMANDS:
        res = CliRunner().invoke(app, [cmd, "-h"])
        assert res.exit_code == 0, cmd
        for option in ("--quiet", "--verbose"):
            assert option in res.output, (cmd, option)
    audit = CliRunner().invoke(app, ["audit", "-h"]).output
    # --classifier takes any registered name (plugins, files); the help lists the built-in six
    flat = " ".join(audit.split())
    assert "sctype, chetah, svm, random_forest, mlp, celltypist" in flat and "<parquet|csv>" in audit


@pytest.mark.parametrize("cmd", ["audit", "predict", "benchmark", "tune", "interpret"])
def test_shared_vocabulary(cmd):
    text = CliRunner().invoke(app, [cmd, "-h"]).output
    for option in ("--out", "--data", "--seed", "--device", "--format", "--n-bootstrap", "--resume", "--overwrite"):
        assert option in text, (cmd, option)


def test_errors_are_one_line_with_usage_exit_code(tmp_path):
    res = CliRunner().invoke(app, ["predict", "--out", str(tmp_path / "o"), "--data", str(tmp_path / "none.h5ad")])
    assert res.exit_code == 2
    assert [line for line in res.output.splitlines() if line] == [
        f"error: --data file {tmp_path / 'none.h5ad'} does not exist; give the path of an .h5ad file"]
    res = CliRunner().invoke(app, ["audit", "--out", str(tmp_path / "o"), "--quiet", "--verbose"])
    assert res.exit_code == 2 and "exclude each other" in res.output


def test_quiet_run_prints_the_final_line_only_and_files_are_shared(tmp_path, kang):
    import numpy as np

    rng = np.random.default_rng(0)
    ct, cond = kang.obs["cell_type"].astype(str).to_numpy(), kang.obs["condition"].astype(str).to_numpy()
    keep = [rng.choice(np.flatnonzero((ct == t) & (cond == c)), 40, replace=False)
            for t in ("CD14 Mono", "B", "CD4 Naive T") for c in ("control", "stimulated")]
    data = tmp_path / "kang.h5ad"
    kang[np.sort(np.concatenate(keep))].copy().write_h5ad(data)
    old = os.umask(0o022)
    try:
        args = ["predict", "--data", str(data), "--model", "baselines", "--target", "B", "--n-top-genes", "100",
                "--n-bootstrap", "0", "--out", str(tmp_path / "q")]
        quiet = CliRunner().invoke(app, [*args, "--quiet"])
        loud = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "l")])
    finally:
        os.umask(old)
    assert quiet.exit_code == 0 and loud.exit_code == 0
    lines = [line for line in quiet.output.splitlines() if line.strip()]
    # "predict: B: ..." or, naming the protocol, "predict (protocol perturblab): B: ..."
    assert len(lines) == 1 and lines[0].startswith("predict") and ": B: best R2" in lines[0]
    assert "benchmark units" in loud.output  # progress lines when not on a terminal
    for noise in ("RuntimeWarning", "FutureWarning", "Traceback"):  # third-party warnings stay out
        assert noise not in loud.output
    for path in (tmp_path / "q").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
