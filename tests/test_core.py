"""Core utilities: atomic writes, the HTML report (autoescaping), the device choice."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from perturblab.io import read_table, write_json, write_table
from perturblab.report import Report


def test_write_table_roundtrip_and_no_temp_left(tmp_path):
    df = pd.DataFrame({"gene": ["CD3E", "MS4A1"], "value": [1.5, 2.0]})
    for name in ("t.parquet", "t.csv"):
        write_table(tmp_path / name, df)
        pd.testing.assert_frame_equal(read_table(tmp_path / name), df)
    write_json(tmp_path / "s.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "t.csv", "t.parquet"]
    with pytest.raises(ValueError, match="Unsupported table format"):
        write_table(tmp_path / "t.xlsx", df)


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


def test_device_cpu():
    from perturblab._device import get_device

    assert get_device("cpu").type == "cpu"
    assert get_device().type in {"cpu", "cuda"}
