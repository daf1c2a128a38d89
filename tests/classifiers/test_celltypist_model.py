"""Pretrained CellTypist models: a model trained on PBMC3k, written by celltypist's own writer, loaded back."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.classifiers import CellTypistClassifier
from perturblab.exceptions import InputError


@pytest.fixture(scope="module")
def model_file(pbmc_small, tmp_path_factory):
    train, _ = pbmc_small
    clf = CellTypistClassifier(max_iter=20, random_state=0).fit(train, "cell_type")
    path = tmp_path_factory.mktemp("ct") / "pbmc3k_model.pkl"
    clf.model_.write(str(path))  # celltypist's own writer (a pickle)
    return clf, path


def test_loaded_model_predicts_as_trained_and_as_celltypist(model_file, pbmc_small):
    import anndata as ad
    import celltypist

    from perturblab.classifiers._preprocess import log1p_matrix

    trained, path = model_file
    _, test = pbmc_small
    clf = CellTypistClassifier.from_model(path)
    assert list(clf.classes_) == list(trained.classes_)
    X = clf.preprocess(test)
    np.testing.assert_array_equal(clf.predict(X), trained.predict(trained.preprocess(test)))
    # celltypist.annotate on the same log1p data with the same file: the same labels
    log = ad.AnnData(log1p_matrix(test), obs=test.obs[["cell_type"]].copy(), var=test.var[[]].copy())
    ref = celltypist.annotate(log, model=str(path))
    np.testing.assert_array_equal(clf.predict(X).astype(str), ref.predicted_labels["predicted_labels"].astype(str))
    # majority voting over a given over-clustering: celltypist's own rule
    over = (np.arange(test.n_obs) // 40).astype(str)
    mv = CellTypistClassifier.from_model(str(path), majority_voting=True, over_clustering=over)
    voted = mv.predict(mv.preprocess(test))
    ref_mv = celltypist.annotate(log, model=str(path), majority_voting=True, over_clustering=over)
    np.testing.assert_array_equal(voted.astype(str), ref_mv.predicted_labels["majority_voting"].astype(str))
    assert mv.per_cell is False and clf.per_cell is True


def test_majority_voting_classifier_is_attacked_at_cluster_level(model_file, pbmc_small):
    import perturblab as plab

    _, path = model_file
    _, test = pbmc_small
    mv = CellTypistClassifier.from_model(path, majority_voting=True, over_clustering="cell_type")
    X = mv.preprocess(test)
    y = test.obs["cell_type"].astype(str).to_numpy()
    res = plab.attack.single_gene_attack(mv, X, y, "B", "perc99", mode="dichotomic", first_dichot=4)
    assert res.baseline_label == "B" and res.n_classifier_calls >= 9


def test_missing_genes_and_bad_files(model_file, pbmc_small, tmp_path):
    _, path = model_file
    _, test = pbmc_small
    clf = CellTypistClassifier.from_model(path)
    sub = test[:, test.var_names[50:]].copy()
    with pytest.warns(UserWarning, match="50 of the CellTypist model's 1000 genes are not in the data"):
        X = clf.preprocess(sub)
    np.testing.assert_allclose(X[:, :50], np.broadcast_to(clf.model_.scaler.mean_[:50], (sub.n_obs, 50)), rtol=1e-6)
    with pytest.raises(InputError, match="explicitly"):
        CellTypistClassifier.from_model("")
    with pytest.raises(InputError, match="not found"):
        CellTypistClassifier.from_model(tmp_path / "none.pkl")
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="not a CellTypist model"):
        CellTypistClassifier.from_model(bad)


def test_celltypists_own_over_clustering(model_file, pbmc_small):
    _, path = model_file
    _, test = pbmc_small
    mv = CellTypistClassifier.from_model(path, majority_voting=True, resolution=2.0)
    voted = mv.predict(mv.preprocess(test))
    n_over = len(set(mv.over_clustering_))
    assert len(mv.over_clustering_) == test.n_obs and n_over > 5
    # one label per over-cluster
    assert all(len(set(voted[mv.over_clustering_ == c])) == 1 for c in set(mv.over_clustering_))


@pytest.mark.parametrize("modification", ["perc99", "perc1"])
def test_single_gene_fast_path_scores_equal_the_decision_function(model_file, pbmc_small, modification):
    """The rank-1 update of the clipped standardised features gives the decision scores of the modified cells,
    and the fast single-gene attack the generic path's answers."""
    from perturblab.attack._engine import AttackTarget
    from perturblab.attack._fastpath import single_gene_fast
    from perturblab.attack.modifications import get_modification

    clf, _ = model_file
    _, test = pbmc_small
    X = clf.preprocess(test)
    clusters = test.obs["cell_type"].astype(str).to_numpy()
    tgt = AttackTarget(clf, X, clusters, "NK")
    genes = np.arange(0, X.shape[1], 7)
    V = get_modification(modification).values(tgt.X, tgt.mask, genes)
    S = clf.single_gene_scorer(tgt.Xc, genes, V)(0, len(genes))
    for j in (0, 3, len(genes) - 1):
        Xm = tgt.Xc.copy()
        Xm[:, genes[j]] = V[:, j]
        np.testing.assert_allclose(S[j], clf.decision_function(Xm), rtol=1e-10, atol=1e-10)
    fast = single_gene_fast(tgt, genes, V)
    assert fast is not None
    assert fast == AttackTarget(clf, X, clusters, "NK").classify_single_genes(genes, V, fast=False)
    voting = CellTypistClassifier.from_model(model_file[1], majority_voting=True, over_clustering=clusters)
    assert voting.single_gene_scorer(tgt.Xc, genes, V) is None  # answers are not the per-cell argmax
