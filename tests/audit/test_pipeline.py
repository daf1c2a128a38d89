"""End-to-end audits on real PBMC3k (2 fast classifiers, 2 clusters): tables, report, resume."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from perturblab.audit import run_audit
from perturblab.exceptions import RunFolderError, SettingsMismatchError, UnknownNameError

TIMING = ["attack_wall_time_s", "unit_wall_time_s"]


def test_tables(small_audit):
    r = small_audit
    acc = r.accuracy.set_index("classifier")
    assert list(acc.index) == ["sctype", "svm"]
    assert acc.loc["svm", "accuracy"] > 0.6 and acc.loc["svm", "macro_auroc"] > 0.9
    att = r.attacks
    # 2 classifiers x 2 clusters x (single-gene x 2 modifications + CGD)
    assert len(att) == 2 * 2 * (2 + 1)
    assert set(att["mode"][att["attack"] == "single_gene"]) == {"exhaustive"}
    assert set(att["space"]) == {"model_input"}
    assert (att["n_classifier_calls"] > 0).all()
    sg = r.genes[r.genes["attack"] == "single_gene"]
    assert {"mode", "n_classifier_calls", "gene", "new_label"} <= set(sg.columns)
    # scType flips PBMC3k's B cluster with single genes (spec: 11 perc99 / 2 perc1 hits with the anchor)
    assert len(sg[(sg["classifier"] == "sctype") & (sg["cluster"] == "B")]) > 0
    ov = r.overview
    assert set(ov["attack"]) == {"single_gene", "cgd"}
    assert (ov.groupby(["classifier", "attack", "cluster", "modification"]).size() == 1).all()


def test_single_gene_unit_matches_direct_attack(small_audit, pbmc_halves):
    """The persisted single-gene result equals a direct call of the attack on the same model."""
    from perturblab.attack import single_gene_attack
    from perturblab.classifiers import PBMC3K_LABEL_MAP, fit_classifier

    train, test = pbmc_halves
    clf, _ = fit_classifier("sctype", train, "cell_type", label_map=PBMC3K_LABEL_MAP)
    direct = single_gene_attack(clf, clf.preprocess(test), test.obs["cell_type"].astype(str), "B", "perc99")
    got = small_audit.genes.query("classifier == 'sctype' and attack == 'single_gene' and cluster == 'B' "
                                  "and modification == 'perc99'")
    assert got["gene"].tolist() == direct.table["gene"].tolist()
    assert set(got["n_classifier_calls"]) == {direct.n_classifier_calls}


def test_part2_tables(small_audit):
    r = small_audit
    rob = r.robustness
    assert set(rob["axis"]) == {"genes", "cgd"} and set(rob["scope"]) == {"overall", "NK", "B"}
    clean = rob[(rob["strength"] == 0) & (rob["scope"] == "overall")].set_index(["classifier", "axis"])["accuracy"]
    acc = r.accuracy.set_index("classifier")["accuracy"]
    for (clf, _), v in clean.items():
        assert v == pytest.approx(acc[clf])  # strength 0 = the unattacked test accuracy
    five = rob[(rob["axis"] == "genes") & (rob["strength"] == 5) & (rob["scope"] == "B")]
    zero = rob[(rob["axis"] == "genes") & (rob["strength"] == 0) & (rob["scope"] == "B")]
    assert (five["accuracy"].to_numpy() <= zero["accuracy"].to_numpy()).all()
    det = r.detectability
    assert {"n_genes_modified", "l1_per_cell", "l2_per_cell", "frac_expression", "pca_shift", "umap_shift",
            "frac_left_cluster"} <= set(det.columns)
    sg = det[det["attack"] == "single_gene"]
    assert (sg["n_genes_modified"] == 1).all()
    emb = r.embedding
    assert set(emb["state"]) == {"before", "after"} and emb[["umap1", "umap2"]].notna().all().all()
    tr = r.transfer
    assert set(zip(tr["source"], tr["target"])) == {("sctype", "svm"), ("svm", "sctype")}
    assert set(tr["attack"]) == {"single_gene", "cgd"}
    assert ((tr["n_transferred"] <= tr["n_source"]) | tr["n_source"].eq(0)).all()
    de = r.defence.set_index("classifier")
    assert de.loc["sctype", "n_augmented_cells"] > 0  # scType has hits to replay
    assert de.loc["svm", "hits_removed"] == de.loc["svm", "hits_before"] - de.loc["svm", "hits_after"]


def test_outputs_and_report(small_audit):
    out = small_audit.out
    for name in ("accuracy", "attacks", "genes", "overview", "robustness", "detectability", "transfer", "defence"):
        assert (out / "tables" / f"{name}.parquet").is_file(), name
    s = small_audit.summary
    assert s["n_units"] == len(list((out / "units").glob("*/unit.json"))) - 4  # + 2 transfer + 2 defence results
    assert s["peak_rss_mb"] > 0 and s["wall_time_s"] > 0
    html = (out / "report.html").read_text()
    for sec in ("settings", "accuracy", "vulnerability", "genes", "robustness", "detectability", "transfer",
                "defence"):
        assert f'id="{sec}"' in html, sec
    for fig in ("heatmap-single_gene-model_input", "heatmap-cgd-model_input",
                "robustness-genes", "robustness-cgd", "embedding-sctype", "embedding-svm", "transfer-single_gene"):
        assert re.search(f'<figure id="{fig}"><img src="data:image/png;base64,', html), fig
    assert html.count("data:image/png;base64,") >= 8
    assert "http://" not in html and "src=\"/" not in html  # self-contained


def test_resume_and_guard(small_audit, small_settings):
    SMALL = small_settings
    out = small_audit.out
    with pytest.raises(RunFolderError, match="--resume"):
        run_audit(out=out, **SMALL)
    again = run_audit(out=out, resume=True, **SMALL)
    assert again.summary["n_units_run"] == 0 and again.summary["n_units_resumed"] == again.summary["n_units"]
    pd.testing.assert_frame_equal(again.attacks, small_audit.attacks)
    pd.testing.assert_frame_equal(again.transfer, small_audit.transfer)
    with pytest.raises(SettingsMismatchError, match=r"settings\.seed: 0 -> 1"):
        run_audit(out=out, resume=True, **{**SMALL, "seed": 1})


def test_csv_format_and_bad_cluster(tmp_path):
    r = run_audit(out=tmp_path / "csv", classifiers=["sctype"], clusters=["DC"], table_format="csv")
    assert (tmp_path / "csv" / "tables" / "attacks.csv").is_file()
    assert len(r.attacks) == 2 and np.isfinite(r.attacks["n_classifier_calls"]).all()
    with pytest.raises(UnknownNameError, match="unknown cluster 'NK cells'; did you mean 'NK'"):
        run_audit(out=tmp_path / "bad", classifiers=["sctype"], clusters=["NK cells"])
    assert not (tmp_path / "bad").exists()  # nothing written for bad input


def test_grid_random_walk_and_raw_counts(tmp_path):
    r = run_audit(out=tmp_path / "out", classifiers=["sctype"], clusters=["DC"],
                  attacks=["single_gene", "grid", "random_walk"], spaces=["model_input", "raw_counts"], walk_genes=10)
    att = r.attacks.set_index(["attack", "space", "modification"])
    assert set(r.attacks["space"]) == {"model_input", "raw_counts"}
    assert att.loc[("grid", "model_input", "perc1+perc99"), "n_combinations"] == 3**4
    # raw counts: every gene enters the library size, so the single-gene search is dichotomic
    assert att.loc[("single_gene", "raw_counts", "perc99"), "mode"] == "dichotomic"
    assert att.loc[("single_gene", "model_input", "perc99"), "mode"] == "exhaustive"
    grid = r.genes[r.genes["attack"] == "grid"]
    if len(grid):  # minimal combinations: all of the same size
        assert grid["gene"].str.count("__").nunique() == 1
    walk = r.genes[r.genes["attack"] == "random_walk"]
    assert len(walk) <= 2 and (walk["n_classifier_calls"] > 0).all()
    html = (tmp_path / "out" / "report.html").read_text()
    assert 'id="heatmap-grid-raw_counts"' in html and 'id="heatmap-random_walk-model_input"' in html
