"""Input checks shared by all parts of perturblab.

Each check raises one of :mod:`perturblab.exceptions`' errors (``MissingKeyError`` for a missing column,
``UnknownNameError`` for an unknown value, ``InputError`` otherwise) whose message names the problem and the
fix; nothing is silently dropped.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from .exceptions import InputError, MissingKeyError, PerturblabWarning, UnknownNameError

__all__ = ["check_obs_key", "check_labels", "check_values_present", "check_finite", "check_counts",
           "looks_like_counts", "warn_representation", "to_dense", "check_positive", "check_fraction"]


def check_obs_key(adata, key: str, what: str = "label") -> None:
    """Raise :class:`MissingKeyError` if ``key`` is not a column of ``adata.obs``."""
    if key not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:20])) or "none"
        raise MissingKeyError(
            f"{what} column {key!r} not found in adata.obs (available: {cols}); "
            f"pass the name of the column that holds the {what}s"
        )


def check_labels(adata, key: str, what: str = "label") -> np.ndarray:
    """The ``obs[key]`` labels as strings, after checking the column exists and has no missing value.

    Raises
    ------
    MissingKeyError
        The column is missing.
    InputError
        Some cells have no label (NaN/None): a missing label never becomes a category named "nan".
    """
    check_obs_key(adata, key, what)
    col = adata.obs[key]
    n_missing = int(col.isna().sum())
    if n_missing:
        raise InputError(f"adata.obs[{key!r}] has {n_missing} cells without a {what} (NaN); drop them first, "
                         f"e.g. adata = adata[adata.obs[{key!r}].notna()].copy()")
    return col.astype(str).to_numpy()


def check_values_present(values, allowed, what: str) -> None:
    """Raise :class:`UnknownNameError` (with "did you mean") if any of ``values`` is not in ``allowed``."""
    allowed_set = {str(a) for a in allowed}
    for v in np.atleast_1d(np.asarray(values, dtype=object)):
        if str(v) not in allowed_set:
            raise UnknownNameError(what, str(v), allowed_set)


def check_positive(value, name: str, minimum: int | float = 1, allow_none: bool = False) -> None:
    """Raise :class:`InputError` unless ``value >= minimum`` (``None`` allowed when ``allow_none``)."""
    if value is None and allow_none:
        return
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not value >= minimum:
        raise InputError(f"{name} must be a number >= {minimum}, got {value!r}")


def check_fraction(value, name: str, closed_low: bool = False, closed_high: bool = True) -> None:
    """Raise :class:`InputError` unless ``value`` lies in (0, 1] (bounds as given)."""
    low_ok = value >= 0 if closed_low else value > 0
    high_ok = value <= 1 if closed_high else value < 1
    if not (np.isscalar(value) and low_ok and high_ok):
        lo, hi = ("[" if closed_low else "("), ("]" if closed_high else ")")
        raise InputError(f"{name} must be in {lo}0, 1{hi}, got {value!r}")


def _data(X):
    return X.data if sp.issparse(X) else np.asarray(X)


def check_finite(X, name: str = "X") -> None:
    """Raise :class:`InputError` if ``X`` (dense or sparse) holds NaN or infinite values."""
    data = _data(X)
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        n_nan = int(np.isnan(data).sum())
        n_inf = int(np.isinf(data).sum())
        raise InputError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite values; "
            "remove or impute them before calling this function"
        )


def check_counts(X, name: str = "X") -> None:
    """Raise :class:`InputError` unless ``X`` holds finite, non-negative values (raw counts expected)."""
    check_finite(X, name)
    data = _data(X)
    if data.size and data.min() < 0:
        raise InputError(
            f"{name} has negative values (min {data.min():.3g}) where raw counts are expected; "
            "pass unscaled counts (e.g. adata.layers['counts'] or adata.raw)"
        )


def _evidence(X, n_check: int = 10_000) -> dict:
    """Facts about the stored values of ``X`` (first ``n_check`` values and the first 1,000 rows)."""
    data = (X.data if sp.issparse(X) else np.asarray(X).ravel())[:n_check]
    rows = X[: min(X.shape[0], 1000)]
    sums = np.asarray(rows.sum(axis=1)).ravel() if X.shape[0] else np.zeros(0)
    non_integer = int(np.sum(~np.isclose(data, np.round(data)))) if data.size else 0
    return {"n": int(data.size), "negative": int(np.sum(data < 0)), "non_integer": non_integer,
            "max": float(data.max()) if data.size else 0.0,
            "row_sum_median": float(np.median(sums)) if sums.size else 0.0}


def looks_like_counts(X, n_check: int = 10_000) -> bool:
    """Heuristic: True if the (first ``n_check``) stored values are non-negative integers with a maximum above
    20, as raw UMI counts are; False for log1p-normalised or scaled data."""
    ev = _evidence(X, n_check)
    return ev["n"] > 0 and ev["negative"] == 0 and ev["non_integer"] == 0 and ev["max"] > 20


def warn_representation(X, expected: str, name: str = "X") -> None:
    """Warn (:class:`~perturblab.exceptions.PerturblabWarning`) when ``X`` looks like raw counts (non-negative
    integers with a maximum above 20) but ``expected`` is ``"log1p"`` / ``"scaled"``, or holds non-integer or
    negative values where raw counts are ``expected``, naming the evidence: non-integer or negative values, the
    largest value and the median row sum."""
    ev = _evidence(X)
    if not ev["n"]:
        return
    facts = (f"{ev['non_integer']} of {ev['n']} values checked are non-integer, {ev['negative']} negative, "
             f"max {ev['max']:.3g}, median row sum {ev['row_sum_median']:.3g}")
    counts = ev["negative"] == 0 and ev["non_integer"] == 0 and ev["max"] > 20
    not_counts = ev["negative"] > 0 or ev["non_integer"] > 0  # shallow data may be counts with a small maximum
    if expected in ("log1p", "scaled") and counts:
        warnings.warn(f"{name} looks like raw counts ({facts}) but {expected} data are expected; run "
                      "scanpy.pp.normalize_total and scanpy.pp.log1p first", PerturblabWarning, stacklevel=3)
    elif expected == "counts" and not_counts:
        warnings.warn(f"{name} does not look like raw counts ({facts}) but raw UMI counts are expected; pass "
                      "adata.layers['counts'] or adata.raw", PerturblabWarning, stacklevel=3)


def to_dense(X, dtype=np.float32) -> np.ndarray:
    """Return ``X`` as a C-contiguous dense array of ``dtype``."""
    if sp.issparse(X):
        X = X.toarray()
    return np.ascontiguousarray(X, dtype=dtype)
