"""The issue-14 analyses run from ``perturblab interpret`` (stored stages, registry rows, report sections), the
results back in an AnnData, and a run on any AnnData file with its own perturbation column and control label."""

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from perturblab.cli import app

TINY_GMT = str(Path(__file__).parent / "data" / "gene_sets_tiny.gmt")
ANALYSES = ["tf_strata", "circularity", "per_tf", "partial", "coexpression", "gene_sets", "embedding_edges",
            "in_silico"]
# a tiny own model on 60 cells per perturbation of Papalexi 2021, written as an .h5ad with its own column names
SMALL = ["--perturbation-key", "gene_ko", "--control", "NT", "--n-cells", "60", "--epochs", "1", "--d-model", "16",
         "--n-layers", "2", "--n-heads", "2", "--max-length", "48", "--n-label-null", "50", "--n-degree-null", "20",
         "--n-bootstrap", "50", "--ablation-k", "1", "--ablation-k", "2", "--ablation-seeds", "1",
         "--ablation-intervention", "top", "--ablation-intervention", "random", "--cssi-null-repeats", "2",
         "--cssi-min-cells", "10", "--batch-size", "32", "--device", "cpu", "--in-silico-cells", "30",
         "--gene-set-library", TINY_GMT, "--gene-set-library", "/nonexistent/missing_lib.gmt"]


def _config():
    """The Python-API twin of the command line above (same fingerprint)."""
    from perturblab.interpret.pipeline import InterpretConfig

    return InterpretConfig(perturbation_key="gene_ko", control="NT", n_cells=60, epochs=1, d_model=16, n_layers=2,
                           n_heads=2, max_length=48, n_label_null=50, n_degree_null=20, n_bootstrap=50,
                           ablation_ks=(1, 2), ablation_seeds=1, ablation_interventions=("top", "random"),
                           cssi_null_repeats=2, cssi_min_cells=10, batch_size=32, device="cpu", in_silico_cells=30,
                           gene_set_libraries=(TINY_GMT, "/nonexistent/missing_lib.gmt"), analyses=tuple(ANALYSES))


@pytest.fixture(scope="module")
def h5ad(tmp_path_factory, papalexi):
    rng = np.random.default_rng(0)
    lab = papalexi.obs["perturbation"].astype(str).to_numpy()
    keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(lab == g), min(60, int((lab == g).sum())),
                                              replace=False) for g in sorted(set(lab))]))
    a = papalexi[keep].copy()
    a.obs = pd.DataFrame({"gene_ko": np.where(lab[keep] == "control", "NT", lab[keep])}, index=a.obs_names)
    path = tmp_path_factory.mktemp("data") / "my.h5ad"
    a.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, h5ad):
    out = tmp_path_factory.mktemp("analyses")
    args = ["interpret", "--data", str(h5ad), *SMALL, *(x for a in ANALYSES for x in ("--analysis", a))]
    res = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out, args, res.output


def test_selected_analyses_write_tables_registry_rows_and_report_sections(run):
    out, _, _ = run
    for name in ("tf_strata", "circularity", "sign_agreement", "per_tf", "partial", "coexpression", "gene_sets",
                 "gene_sets_unavailable", "embedding_edges", "in_silico"):
        assert (out / f"{name}.parquet").is_file(), name
    for name in ("value_edges", "sensitivity", "sae_history"):  # not selected
        assert not (out / f"{name}.parquet").exists(), name
    keys = [json.loads(p.read_text())["key"] for p in (out / "units").glob("*/unit.json")]
    assert {k["name"] for k in keys if k["stage"] == "analysis"} == set(ANALYSES)
    reg = pd.read_parquet(out / "registry.parquet")
    sections = set(reg["section"])
    assert len(reg) > 20 and {"gene sets"} <= sections, sections
    assert reg["p"].dropna().between(0, 1).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["analyses"] == ANALYSES and summary["n_tests"] == len(reg)
    # in-silico deletion of the knocked-out genes present, scored per perturbation
    ins = pd.read_parquet(out / "in_silico.parquet")
    assert len(ins) and ins["auroc"].dropna().between(0, 1).all()
    cx = pd.read_parquet(out / "coexpression.parquet")
    assert set(cx["layer"].dropna().astype(int)) == {0, 1}
    html = (out / "report.html").read_text()
    for sid in ("robustness", "positive", "cssi-honest", "beyond"):
        assert f'id="{sid}"' in html, sid
    assert "Not selected in this run: value_edges" in html
    # the tiny GMT is loaded; the missing library is named, not a crash
    assert "missing_lib" in html and "could not be loaded" in html
    assert set(pd.read_parquet(out / "gene_sets.parquet")["reference"]) == {"gene_sets_tiny"}


