"""Core utilities: atomic writes honouring the umask, readers' errors, the HTML report (autoescaping), the
device choice, "did you mean"."""

from __future__ import annotations

import os
import stat

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from perturblab import io
from perturblab.exceptions import InputError, UnknownNameError
from perturblab.io import read_table, write_json, write_table
from perturblab.report import Report


def test_write_table_roundtrip_and_no_temp_left(tmp_path):
    df = pd.DataFrame({"gene": ["CD3E", "MS4A1"], "value": [1.5, 2.0]})
    for name in ("t.parquet", "t.csv"):
        write_table(tmp_path / name, df)
        pd.testing.assert_frame_equal(read_table(tmp_path / name), df)
    write_json(tmp_path / "s.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "t.csv", "t.parquet"]
    with pytest.raises(InputError, match="unsupported table format"):
        write_table(tmp_path / "t.xlsx", df)


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_follow_the_umask(tmp_path, umask, mode):
    """Files are readable by others under umask 022 (temporary files are 0600 until chmod-ed)."""
    old = os.umask(umask)
    try:
        paths = [io.write_text(tmp_path / "r.html", "<p>x</p>"), io.write_json(tmp_path / "s.json", {"a": 1}),
                 io.write_table(tmp_path / "t.parquet", pd.DataFrame({"a": [1]})),
                 io.write_npz(tmp_path / "a.npz", {"x": np.arange(3)}),
                 io.save_torch(tmp_path / "m.pt", {"w": 1})]
    finally:
        os.umask(old)
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == mode, p.name


def test_readers_give_one_clear_error(tmp_path):
    bad = tmp_path / "bad.h5ad"
    bad.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(InputError, match="cannot read --data file .*bad.h5ad"):
        io.read_h5ad(bad, what="--data")
    truncated = tmp_path / "t.h5ad"
    import anndata as ad

    ad.AnnData(np.ones((5, 3), dtype=np.float32)).write_h5ad(truncated)
    truncated.write_bytes(truncated.read_bytes()[:500])
    with pytest.raises(InputError, match="truncated, corrupt"):
        io.read_h5ad(truncated)
    with pytest.raises(InputError, match="does not exist"):
        io.read_h5ad(tmp_path / "missing.h5ad")
    pickle_ckpt = tmp_path / "evil.pt"
    import torch

    torch.save({"obj": tmp_path}, pickle_ckpt)  # a Path needs unpickling of a class: refused
    with pytest.raises(InputError, match="weights_only"):
        io.load_torch(pickle_ckpt)


def test_did_you_mean():
    err = UnknownNameError("cell type", "CD14 mono", ["CD14 Mono", "B", "NK"])
    assert "did you mean 'CD14 Mono'?" in str(err) and isinstance(err, KeyError) and isinstance(err, ValueError)
    assert "did you mean 'NK'" in str(UnknownNameError("cluster", "NK cells", ["NK", "B"]))
    assert "did you mean" not in str(UnknownNameError("cluster", "xyz", ["NK", "B"]))


def test_report_escapes_data_and_embeds_figures(tmp_path):
    rep = Report("Audit")
    sec = rep.section("Genes", id="genes")
    sec.table(pd.DataFrame({"gene": ["<script>alert(1)</script>"], "n": [3]}))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    sec.figure(fig, caption="line")
    html = rep.write(tmp_path / "r.html").read_text()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert 'id="genes"' in html and "data:image/png;base64," in html


def test_device_cpu_and_bad_devices():
    import torch

    from perturblab._device import check_device, get_device

    assert get_device("cpu").type == "cpu"
    assert get_device().type in {"cpu", "cuda"}
    with pytest.raises(InputError, match="unknown device 'bogus'"):
        check_device("bogus")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            check_device("cuda")
