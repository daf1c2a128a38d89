"""Your own classifier: wrap() of scikit-learn estimators, pipelines, torch modules and functions; the registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import perturblab as plab
from perturblab.exceptions import InputError, NotFittedError


@pytest.fixture(scope="module")
def fitted_lr(pbmc_small):
    """A LogisticRegression on the log1p 1,000-HVG PBMC3k train half, and its test input."""
    from sklearn.linear_model import LogisticRegression

    from perturblab.classifiers._preprocess import log1p_matrix

    train, test = pbmc_small
    Xtr = log1p_matrix(train)
    lr = LogisticRegression(max_iter=300).fit(Xtr, train.obs["cell_type"].astype(str))
    return lr, train, test


def test_wrapped_estimator_matches_the_estimator(fitted_lr):
    lr, train, test = fitted_lr
    clf = plab.classifiers.wrap(lr, genes=train.var_names)
    X = clf.preprocess(test)
    assert X.shape == (test.n_obs, train.n_vars)
    np.testing.assert_array_equal(clf.predict(X), lr.predict(X))
    np.testing.assert_allclose(clf.class_scores(X), lr.decision_function(X))
    assert clf.per_cell and clf.score_kind == "decision_function"
    acc = plab.classifiers.evaluate_classifier(clf, test, "cell_type")
    assert acc["accuracy"].iloc[0] > 0.8


def test_plain_estimator_in_an_attack_is_wrapped_or_told_how(fitted_lr):
    from sklearn.linear_model import LogisticRegression

    lr, train, test = fitted_lr
    clf = plab.classifiers.wrap(lr, genes=train.var_names)
    X = clf.preprocess(test)
    y = test.obs["cell_type"].astype(str).to_numpy()
    wrapped = plab.attack.single_gene_attack(clf, X, y, "NK", "perc99", mode="exhaustive")
    # fitted on a DataFrame: the estimator knows its genes and is wrapped on the fly
    df = pd.DataFrame(clf.preprocess(train), columns=train.var_names)
    lr_df = LogisticRegression(max_iter=300).fit(df, train.obs["cell_type"].astype(str))
    plain = plab.attack.single_gene_attack(lr_df, pd.DataFrame(X, columns=train.var_names), y, "NK", "perc99")
    assert plain.n_genes == wrapped.n_genes == train.n_vars
    assert plain.baseline_label == "NK"
    # fitted on an array with no gene names passed: one error that says how to wrap
    with pytest.raises(InputError, match=r"wrap"):
        plab.attack.single_gene_attack(object(), X, y, "NK")
    with pytest.raises(NotFittedError):
        plab.classifiers.wrap(LogisticRegression(), genes=train.var_names)
    with pytest.raises(InputError, match="reads 1000 features"):
        plab.classifiers.wrap(lr, genes=train.var_names[:10])


def test_pipeline_is_differentiable_and_pgd_runs(fitted_lr):
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _, train, test = fitted_lr
    from perturblab.classifiers._preprocess import log1p_matrix

    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(
        log1p_matrix(train), train.obs["cell_type"].astype(str))
    clf = plab.classifiers.wrap(pipe, genes=train.var_names)
    assert plab.classifiers.is_differentiable(clf)
    X = clf.preprocess(test)
    with torch.no_grad():
        S = clf.torch_module()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(S, pipe.decision_function(X), rtol=1e-4, atol=1e-3)
    y = test.obs["cell_type"].astype(str).to_numpy()
    res = plab.attack.whitebox_attack(clf, X, y, "B", method="pgd", k=5, steps=5)
    assert res.summary["k"] == 5 and len(res.genes) <= 5


def test_torch_module_and_callable():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    clf = plab.classifiers.wrap(net, genes=["a", "b", "c"], classes=["T", "B"])
    with torch.no_grad():
        logits = net(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(clf.predict(X), np.array(["T", "B"], dtype=object)[logits.argmax(1)])
    assert plab.classifiers.is_differentiable(clf) and clf.torch_module() is net
    with pytest.raises(InputError, match="classes="):
        plab.classifiers.wrap(net, genes=["a", "b", "c"])
    with pytest.raises(InputError, match=r"torch\.nn\.Module"):
        plab.attack.single_gene_attack(net, X, ["x"] * 8, "x", gene_names=["a", "b", "c"])
    # a rule on gene "a": cells above 0 are T
    rule = plab.classifiers.wrap(lambda M: np.where(M[:, 0] > 0, "T", "B"), genes=["a", "b", "c"], classes=["B", "T"])
    assert rule.predict(np.array([[1, 0, 0], [-1, 0, 0]], np.float32)).tolist() == ["T", "B"]
    clusters = np.array(["x"] * 4 + ["y"] * 4)
    Xr = np.zeros((8, 3), np.float32)
    Xr[:, 0] = [-1, -1, -1, -1, 2, 2, 2, 2]
    res = plab.attack.single_gene_attack(rule, Xr, clusters, "x", "perc99")
    assert res.genes == ["a"] and res.table["new_label"].tolist() == ["T"]


def test_register_classifier():
    from perturblab.classifiers import RandomForestClassifier, get_classifier, register_classifier

    register_classifier("tiny_forest", lambda **kw: RandomForestClassifier(n_estimators=3, **kw), overwrite=True)
    assert get_classifier("tiny_forest").n_estimators == 3
    clf = plab.classifiers.make_classifier("tiny_forest", random_state=4)
    assert clf.random_state == 4
    with pytest.raises(InputError, match="built-in"):
        register_classifier("svm", RandomForestClassifier)
    with pytest.raises(InputError, match="already"):
        register_classifier("tiny_forest", RandomForestClassifier)
    with pytest.raises(plab.exceptions.UnknownNameError, match="register_classifier"):
        get_classifier("tiny_forrest")


def test_representation_warnings_name_the_evidence(pbmc_small):
    import warnings

    from perturblab.classifiers import SVMClassifier
    from perturblab.exceptions import PerturblabWarning

    train, test = pbmc_small
    clf = plab.classifiers.ScTypeClassifier()
    log = train.copy()
    log.X = np.log1p(log.X.toarray() if hasattr(log.X, "toarray") else log.X)
    with pytest.warns(PerturblabWarning, match=r"does not look like raw counts \(\d+ of \d+ values checked are "
                                               r"non-integer"):
        SVMClassifier().fit(log, "cell_type")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(train, "cell_type")
    counts = test.X.toarray().astype(np.float32)[:, test.var_names.get_indexer(clf.genes_)]
    with pytest.warns(PerturblabWarning, match=r"X \(the model input attacked\) looks like raw counts"):
        plab.attack.single_gene_attack(clf, counts, test.obs["cell_type"], "NK", mode="dichotomic")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerturblabWarning)  # the model input itself: no warning
        plab.attack.single_gene_attack(clf, clf.preprocess(test), test.obs["cell_type"], "NK", mode="dichotomic")
