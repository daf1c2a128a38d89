"""Random-walk minimiser (adverSCarial's ``advRandWalkMinChange``, R/advRandWalkMinChange.R).

A combination assigns each gene one of ``M`` modifications or none.
**Seed phase**: ``first_batch`` uniformly random combinations are evaluated (one
stacked batch); the flipping one with the fewest modified genes is the start.
**Walk phase**: ``walk_length`` steps; each proposes, from the best combination,
a new one where every modified gene is re-drawn (uniformly among the ``M``
modifications and "none") with probability ``step_change_ratio``, keeping only
proposals with strictly fewer modified genes that were not tried before; a
proposal that still flips becomes the best. Seeded by ``random_state``.
Differs from adverSCarial: unmodified genes stay unmodified in the walk (the anchor
may switch them on with a small probability, which cannot help the minimisation
since proposals must have fewer modified genes), and all draws are seeded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..exceptions import InputError
from ._engine import AttackTarget
from .modifications import get_modification
from .single_gene import candidate_genes

__all__ = ["RandomWalkResult", "random_walk_attack"]


@dataclass
class RandomWalkResult:
    """``genes`` / ``modifications``: the best flipping combination found (empty if none);
    ``new_label``: its label; ``history``: number of modified genes of the best after each phase step."""

    genes: list[str]
    modifications: list[str]
    new_label: str | None
    baseline_label: str
    history: list[int]
    n_classifier_calls: int
    n_batched_calls: int
    wall_time_s: float


def random_walk_attack(classifier, X, clusters, target: str, modifications=("perc1", "perc99"), *,
                       genes=None, excluded_genes=(), first_batch: int = 100, walk_length: int = 100,
                       step_change_ratio: float = 0.2, change_type: str = "any", random_state: int = 0,
                       gene_names=None, max_tries: int = 1000) -> RandomWalkResult:
    """Find a small flipping combination by a seeded random walk (see the module docstring).

    Raises
    ------
    ValueError
        Unknown genes/modifications/cluster, or ``step_change_ratio`` outside (0, 1].

    Examples
    --------
    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> clf = plab.classifiers.ScTypeClassifier().fit(train)
    >>> panel = ["MS4A1", "CD79A", "CD79B", "SSR4", "CD74", "HLA-DRA", "NKG7", "GNLY", "CD3E", "LYZ"]
    >>> res = plab.attack.random_walk_attack(clf, clf.preprocess(test), test.obs["cell_type"], "B", genes=panel,
    ...                                      first_batch=50, walk_length=20, random_state=0)
    >>> res.genes, res.modifications, res.new_label, res.history
    (['SSR4'], ['perc1'], 'Pro-B cells', [3, 2, 2, 1, 1])
    """
    t0 = time.perf_counter()
    if not 0 < step_change_ratio <= 1:
        raise InputError(f"step_change_ratio must be in (0, 1], got {step_change_ratio}")
    mods = [get_modification(m, random_state=random_state) for m in modifications]
    tgt = AttackTarget(classifier, X, clusters, target, gene_names=gene_names)
    classifier = tgt.classifier
    idx = candidate_genes(tgt, genes, excluded_genes)
    V = [m.values(tgt.X, tgt.mask, idx) for m in mods]
    rng = np.random.default_rng(random_state)
    base = tgt.baseline()

    def item(c):
        sel = np.flatnonzero(c)
        vals = np.stack([V[c[j] - 1][:, j] for j in sel], axis=1) if len(sel) else np.empty((tgt.n_cells, 0))
        return idx[sel], vals

    seeds = rng.integers(0, len(mods) + 1, size=(first_batch, len(idx)))
    calls = tgt.classify_many([item(c) for c in seeds])
    best: np.ndarray | None = None
    best_call = None
    for c, r in zip(seeds, calls):
        if tgt.is_flip(r, base, change_type) and (best is None or np.count_nonzero(c) < np.count_nonzero(best)):
            best, best_call = c, r
    history = [] if best is None else [int(np.count_nonzero(best))]
    seen = {c.tobytes() for c in seeds}
    for _ in range(walk_length if best is not None else 0):
        if best is None:  # no flipping seed: no walk (the range is empty)
            break
        prop = None
        for _ in range(max_tries):
            c = best.copy()
            on = np.flatnonzero(c)
            redraw = on[rng.random(len(on)) < step_change_ratio]
            c[redraw] = rng.integers(0, len(mods) + 1, size=len(redraw))
            if np.count_nonzero(c) < np.count_nonzero(best) and c.tobytes() not in seen:
                prop = c
                break
        if prop is None:
            break
        seen.add(prop.tobytes())
        r = tgt.classify(*item(prop))
        if tgt.is_flip(r, base, change_type):
            best, best_call = prop, r
        history.append(int(np.count_nonzero(best)))
    sel = np.flatnonzero(best) if best is not None else np.array([], dtype=np.intp)
    chosen = [] if best is None else [mods[best[j] - 1].name for j in sel]
    return RandomWalkResult(genes=[str(g) for g in tgt.genes[idx[sel]]], modifications=chosen,
                            new_label=None if best_call is None else best_call.label, baseline_label=base.label,
                            history=history, n_classifier_calls=tgt.n_calls, n_batched_calls=tgt.n_batched_calls,
                            wall_time_s=time.perf_counter() - t0)
