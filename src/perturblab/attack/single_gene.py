"""Single-gene attacks: which genes, modified alone in a cluster, change its label?

Two modes:

- ``"dichotomic"``: adverSCarial's ``advSingleGene`` (R/advSingleGene.R): the
  candidate genes are dealt round-robin into ``first_dichot`` buckets; each
  bucket is split into its even/odd-position halves, each half is evaluated
  with ALL its genes modified together; a half that changes the label is
  recorded if it holds at most ``max_split_size`` genes, else split again.
  Cheap (~1 + 2*first_dichot calls + ~15 per isolated hit) but it can miss a
  gene whose effect is masked by another gene of the same half. Independent
  evaluations of one recursion level are batched into one classifier call
  (same answers, same order as the anchor's depth-first search).
- ``"exhaustive"``: every candidate gene is evaluated alone; returns ALL
  single-gene flips exactly. Genes outside ``classifier.used_genes_`` provably
  cannot change the output and are reported as no-flip without evaluation
  (``n_genes_skipped``); the others are scored in stacked batches (see
  :class:`~perturblab.attack._engine.AttackTarget`) or through a classifier fast
  path (:mod:`perturblab.attack._fastpath`).

A label change is judged against the **baseline**, the classifier's own call on
the unmodified data (1 call). Differs from adverSCarial <= 1.3.x, which compares
with the cluster's name and so reports every gene as a hit when the classifier's
vocabulary differs from the cluster names (e.g. scType's "Naive B cells").
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..exceptions import InputError
from ._engine import AttackTarget
from ._fastpath import additive_calls, additive_stage
from .modifications import get_modification

__all__ = ["SingleGeneResult", "candidate_genes", "single_gene_attack"]

_COLUMNS = ["gene", "n_genes", "target", "modification", "original_label", "new_label", "score", "original_score"]


@dataclass
class SingleGeneResult:
    """Result of :func:`single_gene_attack`.

    ``table`` has one row per flipping gene (per gene group when ``max_split_size > 1``,
    names joined by ``"__"`` as in the anchor) with columns gene, n_genes, target,
    modification, original_label, new_label, score (of the new label), original_score.
    ``n_classifier_calls`` counts cluster-level evaluations (what adverSCarial pays as
    calls, baseline included); ``n_batched_calls`` the classifier invocations actually made.
    """

    table: pd.DataFrame
    target: str
    modification: str
    mode: str
    baseline_label: str
    baseline_score: float
    n_genes: int
    n_genes_evaluated: int
    n_genes_skipped: int
    n_classifier_calls: int
    n_batched_calls: int
    wall_time_s: float
    params: dict = field(default_factory=dict)

    @property
    def genes(self) -> list[str]:
        """The flipping genes (or ``"__"``-joined groups), in discovery order."""
        return self.table["gene"].tolist()

    def to_adata(self, adata, groupby: str | None = None, key_added: str = "perturblab_single_gene", *,
                 clusters=None):
        """Write this result into ``adata`` (the AnnData attacked, or one with the same cells) and return it.

        Keys (scanpy's conventions):

        - ``adata.uns[key_added]["table"]``: the flipping genes (:attr:`table`), rows of other clusters and
          modifications kept from earlier calls, this cluster and modification replaced;
        - ``adata.uns[key_added]["summary"]``: one row per attacked cluster and modification (:meth:`summary`);
        - ``adata.obs[f"{key_added}_n_flipping_genes"]``: for the cells of the attacked cluster, the number of genes
          whose modification alone changes the cluster's answer (NaN for cells of clusters not attacked; a
          dichotomic search can miss genes, see ``uns[key_added]["summary"]["mode"]``);
        - ``adata.obs[f"{key_added}_label_after"]``: for those cells, the cluster's answer after the strongest
          single-gene attack (the flipping gene whose new label holds the largest share of the cluster), or the
          unchanged answer when no gene flips it.

        Parameters
        ----------
        adata
            AnnData with the attacked cells.
        groupby
            ``obs`` column of the clusters (or pass ``clusters``, one label per cell).
        key_added
            Key of the results (use one key per modification: the ``obs`` columns hold the last call's).
        """
        from .._anndata import set_obs, update_uns
        from ._adata import cluster_mask

        mask = cluster_mask(adata, groupby, clusters, self.target)
        update_uns(adata, key_added, {"table": self.table, "summary": pd.DataFrame([self.summary()])},
                   replace_on=("target", "modification"))
        set_obs(adata, f"{key_added}_n_flipping_genes", mask, float(len(self.table)))
        best = self.table.sort_values("score", ascending=False, kind="stable")
        set_obs(adata, f"{key_added}_label_after", mask, str(best["new_label"].iloc[0]) if len(best)
                else self.baseline_label)
        return adata

    def summary(self) -> dict:
        """One-line summary (JSON-serialisable)."""
        return {
            "target": self.target, "modification": self.modification, "mode": self.mode,
            "baseline_label": self.baseline_label, "n_hits": len(self.table), "n_genes": self.n_genes,
            "n_genes_evaluated": self.n_genes_evaluated, "n_genes_skipped": self.n_genes_skipped,
            "n_classifier_calls": self.n_classifier_calls, "n_batched_calls": self.n_batched_calls,
            "wall_time_s": self.wall_time_s,
        }


def candidate_genes(target: AttackTarget, genes=None, excluded_genes=()) -> np.ndarray:
    """Column indices of the attackable genes: ``genes`` (default all, in column order)
    minus ``excluded_genes``. Raises ``ValueError`` naming absent genes or an empty result."""
    idx = np.arange(len(target.genes)) if genes is None else target.gene_indices(list(dict.fromkeys(map(str, genes))))
    if len(excluded_genes):
        excl = target.gene_indices(list(dict.fromkeys(map(str, excluded_genes))), what="excluded gene")
        idx = idx[~np.isin(idx, excl)]
    if len(idx) == 0:
        raise InputError("no gene left to attack after applying genes= and excluded_genes=")
    return idx


class _Values:
    """New values of the candidate genes for the target cells, computed once when columnwise."""

    def __init__(self, target: AttackTarget, mod, idx: np.ndarray):
        self.target, self.mod = target, mod
        self.pos = np.full(len(target.genes), -1, dtype=np.intp)
        self.pos[np.asarray(idx, dtype=np.intp)] = np.arange(len(idx))
        self.V = mod.values(target.X, target.mask, idx) if mod.columnwise else None

    def __call__(self, gene_set: np.ndarray) -> np.ndarray:
        if self.V is None:
            return self.mod.values(self.target.X, self.target.mask, gene_set)
        return self.V[:, self.pos[np.asarray(gene_set, dtype=np.intp)]]


def single_gene_attack(
    classifier,
    X,
    clusters=None,
    target: str | None = None,
    modification="perc99",
    *,
    mode: str = "exhaustive",
    genes=None,
    excluded_genes=(),
    gene_names=None,
    first_dichot: int = 100,
    max_split_size: int = 1,
    change_type: str = "any",
    return_first_found: bool = False,
    fixed_value: float = 3.0,
    fn=None,
    random_state: int = 0,
    max_batch_values: int = 2**24,
    use_fast_path: bool = True,
    groupby: str | None = None,
    key_added: str | None = None,
) -> SingleGeneResult:
    """Find the genes whose modification alone changes the label of cluster ``target``.

    Parameters
    ----------
    classifier
        A fitted per-cell classifier (:mod:`perturblab.classifiers` protocol) or a
        cluster-level callable ``f(X, clusters, target) -> (label, score)``.
    X
        Dense cells x genes model input (``classifier.preprocess(adata)``; for a callable,
        whatever representation it reads, e.g. raw counts for :class:`MClassifier`), or an AnnData
        of raw counts (then the model input is ``classifier.preprocess(X)`` and the clusters come
        from ``X.obs[groupby]``). A sparse (CSR) AnnData stays sparse with perturblab's classifiers: only
        the target cluster's rows over the classifier's genes are made dense
        (:mod:`perturblab.attack._sparse`).
    clusters
        Cluster label per cell (or, with an AnnData, the ``obs`` column; see ``groupby``).
    target
        The cluster to attack.
    modification
        A modification name or :class:`~perturblab.attack.modifications.Modification`
        (``fixed_value``, ``fn``, ``random_state`` are passed to
        :func:`~perturblab.attack.modifications.get_modification`).
    mode
        ``"exhaustive"`` (every gene alone, exact) or ``"dichotomic"`` (adverSCarial).
    genes, excluded_genes
        Restrict the attack to ``genes`` (default: all) minus ``excluded_genes``
        (adverSCarial's ``genes`` / ``exclGenes``). Unlike the anchor, which silently
        ignores unknown names, an absent gene raises ``ValueError``.
    gene_names
        Column names of ``X`` (default: DataFrame columns or ``classifier.genes_``).
    first_dichot, max_split_size, return_first_found
        Dichotomic search parameters (anchor defaults 100, 1, False).
    change_type
        ``"any"``: every label change counts; ``"not_na"``: changes to an abstention
        (``"NA"`` or the classifier's ``unknown_label``) do not.
    max_batch_values
        Memory bound of one stacked batch (matrix entries).
    use_fast_path
        Exhaustive mode: use a classifier fast path (rank-one updates for scType's linear
        scores and the MLP's first layer, :mod:`perturblab.attack._fastpath`) when one
        applies; ``False`` forces the generic stacked-batch path (same answers).
    groupby, key_added
        With an AnnData ``X``: the ``obs`` column of the clusters, and where the result goes back
        (:meth:`SingleGeneResult.to_adata`: ``uns[key_added]`` tables, ``obs[key_added + "_n_flipping_genes"]``
        and ``obs[key_added + "_label_after"]``); ``key_added=None`` (default) writes nothing.

    Returns
    -------
    SingleGeneResult

    Raises
    ------
    ValueError
        Unknown modification / mode / change_type, unknown or empty cluster, absent genes.

    Examples
    --------
    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> clf = plab.classifiers.ScTypeClassifier().fit(train)
    >>> res = plab.attack.single_gene_attack(clf, test, groupby="cell_type", target="B", modification="perc1",
    ...                                      key_added="sg_perc1")
    >>> res.genes, res.baseline_label, res.table["new_label"].tolist()
    (['SSR4', 'MS4A1'], 'Naive B cells', ['Pro-B cells', 'Pro-B cells'])
    >>> b_cell = test.obs["cell_type"] == "B"
    >>> (test.obs.loc[b_cell, "sg_perc1_label_after"].iloc[0],
    ...  int(test.obs.loc[b_cell, "sg_perc1_n_flipping_genes"].iloc[0]))
    ('Pro-B cells', 2)
    """
    from ._adata import attack_inputs

    t0 = time.perf_counter()
    if target is None:
        raise InputError("pass target=: the cluster to attack")
    X, clusters, adata_in = attack_inputs(classifier, X, clusters, groupby, sparse=True)
    if mode not in ("exhaustive", "dichotomic"):
        raise InputError(f"mode must be 'exhaustive' or 'dichotomic', got {mode!r}")
    if change_type not in ("any", "not_na"):
        raise InputError(f"change_type must be 'any' or 'not_na', got {change_type!r}")
    if first_dichot < 1 or max_split_size < 1:
        raise InputError("first_dichot and max_split_size must be >= 1")
    mod = get_modification(modification, fixed_value=fixed_value, fn=fn, random_state=random_state)
    tgt = AttackTarget(classifier, X, clusters, target, gene_names=gene_names, max_batch_values=max_batch_values)
    classifier = tgt.classifier
    idx = candidate_genes(tgt, genes, excluded_genes)
    base = tgt.baseline()
    if mode == "exhaustive":
        hits, n_eval = _exhaustive(tgt, mod, idx, base, change_type, use_fast_path)
    else:
        stage = additive_stage(tgt) if use_fast_path and mod.columnwise else None
        hits = _dichotomic(tgt, _Values(tgt, mod, idx), idx, base, first_dichot, max_split_size, change_type,
                           return_first_found, stage)
        n_eval = len(idx)
    rows = [
        {"gene": "__".join(tgt.genes[g]), "n_genes": len(g), "target": tgt.target, "modification": mod.name,
         "original_label": base.label, "new_label": str(c.label), "score": c.score, "original_score": base.score}
        for g, c in hits
    ]
    res = SingleGeneResult(
        table=pd.DataFrame(rows, columns=_COLUMNS), target=tgt.target, modification=mod.name, mode=mode,
        baseline_label=base.label, baseline_score=base.score, n_genes=len(idx), n_genes_evaluated=n_eval,
        n_genes_skipped=len(idx) - n_eval, n_classifier_calls=tgt.n_calls, n_batched_calls=tgt.n_batched_calls,
        wall_time_s=time.perf_counter() - t0,
        params={"first_dichot": first_dichot, "max_split_size": max_split_size, "change_type": change_type,
                "return_first_found": return_first_found},
    )
    if key_added is not None:
        if adata_in is None:
            raise InputError("key_added writes into an AnnData: pass the AnnData as X with groupby=")
        res.to_adata(adata_in, groupby=groupby, key_added=key_added, clusters=None if groupby else clusters)
    return res


def _exhaustive(tgt: AttackTarget, mod, idx, base, change_type, fast):
    used = tgt.used_gene_mask()[idx]
    ev = idx[used]
    if len(ev) == 0:
        return [], 0
    if mod.columnwise:
        calls = tgt.classify_single_genes(ev, mod.values(tgt.X, tgt.mask, ev), fast=fast)
    else:
        calls = tgt.classify_many([(ev[j : j + 1], mod.values(tgt.X, tgt.mask, ev[j : j + 1])) for j in range(len(ev))])
    hits = [(ev[j : j + 1], c) for j, c in enumerate(calls) if tgt.is_flip(c, base, change_type)]
    return hits, len(ev)


def _dichotomic(tgt, values, idx, base, first_dichot, max_split_size, change_type, return_first_found, stage=None):
    # Nodes are (path, genes); a path orders results as the anchor's depth-first search does. With an additive
    # first stage (_fastpath.additive_stage) a gene set costs its own genes, not a whole copy of the cells.
    used = tgt.used_gene_mask() if values.V is not None else np.ones(len(tgt.genes), dtype=bool)

    def evaluate(nodes):  # gene-wise values: genes outside used_genes_ change nothing and are not written
        items = [(g[used[g]], values(g[used[g]])) for _, g in nodes]
        if stage is None:
            return tgt.classify_many(items)
        return additive_calls(tgt, stage, [stage.delta(g, v) for g, v in items], items.__getitem__)

    stack = []
    for b in range(min(first_dichot, len(idx)) - 1, -1, -1):
        bucket = idx[b::first_dichot]
        stack.extend(_halves((b,), bucket))
    hits = []
    while stack:
        width = 1 if return_first_found else len(stack)
        nodes = [stack.pop() for _ in range(width)]
        calls = evaluate(nodes)
        children = []
        for (path, g), c in zip(nodes, calls):
            if c.label == base.label:
                continue
            if len(g) <= max_split_size:
                if tgt.is_flip(c, base, change_type):
                    hits.append((path, g, c))
                    if return_first_found:
                        return [(g, c)]
            else:
                children.extend(_halves(path, g))
        stack.extend(children)
    hits.sort(key=lambda h: h[0])
    return [(g, c) for _, g, c in hits]


def _halves(path, genes):
    """The anchor's ``.custSplit(genes, c(1, 2))``: even positions first, then odd (last pushed = first popped)."""
    out = [(path + (1,), genes[1::2]), (path + (0,), genes[0::2])]
    return [n for n in out if len(n[1])]
