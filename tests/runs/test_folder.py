"""The run contract of ``--out``: new, resume (identical settings and data), overwrite, refusals."""

from __future__ import annotations

import json
import os
import stat

import pytest

from perturblab.exceptions import InputError, RunFolderError, SettingsMismatchError
from perturblab.runs import RUN_FILE, UnitStore, open_run


def test_new_run_records_command_settings_and_data(tmp_path):
    run = open_run(tmp_path / "out", "predict", {"seed": 0, "models": ("scgen",)}, "abc")
    info = json.loads((run.path / RUN_FILE).read_text())
    assert info["command"] == "predict" and info["settings"] == {"seed": 0, "models": ["scgen"]}
    assert info["data"] == "abc" and info["fingerprint"] == run.fingerprint and not run.resumed


def test_non_empty_out_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "out"
    open_run(out, "predict", {"seed": 0})
    with pytest.raises(RunFolderError, match="--resume to continue it or --overwrite"):
        open_run(out, "predict", {"seed": 0})
    assert open_run(out, "predict", {"seed": 0}, resume=True).resumed
    with pytest.raises(InputError, match="exclude each other"):
        open_run(out, "predict", {"seed": 0}, resume=True, overwrite=True)


def test_resume_names_every_difference(tmp_path):
    out = tmp_path / "out"
    open_run(out, "predict", {"seed": 0, "preprocessing": {"n_top_genes": 2000}, "models": ["scgen"]}, "data-1")
    with pytest.raises(SettingsMismatchError) as err:
        open_run(out, "predict", {"seed": 7, "preprocessing": {"n_top_genes": 500}, "models": ["scgen"]}, "data-1",
                 resume=True)
    msg = str(err.value)
    assert "settings.seed: 0 -> 7" in msg and "settings.preprocessing.n_top_genes: 2000 -> 500" in msg
    assert "models" not in msg
    assert set(err.value.differences) == {"settings.seed", "settings.preprocessing.n_top_genes"}
    with pytest.raises(SettingsMismatchError, match="data: 'data-1' -> 'data-2'"):  # input changed in place
        open_run(out, "predict", {"seed": 0, "preprocessing": {"n_top_genes": 2000}, "models": ["scgen"]}, "data-2",
                 resume=True)


def test_overwrite_removes_everything_of_the_earlier_run(tmp_path):
    out = tmp_path / "out"
    run = open_run(out, "audit", {"seed": 0})
    UnitStore(run).save({"u": 1}, summary={"n": 1})
    (out / "tables").mkdir()
    (out / "tables" / "max_change_genes.parquet").write_text("old")
    run2 = open_run(out, "audit", {"seed": 1}, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [RUN_FILE]
    assert not UnitStore(run2).done({"u": 1})


def test_other_command_and_foreign_folders_are_refused(tmp_path):
    out = tmp_path / "audit"
    open_run(out, "audit", {"seed": 0})
    for flags in ({}, {"resume": True}, {"overwrite": True}):
        with pytest.raises(RunFolderError, match="holds the results of 'perturblab audit'"):
            open_run(out, "predict", {"seed": 0}, **flags)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    for flags in ({}, {"resume": True}, {"overwrite": True}):
        with pytest.raises(RunFolderError, match="holds no perturblab run"):
            open_run(foreign, "audit", {}, **flags)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_unusable_out_paths(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        open_run(a_file, "audit", {})
    with pytest.raises(RunFolderError, match="inside a file"):
        open_run(a_file / "sub", "audit", {})
    with pytest.raises(RunFolderError, match="cannot write"):
        open_run("/proc/perturblab-out", "audit", {})
    if os.geteuid() != 0:  # root ignores permissions
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        with pytest.raises(RunFolderError, match="cannot write"):
            open_run(locked / "out", "audit", {})


def test_run_file_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        run = open_run(tmp_path / "out", "audit", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((run.path / RUN_FILE).stat().st_mode) == 0o644


def test_data_checksum_sees_changes_and_leaves_the_data_untouched():
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp

    from perturblab.runs import data_checksum

    X = sp.csr_matrix((np.array([3.0, 0.0, 1.0]), np.array([2, 0, 1]), np.array([0, 2, 3])), shape=(2, 3))
    a = ad.AnnData(X)
    before = (X.indices.copy(), X.data.copy(), X.nnz)
    first = data_checksum(a)
    assert (X.indices == before[0]).all() and (X.data == before[1]).all() and X.nnz == before[2]
    assert data_checksum(a) == first
    b = a.copy()
    b.X[1, 1] = 2.0  # one count changed in place
    assert data_checksum(b) != first
