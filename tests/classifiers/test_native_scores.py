"""Native class scores (class_scores / score_kind) and the torch views of the classifiers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from perturblab.classifiers import (
    CellTypistClassifier,
    ChetahClassifier,
    MLPClassifier,
    RandomForestClassifier,
    ScTypeClassifier,
    SVMClassifier,
)
from perturblab.classifiers.base import is_abstention, is_differentiable

MAKE = {
    "sctype": lambda: ScTypeClassifier(),
    "mlp": lambda: MLPClassifier(epochs=3, random_state=0, device="cpu"),
    "svm": lambda: SVMClassifier(random_state=0),
    "celltypist": lambda: CellTypistClassifier(max_iter=10, random_state=0),
    "random_forest": lambda: RandomForestClassifier(n_estimators=30, random_state=0),
    "chetah": lambda: ChetahClassifier(n_genes=50),
}
KIND = {"sctype": "raw_score", "mlp": "logit", "svm": "log_proba", "celltypist": "decision_function",
        "random_forest": "proba", "chetah": "confidence"}
DIFFERENTIABLE = ("sctype", "mlp", "svm", "celltypist")


@pytest.fixture(scope="module")
def fitted(pbmc_small):
    import torch

    train, test = pbmc_small
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = {k: make().fit(train, "cell_type") for k, make in MAKE.items()}
    torch.set_num_threads(n)
    return out, test[:300].copy()


@pytest.mark.parametrize("name", list(MAKE))
def test_class_scores_are_the_argmax_of_the_label(fitted, name):
    clfs, test = fitted
    clf = clfs[name]
    X = clf.preprocess(test)
    S = clf.class_scores(X)
    assert clf.score_kind == KIND[name] and S.shape == (len(X), len(clf.classes_)) and S.dtype == np.float64
    assert np.isfinite(S).all()
    pred = np.asarray(clf.predict(X)).astype(str)
    keep = ~is_abstention(clf, pred)  # SVM's "Unknown", CHETAH's nodes: the argmax is the label before abstaining
    if name != "chetah":  # CHETAH descends a tree; its path confidence only ranks the leaves
        np.testing.assert_array_equal(np.asarray(clf.classes_).astype(str)[S.argmax(axis=1)][keep], pred[keep])
    # class scores are monotone in predict_proba per cell (same order of the classes)
    P = clf.predict_proba(X)
    i = int(np.argmax(keep))
    assert np.array_equal(np.argsort(S[i], kind="stable")[-1], np.argsort(P[i], kind="stable")[-1])


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_torch_module_equals_class_scores(fitted, name):
    import torch

    clfs, test = fitted
    clf = clfs[name]
    assert is_differentiable(clf)
    X = clf.preprocess(test)
    module = clf.torch_module()
    with torch.no_grad():
        T = module(torch.from_numpy(X)).double().numpy()
    S = clf.class_scores(X)
    if name == "svm":  # log-probabilities: compare where they are not floored
        ok = S > -30
        np.testing.assert_allclose(T[ok], S[ok], rtol=1e-3, atol=1e-3)
    else:
        np.testing.assert_allclose(T, S, rtol=1e-4, atol=1e-3 * np.abs(S).max())
    x = torch.from_numpy(X[:5]).requires_grad_(True)
    module(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_not_differentiable(fitted):
    clfs, _ = fitted
    assert not is_differentiable(clfs["random_forest"]) and not is_differentiable(clfs["chetah"])


@pytest.mark.parametrize("name", ["sctype", "mlp"])
def test_torch_preprocess_equals_preprocess(fitted, pbmc_split, name):
    import torch

    from perturblab.classifiers import torch_preprocess

    clfs, _ = fitted
    clf = clfs[name]
    full = pbmc_split[1][:50]  # raw counts over all genes: the library size sums over all of them
    pre = torch_preprocess(clf, full.var_names)
    C = torch.from_numpy(np.asarray(full.X.toarray(), dtype=np.float32))
    np.testing.assert_allclose(pre(C).numpy(), clf.preprocess(full), rtol=1e-5, atol=1e-5)
    lib = C.sum(dim=1)
    np.testing.assert_allclose(pre(C, library_size=lib).numpy(), clf.preprocess(full), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="not among the count matrix"):
        torch_preprocess(clf, full.var_names[:10])
