"""Your classifier in the audit: run_audit(classifiers={"mine": fitted, ...}), --classifier-file, results in AnnData."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import perturblab as plab
from perturblab.exceptions import SettingsMismatchError

SMALL = {"clusters": ("NK", "B"), "modifications": ("perc1",), "n_bootstrap": 0, "label_key": "cell_type"}


@pytest.fixture(scope="module")
def adata_and_lr():
    """PBMC3k (a copy), and a logistic regression fitted on the audit's train half (log1p, 300 genes, DataFrame)."""
    import scanpy as sc
    from sklearn.linear_model import LogisticRegression

    from perturblab.classifiers._preprocess import log1p_matrix

    adata = plab.datasets.pbmc3k().copy()
    train, _ = plab.audit.stratified_split(adata, "cell_type", random_state=0)
    log = train.copy()
    sc.pp.normalize_total(log, target_sum=1e4)
    sc.pp.log1p(log)
    sc.pp.highly_variable_genes(log, n_top_genes=300)
    genes = list(log.var_names[log.var["highly_variable"].to_numpy()])
    X = pd.DataFrame(log1p_matrix(train)[:, train.var_names.get_indexer(genes)], columns=genes)
    lr = LogisticRegression(max_iter=300).fit(X, train.obs["cell_type"].astype(str))
    return adata, lr


def test_run_audit_with_a_fitted_estimator_and_results_in_adata(adata_and_lr, tmp_path):
    adata, lr = adata_and_lr
    res = plab.audit.run_audit(out=tmp_path / "a", data=adata, classifiers={"mine": lr, "st": "sctype"},
                               key_added="audit", **SMALL)
    acc = res.accuracy.set_index("classifier")
    assert list(acc.index) == ["mine", "st"]
    assert acc.loc["mine", "fit_time_s"] == 0 and "fitted by the user" in acc.loc["mine", "notes"]
    assert acc.loc["mine", "accuracy"] > 0.6  # 300 genes: naive and memory CD4 T mix
    assert res.config.registry_names == {"st": "sctype"}
    assert res.config.classifier_checksums["mine"].startswith("sha256:")
    att = res.attacks
    assert set(att["classifier"]) == {"mine", "st"} and len(att) == 4
    # results back in the AnnData
    assert set(adata.uns["audit"]) >= {"accuracy", "attacks", "headline", "settings"}
    split = adata.obs["audit_split"].value_counts()
    assert split["train"] + split["test"] + split.get("dropped", 0) == adata.n_obs and split["dropped"] == 62
    nk = adata.obs["cell_type"] == "NK"
    found = att.set_index(["classifier", "cluster"])["n_found"]
    assert (adata.obs.loc[nk, "audit_mine_n_flipping_genes"] == found["mine", "NK"]).all()
    assert adata.obs.loc[adata.obs["cell_type"] == "CD8 T", "audit_mine_n_flipping_genes"].isna().all()
    assert adata.obs.loc[nk, "audit_st_label_after"].nunique() == 1
    adata.write_h5ad(tmp_path / "back.h5ad")  # the keys are writable
    again = plab.audit.run_audit(out=tmp_path / "a", data=adata, classifiers={"mine": lr, "st": "sctype"},
                                 resume=True, **SMALL)  # the results written back are not a change of the data
    assert again.summary["n_units_resumed"] == again.summary["n_units"] == 4
    # a changed estimator is a changed setting: refused on resume
    lr2 = type(lr)(max_iter=300, C=0.5).fit(np.zeros((4, lr.n_features_in_)) + np.arange(4)[:, None],
                                            ["a", "b", "a", "b"])
    lr2.feature_names_in_ = lr.feature_names_in_
    with pytest.raises(SettingsMismatchError, match="classifier_checksums"):
        plab.audit.run_audit(out=tmp_path / "a", data=adata, classifiers={"mine": lr2, "st": "sctype"}, resume=True,
                             **SMALL)


def test_cli_classifier_file_skops_and_celltypist(adata_and_lr, tmp_path):
    import skops.io as sio

    from perturblab.cli import app

    adata, lr = adata_and_lr
    sio.dump(lr, tmp_path / "lr.skops")
    train, _ = plab.audit.stratified_split(adata, "cell_type", random_state=0)
    ct = plab.classifiers.CellTypistClassifier(max_iter=10).fit(train[:, list(lr.feature_names_in_)].copy(),
                                                                "cell_type")
    ct.model_.write(str(tmp_path / "ct.pkl"))
    data = tmp_path / "pbmc.h5ad"
    plab.datasets.pbmc3k().write_h5ad(data)
    out = tmp_path / "cli"
    args = ["audit", "--out", str(out), "--data", str(data), "--classifier-file", f"mine={tmp_path / 'lr.skops'}",
            "--classifier-file", f"ct={tmp_path / 'ct.pkl'}", "--cluster", "NK", "--modification", "perc1",
            "--n-bootstrap", "0"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    att = pd.read_parquet(out / "tables" / "attacks.parquet")
    assert set(att["classifier"]) == {"mine", "ct"}
    run = json.loads((out / "run.json").read_text())
    assert str(run).count("sha256:") >= 2  # both files' checksums are part of the run's settings
    # an arbitrary pickle is refused, in one line
    (tmp_path / "x.joblib").write_bytes(b"\x80\x04N.")
    bad = CliRunner().invoke(app, ["audit", "--out", str(tmp_path / "b"), "--classifier-file",
                                   f"x={tmp_path / 'x.joblib'}"])
    assert bad.exit_code == 2 and "other pickles are refused" in bad.output
    assert not (tmp_path / "b").exists()


def test_unwrappable_classifier_is_one_error(tmp_path):
    with pytest.raises(plab.exceptions.InputError, match=r"plab\.classifiers\.wrap"):
        plab.audit.run_audit(classifiers={"odd": object()}, clusters=("NK",), n_bootstrap=0)
    with pytest.raises(plab.exceptions.UnknownNameError, match="did you mean 'sctype'"):
        plab.audit.run_audit(classifiers=["sctyp"], clusters=("NK",))
