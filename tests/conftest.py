"""Shared test fixtures: real data from the data directory (PERTURBLAB_DATA_DIR)."""

from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")


def pytest_configure(config):
    if not os.environ.get("PERTURBLAB_DATA_DIR"):
        raise pytest.UsageError(
            "PERTURBLAB_DATA_DIR is not set: point it at the folder with perturblab's data files "
            "(bash run.sh test does this for ../shared/data)"
        )


@pytest.fixture(scope="session")
def pbmc3k():
    import perturblab as plab

    return plab.datasets.pbmc3k()


@pytest.fixture(scope="session")
def kang():
    import perturblab as plab

    return plab.datasets.kang2018()


@pytest.fixture(scope="session")
def papalexi():
    import perturblab as plab

    return plab.datasets.papalexi2021()
