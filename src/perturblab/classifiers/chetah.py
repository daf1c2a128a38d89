"""CHETAH: hierarchical correlation-based classification (de Kanter et al. 2019, jdekanter/CHETAH)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import InputError
from ._preprocess import log1p_matrix, model_input
from .base import CellTypeClassifier

__all__ = ["ChetahClassifier", "spearman_to_profile"]


def _centred_unit_rows(R: np.ndarray) -> np.ndarray:
    R = R - R.mean(axis=1, keepdims=True)
    norm = np.sqrt((R * R).sum(axis=1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, R / norm, 0.0)


def spearman_to_profile(X: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Spearman correlation of every row of ``X`` (cells x genes) with ``profile`` (genes,).

    Average ranks for ties (as R's ``cor(method="spearman")``); a constant row or profile gives 0
    (CHETAH replaces NA correlations by 0). Vectorised: rows ranked once, then one matrix product.
    """
    from scipy.stats import rankdata

    rx = _centred_unit_rows(rankdata(np.asarray(X, dtype=np.float64), axis=1))
    rp = _centred_unit_rows(rankdata(np.asarray(profile, dtype=np.float64))[None, :])[0]
    return rx @ rp


@dataclass
class _Node:
    """One node of the classification tree: its leaf types split into two branches, and per leaf
    the selected genes, the type's reference profile on them and the sorted reference correlations."""

    name: str
    branch1: list[str]
    branch2: list[str]
    genes: dict[str, np.ndarray] = field(default_factory=dict)
    profile: dict[str, np.ndarray] = field(default_factory=dict)
    cor_type: dict[str, np.ndarray] = field(default_factory=dict)
    cor_other: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def leaves(self) -> list[str]:
        return self.branch1 + self.branch2

    def other_branch(self, t: str) -> list[str]:
        return self.branch2 if t in self.branch1 else self.branch1


def _split(profiles: np.ndarray, types: list[str]) -> tuple[list[str], list[str]]:
    """CHETAH's ``SplitNodes``: average-linkage clustering of the type profiles with Spearman
    distance (``1 - rho``, bioDist's ``spearman.dist``), cut into 2 groups; branch 1 holds the
    first type (R's ``cutree`` numbering)."""
    from scipy.cluster.hierarchy import linkage, to_tree
    from scipy.spatial.distance import squareform
    from scipy.stats import spearmanr

    if len(types) == 2:
        return [types[0]], [types[1]]
    rho = np.atleast_2d(spearmanr(profiles, axis=1)[0])
    dist = np.clip(1.0 - np.nan_to_num(rho, nan=0.0), 0.0, None)
    np.fill_diagonal(dist, 0.0)
    root = to_tree(linkage(squareform(dist, checks=False), method="average"))
    left = sorted(root.get_left().pre_order())
    right = sorted(root.get_right().pre_order())
    if 0 in right:
        left, right = right, left
    return [types[i] for i in left], [types[i] for i in right]


