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


def average_ranks(X: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share the mean of their positions) of every row of ``X``.

    Equals ``scipy.stats.rankdata(X, axis=1)`` (method ``"average"``), exactly: every rank is a
    half-integer. About twice as fast: one unstable ``argsort`` per row and flat index arithmetic.
    """
    X = np.asarray(X)
    n, m = X.shape
    if X.size == 0:
        return np.zeros((n, m))
    index = np.dtype(np.int32 if n * m < 2**31 else np.int64)
    order: np.ndarray = np.argsort(X, axis=1).astype(index, copy=False)
    S = np.take_along_axis(X, order, axis=1)
    first = np.empty((n, m), dtype=bool)  # first position of each tie group
    first[:, 0] = True
    np.not_equal(S[:, 1:], S[:, :-1], out=first[:, 1:])
    new = first.ravel()
    starts = np.flatnonzero(new).astype(index, copy=False)
    ends = np.append(starts[1:], n * m).astype(index) - 1  # groups never span rows: every row opens one
    group_rank = (starts + ends) * 0.5 + 1.0 - (starts // m) * m  # mean 1-based position within the row
    flat = order + (np.arange(n, dtype=index) * m)[:, None]
    R = np.empty(n * m)
    R[flat.ravel()] = group_rank[np.cumsum(new, dtype=index) - 1]
    return R.reshape(n, m)


def _rank_cor(R: np.ndarray, rp: np.ndarray) -> np.ndarray:
    """Pearson correlation of rank rows ``R`` (cells x m average ranks) with the centred unit rank vector ``rp``.

    Average ranks always sum to ``m (m + 1) / 2``, so the centred ranks are the half-integers ``R - (m + 1) / 2``
    and their sum of squares is exact in any order; the products with ``rp`` are summed row by row, so a row's
    value never depends on the other rows of the batch (the single-gene fast path relies on it).
    """
    return _cor_centred(R - (R.shape[1] + 1) / 2, rp)


def _cor_centred(Rc: np.ndarray, rp: np.ndarray) -> np.ndarray:
    norm = np.sqrt((Rc * Rc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, (Rc * rp).sum(axis=1) / norm, 0.0)  # a constant row: 0, as CHETAH's NA


def _unit_profile_ranks(profile: np.ndarray) -> np.ndarray:
    return _centred_unit_rows(average_ranks(np.asarray(profile, dtype=np.float64)[None, :]))[0]


def spearman_to_profile(X: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Spearman correlation of every row of ``X`` (cells x genes) with ``profile`` (genes,).

    Average ranks for ties (as R's ``cor(method="spearman")``); a constant row or profile gives 0
    (CHETAH replaces NA correlations by 0). Vectorised: rows ranked once, then one product per row.
    """
    X = np.asarray(X)
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    return _rank_cor(average_ranks(X), _unit_profile_ranks(profile))  # ranks are the same in float32 and float64


