"""Type aliases shared by the interpret modules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Genes", "Labels", "records"]

#: Gene names: a list / tuple of str or a 1-D array of str (what ``np.asarray(genes).astype(str)`` accepts).
Genes = Sequence[str] | np.ndarray
#: One label per cell (strata, clusters): a sequence or a 1-D array.
Labels = Sequence | np.ndarray


def records(df: pd.DataFrame) -> Iterator[Any]:
    """``df.itertuples()`` (index first, then one attribute per column) with its rows typed ``Any``.

    pandas-stubs types every field of an ``itertuples`` row as the union of all pandas scalars, which no numeric
    use type-checks; the tables iterated here have known numeric / string columns.
    """
    return iter(df.itertuples())
