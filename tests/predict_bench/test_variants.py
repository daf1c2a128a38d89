"""Dataset variants: synthetic cases with hand-computed counts."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturblab.predict.benchmark.variants import VARIANTS, make_variant, variant_keep_fractions


def _toy():
    # type A: 10 stimulated + 4 control; type B: 5 stimulated + 3 control
    ct = ["A"] * 14 + ["B"] * 8
    cond = ["stimulated"] * 10 + ["control"] * 4 + ["stimulated"] * 5 + ["control"] * 3
    obs = pd.DataFrame({"cell_type": ct, "condition": cond}, index=[f"c{i}" for i in range(22)])
    return ad.AnnData(np.arange(22 * 3, dtype=np.float32).reshape(22, 3), obs=obs)


def _n_stim(a, t):
    return int(((a.obs["cell_type"] == t) & (a.obs["condition"] == "stimulated")).sum())


def test_balanced_keeps_every_cell():
    a = _toy()
    out = make_variant(a, "balanced")
    assert list(out.obs_names) == list(a.obs_names)
    np.testing.assert_array_equal(out.X, a.X)


def test_unbalanced_keeps_twenty_percent_of_stimulated_and_all_controls():
    a = _toy()
    out = make_variant(a, "unbalanced", random_state=3)
    assert _n_stim(out, "A") == 2 and _n_stim(out, "B") == 1  # round(0.2*10), max(1, round(0.2*5))
    assert (out.obs["condition"] == "control").sum() == 7
    assert set(out.obs_names) <= set(a.obs_names)
    kept = out.obs_names[out.obs["condition"] == "stimulated"]
    np.testing.assert_array_equal(out[kept].X, a[kept].X)  # values untouched
    assert out.uns["perturblab_variant"]["n_stimulated_after"] == {"A": 2, "B": 1}
    assert list(a.obs_names) == [f"c{i}" for i in range(22)]  # input not modified


def test_variants_are_seeded():
    a = _toy()
    same = [list(make_variant(a, "unbalanced", fraction=0.5, random_state=1).obs_names) for _ in range(2)]
    assert same[0] == same[1]
    draws = {tuple(make_variant(a, "unbalanced", fraction=0.5, random_state=s).obs_names) for s in range(6)}
    assert len(draws) > 1


def test_proportion_shift_draws_a_share_per_cell_type():
    shares = variant_keep_fractions(["A", "B", "C", "A"], "proportion_shift", min_fraction=0.3, random_state=0)
    assert sorted(shares) == ["A", "B", "C"]
    assert all(0.3 <= f <= 1 for f in shares.values()) and len(set(shares.values())) == 3
    a = _toy()
    out = make_variant(a, "proportion_shift", min_fraction=0.3, random_state=0)
    sh = out.uns["perturblab_variant"]["shares"]
    assert _n_stim(out, "A") == max(1, round(sh["A"] * 10)) and _n_stim(out, "B") == max(1, round(sh["B"] * 5))


def test_bad_input_is_named():
    a = _toy()
    with pytest.raises(ValueError, match="unknown dataset variant"):
        make_variant(a, "shuffled")
    with pytest.raises(ValueError, match="fraction must be in"):
        make_variant(a, "unbalanced", fraction=0)
    with pytest.raises(KeyError):
        make_variant(a, "balanced", cell_type_key="celltype")
    assert VARIANTS[0] == "balanced"
