"""DE on sparse matrices, one perturbation at a time: equal to the former dense implementation on Papalexi."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from perturblab.interpret.edges import log_normalise
from perturblab.interpret.perturbation import de_targets


def _dense_reference(adata, key, control, perturbations, lfc_threshold, alpha):
    """The dense implementation de_targets had before (all cells log-normalised at once), kept as reference."""
    from statsmodels.stats.multitest import multipletests

    labels = adata.obs[key].astype(str).to_numpy()
    ctrl = labels == control
    genes = np.asarray(adata.var_names).astype(str)
    X = log_normalise(adata.X, library_size=np.asarray(adata.X.sum(axis=1)).ravel())
    mean_c = np.expm1(X[ctrl]).mean(axis=0)
    out = []
    for p in perturbations:
        sel = labels == p
        keep = genes != p
        with np.errstate(invalid="ignore", divide="ignore"):
            t, pv = stats.ttest_ind(X[sel][:, keep], X[ctrl][:, keep], equal_var=False, axis=0)
        pv = np.where(np.isnan(pv), 1.0, pv)
        t = np.where(np.isnan(t), 0.0, t)
        lfc = np.log2((np.expm1(X[sel][:, keep]).mean(axis=0) + 1e-9) / (mean_c[keep] + 1e-9))
        padj = multipletests(pv, method="fdr_bh")[1]
        out.append(pd.DataFrame({"perturbation": p, "gene": genes[keep], "log2fc": lfc, "t": t, "p": pv, "padj": padj,
                                 "is_target": (padj < alpha) & (np.abs(lfc) > lfc_threshold),
                                 "n_cells": int(sel.sum()), "n_control": int(ctrl.sum())}))
    return pd.concat(out, ignore_index=True)


def _assert_same(new, old):
    assert list(new.columns[: len(old.columns)]) == list(old.columns)
    for col in ("perturbation", "gene", "is_target", "n_cells", "n_control"):
        assert new[col].tolist() == old[col].tolist(), col
    for col in ("log2fc", "t", "p", "padj"):
        np.testing.assert_allclose(new[col].to_numpy(), old[col].to_numpy(), rtol=1e-9, atol=1e-300, err_msg=col)


@pytest.mark.parametrize("lfc_threshold, alpha", [(0.5, 0.05), (0.25, 0.1)])
def test_sparse_de_equals_the_dense_implementation_on_papalexi(papalexi, lfc_threshold, alpha):
    perts = ["STAT1", "IFNGR2", "JAK2", "CMTM6"]  # targets among the 299 genes (STAT1/IFNGR2/JAK2 have DE targets)
    assert sp.issparse(papalexi.X)
    new = de_targets(papalexi, "perturbation", "control", perturbations=perts, lfc_threshold=lfc_threshold, alpha=alpha,
                     min_detection=0)
    old = _dense_reference(papalexi, "perturbation", "control", perts, lfc_threshold, alpha)
    _assert_same(new, old)
    assert new["is_target"].sum() > 0 and (new["p"] < 1e-10).any()
    # the same numbers from a dense and from a CSC matrix
    for X in (papalexi.X.toarray(), sp.csc_matrix(papalexi.X)):
        other = papalexi.copy()
        other.X = X
        _assert_same(de_targets(other, "perturbation", "control", perturbations=perts[:2], min_detection=0,
                                lfc_threshold=lfc_threshold, alpha=alpha), new[new["perturbation"].isin(perts[:2])]
                     .reset_index(drop=True))


def test_sparse_de_constant_genes_and_thresholds():
    # gene a: 0 everywhere (t = 0, p = 1); gene b: 4x higher in P; gene c: no change; library from all genes
    rng = np.random.default_rng(0)
    n = 30
    counts = np.zeros((2 * n, 4))
    counts[:, 1] = np.r_[rng.poisson(5, n), rng.poisson(20, n)]
    counts[:, 2] = rng.poisson(10, 2 * n)
    counts[:, 3] = 200
    import anndata as ad

    adata = ad.AnnData(sp.csr_matrix(counts), obs=pd.DataFrame({"perturbation": ["control"] * n + ["P"] * n},
                                                              index=[f"c{i}" for i in range(2 * n)]))
    adata.var_names = ["a", "b", "c", "d"]
    de = de_targets(adata, min_cells=5).set_index("gene")
    assert de.loc["a", "t"] == 0 and de.loc["a", "p"] == 1 and not de.loc["a", "is_target"]
    assert de.loc["b", "is_target"] and de.loc["b", "log2fc"] > 1.5
    assert not de.loc["c", "is_target"]
    # an LFC threshold above the effect turns the target off
    assert not de_targets(adata, min_cells=5, lfc_threshold=5.0).set_index("gene").loc["b", "is_target"]


def test_detection_filter_drops_zero_variance_artefacts_and_keeps_silenced_genes():
    import anndata as ad

    # 400 control and 30 perturbed cells; gene "rare": 3% of control cells, none of the perturbed (absence is
    # likely by chance: 0.97^30 = 0.4); gene "silenced": 90% of control cells, none of the perturbed (real)
    rng = np.random.default_rng(0)
    n_c, n_p = 400, 30
    counts = np.zeros((n_c + n_p, 4))
    counts[:n_c, 0] = rng.random(n_c) < 0.03
    counts[:n_c, 1] = rng.poisson(5, n_c) * (rng.random(n_c) < 0.9)
    counts[:, 2] = rng.poisson(10, n_c + n_p)
    counts[:, 3] = 300
    adata = ad.AnnData(sp.csr_matrix(counts), obs=pd.DataFrame({"perturbation": ["control"] * n_c + ["P"] * n_p},
                                                              index=[f"c{i}" for i in range(n_c + n_p)]))
    adata.var_names = ["rare", "silenced", "c", "d"]
    raw = de_targets(adata, min_cells=5, min_detection=0).set_index("gene")
    assert raw.loc["rare", "is_target"] and raw.loc["rare", "log2fc"] < -20  # the Welch artefact
    de = de_targets(adata, min_cells=5).set_index("gene")  # default min_detection 0.1
    assert not de.loc["rare", "tested"] and not de.loc["rare", "is_target"] and de.loc["rare", "padj"] == 1
    assert de.loc["silenced", "tested"] and de.loc["silenced", "is_target"]
    assert de.loc["rare", "detection"] == 0 and 0 < de.loc["rare", "detection_control"] < 0.1
    # BH runs over the tested genes only
    tested = de[de["tested"]]
    from statsmodels.stats.multitest import multipletests

    np.testing.assert_allclose(tested["padj"], multipletests(tested["p"], method="fdr_bh")[1])
    # worker processes give the same table
    pd.testing.assert_frame_equal(de_targets(adata, min_cells=5, n_jobs=2).set_index("gene"), de)
    with pytest.raises(ValueError, match="min_detection"):
        de_targets(adata, min_cells=5, min_detection=1.5)
