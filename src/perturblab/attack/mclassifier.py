"""adverSCarial's toy cluster-level classifier ``MClassifier``, ported exactly.

Source: GhislainFievet/adverSCarial R/MClassifier.R (v1.3.x). It works on **raw
counts** (cells x genes) and looks at the MEAN of a few marker genes over the
cells of the target cluster; the rules below are applied in order and a later
rule that fires overrides an earlier one; if none fires the answer is
``"UNDETERMINED"``. The score (the anchor's ``odd``) is always 1. Being
deterministic and cheap, it is the reference for testing attack semantics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import InputError, UnknownNameError

__all__ = ["MCLASSIFIER_RULES", "MClassifier", "MClassifierCall"]

#: (gene, lower bound (exclusive), upper bound (exclusive) or None, label), in the anchor's order.
MCLASSIFIER_RULES: tuple[tuple[str, float, float | None, str], ...] = (
    ("LTB", 7.0, None, "Memory CD4 T"),
    ("CD79A", 2.0, None, "B"),
    ("S100A9", 10.0, None, "CD14+ Mono"),
    ("GZMB", 5.0, None, "NK"),
    ("GZMK", 2.0, None, "CD8 T"),
    ("LDHB", 3.0, 3.3, "Naive CD4 T"),
    ("CCR7", 0.5, None, "Naive CD4 T"),
    ("LST1", 10.0, None, "FCGR3A+ Mono"),
    ("CD74", 50.0, None, "DC"),
    ("PF4", 10.0, None, "Platelet"),
)


@dataclass(frozen=True)
class MClassifierCall:
    """Answer of :class:`MClassifier` (the anchor's list ``prediction, odd, typePredictions, cellTypes``).

    ``type_predictions`` is the one-hot (cell types x cells) score matrix: rows are the
    distinct cluster labels in order of appearance (plus the predicted label if it is
    not one of them), columns all cells, 1 in the predicted label's row.
    ``cell_types`` repeats the prediction once per cell of the target cluster.
    """

    prediction: str
    odd: float
    type_predictions: pd.DataFrame
    cell_types: np.ndarray

    @property
    def label(self) -> str:
        return self.prediction

    @property
    def score(self) -> float:
        return self.odd


class MClassifier:
    """adverSCarial's ``MClassifier`` as a cluster-level callable ``f(X, clusters, target)``.

    Parameters
    ----------
    genes
        Names of the columns of the matrices it will be called on (raw counts,
        cells x genes). All ten rule genes (:data:`MCLASSIFIER_RULES`) must be present.

    Raises
    ------
    ValueError
        If a rule gene is missing from ``genes``, or (at call time) ``target`` has no cells.

    Examples
    --------
    On PBMC3k's raw counts, restricted to the ten rule genes (dense: 2,700 cells x 10 genes):

    >>> import perturblab as plab
    >>> adata = plab.datasets.pbmc3k()
    >>> genes = [rule[0] for rule in MCLASSIFIER_RULES]
    >>> X = adata[:, genes].X.toarray()
    >>> clf = MClassifier(genes)
    >>> clf(X, adata.obs["cell_type"], "NK").prediction
    'NK'
    >>> plab.attack.single_gene_attack(clf, X, adata.obs["cell_type"], "NK", "perc1").genes
    ['GZMB']
    """

    per_cell = False

    def __init__(self, genes):
        genes = [str(g) for g in genes]
        pos = {g: i for i, g in enumerate(genes)}
        missing = sorted({r[0] for r in MCLASSIFIER_RULES} - set(pos))
        if missing:
            raise InputError(f"MClassifier needs the marker genes {missing} which are not among the given genes")
        self.genes_ = np.asarray(genes)
        self._cols = np.array([pos[r[0]] for r in MCLASSIFIER_RULES], dtype=np.intp)
        #: the only columns the rules read (attacks skip the others as proven no-ops)
        self.used_genes_ = np.unique(self._cols)

    def rule_label(self, means: np.ndarray) -> str:
        """The label given by the rules to the cluster-mean vector of the rule genes."""
        label = "UNDETERMINED"
        for m, (_, lo, hi, lab) in zip(means, MCLASSIFIER_RULES):
            if m > lo and (hi is None or m < hi):
                label = lab
        return label

    def __call__(self, X, clusters, target) -> MClassifierCall:
        clusters = np.asarray(clusters).astype(str)
        mask = clusters == str(target)
        if not mask.any():
            raise UnknownNameError("cluster", target, set(map(str, clusters)))
        sub = np.asarray(np.asarray(X)[np.ix_(mask, self._cols)], dtype=np.float64)
        label = self.rule_label(sub.mean(axis=0))
        types = list(dict.fromkeys(clusters.tolist()))
        if label not in types:
            types.append(label)
        tp = pd.DataFrame(0.0, index=types, columns=np.arange(len(clusters)))
        tp.loc[label] = 1.0
        return MClassifierCall(label, 1.0, tp, np.repeat(label, int(mask.sum())))
