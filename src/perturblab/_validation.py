"""Input checks shared by all parts of perturblab.

Each check raises a ``ValueError`` (or ``KeyError`` for missing keys) whose
message names the problem and the fix; nothing is silently dropped.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp


def check_obs_key(adata, key: str, what: str = "label") -> None:
    """Raise ``KeyError`` if ``key`` is not a column of ``adata.obs``."""
    if key not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:20]))
        raise KeyError(
            f"{what} column {key!r} not found in adata.obs (available: {cols}); "
            f"pass the name of the column that holds the {what}s"
        )


def check_values_present(values, allowed, what: str) -> None:
    """Raise ``ValueError`` if any of ``values`` is not in ``allowed``."""
    allowed_set = set(map(str, allowed))
    missing = [v for v in np.atleast_1d(values) if str(v) not in allowed_set]
    if missing:
        shown = ", ".join(sorted(allowed_set)[:30])
        raise ValueError(f"unknown {what}: {missing!r}; known {what}s are: {shown}")


def _data(X):
    return X.data if sp.issparse(X) else np.asarray(X)


def check_finite(X, name: str = "X") -> None:
    """Raise ``ValueError`` if ``X`` (dense or sparse) holds NaN or infinite values."""
    data = _data(X)
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        n_nan = int(np.isnan(data).sum())
        n_inf = int(np.isinf(data).sum())
        raise ValueError(
            f"{name} contains {n_nan} NaN and {n_inf} infinite values; "
            "remove or impute them before calling this function"
        )


def check_counts(X, name: str = "X") -> None:
    """Raise ``ValueError`` unless ``X`` holds non-negative values (raw counts expected)."""
    check_finite(X, name)
    data = _data(X)
    if data.size and data.min() < 0:
        raise ValueError(
            f"{name} has negative values (min {data.min():.3g}) where raw counts are expected; "
            "pass unscaled counts (e.g. adata.layers['counts'] or adata.raw)"
        )


def looks_like_counts(X, n_check: int = 10_000) -> bool:
    """Heuristic: True if the (first ``n_check``) stored values are non-negative integers
    with a maximum above 20, as raw UMI counts are; False for log1p-normalised data."""
    data = _data(X).ravel()[:n_check] if not sp.issparse(X) else X.data[:n_check]
    if data.size == 0:
        return False
    return bool(np.all(data >= 0) and np.allclose(data, np.round(data)) and data.max() > 20)


def warn_representation(X, expected: str, name: str = "X") -> None:
    """Warn when ``X`` looks like raw counts but ``expected`` is ``"log1p"`` (or vice versa)."""
    counts = looks_like_counts(X)
    if expected == "log1p" and counts:
        warnings.warn(
            f"{name} looks like raw counts (non-negative integers) but log-normalised data are expected; "
            "run scanpy.pp.normalize_total and scanpy.pp.log1p first",
            UserWarning,
            stacklevel=3,
        )
    elif expected == "counts" and not counts:
        warnings.warn(
            f"{name} does not look like raw counts (non-integer values) but raw counts are expected",
            UserWarning,
            stacklevel=3,
        )


def to_dense(X, dtype=np.float32) -> np.ndarray:
    """Return ``X`` as a C-contiguous dense array of ``dtype``."""
    if sp.issparse(X):
        X = X.toarray()
    return np.ascontiguousarray(X, dtype=dtype)
