"""The bridge between the attack and predict wings: modified control cells, moved predictions."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.bridges import prediction_robustness
from perturblab.exceptions import InputError, UnknownNameError


@pytest.fixture(scope="module")
def split(kang):
    import perturblab as plab

    adata = plab.predict.prepare(kang[kang.obs["cell_type"].isin(["B", "CD14 Mono", "NK"])].copy(), n_top_genes=200)
    return plab.predict.loco_split(adata, "B")


def test_identity_prediction_moves_exactly_as_its_input(split):
    """The identity baseline predicts the control cells themselves: with k genes set to their 99th percentile over
    all control cells, its predicted means are the modified control means (a hand-computable R2)."""
    import perturblab as plab
    from perturblab.predict.metrics import r2_pearson

    model = plab.predict.make_model("identity", split.train)
    tab = prediction_robustness(model, split, modifications=["perc99"], n_genes=(1, 3), n_pcs=10)
    assert list(tab["modification"]) == ["none", "perc99", "perc99"]
    C, S = split.target_ctrl.X, split.target_stim.X
    T = split.train[split.train.obs["condition"] == "control"].X
    pool = np.vstack([T, C])
    order = np.argsort(-np.abs(S.mean(0) - C.mean(0)), kind="stable")
    expected = C.mean(0).copy()
    expected[order[:3]] = np.quantile(pool[:, order[:3]], 0.99, axis=0)
    row = tab[tab["n_genes"] == 3].iloc[0]
    assert row["r2_pearson_mean"] == pytest.approx(r2_pearson(expected, S.mean(0)), rel=1e-5)
    assert row["genes"].split(";") == list(split.target_ctrl.var_names[order[:3]])
    assert tab.loc[0, "r2_change"] == 0 and np.isnan(tab.loc[0, "r2_change_per_gene"])
    assert row["r2_change_per_gene"] == pytest.approx(row["r2_change"] / 3)


def test_bad_input(split):
    import perturblab as plab

    model = plab.predict.make_model("mean_delta", split.train)
    with pytest.raises(UnknownNameError, match="unknown gene 'NOTAGENE'"):
        prediction_robustness(model, split, genes=["NOTAGENE"])
    with pytest.raises(InputError, match="n_genes 5 exceeds"):
        prediction_robustness(model, split, genes=list(split.target_ctrl.var_names[:2]), n_genes=(5,))
