"""Gene modifications: the values an attack writes into the cells of the target cluster.

A modification is applied to the model-input matrix ``X`` (cells x genes, any
representation: raw counts, log1p or scaled - whatever the classifier reads).
Only the cells of the target cluster are overwritten; every statistic
(quantiles, maxima, deciles, ranges) is computed over ALL cells of the column,
as adverSCarial's ``advModifications`` does (GhislainFievet/adverSCarial,
R/advModifications.R).

Names (see :func:`get_modification`)
-------------------------------------
``perc99`` / ``perc1``
    the 0.99 / 0.01 quantile of the column (R's default type-7 quantile =
    numpy ``method="linear"``): "switch the gene on / off".
``fixed``
    a constant (``fixed_value``, default 3 as in the anchor).
``positive_aberrant`` / ``negative_aberrant``
    ``+10000 * max(column)`` / ``-10000 * max(column)``.
``random``
    a uniform draw on the integer-step grid ``min, min+1, ..., <= max`` of the
    column, one independent draw per target cell and gene, seeded by
    ``random_state`` and the gene's column index (so a gene gets the same values
    whichever gene set it is modified with). Differs from adverSCarial: the
    anchor draws ONE vector on the range of the whole requested submatrix and
    recycles it across genes, unseeded.
``decile+X`` / ``decile-X``
    ``v -> sorted_column[r + round(+-X * N / 10)]`` (1-based index) where
    ``r = #values < v`` and ``N`` the number of cells; the index is clipped to
    ``[1, N]`` (i.e. the value to [min, max]). ``round`` is R's round-half-even.
    ``X`` may be fractional (``"decile+2.5"``). Differs from adverSCarial: the
    anchor returns an empty value (an R error) when ``r + shift = 0`` for a
    positive shift; here it is clipped to the column minimum.
``full_row_fct`` / ``target_row_fct`` / ``target_matrix_fct`` / ``full_matrix_fct``
    a custom function ``fn`` (the anchor's four signatures):
    ``fn(column, mask)`` (whole column, boolean target mask), ``fn(target_values)``,
    ``fn(target_submatrix)`` (target cells x genes) and ``fn(submatrix, mask)``
    (all cells x genes). Each returns the values for the target cells (a scalar,
    a vector over target cells, or a target-cells x genes matrix).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..exceptions import InputError, UnknownNameError

__all__ = ["MODIFICATION_NAMES", "Modification", "apply_modification", "describe_modification", "get_modification"]

_SIMPLE = ("perc1", "perc99", "fixed", "positive_aberrant", "negative_aberrant", "random")
_CUSTOM = ("full_row_fct", "target_row_fct", "target_matrix_fct", "full_matrix_fct")
MODIFICATION_NAMES = (*_SIMPLE, "decile+X", "decile-X", *_CUSTOM)
_DECILE = re.compile(r"^decile([+-])(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Modification:
    """A parsed modification; build it with :func:`get_modification`.

    Attributes
    ----------
    name
        The canonical name (``"perc99"``, ``"decile+5"``, ``"full_row_fct"``, ...).
    kind
        One of ``"perc"``, ``"fixed"``, ``"aberrant"``, ``"random"``, ``"decile"``, ``"custom"``.
    param
        The quantile (perc), constant (fixed), sign (aberrant) or signed number of
        deciles (decile); ``None`` otherwise.
    fn
        The custom function (``kind == "custom"``).
    random_state
        Seed of the ``random`` modification.
    """

    name: str
    kind: str
    param: float | None = None
    fn: Callable | None = None
    random_state: int = 0

    @property
    def columnwise(self) -> bool:
        """True when each gene's new values depend on that gene's column only
        (every modification except the two custom matrix functions), so a gene set's
        modification is the union of its single-gene modifications."""
        return not (self.kind == "custom" and self.name in ("target_matrix_fct", "full_matrix_fct"))

    @property
    def _number(self) -> float:
        # param of the kinds that have one (perc, fixed, aberrant, decile)
        if self.param is None:
            raise InputError(f"modification {self.name!r} has no parameter; build it with get_modification()")
        return self.param

    def values(self, X: np.ndarray, mask: np.ndarray, genes) -> np.ndarray:
        """New values for the target cells.

        Parameters
        ----------
        X
            Cells x genes matrix (the classifier's model input, unmodified), dense or a
            :class:`~perturblab.attack._sparse.SparseModelInput` (statistics from its sparse columns).
        mask
            Boolean vector over cells, True for the target cluster.
        genes
            Column indices to modify.

        Returns
        -------
        numpy.ndarray
            ``(n_target_cells, len(genes))`` float32 matrix of the values to write.
        """
        genes = np.asarray(genes, dtype=np.intp).ravel()
        mask = np.asarray(mask, dtype=bool)
        n_t = int(mask.sum())
        from ._sparse import is_sparse_input

        if is_sparse_input(X):
            return np.ascontiguousarray(self._sparse_values(X, mask, genes, n_t), dtype=np.float32)
        cols = np.asarray(X[:, genes], dtype=np.float64)
        if self.kind == "perc":
            row = np.quantile(cols, self._number, axis=0, method="linear") if len(cols) else np.zeros(len(genes))
            out = np.broadcast_to(row, (n_t, len(genes)))
        elif self.kind == "fixed":
            out = np.full((n_t, len(genes)), self._number)
        elif self.kind == "aberrant":
            out = np.broadcast_to(self._number * 10000.0 * cols.max(axis=0), (n_t, len(genes)))
        elif self.kind == "random":
            out = self._random(cols, n_t, genes)
        elif self.kind == "decile":
            out = _decile(cols, cols[mask], self._number)
        else:
            out = self._custom(cols, mask, n_t)
        return np.ascontiguousarray(out, dtype=np.float32)

    def _sparse_values(self, X, mask, genes, n_t, chunk: bool = True):
        """:meth:`values` on a :class:`~perturblab.attack._sparse.SparseModelInput`: column statistics from the
        sorted stored values (no dense column), the same numbers as on the dense matrix."""
        if self.kind == "fixed":
            return np.full((n_t, len(genes)), self._number)
        if self.kind == "custom":
            return self._custom(X.dense_columns(genes), mask, n_t)
        chunks = X.gene_chunks(genes) if chunk else [genes]
        if len(chunks) > 1:  # bounded memory: one chunk of columns sorted at a time
            return np.hstack([self._sparse_values(X, mask, g, n_t, chunk=False) for g in chunks])
        order = X.sorted_columns(genes)
        if self.kind == "perc":
            return np.broadcast_to(order.quantile(self._number), (n_t, len(genes)))
        if self.kind == "aberrant":
            return np.broadcast_to(self._number * 10000.0 * order.maximum(), (n_t, len(genes)))
        if self.kind == "random":
            return self._random(None, n_t, genes, lo=order.minimum(), hi=order.maximum())
        target = X.rows(np.flatnonzero(mask))[:, genes].astype(np.float64)
        shift = int(np.round(self._number * order.n / 10.0))
        out = np.empty_like(target)
        for j in range(len(genes)):
            rank = order.count_below(j, target[:, j])
            out[:, j] = order.value(j, np.clip(rank + shift, 1, order.n) - 1)
        return out

    def _random(self, cols, n_t, genes, lo=None, hi=None):
        if lo is None:
            lo, hi = cols.min(axis=0), cols.max(axis=0)
        n_steps = np.floor(hi - lo).astype(np.int64) + 1
        out = np.empty((n_t, len(genes)))
        for j, g in enumerate(genes):
            rng = np.random.default_rng([int(self.random_state), int(g)])
            out[:, j] = lo[j] + rng.integers(0, n_steps[j], size=n_t)
        return out

    def _custom(self, cols, mask, n_t):
        name, fn = self.name, self.fn
        if name == "full_row_fct":
            parts = [np.broadcast_to(np.asarray(fn(cols[:, j], mask), dtype=float), (n_t,))
                     for j in range(cols.shape[1])]
        elif name == "target_row_fct":
            parts = [np.broadcast_to(np.asarray(fn(cols[mask, j]), dtype=float), (n_t,)) for j in range(cols.shape[1])]
        else:
            res = fn(cols[mask]) if name == "target_matrix_fct" else fn(cols, mask)
            res = np.asarray(res, dtype=float)
            try:
                return np.broadcast_to(res, (n_t, cols.shape[1]))
            except ValueError:
                raise InputError(
                    f"custom {name} function returned shape {res.shape}; expected target cells x genes "
                    f"({n_t}, {cols.shape[1]}) or something broadcastable to it"
                ) from None
        out = np.stack(parts, axis=1) if parts else np.empty((n_t, 0))
        if not np.isfinite(out).all():
            raise InputError(f"custom {name} function returned NaN or infinite values")
        return out


def _decile(cols: np.ndarray, target: np.ndarray, n_deciles: float) -> np.ndarray:
    """Vectorised ``.advDecil`` over genes (see the module docstring)."""
    n = cols.shape[0]
    shift = int(np.round(n_deciles * n / 10.0))
    srt = np.sort(cols, axis=0)
    out = np.empty_like(target)
    for j in range(cols.shape[1]):
        rank = np.searchsorted(srt[:, j], target[:, j], side="left")  # number of values < v
        idx = np.clip(rank + shift, 1, n) - 1  # 1-based R index -> 0-based
        out[:, j] = srt[idx, j]
    return out


def get_modification(
    modification: str | Modification,
    *,
    fixed_value: float = 3.0,
    fn: Callable | None = None,
    random_state: int = 0,
) -> Modification:
    """Parse a modification name (adverSCarial's ``advMethod``).

    Parameters
    ----------
    modification
        A name listed in the module docstring (``"perc99"``, ``"decile+5"``,
        ``"full_row_fct"``, ...) or an already parsed :class:`Modification`.
    fixed_value
        Constant of ``"fixed"`` (adverSCarial's ``advFixedValue``, default 3).
    fn
        The function of a custom modification (adverSCarial's ``advFct``).
    random_state
        Seed of ``"random"``.

    Raises
    ------
    ValueError
        For an unknown name, a custom name without ``fn``, or a non-finite fixed value.
    """
    if isinstance(modification, Modification):
        return modification
    name = str(modification).strip()
    if name in ("perc1", "perc99"):
        return Modification(name, "perc", 0.01 if name == "perc1" else 0.99)
    if name == "fixed":
        if not np.isfinite(fixed_value):
            raise InputError(f"fixed_value must be a finite number, got {fixed_value!r}")
        return Modification(name, "fixed", float(fixed_value))
    if name in ("positive_aberrant", "negative_aberrant"):
        return Modification(name, "aberrant", 1.0 if name.startswith("positive") else -1.0)
    if name == "random":
        return Modification(name, "random", random_state=int(random_state))
    m = _DECILE.match(name)
    if m:
        sign = 1.0 if m.group(1) == "+" else -1.0
        return Modification(name, "decile", sign * float(m.group(2)))
    if name in _CUSTOM:
        if not callable(fn):
            raise InputError(f"modification {name!r} needs a custom function: pass fn=...")
        return Modification(name, "custom", fn=fn)
    raise InputError(
        f"unknown modification {name!r}; use one of {', '.join(_SIMPLE)}, decile+X / decile-X "
        f"(e.g. 'decile+5'), or a custom {', '.join(_CUSTOM)} with fn=..."
    )


def apply_modification(X, clusters, target: str, genes, modification="perc99", **kwargs) -> np.ndarray:
    """Return a copy of ``X`` whose target-cluster cells are modified on ``genes``
    (adverSCarial's ``advModifications``).

    Parameters
    ----------
    X
        Cells x genes matrix (dense; the classifier's model input).
    clusters
        Cluster label per cell (length ``n_cells``).
    target
        The cluster whose cells are modified.
    genes
        Column indices to modify.
    modification, **kwargs
        Passed to :func:`get_modification`.

    Raises
    ------
    ValueError
        If ``target`` has no cells or the modification is unknown.
    """
    X = np.array(X, dtype=np.float32, copy=True)
    clusters = np.asarray(clusters).astype(str)
    mask = clusters == str(target)
    if not mask.any():
        raise UnknownNameError("cluster", target, set(map(str, clusters)))
    mod = get_modification(modification, **kwargs)
    genes = np.asarray(genes, dtype=np.intp).ravel()
    rows = np.flatnonzero(mask)
    X[np.ix_(rows, genes)] = mod.values(X, mask, genes)
    return X


def describe_modification(name: str) -> str:
    """What a modification does, in one sentence a biologist can read (for reports).

    Examples
    --------
    >>> print(describe_modification("perc99"))  # doctest: +NORMALIZE_WHITESPACE
    perc99: the gene's 99th percentile over all cells, written into every cell of the attacked cluster
    (switch the gene on)
    """
    if name in ("perc99", "perc1"):
        q, what = ("99th", "on") if name == "perc99" else ("1st", "off")
        return (f"{name}: the gene's {q} percentile over all cells, written into every cell of the attacked cluster "
                f"(switch the gene {what})")
    if name.startswith("fixed"):
        return f"{name}: a fixed value written into every cell of the attacked cluster"
    if name in ("positive_aberrant", "negative_aberrant"):
        sign = "+" if name.startswith("positive") else "-"
        return f"{name}: {sign}10,000 x the gene's maximum, far outside anything a sequencer can measure"
    if name == "random":
        return "random: a random value within the gene's observed range, drawn per cell (seeded)"
    m = re.fullmatch(r"decile([+-])(\d+(?:\.\d+)?)", name)
    if m:
        direction = "up" if m.group(1) == "+" else "down"
        return (f"{name}: each cell of the cluster moved {m.group(2)} tenths of all cells {direction} "
                "the gene's ranked values (within the observed range)")
    return f"{name}: a custom modification"
