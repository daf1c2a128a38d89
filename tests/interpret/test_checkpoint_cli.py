"""``perturblab interpret`` end to end on tiny random checkpoints in the exact layouts Geneformer and scGPT ship."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from perturblab.cli import app

from .shipped_layouts import release_2024_layout, scgpt_folder, v1_release_layout, v2_dictionaries

KNOCKED_OUT = ("LYZ", "NKG7", "MS4A1", "CD3E")
FAST = ["--cells-per-group", "25", "--n-cells", "40", "--n-genes", "40", "--n-label-null", "10", "--n-degree-null",
        "5", "--n-bootstrap", "10", "--ablation-k", "1", "--ablation-seeds", "1", "--ablation-intervention", "top",
        "--cssi-null-repeats", "1", "--cssi-min-cells", "5", "--reference", "trrust", "--reference", "string",
        "--batch-size", "8", "--device", "cpu", "--strata-key", "cell_type",
        # the issue-14 analyses that run the model itself (each adapter's hooks), small
        "--analysis", "value_edges", "--analysis", "embedding_edges", "--analysis", "sae", "--analysis", "in_silico",
        "--sae-epochs", "2", "--in-silico-cells", "20", "--gene-set-library", "/nonexistent/none.gmt"]


@pytest.fixture(scope="module")
def screen(pbmc3k, tmp_path_factory):
    """PBMC3k cells as a mock knock-out screen (labels only: the run must go through, not find biology), with
    Ensembl ids in ``var["gene_ids"]`` as Geneformer needs."""
    rng = np.random.default_rng(0)
    a = pbmc3k[pbmc3k.obs["cell_type"].isin(["CD14+ Mono", "NK", "B", "Naive CD4 T"])].copy()
    a = a[np.sort(rng.choice(a.n_obs, 400, replace=False))].copy()
    detected = np.asarray((a.X > 0).sum(axis=0)).ravel()
    keep = np.argsort(-detected, kind="stable")[:600]  # the 600 most detected genes: ~150 tokens per cell, fast
    a = a[:, np.sort(np.union1d(keep, np.flatnonzero(a.var_names.isin(KNOCKED_OUT))))].copy()
    labels = np.array(["control"] * a.n_obs, dtype=object)
    labels[rng.choice(a.n_obs, 4 * 40, replace=False)] = np.repeat(KNOCKED_OUT, 40)
    a.obs["perturbation"] = labels
    a.obs["cell_type"] = a.obs["cell_type"].astype(str)
    path = tmp_path_factory.mktemp("screen") / "screen.h5ad"
    a.write_h5ad(path)
    return path, a


def _run(screen_path, out, *args):
    res = CliRunner().invoke(app, ["interpret", "--data", str(screen_path), "--out", str(out), *FAST, *args])
    assert res.exit_code == 0, res.output
    return json.loads((out / "summary.json").read_text())


def test_geneformer_v1_release_layout(screen, tmp_path):
    path, _a = screen
    root = v1_release_layout(tmp_path / "Geneformer")
    summary = _run(path, tmp_path / "out", "--model", "geneformer", "--model-path", str(root), "--gene-id-key",
                   "gene_ids")
    assert summary["model"] == "GeneformerModel" and summary["n_genes"] >= 30
    assert "genes have" in summary["gene_vocabulary"]
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["n_layers_used"] == 2 and cfg["gene_id_key"] == "gene_ids"
    assert {"value_edges", "embedding_edges", "sae", "in_silico"} <= set(summary["analyses"])
    assert (tmp_path / "out" / "value_edges.parquet").is_file() and (tmp_path / "out" / "sae_history.parquet").is_file()


def test_geneformer_v2_2024_layout(screen, tmp_path):
    path, a = screen
    tokens, medians, mapping = v2_dictionaries(a.var["gene_ids"])
    root = release_2024_layout(tmp_path / "Geneformer", tokens, medians, mapping)
    summary = _run(path, tmp_path / "out", "--model", "geneformer", "--model-path", str(root / "Geneformer-V2-104M"),
                   "--gene-id-key", "gene_ids")
    assert summary["model"] == "GeneformerModel"


def test_scgpt_fine_tuned_checkpoint(screen, tmp_path):
    path, a = screen
    genes = [g for g in a.var_names if not g.startswith("MT-")][:3000]
    scgpt_folder(tmp_path / "scgpt", genes, "zero_prob")
    summary = _run(path, tmp_path / "out", "--model", "scgpt", "--model-path", str(tmp_path / "scgpt"))
    assert summary["model"] == "ScGPTModel"
    assert summary["n_genes_without_token"] >= 0


def test_checkpoint_options_are_checked(screen, tmp_path):
    path, _ = screen
    res = CliRunner().invoke(app, ["interpret", "--data", str(path), "--out", str(tmp_path / "o"), "--model",
                                   "geneformer", "--model-path", str(tmp_path)])
    assert res.exit_code == 2 and "error:" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["interpret", "--data", str(path), "--out", str(tmp_path / "o2"),
                                   "--gene-id-key", "gene_ids"])
    assert res.exit_code == 2 and "not to the own model" in res.output
