"""End-to-end: ``perturblab interpret`` on a small Papalexi 2021 subset with a tiny own model."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from perturblab.cli import app
from perturblab.interpret.report import SECTION_IDS

ARGS = ["interpret", "--model", "own", "--data", "papalexi2021", "--cells-per-group", "60", "--n-cells", "60",
        "--epochs", "1", "--d-model", "16", "--n-layers", "2", "--n-heads", "2", "--max-length", "48",
        "--n-label-null", "50", "--n-degree-null", "20", "--n-bootstrap", "50", "--ablation-k", "1",
        "--ablation-k", "2",
        "--ablation-seeds", "1", "--ablation-intervention", "top", "--ablation-intervention", "random",
        "--cssi-null-repeats", "2", "--cssi-min-cells", "10", "--batch-size", "32", "--device", "cpu",
        "--analysis", "none"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("interpret")
    res = CliRunner().invoke(app, [*ARGS, "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return out, res.output


def test_cli_writes_tables_summary_and_report(run):
    out, output = run
    for name in ("reference_recovery", "de_targets", "perturbation_auroc", "perturbation_comparisons", "incremental",
                 "confound_r2", "residualisation", "nulls", "ablation", "registry", "verdict"):
        assert (out / f"{name}.parquet").is_file(), name
    keys = [json.loads(p.read_text())["key"] for p in (out / "units").glob("*/unit.json")]
    assert {"own_model", "attention", "layer_analysis", "ablation"} <= {k["stage"] for k in keys}
    # attention streamed to disk one layer per unit
    assert sorted(str(k["layer"]) for k in keys if k["stage"] == "attention") == ["0", "1", "counts"]
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["verdict"]["criteria"]) == 4
    assert summary["n_genes"] == 299 and summary["n_rankable_perturbations"] >= 2
    html = (out / "report.html").read_text()
    for sid in SECTION_IDS:
        assert f'id="{sid}"' in html, sid
    assert "data:image/png;base64" in html
    assert output.strip().splitlines()[-1].startswith("interpret: verdict ")


def test_small_run_says_not_evaluable_and_how_the_layer_was_chosen(run):
    out, output = run
    summary = json.loads((out / "summary.json").read_text())
    n = summary["n_rankable_perturbations"]
    assert n < summary["min_perturbations"] == 6
    status = {c["name"][:3]: c["status"] for c in summary["verdict"]["criteria"]}
    assert status["(a)"] == status["(b)"] == status["(d)"] == "not evaluable"
    verdict = pd.read_parquet(out / "verdict.parquet")
    assert (verdict.set_index("status").loc["not evaluable", "n"] == n).all()
    comps = pd.read_parquet(out / "perturbation_comparisons.parquet")
    assert not comps["evaluable"].any()
    reg = pd.read_parquet(out / "registry.parquet")
    assert (reg.loc[reg["section"] == "perturbation-first", "flag"] == "not evaluable").all()
    html = (out / "report.html").read_text()
    assert "not evaluable" in html and f"{n} rankable perturbation" in html
    assert "not evaluable: (a) beats every gene baseline" in output
    # the layer was chosen by nested cross-validation, and the report and summary say so
    sel = summary["layer_selection"]
    assert sel["method"] == "nested-cv" and summary["attention_score_tested"] == "attention (nested CV)"
    assert set(sel["assignment"]) == set(pd.read_parquet(out / "layer_selection.parquet")["perturbation"])
    assert "nested cross-validation" in html and "nested cross-validation" in output
    # the caveat is written from the data used, not about Papalexi's full table
    d = summary["data"]
    assert d["source"] == "papalexi2021" and d["n_cells_used"] < d["n_cells"]
    assert f"{d['n_cells_used']:,} cells" in html and "9 targets among them" not in html


def test_registry_and_tables_are_consistent(run):
    out, _ = run
    reg = pd.read_parquet(out / "registry.parquet")
    conf = reg[reg["confirmatory"] & reg["p"].notna() & reg["evaluable"]]
    assert len(conf) > 0 and (conf["p_bh"] >= conf["p"] - 1e-12).all() and conf["p_bh"].le(1).all()
    rec = pd.read_parquet(out / "reference_recovery.parquet")
    assert {"trrust", "string >= 700"} <= set(rec["reference"])
    assert set(rec["layer"].dropna().astype(int)) == {0, 1}
    abl = pd.read_parquet(out / "ablation.parquet")
    assert {"none", "top", "random"} <= set(abl["intervention"])
    heads = pd.read_parquet(out / "head_ranking.parquet")
    assert len(heads) == 4 and heads["rank"].tolist() == [1, 2, 3, 4] and heads["entropy"].gt(0).all()
    resid = pd.read_parquet(out / "residualisation.parquet")
    assert set(resid["residualiser"]) == {"ols", "gbdt"}
    cssi = pd.read_parquet(out / "cssi_recovery.parquet")
    assert {"CSSI-max spearman", "CSSI-mean spearman"} <= set(cssi["score"])
    assert (cssi["n_strata"] >= 2).all()  # Leiden strata of >= 10 cells, so attention CSSI runs too
    assert cssi["score"].str.startswith("CSSI-range attention").any()
    pp = pd.read_parquet(out / "perturbation_auroc.parquet")
    assert pp["auroc"].dropna().between(0, 1).all()


def test_cli_resumes_finished_stages(run):
    out, _ = run
    before = json.loads((out / "summary.json").read_text())
    res = CliRunner().invoke(app, [*ARGS, "--out", str(out)])
    assert res.exit_code == 2 and "--resume" in res.output
    res = CliRunner().invoke(app, [*ARGS, "--out", str(out), "--resume"])
    assert res.exit_code == 0, res.output
    assert "[resume] own_model" in res.output and "[resume] attention" in res.output
    assert json.loads((out / "summary.json").read_text()) == before
    # defect 2: other model settings are never served the stored model or stages
    changed = CliRunner().invoke(app, [*ARGS, "--out", str(out), "--resume", "--d-model", "32", "--epochs", "2"])
    assert changed.exit_code == 2
    assert "settings.d_model: 16 -> 32" in changed.output and "settings.epochs: 1 -> 2" in changed.output


def test_cli_rejects_bad_input(tmp_path):
    res = CliRunner().invoke(app, ["interpret", "--model", "geneformer", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "model-path" in res.output
    res = CliRunner().invoke(app, ["interpret", "--model", "bert", "--out", str(tmp_path)])
    assert res.exit_code == 2
    for args, msg in ((["--n-cells", "0"], "n_cells must be a number >= 20"),
                      (["--device", "bogus"], "unknown device 'bogus'"),
                      (["--reference", "trrust", "--n-genes", "-3"], "n_genes must be")):
        res = CliRunner().invoke(app, ["interpret", "--out", str(tmp_path / "x"), *args])
        assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "x").exists()


def test_nan_perturbation_labels_are_refused_before_training(papalexi, tmp_path):
    from perturblab.exceptions import InputError
    from perturblab.interpret.pipeline import InterpretConfig, run_interpretation

    a = papalexi[:300].copy()
    a.obs["perturbation"] = a.obs["perturbation"].astype(object)
    a.obs.iloc[:5, a.obs.columns.get_loc("perturbation")] = None
    with pytest.raises(InputError, match="5 cells without a perturbation"):
        run_interpretation(a, tmp_path / "out", InterpretConfig(n_cells=20))
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_select_genes_forces_perturbed_genes():
    from perturblab.interpret.pipeline import select_genes
    from perturblab.interpret.simulate import simulate_grn

    a = simulate_grn(random_state=0).adata
    genes = select_genes(a, 20, forced=["TF1", "G59", "not-a-gene"])
    assert {"TF1", "G59"} <= set(genes) and 20 <= genes.size <= 22
    assert list(genes) == [g for g in a.var_names if g in set(genes)]  # data order kept
    assert select_genes(a, 1000).size == a.n_vars
