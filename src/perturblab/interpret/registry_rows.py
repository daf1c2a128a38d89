"""Rows for the statistics registry from the analyses' tables.

Each analysis module of :mod:`perturblab.interpret` has a ``*_rows(table)`` function that turns its tidy table
into registry rows: plain dicts with the keyword arguments of
:meth:`perturblab.interpret.stats.Registry.add` (``section, hypothesis, test, p, effect_size, n, effect,
statistic, confirmatory, claim``). :func:`add_rows` adds them to a registry, so the pipeline wires an analysis
with two lines::

    table = tf_stratification(per_pert, tfs, a=best, b=corr.name)
    add_rows(reg, tf_stratification_rows(table))

Rows are exploratory (``confirmatory=False``) unless the analysis re-tests one of the paper's claims (each
``*_rows`` function says which); BH adjustment is the registry's, over each family.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["add_rows", "finite_p", "registry_row"]


def finite_p(p) -> float:
    """``p`` as a float in [0, 1], or NaN (None, non-finite values, values a rounding error outside [0, 1])."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return float("nan")
    if not np.isfinite(p):
        return float("nan")
    return float(min(1.0, max(0.0, p)))


def registry_row(section: str, hypothesis: str, test: str, p, effect_size, n, effect: str = "",
                 statistic=float("nan"), confirmatory: bool = False, claim: str = "") -> dict:
    """One registry row (the keyword arguments of :meth:`~perturblab.interpret.stats.Registry.add`).

    ``p`` is clipped to [0, 1] (NaN stays NaN: "not computable"); ``effect_size`` and ``statistic`` become
    floats (NaN when missing); ``n`` an int (0 when missing).
    """
    def _f(x) -> float:
        try:
            return float(x)
        except (TypeError, ValueError):
            return float("nan")

    n_int = int(n) if n is not None and np.isfinite(_f(n)) else 0
    return {"section": section, "hypothesis": hypothesis, "test": test, "p": finite_p(p),
            "effect_size": _f(effect_size), "n": n_int, "effect": effect, "statistic": _f(statistic),
            "confirmatory": bool(confirmatory), "claim": claim}


def add_rows(registry, rows: Iterable[dict]) -> int:
    """Add ``rows`` (from the ``*_rows`` functions) to ``registry``; returns how many were added."""
    k = 0
    for row in rows:
        registry.add(**row)
        k += 1
    return k
