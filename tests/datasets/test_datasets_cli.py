"""``perturblab datasets`` lists every registered file and where it is."""

from __future__ import annotations

from typer.testing import CliRunner

from perturblab import datasets
from perturblab.cli import app


def test_cli_lists_found_files():
    result = CliRunner().invoke(app, ["datasets"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for relpath in datasets.REGISTRY:
        assert relpath in result.output
    # every file of the shared data folder is found; the full perturbation datasets are downloaded on demand
    in_data_dir = [r for r in datasets.REGISTRY if (datasets.data_dir() / r).is_file()]
    assert len(in_data_dir) >= 13
    assert result.output.count("found") >= len(in_data_dir)
    assert str(datasets.data_dir()) in result.output


def test_cli_reports_missing_files(tmp_path):
    env = {datasets.DATA_DIR_ENV: str(tmp_path / "none"), datasets.CACHE_DIR_ENV: str(tmp_path / "cache"),
           "COLUMNS": "250"}
    result = CliRunner().invoke(app, ["datasets"], env=env)
    assert result.exit_code == 0, result.output
    assert "missing (downloadable)" in result.output
    assert "missing (rebuilt from sources)" in result.output
    assert datasets.REGISTRY["markers/ScTypeDB_full.xlsx"].url in result.output