def _ranks_one_changed(B: np.ndarray, RB2: np.ndarray, pos: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Twice the average ranks (int16) of the rows of ``B`` (cells x m) with column ``pos[i]`` set to ``new[i]``
    (cells,), for each i, from twice the unmodified rows' ranks ``RB2``: variants x cells x m, equal to
    ``2 * average_ranks`` of the modified rows (exact integers).

    With ``a`` the old and ``b`` the new value of the changed entry, another entry ``x`` gains
    ``[b < x] - [a < x] + ([b == x] - [a == x]) / 2`` ranks; the changed entry ranks
    ``#{x < b} + (#{x == b} + 2) / 2`` over the other entries.
    """
    a = B[:, pos].T[:, :, None]  # variants x cells x 1
    b = new[:, :, None]
    Bv = B[None]
    gt_b, eq_b = Bv > b, Bv == b
    R2 = RB2[None] + 2 * gt_b.view(np.int8) + eq_b.view(np.int8)
    R2 -= 2 * (Bv > a).view(np.int8)
    R2 -= (Bv == a).view(np.int8)
    m = B.shape[1]
    less = m - gt_b.sum(axis=2) - eq_b.sum(axis=2) - (a < b)[:, :, 0]  # over the other entries
    eq = eq_b.sum(axis=2) - (a == b)[:, :, 0]
    R2[np.arange(len(pos))[:, None], np.arange(B.shape[0])[None, :], pos[:, None]] = 2 * less + eq + 2
    return R2


@dataclass
class _Node:
    """One node of the classification tree: its leaf types split into two branches, and per leaf
    the selected genes, the type's reference profile on them (and its centred unit ranks), the genes'
    positions among the classifier's ``used_genes_`` and the sorted reference correlations."""

    name: str
    branch1: list[str]
    branch2: list[str]
    genes: dict[str, np.ndarray] = field(default_factory=dict)
    profile: dict[str, np.ndarray] = field(default_factory=dict)
    profile_ranks: dict[str, np.ndarray] = field(default_factory=dict)
    used_cols: dict[str, np.ndarray] = field(default_factory=dict)
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
                node.profile_ranks[t] = _unit_profile_ranks(prof[t][idx])
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
        for node in self.nodes_:
            node.used_cols = {t: np.searchsorted(self.used_genes_, g) for t, g in node.genes.items()}
        return self

    def _profile_score(self, node: _Node, t: str, cor: np.ndarray) -> np.ndarray:
        """CHETAH's profile score of cells with correlation ``cor`` to type ``t``'s profile at ``node``."""
        good = np.searchsorted(node.cor_type[t], cor, side="right") / len(node.cor_type[t])
        false = np.searchsorted(node.cor_other[t], cor, side="right") / len(node.cor_other[t])
        return good - (1.0 - false)

    def _node_scores(self, Xu: np.ndarray, k: int, rows: np.ndarray | None = None) -> np.ndarray:
        """Profile scores (cells x leaves) at node ``k`` of the rows ``rows`` (default all) of ``Xu``, the
        model input restricted to ``used_genes_`` (gathered once: far fewer cache misses than 200 columns of
        the whole transcriptome per type)."""
        node = self.nodes_[k]
        prof = np.empty((Xu.shape[0] if rows is None else len(rows), len(node.leaves)))
        for j, t in enumerate(node.leaves):
            at = node.used_cols[t]
            sub = Xu[:, at] if rows is None else Xu[np.ix_(rows, at)]
            prof[:, j] = self._profile_score(node, t, _rank_cor(average_ranks(sub), node.profile_ranks[t]))
        return prof

    def _node_answer(self, node: _Node, prof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index (into node.leaves) of each row's best type and whether its confidence reaches the threshold."""
        col = {t: j for j, t in enumerate(node.leaves)}
        best = np.argmax(prof, axis=-1)
        conf = np.empty_like(prof)
        for j, t in enumerate(node.leaves):
            conf[..., j] = prof[..., j] - prof[..., [col[o] for o in node.other_branch(t)]].mean(axis=-1)
        sure = np.take_along_axis(conf, best[..., None], axis=-1)[..., 0] >= self.threshold
        return best, sure

    def predict(self, X: np.ndarray) -> np.ndarray:
        """CHETAH's descent (``nodeDown``): leaf type, or "Unassigned"/"Node<k>" where confidence is low."""
        X = self._check_input(X)
        names, leaf_codes, node_codes = self._answer_codes()
        X = X[:, self.used_genes_]
        out = np.full(X.shape[0], -1, dtype=np.intp)
        for k, node in enumerate(self.nodes_):
            rows = None if k == 0 else np.flatnonzero(np.isin(out, leaf_codes[k]))
            if rows is not None and not len(rows):
                continue
            best, sure = self._node_answer(node, self._node_scores(X, k, rows))
            out[slice(None) if rows is None else rows] = np.where(sure, leaf_codes[k][best], node_codes[k])
        return names[out]

    def _answer_codes(self) -> tuple[np.ndarray, list[np.ndarray], list[int]]:
        """The sorted possible answers (cell types, "Unassigned", "Node<k>"), and per node the codes of its
        leaves and its own code (the answer of a cell that stops there)."""
        names = np.asarray(sorted(set(map(str, self.classes_)) | {n.name for n in self.nodes_}), dtype=object)
        code = {t: i for i, t in enumerate(names)}
        return (names, [np.asarray([code[t] for t in n.leaves], dtype=np.intp) for n in self.nodes_],
                [code[n.name] for n in self.nodes_])

    def single_gene_labels(self, Xc: np.ndarray, gene_idx: np.ndarray, V: np.ndarray):
        """Exact per-cell answers of each single-gene variant of the rows ``Xc`` (the attack engine's fast path).

        Gene ``gene_idx[i]`` takes the values ``V[:, i]`` (cells,) in every row. A changed gene only moves the
        correlations of the (node, type) pairs whose selected genes hold it: their ranks are updated in place
        (:func:`_ranks_one_changed`), the other pairs keep the unmodified rows' scores, and the tree descent runs
        on the result. The answers equal :meth:`predict` on the modified rows: ranks are exact half-integers and
        correlations are row-wise sums.

        Returns
        -------
        (names, labels)
            ``names``: the sorted possible answers (cell types, "Unassigned", "Node<k>"); ``labels(s, e)``:
            answer codes into ``names`` (genes ``s:e`` x cells).
        """
        Xc = self._check_input(Xc)
        V = np.asarray(V, dtype=np.float32)
        names, leaf_codes, node_codes = self._answer_codes()
        pairs = []  # per node: per leaf (columns, sorted gene indices, unmodified ranks, profile ranks)
        base = []
        for k, node in enumerate(self.nodes_):
            per = []
            for t in node.leaves:
                B = np.ascontiguousarray(Xc[:, node.genes[t]], dtype=np.float32)
                RB2 = (2 * average_ranks(B)).astype(np.int16 if B.shape[1] < 16_000 else np.int32)  # exact integers
                per.append((node.genes[t], B, RB2, node.profile_ranks[t]))
            pairs.append(per)
            base.append(self._node_scores(Xc[:, self.used_genes_], k))
        n = Xc.shape[0]

        def labels(s: int, e: int) -> np.ndarray:
            g = np.asarray(gene_idx[s:e])
            out = np.full((e - s, n), -1, dtype=np.intp)
            for k, node in enumerate(self.nodes_):
                prof = np.repeat(base[k][None], e - s, axis=0)
                for j, (t, (cols, B, RB, rp)) in enumerate(zip(node.leaves, pairs[k], strict=True)):
                    pos = np.searchsorted(cols, g)
                    hit = np.flatnonzero((pos < len(cols)) & (cols[np.minimum(pos, len(cols) - 1)] == g))
                    for c in range(0, len(hit), 16):  # memory: 16 variants x cells x genes at a time
                        h = hit[c : c + 16]
                        R2 = _ranks_one_changed(B, RB, pos[h], V[:, s + h].T)
                        Rc = R2.reshape(-1, R2.shape[2]) * 0.5 - (R2.shape[2] + 1) / 2  # = average ranks, centred
                        cor = _cor_centred(Rc, rp).reshape(len(h), n)
                        prof[h, :, j] = self._profile_score(node, t, cor)
                best, sure = self._node_answer(node, prof)
                answer = np.where(sure, leaf_codes[k][best], node_codes[k])
                reach = np.ones_like(out, dtype=bool) if k == 0 else np.isin(out, leaf_codes[k])
                out[reach] = answer[reach]
            return out

        return names, labels

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Path confidence of each leaf type (n_cells x n_classes, in [0, 1]; see the class docstring)."""
        X = self._check_input(X)[:, self.used_genes_]
        col = {t: j for j, t in enumerate(self.classes_)}
        score = np.full((X.shape[0], len(self.classes_)), np.inf)
        for k, node in enumerate(self.nodes_):
            prof = self._node_scores(X, k)
            j_of = {t: j for j, t in enumerate(node.leaves)}
            for branch, other in ((node.branch1, node.branch2), (node.branch2, node.branch1)):
                conf = prof[:, [j_of[t] for t in branch]].max(axis=1) - prof[:, [j_of[t] for t in other]].mean(axis=1)
                for t in branch:
                    score[:, col[t]] = np.minimum(score[:, col[t]], conf)
        return (score + 2.0) / 4.0

    def class_scores(self, X: np.ndarray) -> np.ndarray:
        """Native class scores: the path confidence of each leaf type (:meth:`predict_proba`)."""
        return np.asarray(self.predict_proba(X), dtype=np.float64)