def test_resume_reuses_analyses_and_a_changed_setting_is_not_reused(run):
    out, args, _ = run
    res = CliRunner().invoke(app, [*args, "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    assert "[resume] in_silico" in res.output and "[resume] gene_sets" in res.output
    changed = CliRunner().invoke(app, [*args, "--out", str(out), "--resume", "--in-silico-cells", "20"])
    assert changed.exit_code == 2 and "settings.in_silico_cells: 30 -> 20" in changed.output
    more = CliRunner().invoke(app, [*args, "--analysis", "decomposition", "--out", str(out), "--resume"])
    assert more.exit_code == 2 and "settings.analyses" in more.output


def test_analysis_names_are_validated(tmp_path):
    from perturblab.exceptions import UnknownNameError
    from perturblab.interpret.catalogue import ANALYSES as CATALOGUE
    from perturblab.interpret.catalogue import default_analyses
    from perturblab.interpret.pipeline import InterpretConfig

    res = CliRunner().invoke(app, ["interpret", "--out", str(tmp_path / "x"), "--analysis", "sea"])
    assert res.exit_code == 2 and "unknown analysis 'sea'" in res.output and "sae" in res.output
    res = CliRunner().invoke(app, ["interpret", "--out", str(tmp_path / "x"), "--analysis", "all", "--analysis",
                                   "sae"])
    assert res.exit_code == 2 and "cannot be combined" in res.output
    assert not (tmp_path / "x").exists()
    with pytest.raises(UnknownNameError):
        InterpretConfig(analyses=("value_edges", "nope"))
    assert InterpretConfig().analyses == default_analyses()
    assert set(default_analyses()) <= set(CATALOGUE)
    a, b = InterpretConfig().fingerprint(), InterpretConfig(sae_epochs=3).fingerprint()
    assert a["sae_epochs"] == 10 and b["sae_epochs"] == 3 and "analyses" in a


def test_any_h5ad_with_its_own_keys(run, h5ad):
    out, _, _ = run
    summary = json.loads((out / "summary.json").read_text())
    a = ad.read_h5ad(h5ad)
    assert summary["data"]["source"] == str(h5ad) and summary["data"]["n_cells"] == a.n_obs
    assert summary["data"]["n_control"] == int((a.obs["gene_ko"] == "NT").sum())
    de = pd.read_parquet(out / "de_targets.parquet")
    assert "NT" not in set(de["perturbation"]) and len(set(de["perturbation"])) == summary["data"]["n_perturbations"]


def test_results_back_in_anndata_and_layer_summaries_as_dataframes(run, h5ad, tmp_path):
    from perturblab.interpret.pipeline import run_interpretation

    out, _, _ = run
    result = run_interpretation(str(h5ad), out, _config(), resume=True)  # every stage read back
    summary = json.loads((out / "summary.json").read_text())
    layers = result.layer_summaries()
    assert set(layers["head"]) == {"mean", "max"} and set(layers["layer"].astype(int)) == {0, 1}
    assert layers["auroc"].dropna().between(0, 1).all() and layers["mean_perturbation_auroc"].notna().any()
    m = result.layer_matrix(1, "max")
    assert m.shape == (summary["n_genes"], summary["n_genes"]) and list(m.index) == list(m.columns)
    assert (m.to_numpy() >= result.layer_matrix(1, 0).to_numpy() - 1e-9).all()  # max over heads >= head 0
    a = ad.read_h5ad(h5ad)
    result.to_adata(a, key_added="interpret")
    uns = a.uns["interpret"]
    assert {"tables", "registry", "verdict", "layer_summaries", "summary"} <= set(uns)
    assert {"coexpression", "in_silico", "reference_recovery"} <= set(uns["tables"])
    a.write_h5ad(tmp_path / "back.h5ad")
    back = ad.read_h5ad(tmp_path / "back.h5ad").uns["interpret"]
    assert len(back["registry"]) == len(result.tables["registry"]) == summary["n_tests"]
    assert len(back["tables"]["coexpression"]) == len(result.tables["coexpression"])
    assert json.loads(back["summary"])["verdict"]["passed"] == bool(back["verdict_passed"])
