"""Small, fast inputs for the predict tests: a prepared Kang subset."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def kang_small(kang):
    """Kang, 4 cell types x <= 80 cells per condition, 300 HVGs, log-normalised."""
    from perturblab.predict import prepare

    keep = []
    rng = np.random.default_rng(0)
    for (_, _), idx in kang.obs.groupby(["cell_type", "condition"], observed=True).indices.items():
        keep.append(rng.choice(idx, size=min(80, len(idx)), replace=False))
    sub = kang[np.sort(np.concatenate(keep))]
    sub = sub[sub.obs["cell_type"].isin(["CD14 Mono", "CD4 Naive T", "B", "CD16 Mono"])].copy()
    return prepare(sub, n_top_genes=300)

