"""Modification values against hand-computed answers (adverSCarial's advModifications)."""

from __future__ import annotations

import numpy as np
import pytest

from perturblab.attack import apply_modification, get_modification

# 6 cells x 3 genes; target cluster "T" = cells 0 and 5.
X = np.array(
    [[0, 5, 1], [1, 5, 2], [2, 5, 3], [3, 5, 4], [4, 5, 5], [10, 5, 6]], dtype=np.float32
)
CL = np.array(["T", "o", "o", "o", "o", "T"])
MASK = CL == "T"


def vals(name, genes=(0,), **kw):
    return get_modification(name, **kw).values(X, MASK, list(genes))


def test_percentiles_type7_over_all_cells():
    # column 0 sorted = 0,1,2,3,4,10; h = 5*0.99 = 4.95 -> 4 + 0.95*(10-4) = 9.7; h = 0.05 -> 0.05
    np.testing.assert_allclose(vals("perc99"), [[9.7], [9.7]], rtol=1e-6)
    np.testing.assert_allclose(vals("perc1"), [[0.05], [0.05]], rtol=1e-6)
    # a constant column stays constant
    np.testing.assert_allclose(vals("perc99", genes=(1,)), [[5], [5]])


def test_fixed_and_aberrant():
    np.testing.assert_array_equal(vals("fixed", genes=(0, 2), fixed_value=-2.5), [[-2.5, -2.5], [-2.5, -2.5]])
    np.testing.assert_array_equal(vals("fixed"), [[3], [3]])  # anchor default advFixedValue = 3
    np.testing.assert_array_equal(vals("positive_aberrant", genes=(0, 2)), [[100000, 60000], [100000, 60000]])
    np.testing.assert_array_equal(vals("negative_aberrant"), [[-100000], [-100000]])


def test_decile_shift_with_r_indexing_and_clipping():
    # N = 6; decile+5 -> shift round(3) = 3; v=0: r=0 -> sorted[3] (1-based) = 2; v=10: r=5 -> 8 -> clip 6 -> 10
    np.testing.assert_array_equal(vals("decile+5"), [[2], [10]])
    # decile-5 -> shift -3; v=0: -3 -> clip 1 -> 0; v=10: 5-3=2 -> 1
    np.testing.assert_array_equal(vals("decile-5"), [[0], [1]])
    # column 2 = 1..6, target values 1 and 6; decile+2: shift round(1.2) = 1; v=1: r=0 -> 1 -> 1; v=6: r=5 -> 6 -> 6
    np.testing.assert_array_equal(vals("decile+2", genes=(2,)), [[1], [6]])


def test_decile_rounds_half_to_even_like_r():
    col = np.array([[0], [1], [2], [3], [4]], dtype=np.float32)  # N = 5
    mask = np.array([False, False, True, False, False])  # v = 2, r = 2

    def m(name):
        return get_modification(name).values(col, mask, [0])[0, 0]

    assert m("decile+1") == 1  # round(0.5) = 0 -> index 2 -> 1
    assert m("decile+3") == 3  # round(1.5) = 2 -> index 4 -> 3
    assert m("decile+5") == 3  # round(2.5) = 2 (half to even), not 3 -> index 4 -> 3
    assert m("decile+2.2") == 2  # round(1.1) = 1 -> index 3 -> 2


def test_random_is_seeded_per_gene_on_the_integer_grid():
    a = vals("random", genes=(0, 2), random_state=7)
    b = vals("random", genes=(0, 2), random_state=7)
    np.testing.assert_array_equal(a, b)
    # column 0 range [0, 10] step 1; column 2 range [1, 6]
    assert set(np.unique(a[:, 0])) <= set(range(11)) and set(np.unique(a[:, 1])) <= set(range(1, 7))
    # a gene gets the same values whichever set it is modified with
    np.testing.assert_array_equal(vals("random", genes=(2,), random_state=7)[:, 0], a[:, 1])
    big = np.tile(np.arange(50, dtype=np.float32)[:, None], (1, 2))
    m = np.ones(50, bool)
    r = get_modification("random", random_state=1).values(big, m, [0, 1])
    assert not np.array_equal(r[:, 0], r[:, 1])  # independent per gene (the anchor recycles one vector)
    assert not np.array_equal(r, get_modification("random", random_state=2).values(big, m, [0, 1]))


def test_custom_functions_follow_the_anchor_signatures():
    np.testing.assert_allclose(vals("full_row_fct", fn=lambda col, mask: col[~mask].mean()), [[2.5], [2.5]])
    np.testing.assert_allclose(vals("target_row_fct", fn=lambda v: v * 2), [[0], [20]])
    np.testing.assert_allclose(vals("target_matrix_fct", genes=(0, 2), fn=lambda M: M + 1), [[1, 2], [11, 7]])
    np.testing.assert_allclose(
        vals("full_matrix_fct", genes=(0, 2), fn=lambda M, mask: M.max(axis=0)), [[10, 6], [10, 6]]
    )
    assert not get_modification("target_matrix_fct", fn=lambda M: M).columnwise
    assert get_modification("full_row_fct", fn=lambda c, m: 0).columnwise


def test_apply_modification_touches_only_target_cells_and_genes():
    out = apply_modification(X, CL, "T", [0, 2], "perc99")
    np.testing.assert_array_equal(out[~MASK], X[~MASK])
    np.testing.assert_array_equal(out[:, 1], X[:, 1])
    np.testing.assert_allclose(out[MASK][:, 0], 9.7, rtol=1e-6)
    assert X[0, 0] == 0  # input untouched


@pytest.mark.parametrize("name", ["perc50", "decile", "decile*3", "decile+x", "", "PERC99"])
def test_unknown_modification_names_fail_clearly(name):
    with pytest.raises(ValueError, match="unknown modification"):
        get_modification(name)


def test_custom_without_function_and_bad_inputs():
    with pytest.raises(ValueError, match="needs a custom function"):
        get_modification("full_row_fct")
    with pytest.raises(ValueError, match="finite"):
        get_modification("fixed", fixed_value=float("nan"))
    with pytest.raises(ValueError, match="unknown cluster"):
        apply_modification(X, CL, "absent", [0])
    with pytest.raises(ValueError, match="expected target cells x genes"):
        vals("target_matrix_fct", genes=(0, 2), fn=lambda M: np.zeros((3, 3)))
