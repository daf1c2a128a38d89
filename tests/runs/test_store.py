"""The unit store: atomic units named by a hash of their key, checked against the run's fingerprint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perturblab.exceptions import RunFolderError
from perturblab.runs import UnitStore, open_run, unit_id


def test_roundtrip_of_every_kind_of_content(tmp_path):
    import anndata as ad

    store = UnitStore(open_run(tmp_path / "out", "x", {}))
    key = {"classifier": "svm", "cluster": "CD14+ Mono" * 40}  # too long for a file name: the id is a hash
    df = pd.DataFrame({"gene": ["CD3E", "NKG7"], "score": [0.25, np.nan], "n": [3, 4], "flag": [True, False]})
    adata = ad.AnnData(np.eye(3, dtype=np.float32))
    assert not store.done(key)
    path = store.save(key, summary={"n_found": np.int64(2)}, tables={"genes": df}, arrays={"x": np.arange(4)},
                      adata=adata, checkpoint={"w": 1.5})
    assert path.name == unit_id(key) and len(path.name) == 40
    back = store.load(key)
    assert store.done(key) and back.summary == {"n_found": 2} and back.key == key
    pd.testing.assert_frame_equal(back.tables["genes"], df)
    np.testing.assert_array_equal(back.arrays()["x"], np.arange(4))
    np.testing.assert_array_equal(back.adata().X, adata.X)
    assert back.checkpoint() == {"w": 1.5}
    assert not list(path.glob(".*tmp"))  # atomic writes leave no temporary file


def test_names_that_map_to_the_same_file_name_do_not_collide(tmp_path):
    store = UnitStore(open_run(tmp_path / "out", "x", {}))
    store.save({"target": "CD14+ Mono"}, summary={"r2": 0.268})
    store.save({"target": "CD14 Mono"}, summary={"r2": 0.506})
    assert store.load({"target": "CD14+ Mono"}).summary["r2"] == 0.268
    assert store.load({"target": "CD14 Mono"}).summary["r2"] == 0.506


def test_interrupted_unit_is_not_done(tmp_path):
    store = UnitStore(open_run(tmp_path / "out", "x", {}))
    d = store.path({"u": 1})
    d.mkdir(parents=True)
    (d / "genes.parquet").write_text("half")  # files written, manifest missing: killed mid-unit
    assert not store.done({"u": 1})
    store.save({"u": 1}, summary={"ok": True})
    assert store.load({"u": 1}).summary == {"ok": True}


def test_unit_of_other_settings_is_refused(tmp_path):
    out = tmp_path / "out"
    store = UnitStore(open_run(out, "x", {"seed": 0}))
    store.save({"u": 1}, summary={})
    # run.json replaced by hand with other settings: the unit still knows the settings it was computed with
    other = UnitStore(_rewritten(out, {"seed": 1}))
    with pytest.raises(RunFolderError, match="computed with other settings"):
        other.done({"u": 1})


def _rewritten(out, settings):
    from perturblab.io import write_json
    from perturblab.runs import RunFolder, fingerprint

    write_json(out / "run.json", {"command": "x", "settings": settings, "data": None})
    return RunFolder(out, "x", settings, None, fingerprint(settings, None), True)
