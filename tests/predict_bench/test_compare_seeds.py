"""benchmarks/predict_compare_seeds.py: means over seeds and differences to pertpy, on hand-made runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def _module():
    spec = importlib.util.spec_from_file_location("predict_compare_seeds", BENCHMARKS / "predict_compare_seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(folder: Path, seed: int, ours: float, pertpy: float) -> Path:
    folder.mkdir()
    rows = [{"target": "B", "model": "scgen", "source": "measured", "r2_pearson_all": ours, "train_seconds": 30.0},
            {"target": "B", "model": "pertpy_scgen[defaults]", "source": "measured (pertpy 1.0.3)",
             "r2_pearson_all": pertpy, "train_seconds": 40.0},
            {"target": "B", "model": "pertpy_scgen", "source": "REFERENCE (not re-measured)", "r2_pearson_all": 0.9}]
    (folder / "compare.json").write_text(json.dumps({"seed": seed, "rows": rows}))
    return folder


def test_means_and_differences_over_seeds(tmp_path):
    seeds = _module()
    folders = [_run(tmp_path / "s0", 0, 0.90, 0.80), _run(tmp_path / "s1", 1, 0.94, 0.90)]
    table = seeds.load(folders)
    assert set(table["model"]) == {"scgen", "pertpy_scgen[defaults]"}  # reference rows are not measurements
    summary, differences = seeds.summarize(table)
    assert summary.loc[("B", "scgen"), ("r2_pearson_all", "mean")] == pytest.approx(0.92)
    assert summary.loc[("B", "pertpy_scgen[defaults]"), ("r2_pearson_all", "mean")] == pytest.approx(0.85)
    assert summary.loc[("B", "scgen"), "n_seeds"].item() == 2
    assert differences["scgen"].tolist() == pytest.approx([0.10, 0.04])
    with pytest.raises(ValueError, match="same seed"):
        seeds.load([folders[0], folders[0]])
