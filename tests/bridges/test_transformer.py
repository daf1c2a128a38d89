"""The transformer annotator (perturblab.bridges): fit, attacks, the audit, a checkpoint, and the import graph."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import perturblab as plab
from perturblab.bridges import TransformerAnnotator

TINY = {"n_genes": 60, "epochs": 8, "pretrain_epochs": 1, "batch_size": 128}


@pytest.fixture(scope="module")
def halves():
    return plab.audit.stratified_split(plab.datasets.pbmc3k(), "cell_type", random_state=0)


@pytest.fixture(scope="module")
def annotator(halves):
    train, _ = halves
    return TransformerAnnotator(**TINY).fit(train, "cell_type")


def test_registered_differentiable_and_seeded(annotator, halves):
    import torch

    train, test = halves
    assert plab.classifiers.CLASSIFIERS["transformer"] is TransformerAnnotator
    assert len(annotator.genes_) == 60 and plab.classifiers.is_differentiable(annotator)
    X = annotator.preprocess(test)
    with torch.no_grad():
        L = annotator.torch_module()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(L, annotator.class_scores(X), rtol=1e-5, atol=1e-5)
    acc = plab.classifiers.evaluate_classifier(annotator, test, "cell_type")["accuracy"].iloc[0]
    assert acc > 0.5  # 60 genes, 8 epochs: well above the 0.27 of always answering the largest type
    again = TransformerAnnotator(**TINY).fit(train, "cell_type")
    np.testing.assert_array_equal(again.class_scores(X[:50]), annotator.class_scores(X[:50]))


def test_fast_single_gene_path_equals_the_generic_path(annotator, halves):
    _, test = halves
    X = annotator.preprocess(test)
    y = test.obs["cell_type"].astype(str).to_numpy()
    for mod in ("perc1", "perc99"):
        fast = plab.attack.single_gene_attack(annotator, X, y, "B", mod)
        slow = plab.attack.single_gene_attack(annotator, X, y, "B", mod, use_fast_path=False)
        assert fast.table.equals(slow.table)
    rows = y == "B"
    scores = annotator.single_gene_scorer(X[rows], np.arange(5), X[rows][:, :5] + 1.0)
    assert scores is not None and scores(0, 5).shape == (5, rows.sum(), len(annotator.classes_))


def test_through_run_audit_single_gene_cgd_and_pgd(halves, tmp_path):
    from perturblab.classifiers import register_classifier

    register_classifier("tiny_transformer", lambda **kw: TransformerAnnotator(**TINY, **kw), overwrite=True)
    res = plab.audit.run_audit(out=tmp_path / "a", classifiers=["tiny_transformer"], clusters=("NK",),
                               modifications=("perc99",), attacks=("single_gene", "cgd", "pgd"),
                               whitebox_ks=(1, 5), n_bootstrap=0, cgd_n_genes=20,
                               evaluations=("robustness",), gene_counts=(0, 5), cgd_strengths=(0.0, 1.0))
    att = res.attacks.set_index("attack")
    assert set(att.index) == {"single_gene", "cgd", "pgd"}
    # CGD walks through the signature genes the annotator reads (60 variable genes of 13,656), not an error
    assert 0 < res.cgd_path["gene"].nunique() <= 20
    # robustness curves use the markers and signature genes the annotator reads (most markers are not among them)
    rob = res.robustness
    assert set(rob["axis"]) == {"genes", "cgd"} and set(rob["strength"]) == {0, 1, 5}
    assert att.loc["single_gene", "mode"] == "exhaustive" and att.loc["single_gene", "n_genes_evaluated"] == 60
    assert set(res.budget["k"]) == {1, 5}


def test_a_saved_own_checkpoint_is_fine_tuned(halves, tmp_path):
    from perturblab.interpret import OwnGeneTransformer, train_masked_expression

    train, test = halves
    genes = list(TransformerAnnotator(n_genes=40)._panel(train))
    own = OwnGeneTransformer(genes, d_model=16, n_heads=2, n_layers=1, d_ff=32, include_zero_genes=True)
    train_masked_expression(own, train, genes=genes, epochs=1, progress=False, save_path=tmp_path / "own.pt")
    clf = TransformerAnnotator(checkpoint=tmp_path / "own.pt", n_genes=40, epochs=3).fit(train, "cell_type")
    assert list(clf.genes_) == genes and plab.classifiers.is_differentiable(clf)
    assert clf.predict(clf.preprocess(test)).shape == (test.n_obs,)


def test_no_arrow_between_wings():
    """classifiers/, attack/ and audit/ never import the interpret wing or the bridges (nor anything above)."""
    root = Path(plab.__file__).parent
    for wing in ("classifiers", "attack", "audit"):
        for path in (root / wing).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom):
                    name = ("." * node.level) + (node.module or "")
                    names = [name] + [f"{name}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                for n in names:
                    assert "interpret" not in n and "bridges" not in n, f"{path.relative_to(root)} imports {n}"


def test_a_frozen_scgpt_checkpoint_gets_a_linear_head(halves, tmp_path):
    from tests.interpret.tiny_models import scgpt_dir

    train, test = halves
    genes = list(TransformerAnnotator(n_genes=200)._panel(train))
    scgpt_dir(tmp_path, genes, n_layers=1, n_heads=2, d=16)
    sub_train, sub_test = train[:120, genes].copy(), test[:30, genes].copy()
    clf = TransformerAnnotator(checkpoint=tmp_path, checkpoint_kind="scgpt").fit(sub_train, "cell_type")
    assert clf.representation == "counts" and not plab.classifiers.is_differentiable(clf)
    X = clf.preprocess(sub_test)
    assert X.shape == (30, 200) and clf.predict(X).shape == (30,)
    res = plab.attack.single_gene_attack(clf, X, sub_test.obs["cell_type"], "B", "perc99", genes=genes[:8])
    assert res.n_genes_evaluated == 8 and res.n_classifier_calls == 9
