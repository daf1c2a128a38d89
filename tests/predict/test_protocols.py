"""The protocol choices (cell types kept, library size, mean-delta control mean) as settings, and the named
protocols."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from perturblab.exceptions import InputError, UnknownNameError
from perturblab.predict import PROTOCOLS, Preprocessing, make_model, prepare
from perturblab.predict.protocols import get_protocol, protocol_of


def _counts(sizes: dict, genes: int = 30, seed: int = 0) -> ad.AnnData:
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame([(t, c) for (t, c), n in sizes.items() for _ in range(n)], columns=["cell_type", "condition"])
    obs.index = [f"c{i}" for i in range(len(obs))]
    X = sp.csr_matrix(rng.negative_binomial(2, 0.05, size=(len(obs), genes)).astype(np.float32))
    a = ad.AnnData(X, obs=obs)
    a.var_names = [f"g{i}" for i in range(genes)]
    return a


def test_small_cell_types_dropped_only_when_asked():
    raw = _counts({("A", "control"): 40, ("A", "stimulated"): 35, ("B", "control"): 31, ("B", "stimulated"): 12})
    kept = prepare(raw, n_top_genes=None)
    assert kept.n_obs == raw.n_obs and kept.uns["perturblab_predict"]["dropped_cell_types"] == {}
    scgen = prepare(raw, n_top_genes=None, min_cells_per_type=30)
    assert set(scgen.obs["cell_type"]) == {"A"}
    assert scgen.uns["perturblab_predict"]["dropped_cell_types"] == {"B": {"control": 31, "stimulated": 12}}
    with pytest.raises(InputError, match="no cell type has >= 50 cells"):
        prepare(raw, n_top_genes=None, min_cells_per_type=50)


def test_library_size_setting():
    raw = _counts({("A", "control"): 10, ("A", "stimulated"): 10})
    totals = np.asarray(raw.X.sum(1)).ravel()
    median = prepare(raw, n_top_genes=None)
    fixed = prepare(raw, n_top_genes=None, target_sum=1e4)
    assert median.uns["perturblab_predict"]["target_sum_used"] == pytest.approx(np.median(totals))
    # log1p(x / total * target): the first cell's first gene by hand
    x0 = raw.X[0, 0] / totals[0]
    assert fixed.X[0, 0] == pytest.approx(np.log1p(x0 * 1e4), rel=1e-5)
    assert median.X[0, 0] == pytest.approx(np.log1p(x0 * np.median(totals)), rel=1e-5)


def test_mean_delta_control_mean_choice():
    # training: type A in both conditions, the held-out type T with its control cells only
    obs = pd.DataFrame({"cell_type": ["A", "A", "A", "A", "T", "T"],
                        "condition": ["control", "control", "stimulated", "stimulated", "control", "control"]})
    X = np.array([[1, 0], [1, 0], [3, 1], [3, 1], [5, 5], [5, 5]], dtype=np.float32)
    train = ad.AnnData(X, obs=obs.set_axis([f"c{i}" for i in range(6)]))
    train.var_names = ["g0", "g1"]
    # all controls: stim mean (3, 1) - mean of the 4 control cells of A and T (3, 2.5)
    np.testing.assert_allclose(make_model("mean_delta", train).delta_, [0, -1.5], atol=1e-6)
    # scGen protocol: only the controls of types with stimulated cells (A): (3, 1) - (1, 0)
    np.testing.assert_allclose(make_model("mean_delta", train, control_cells="with_stimulated").delta_, [2, 1])
    with pytest.raises(UnknownNameError, match="control_cells"):
        make_model("mean_delta", train, control_cells="some")


def test_named_protocols():
    assert set(PROTOCOLS) == {"perturblab", "scgen"}
    s = get_protocol("scgen")
    assert s.preprocessing.min_cells_per_type == 30 and s.preprocessing.target_sum == 1e4
    assert s.with_genes(500).n_top_genes == 500
    assert protocol_of(Preprocessing()) == "perturblab"
    assert protocol_of(s.preprocessing, s.model_params) == "scgen"
    assert protocol_of(Preprocessing(target_sum=1e4)) == "custom" and protocol_of(None) == "custom"
    with pytest.raises(UnknownNameError, match="did you mean 'scgen'"):
        get_protocol("scgem")
