"""Results back in AnnData (scanpy's conventions): groupby= and key_added= on the attacks, to_adata on results."""

from __future__ import annotations

import numpy as np
import pytest

import perturblab as plab


@pytest.fixture(scope="module")
def sctype_and_test(pbmc_hvg):
    import warnings

    train, test = pbmc_hvg
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = plab.classifiers.ScTypeClassifier().fit(train)
    return clf, test.copy()


def test_single_gene_and_max_change_write_back(sctype_and_test):
    clf, test = sctype_and_test
    b = test.obs["cell_type"] == "B"
    res = plab.attack.single_gene_attack(clf, test, groupby="cell_type", target="B", modification="perc99",
                                         key_added="sg")
    assert test.uns["sg"]["table"]["gene"].tolist() == res.genes
    assert (test.obs.loc[b, "sg_n_flipping_genes"] == len(res.genes)).all()
    assert test.obs.loc[~b, "sg_n_flipping_genes"].isna().all()
    # a second cluster under the same key: rows added, the first kept
    nk = plab.attack.single_gene_attack(clf, test, groupby="cell_type", target="NK", modification="perc99",
                                        key_added="sg")
    assert set(test.uns["sg"]["summary"]["target"]) == {"B", "NK"}
    assert len(test.uns["sg"]["table"]) == len(res.table) + len(nk.table)
    assert (test.obs.loc[b, "sg_n_flipping_genes"] == len(res.genes)).all()
    mc = plab.attack.max_change_attack(clf, test, groupby="cell_type", target="B", modification="perc1",
                                       key_added="mc")
    assert (test.obs.loc[b, "mc_n_genes"] == len(mc.genes)).all() and len(test.uns["mc"]["table"]) == len(mc.genes)


def test_cgd_and_pgd_write_per_cell_answers(sctype_and_test, tmp_path):
    clf, test = sctype_and_test
    b = (test.obs["cell_type"] == "B").to_numpy()
    genes = list(clf.genes_[:30])
    cgd = plab.attack.cgd_attack(clf, test, groupby="cell_type", target="B", genes=genes, alpha=1, epsilon=1,
                                 key_added="cgd")
    np.testing.assert_array_equal(test.obs.loc[b, "cgd_label_after"].to_numpy(), cgd.labels_after.astype(str))
    wb = plab.attack.whitebox_attack(clf, test, groupby="cell_type", target="B", k=5, steps=5, key_added="pgd")
    assert test.obs.loc[b, "pgd_success"].to_numpy().tolist() == wb.cell_success.astype(float).tolist()
    assert test.uns["pgd"]["summary"]["k"].tolist() == [5]
    test.write_h5ad(tmp_path / "back.h5ad")  # every key is writable
    with pytest.raises(plab.exceptions.InputError, match="groupby"):
        plab.attack.single_gene_attack(clf, test, target="B")
