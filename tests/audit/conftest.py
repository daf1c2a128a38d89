"""Fixtures of the audit tests: small real audits on PBMC3k (2 fast classifiers, 2 clusters)."""

from __future__ import annotations

import pytest

#: A small audit covering every attack and evaluation that stays fast on 2 CPU cores.
SMALL = dict(classifiers=("sctype", "svm"), clusters=("NK", "B"), attacks=("single_gene", "cgd"),
             evaluations=("robustness", "detectability", "transferability", "defence"), gene_counts=(0, 1, 5),
             cgd_strengths=(0.0, 1.0), cgd_n_genes=20)


@pytest.fixture(scope="session")
def small_settings():
    return dict(SMALL)


@pytest.fixture(scope="session")
def small_audit(tmp_path_factory):
    import perturblab as plab

    out = tmp_path_factory.mktemp("audit") / "out"
    return plab.audit.run_audit(out=out, **SMALL)


@pytest.fixture(scope="session")
def pbmc_halves():
    import perturblab as plab

    return plab.audit.stratified_split(plab.datasets.pbmc3k(), "cell_type", random_state=0)
