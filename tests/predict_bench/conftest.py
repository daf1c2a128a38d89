"""Fixtures of the benchmark/tuning tests: a small real Kang 2018 subset, and the PostgreSQL rule.

Tests marked ``postgres`` need ``PERTURBLAB_TEST_PG_URL`` (``source .ci/postgres.sh``). On CI
(``CI=true``) they always run and FAIL without it; elsewhere, without the URL, they are
deselected (reported in the summary), never skipped.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

TYPES = ("CD14 Mono", "CD4 Naive T", "CD4 Memory T", "B")
PER_GROUP = 60  # cells per cell type x condition (seeded draw)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PERTURBLAB_TEST_PG_URL") or os.environ.get("CI", "").lower() == "true":
        return
    deselected = [i for i in items if i.get_closest_marker("postgres") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [i for i in items if i.get_closest_marker("postgres") is None]


def _subset(kang):
    rng = np.random.default_rng(0)
    ct, cond = kang.obs["cell_type"].astype(str).to_numpy(), kang.obs["condition"].astype(str).to_numpy()
    keep = []
    for t in TYPES:
        for c in ("control", "stimulated"):
            idx = np.flatnonzero((ct == t) & (cond == c))
            keep.append(rng.choice(idx, size=min(PER_GROUP, len(idx)), replace=False))
    return kang[np.sort(np.concatenate(keep))].copy()


@pytest.fixture(scope="session")
def kang_small_counts(kang):
    """Raw counts of 60 cells per condition of four Kang cell types (480 cells, all genes)."""
    return _subset(kang)


@pytest.fixture(scope="session")
def kang_small(kang_small_counts):
    """``kang_small_counts`` log-normalised with 100 HVGs (``perturblab.predict.prepare``)."""
    from perturblab.predict import prepare

    return prepare(kang_small_counts, n_top_genes=100)


#: Tiny networks and one epoch: the tests check behaviour, not accuracy.
TINY_MODEL = {"scgen": {"n_hidden": 16, "n_latent": 4, "n_layers": 1},
              "scgen_unbalanced": {"n_hidden": 16, "n_latent": 4, "n_layers": 1},
              "scpram": {"n_hidden": 16, "n_latent": 4}, "pca_mean_delta": {"n_components": 10}}
TINY_TRAIN = {m: {"max_epochs": 1} for m in ("scgen", "scgen_unbalanced", "scpram")}


@pytest.fixture
def tiny_settings():
    from perturblab.predict.benchmark import BenchmarkSettings

    return BenchmarkSettings(preprocessing=None, model_params=TINY_MODEL, train_params=TINY_TRAIN,
                             evaluate_params={"n_bootstrap": 2})
