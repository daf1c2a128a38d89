"""Type aliases shared by the interpret modules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["Genes", "Labels"]

#: Gene names: a list / tuple of str or a 1-D array of str (what ``np.asarray(genes).astype(str)`` accepts).
Genes = Sequence[str] | np.ndarray
#: One label per cell (strata, clusters): a sequence or a 1-D array.
Labels = Sequence | np.ndarray
