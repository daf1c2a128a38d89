"""Interpret tests run torch on one thread (on the shared 2-core machine two threads were ~6x slower) and share
one simulated screen from the planted GRN."""

from __future__ import annotations

import pytest
import torch

from perturblab.interpret.edges import log_normalise
from perturblab.interpret.simulate import simulate_grn


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def sim():
    """The simulated screen of the planted-GRN simulator (seed 0); tests read it and never modify it."""
    return simulate_grn(random_state=0)


@pytest.fixture(scope="session")
def sim_control(sim):
    """Control cells of ``sim``: (log-normalised cells x genes, gene names, cell states)."""
    a = sim.adata[sim.adata.obs["perturbation"] == "control"]
    return log_normalise(a.X), a.var_names.to_numpy(), a.obs["state"].astype(str).to_numpy()