class ChetahClassifier(CellTypeClassifier):
    """CHETAH-style classifier: a tree of the reference cell types, descended while confident.

    Algorithm (CHETAH's ``CHETAHclassifier``/``Classify``, default "fc" gene selection):

    1. Reference profile of each type = mean log1p expression of its training cells.
    2. Tree: recursively, the types of a node are clustered (average linkage, Spearman distance)
       and cut into two branches. Nodes are numbered in pre-order; the root's answer is
       ``"Unassigned"``, the others ``"Node<k>"`` (k = 1, 2, ...), as Bioconductor CHETAH.
    3. At each node, for each type t under it: the ``n_genes`` (200) genes of largest
       ``|profile_t - mean profile of the other branch's types|``; Spearman correlation of a cell
       to profile_t on those genes (``cor_i``), and of the reference cells of t (``cor_t``) and of
       the other branch (``cor_ob``). Profile score ``= ecdf(cor_t)(cor_i) - (1 - ecdf(cor_ob)(cor_i))``.
    4. Confidence of t = its profile score minus the mean profile score of the other branch's types.
    5. A cell goes, at each node it reaches, to the type with the highest profile score; if that
       type's confidence is below ``threshold`` (0.1) the cell stops at the node.

    Representation ``"log1p"``. Correlations are vectorised: per node and type, the cells' values on
    the selected genes are ranked once and correlated with one matrix product.

    ``predict_proba``: a path confidence per leaf type (rows do not sum to 1): for type t, the
    minimum over the nodes above t of ``max_{u in t's branch} prof(u) - mean_{v in other} prof(v)``,
    mapped from [-2, 2] to [0, 1]. ``predict`` is the tree descent above, which may answer
    ``"Unassigned"`` or ``"Node<k>"`` (abstentions).

    Differs from adverSCarial's wrapper, which calls ``Classify(input, 0.01)``: the threshold defaults
    to CHETAH's and the paper's 0.1.

    Parameters
    ----------
    n_genes
        Genes per type and node (200).
    threshold
        Confidence threshold (0.1).
    """

    representation = "log1p"
    standard_preprocess = True
    root_label = "Unassigned"
    score_kind = "confidence"

    def __init__(self, n_genes: int = 200, threshold: float = 0.1):
        self.n_genes = n_genes
        self.threshold = threshold

    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> log1p-normalised float32 matrix (cells x ``genes_``)."""
        return model_input(self, adata)

    def fit(self, adata, label_key: str) -> ChetahClassifier:
        """Build the reference from raw-count ``adata`` (cells x genes), labels in ``obs[label_key]``."""
        return self.fit_reference(log1p_matrix(adata), self._labels(adata, label_key), adata.var_names)

    def fit_reference(self, X: np.ndarray, labels, genes) -> ChetahClassifier:
        """Build the reference from an already log-normalised matrix (CHETAH's reference format).

        Parameters
        ----------
        X
            Reference cells x genes, log-normalised (e.g. CHETAH's ``headneck_ref``).
        labels
            Cell type of each reference cell.
        genes
            Gene names of the columns of ``X``.

        Raises
        ------
        ValueError
            Fewer than 2 cell types, mismatched shapes, or non-finite values.
        """
        X = np.asarray(X, dtype=np.float32)
        labels = np.asarray(labels).astype(str)
        genes = np.asarray(genes).astype(str)
        if X.ndim != 2 or X.shape != (len(labels), len(genes)):
            raise InputError(f"X must be {len(labels)} cells x {len(genes)} genes, got shape {X.shape}")
        if not np.isfinite(X).all():
            raise InputError("reference X contains NaN or infinite values")
        classes = [str(t) for t in np.unique(labels)]
        if len(classes) < 2:
            raise InputError(f"need at least 2 reference cell types, got {list(classes)}")
        profiles = np.stack([X[labels == t].mean(axis=0) for t in classes])
        prof = dict(zip(classes, profiles, strict=True))
        n_genes = min(self.n_genes, X.shape[1])
        self.nodes_: list[_Node] = []

        def grow(types: list[str]) -> None:
            b1, b2 = _split(np.stack([prof[t] for t in types]), types)
            node = _Node(self.root_label if not self.nodes_ else f"Node{len(self.nodes_)}", b1, b2)
            self.nodes_.append(node)
            for t in node.leaves:
                other = node.other_branch(t)
                fc = np.abs(prof[t] - np.mean([prof[o] for o in other], axis=0))
                idx = np.sort(np.argsort(-fc, kind="stable")[:n_genes])
                node.genes[t], node.profile[t] = idx, prof[t][idx]
                in_other = np.isin(labels, other)
                node.cor_type[t] = np.sort(spearman_to_profile(X[labels == t][:, idx], prof[t][idx]))
                node.cor_other[t] = np.sort(spearman_to_profile(X[in_other][:, idx], prof[t][idx]))
            for branch in (b1, b2):
                if len(branch) > 1:
                    grow(branch)

        grow(classes)
        self.genes_ = genes
        self.classes_ = np.asarray(classes, dtype=object)
        self.used_genes_ = np.unique(np.concatenate([g for n in self.nodes_ for g in n.genes.values()]))
        return self

    def _node_scores(self, X: np.ndarray, node: _Node) -> tuple[np.ndarray, np.ndarray]:
        """Profile and confidence scores (cells x node.leaves) at ``node``."""
        prof = np.empty((X.shape[0], len(node.leaves)))
        for j, t in enumerate(node.leaves):
            cor = spearman_to_profile(X[:, node.genes[t]], node.profile[t])
            good = np.searchsorted(node.cor_type[t], cor, side="right") / len(node.cor_type[t])
            false = np.searchsorted(node.cor_other[t], cor, side="right") / len(node.cor_other[t])
            prof[:, j] = good - (1.0 - false)
        conf = np.empty_like(prof)
        col = {t: j for j, t in enumerate(node.leaves)}
        for j, t in enumerate(node.leaves):
            conf[:, j] = prof[:, j] - prof[:, [col[o] for o in node.other_branch(t)]].mean(axis=1)
        return prof, conf

    def predict(self, X: np.ndarray) -> np.ndarray:
        """CHETAH's descent (``nodeDown``): leaf type, or "Unassigned"/"Node<k>" where confidence is low."""
        X = self._check_input(X)
        out = np.full(X.shape[0], "", dtype=object)
        for k, node in enumerate(self.nodes_):
            reach = np.ones(X.shape[0], bool) if k == 0 else np.isin(out, node.leaves)
            if not reach.any():
                continue
            prof, conf = self._node_scores(X[reach], node)
            best = np.argmax(prof, axis=1)
            sub = np.asarray(node.leaves, dtype=object)[best]
            sub[conf[np.arange(len(best)), best] < self.threshold] = node.name
            out[reach] = sub
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Path confidence of each leaf type (n_cells x n_classes, in [0, 1]; see the class docstring)."""
        X = self._check_input(X)
        col = {t: j for j, t in enumerate(self.classes_)}
        score = np.full((X.shape[0], len(self.classes_)), np.inf)
        for node in self.nodes_:
            prof, _ = self._node_scores(X, node)
            j_of = {t: j for j, t in enumerate(node.leaves)}
            for branch, other in ((node.branch1, node.branch2), (node.branch2, node.branch1)):
                conf = prof[:, [j_of[t] for t in branch]].max(axis=1) - prof[:, [j_of[t] for t in other]].mean(axis=1)
                for t in branch:
                    score[:, col[t]] = np.minimum(score[:, col[t]], conf)
        return (score + 2.0) / 4.0

    def class_scores(self, X: np.ndarray) -> np.ndarray:
        """Native class scores: the path confidence of each leaf type (:meth:`predict_proba`)."""
        return np.asarray(self.predict_proba(X), dtype=np.float64)
