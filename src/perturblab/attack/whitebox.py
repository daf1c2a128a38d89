"""White-box attacks (FGSM, PGD) on differentiable classifiers, under biological budgets.

For a classifier following :class:`~perturblab.classifiers.base.DifferentiableClassifier` (the MLP,
scType's linear scores, CellTypist, the calibrated SVMs, any wrapped ``torch.nn.Module``), the
attack on cluster ``target``:

1. computes the gradient of the loss over the cluster's cells: by default the margin loss
   ``max_{j != y} s_j - s_y`` of the class scores ``s`` (Carlini and Wagner's, which does not saturate:
   CellTypist's decision scores differ by thousands and their cross-entropy has an exactly zero
   gradient in float32), with ``y`` the cluster's original label (the majority of the per-cell argmax
   labels) to increase, or ``new_target`` to decrease for a targeted attack; ``loss="cross_entropy"``
   uses the cross-entropy instead;
2. keeps the ``k`` genes of highest first-order gain within the budget
   (:func:`~perturblab.attack.budget.rank_genes`): the same genes in every cell (L0);
3. runs the adversarial-robustness-toolbox's FGSM (``FastGradientMethod``, one signed step of the
   full amplitude) or PGD (``ProjectedGradientDescentPyTorch``, ``steps`` signed steps of
   ``step_size x amplitude``, projected on the L-infinity ball) on those genes only, with each
   gene's own amplitude (``amplitude x (hi - lo)``) and bounds (observed range or [perc1, perc99],
   :func:`~perturblab.attack.budget.gene_bounds`) as ART's per-feature ``eps`` and ``clip_values``;
4. judges the result with the classifier's own ``predict`` (abstentions included): the cluster
   **flips** when its majority answer changes (adverSCarial's definition); the per-cell success
   rate is the fraction of the cluster's cells whose answer changed (or, targeted, became the target).

Spaces: ``space="model_input"`` attacks ``classifier.preprocess`` output (scaled z-scores for scType /
SVM, log1p for the others), like the other attacks; ``space="counts"`` attacks raw counts (cells x
all genes of the dataset) through the classifier's own preprocessing made differentiable
(:func:`~perturblab.classifiers.torch_preprocess`), with the library size preserved by compositional
closure (:mod:`perturblab.attack.budget`) and the attacked counts rounded to integers at the end.

PGD starts from the data (no random start) and is deterministic; ``random_start=True`` adds ART's
random start under a seeded, then restored, numpy state (``random_state``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..classifiers.base import is_abstention, is_differentiable, majority_vote
from ..exceptions import InputError, UnknownNameError
from .budget import Budget, closure_gradient, gene_bounds, rank_genes
from .cgd import label_distribution

__all__ = ["MarginLoss", "WhiteBoxResult", "budget_curve", "whitebox_attack"]

_METHODS = ("fgsm", "pgd")
_SPACES = ("model_input", "counts")
_LOSSES = ("margin", "cross_entropy")


@dataclass
class WhiteBoxResult:
    """Result of :func:`whitebox_attack`.

    Attributes
    ----------
    X
        The attacked matrix (all cells, the attack's space; only the cluster's rows differ).
    genes
        The attacked genes (at most ``budget.k``), by decreasing gain.
    summary
        One row (dict): see :func:`whitebox_attack`.
    label_distribution
        Answers before/after over the cluster (:func:`~perturblab.attack.cgd.label_distribution`).
    labels_before, labels_after
        Per-cell answers (``predict``) of the cluster's cells.
    cell_success
        Per cell of the cluster: its answer changed (untargeted) or became the target.
    """

    X: np.ndarray
    genes: list[str]
    summary: dict
    label_distribution: pd.DataFrame
    labels_before: np.ndarray
    labels_after: np.ndarray
    cell_success: np.ndarray
    budget: Budget = field(default_factory=Budget)

    @property
    def flipped(self) -> bool:
        return bool(self.summary["flipped"])

    def to_adata(self, adata, groupby: str | None = None, key_added: str = "perturblab_whitebox", *, clusters=None):
        """Write this result into ``adata`` (the AnnData attacked) and return it.

        Keys: ``adata.uns[key_added]["summary"]`` (one row per attacked cluster, method and budget);
        ``adata.obs[f"{key_added}_label_after"]``: each attacked cell's answer after the attack;
        ``adata.obs[f"{key_added}_success"]``: 1.0 where the cell's answer changed (or reached the target), 0.0 where
        not, NaN outside the attacked cluster.
        """
        from .._anndata import set_obs, update_uns
        from ._adata import cluster_mask

        target = str(self.summary["cluster"])
        mask = cluster_mask(adata, groupby, clusters, target)
        row = {k: (";".join(map(str, v)) if isinstance(v, list | tuple) else v) for k, v in self.summary.items()}
        update_uns(adata, key_added, {"summary": pd.DataFrame([row])}, replace_on=("cluster", "method", "k"))
        set_obs(adata, f"{key_added}_label_after", mask, np.asarray(self.labels_after).astype(str).astype(object))
        set_obs(adata, f"{key_added}_success", mask, np.asarray(self.cell_success, dtype=float))
        return adata


def _torch():
    import torch

    return torch


if TYPE_CHECKING:
    from torch.nn import Module as _Module
else:
    _Module = _torch().nn.Module


class MarginLoss(_Module):
    """Carlini-Wagner margin ``sum over cells of (max_{j != y} s_j - s_y)`` of class scores ``s``.

    ``target``: class indices, or one-hot rows (what the adversarial-robustness-toolbox passes to a loss
    it does not know). Maximised, it pushes ``y`` below the best other class; minimised, it lifts ``y``
    above all others. Its gradient never vanishes, whatever the scale of the scores.
    """

    def forward(self, scores, target):
        torch = _torch()
        y = target.argmax(dim=1) if target.ndim == 2 else target.long()
        own = scores.gather(1, y.view(-1, 1)).squeeze(1)
        others = scores.masked_fill(torch.nn.functional.one_hot(y, scores.shape[1]).bool(), float("-inf"))
        return (others.max(dim=1).values - own).sum()


def _loss_module(loss: str):
    if loss not in _LOSSES:
        raise InputError(f"loss must be one of {', '.join(_LOSSES)}, got {loss!r}")
    return MarginLoss() if loss == "margin" else _torch().nn.CrossEntropyLoss(reduction="sum")


class _Setup:
    """Everything an attack on one cluster needs once: rows, scores module, bounds, gradient."""

    def __init__(self, classifier, X, clusters, target, *, space, var_names, new_target, bounds, nonnegative,
                 library_size, loss="margin"):
        from ..classifiers.wrap import as_classifier

        torch = _torch()
        classifier = as_classifier(classifier, genes=var_names if space == "model_input" else None,
                                   where="the white-box attack")
        if not is_differentiable(classifier):
            raise InputError(f"{type(classifier).__name__} is not differentiable (no torch_module()); "
                             "use the single-gene, max-change or CGD attacks, or wrap the model as a torch module")
        if space not in _SPACES:
            raise InputError(f"space must be one of {', '.join(_SPACES)}, got {space!r}")
        X = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        clusters = np.asarray(clusters).astype(str)
        if X.ndim != 2 or clusters.shape != (X.shape[0],):
            raise InputError(f"X must be cells x genes with one cluster label per cell; got X {X.shape}, "
                             f"{clusters.size} labels")
        if not np.isfinite(X).all():
            raise InputError("X contains NaN or infinite values; remove or impute them first")
        self.rows = np.flatnonzero(clusters == str(target))
        if not len(self.rows):
            raise UnknownNameError("cluster", target, set(clusters.tolist()))
        self.classifier, self.X, self.space, self.target = classifier, X, space, str(target)
        self.module = classifier.torch_module()
        self.device = next(iter([*self.module.parameters(), *self.module.buffers()]), torch.zeros(0)).device
        if space == "counts":
            from ..classifiers import torch_preprocess

            if var_names is None:
                raise InputError("space='counts' needs var_names= (the genes of the count matrix's columns)")
            self.genes = np.asarray(var_names).astype(str)
            if (X < 0).any():
                raise InputError("space='counts' expects raw counts; X has negative values")
            self.pre = torch_preprocess(classifier, self.genes).to(self.device)
        else:
            self.genes = np.asarray(var_names if var_names is not None else classifier.genes_).astype(str)
            self.pre = None
        if self.genes.shape != (X.shape[1],):
            raise InputError(f"{self.genes.size} gene names for {X.shape[1]} columns of X")
        self.library_size = library_size
        self.loss = _loss_module(loss)
        if nonnegative is None:  # expression spaces are non-negative; scaled z-scores are not
            nonnegative = space == "counts" or getattr(classifier, "representation", "log1p") in ("counts", "log1p")
        self.nonnegative = bool(nonnegative or space == "counts")
        self.lo, self.hi = gene_bounds(X, bounds, nonnegative=self.nonnegative)
        self.Xc = X[self.rows]
        self.classes = np.asarray(classifier.classes_).astype(str)
        with torch.no_grad():
            S = self._scores_full(torch.from_numpy(self.Xc).to(self.device)).cpu().numpy()
        self.original = int(np.bincount(S.argmax(axis=1), minlength=len(self.classes)).argmax())
        if new_target is None:
            self.new = None
        elif str(new_target) not in set(self.classes):
            raise UnknownNameError("new target", new_target, self.classes)
        else:
            self.new = int(np.flatnonzero(self.classes == str(new_target))[0])
        self.grad = self._gradient()
        self.labels_before = np.asarray(classifier.predict(self.model_input(self.Xc))).astype(object)

    # -- differentiable views ------------------------------------------------------------------
    def _scores_full(self, rows):
        """Class scores of full rows of the attack space (no closure: counts as given)."""
        if self.pre is None:
            return self.module(rows)
        return self.module(self.pre(rows))

    def _gradient(self) -> np.ndarray:
        """Cells x genes gradient of the loss the attack increases, at the unmodified cluster rows."""
        torch = _torch()
        x = torch.from_numpy(self.Xc).to(self.device).requires_grad_(True)
        y = torch.full((len(self.rows),), self.original if self.new is None else self.new, dtype=torch.long,
                       device=self.device)
        if self.pre is not None and self.library_size == "preserve":
            lib = torch.from_numpy(self.Xc.sum(axis=1)).to(self.device)
            scores = self.module(self.pre(x, library_size=lib))
        else:
            scores = self._scores_full(x)
        (g,) = torch.autograd.grad(self.loss(scores, y), x)
        g = g.detach().cpu().numpy().astype(np.float64)
        if self.pre is not None and self.library_size == "preserve":
            g = closure_gradient(g, self.Xc, self.Xc.sum(axis=1))
        return g if self.new is None else -g

    def model_input(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the attack space -> the classifier's model input (numpy, its own preprocessing)."""
        if self.space == "model_input":
            return rows
        import anndata as ad

        return self.classifier.preprocess(ad.AnnData(np.asarray(rows, dtype=np.float32),
                                                     var=pd.DataFrame(index=self.genes)))

    def embed(self, idx: np.ndarray):
        """``torch.nn.Module``: the k attacked genes of the cluster's cells (cells x k) -> class scores."""
        return _Embedded(self, idx)


class _Embedded(_Module):
    """The cluster's rows with columns ``idx`` replaced by the input (ART attacks this k-wide input).

    In raw-count space with ``library_size="preserve"`` the other genes are scaled so that every
    cell keeps its library size (compositional closure)."""

    def __init__(self, setup: _Setup, idx: np.ndarray):
        super().__init__()
        torch = _torch()
        self.setup = setup
        base = torch.from_numpy(setup.Xc).to(setup.device)
        idx_t = torch.as_tensor(np.asarray(idx, dtype=np.int64), device=setup.device)
        self.register_buffer("base", base)
        self.register_buffer("idx", idx_t)
        self.preserve = setup.pre is not None and setup.library_size == "preserve"
        if self.preserve:
            lib = base.sum(dim=1)
            rest = lib - base.index_select(1, idx_t).sum(dim=1)
            self.register_buffer("lib", lib)
            self.register_buffer("rest", rest)

    def forward(self, z):
        torch = _torch()
        if z.shape[0] != self.base.shape[0]:  # ART must pass the cluster's cells in one batch, in order
            raise InputError(f"the attack module expects the cluster's {self.base.shape[0]} cells in one batch, "
                             f"got {z.shape[0]}")
        z = z.to(self.base.dtype)
        if self.preserve:
            left = torch.clamp(self.lib - z.sum(dim=1), min=0.0)
            f = torch.where(self.rest > 0, left / torch.where(self.rest > 0, self.rest, torch.ones_like(self.rest)),
                            torch.ones_like(self.rest))
            rows = (self.base * f[:, None]).index_copy(1, self.idx, z)
            return self.setup.module(self.setup.pre(rows, library_size=self.lib))
        rows = self.base.index_copy(1, self.idx, z)
        return self.setup._scores_full(rows)


def _art_attack(setup: _Setup, idx, budget: Budget, method: str, steps: int, step_size: float, random_start: bool,
                random_state: int) -> np.ndarray:
    """Attacked values (cells x k) of genes ``idx`` by ART's FGSM / PGD."""
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescentPyTorch
    from art.estimators.classification import PyTorchClassifier

    lo, hi = setup.lo[idx], setup.hi[idx]
    eps = (budget.amplitude * (hi - lo)).astype(np.float32)
    n = len(setup.rows)
    est = PyTorchClassifier(model=setup.embed(idx), loss=setup.loss, input_shape=(len(idx),),
                            nb_classes=len(setup.classes), clip_values=(lo.copy(), hi.copy()),
                            device_type="gpu" if setup.device.type == "cuda" else "cpu")
    targeted = setup.new is not None
    y = np.full(n, setup.original if setup.new is None else setup.new)
    y = np.eye(len(setup.classes), dtype=np.float32)[y]
    x0 = np.ascontiguousarray(setup.Xc[:, idx], dtype=np.float32)
    if method == "fgsm":
        attack = FastGradientMethod(est, norm=np.inf, eps=eps, eps_step=eps.copy(), targeted=targeted, batch_size=n)
        return attack.generate(x=x0, y=y)
    attack = ProjectedGradientDescentPyTorch(est, norm=np.inf, eps=eps, eps_step=(step_size * eps).astype(np.float32),
                                             max_iter=int(steps), targeted=targeted, batch_size=n,
                                             num_random_init=1 if random_start else 0, verbose=False)
    if not random_start:
        return attack.generate(x=x0, y=y)
    state = np.random.get_state()  # ART draws its random start from numpy's global generator
    np.random.seed(int(random_state))
    try:
        return attack.generate(x=x0, y=y)
    finally:
        np.random.set_state(state)


def _finish_counts(setup: _Setup, idx, z: np.ndarray, budget: Budget) -> tuple[np.ndarray, float]:
    """Attacked count rows from the attacked genes' values: rounding, closure, library check."""
    rows = setup.Xc.astype(np.float64).copy()
    z = np.asarray(z, dtype=np.float64)
    if budget.round_counts:
        z = np.clip(np.rint(z), setup.lo[idx], setup.hi[idx])
    lib = rows.sum(axis=1)
    if budget.library_size == "preserve":
        s = z.sum(axis=1)
        over = s > lib  # the attacked genes alone exceed the library: shrink them to fit (rare)
        if over.any():
            z[over] *= (lib[over] / s[over])[:, None]
            if budget.round_counts:
                z[over] = np.floor(z[over])
        rest = lib - rows[:, idx].sum(axis=1)
        f = np.where(rest > 0, (lib - z.sum(axis=1)) / np.where(rest > 0, rest, 1.0), 1.0)
        rows *= f[:, None]
    rows[:, idx] = z
    err = float(np.max(np.abs(rows.sum(axis=1) - lib) / np.maximum(lib, 1.0))) if len(rows) else 0.0
    return rows.astype(np.float32), err


def _run(setup: _Setup, budget: Budget, method: str, *, steps: int, step_size: float, how: str, candidates,
         random_start: bool, random_state: int, name: str | None) -> WhiteBoxResult:
    t0 = time.perf_counter()
    if method not in _METHODS:
        raise InputError(f"method must be one of {', '.join(_METHODS)}, got {method!r}")
    order, _ = rank_genes(setup.grad, setup.Xc, setup.lo, setup.hi, budget.amplitude, how=how, candidates=candidates)
    idx = np.sort(order[: int(budget.k)]) if len(order) else order
    ranked = order[: int(budget.k)]
    rows = setup.Xc.copy()
    lib_err = 0.0
    if len(idx):
        z = _art_attack(setup, idx, budget, method, steps, step_size, random_start, random_state)
        if setup.space == "counts":
            rows, lib_err = _finish_counts(setup, idx, z, budget)
        else:
            rows[:, idx] = z
    after = np.asarray(setup.classifier.predict(setup.model_input(rows))).astype(object)
    before = setup.labels_before
    if setup.new is None:
        success = after.astype(str) != before.astype(str)
    else:
        success = after.astype(str) == setup.classes[setup.new]
    call_b, call_a = majority_vote(before), majority_vote(after)
    delta = np.abs(rows[:, idx].astype(np.float64) - setup.Xc[:, idx]) if len(idx) else np.zeros((len(rows), 0))
    span = np.maximum(setup.hi[idx] - setup.lo[idx], 1e-12) if len(idx) else np.zeros(0)
    X = setup.X.copy()
    X[setup.rows] = rows
    summary = {
        "classifier": name or type(setup.classifier).__name__, "cluster": setup.target, "method": method,
        "space": setup.space, "k": int(budget.k), "n_genes": len(idx), "amplitude": float(budget.amplitude),
        "bounds": budget.bounds, "nonnegative": budget.nonnegative,
        "library_size": budget.library_size if setup.space == "counts" else "",
        "n_cells": len(setup.rows), "original_label": call_b.label, "new_label": call_a.label,
        "new_target": "" if setup.new is None else str(setup.classes[setup.new]),
        "flipped": call_a.label != call_b.label, "cell_success_rate": float(success.mean()),
        "frac_cells_changed": float(np.mean(after.astype(str) != before.astype(str))),
        "frac_abstention_before": float(is_abstention(setup.classifier, before).mean()),
        "frac_abstention_after": float(is_abstention(setup.classifier, after).mean()),
        "genes": ";".join(setup.genes[ranked]),
        "mean_abs_change": float(delta.mean()) if delta.size else 0.0,
        "max_range_fraction": float((delta / span).max()) if delta.size else 0.0,
        "n_genes_changed_per_cell": float((delta > 1e-6).sum(axis=1).mean()) if delta.size else 0.0,
        "library_rel_error": lib_err, "steps": 1 if method == "fgsm" else int(steps),
        "loss": "margin" if isinstance(setup.loss, MarginLoss) else "cross_entropy",
        "wall_time_s": time.perf_counter() - t0,
    }
    return WhiteBoxResult(X=X, genes=list(setup.genes[ranked]), summary=summary,
                          label_distribution=label_distribution(before, after, setup.classifier),
                          labels_before=before, labels_after=after, cell_success=success, budget=budget)


def whitebox_attack(
    classifier,
    X,
    clusters=None,
    target: str | None = None,
    *,
    method: str = "pgd",
    k: int = 10,
    amplitude: float = 1.0,
    bounds: str = "range",
    nonnegative: bool | None = None,
    space: str = "model_input",
    var_names=None,
    library_size: str = "preserve",
    round_counts: bool = True,
    new_target: str | None = None,
    steps: int = 20,
    step_size: float = 0.25,
    gene_ranking: str = "gain",
    loss: str = "margin",
    genes=None,
    random_start: bool = False,
    random_state: int = 0,
    name: str | None = None,
    groupby: str | None = None,
    key_added: str | None = None,
) -> WhiteBoxResult:
    """FGSM or PGD on the cells of one cluster, at most ``k`` genes, each within its plausible range.

    Parameters
    ----------
    classifier
        A fitted differentiable classifier (``torch_module()``; :mod:`perturblab.classifiers`).
    X
        Dense cells x genes: the model input (``classifier.preprocess(adata)``) for
        ``space="model_input"``, raw counts over all genes of the dataset for ``space="counts"``.
    clusters, target
        Cluster label per cell; the cluster to attack.
    method
        ``"pgd"`` (default) or ``"fgsm"``.
    k, amplitude, bounds, nonnegative, library_size, round_counts
        The budget (:class:`~perturblab.attack.budget.Budget`): at most ``k`` genes, each value moved
        at most ``amplitude x`` its gene's allowed range, within ``bounds`` (``"range"``: observed
        min/max over all cells; ``"percentile"``: perc1/perc99). ``nonnegative`` raises negative
        lower bounds to 0; ``None`` (default) decides by space: counts and log1p inputs are
        non-negative, scaled z-scores (scType, SVM) are not (their observed minimum is already the
        z-score of zero expression); counts are always non-negative.
    space
        ``"model_input"`` (default) or ``"counts"``.
    var_names
        Column names of ``X`` (required for counts; default ``classifier.genes_``).
    new_target
        Targeted attack towards this class (default: untargeted, away from the original label).
    steps, step_size
        PGD iterations and step as a fraction of the amplitude (ART's ``eps_step = step_size x eps``).
    gene_ranking
        ``"gain"`` (first-order loss gain within the budget, default) or ``"gradient"`` (mean absolute gradient).
    loss
        ``"margin"`` (default, :class:`MarginLoss`) or ``"cross_entropy"``.
    genes
        Optional candidate genes (names); default every gene that can move.
    random_start, random_state
        PGD random start (ART's ``num_random_init=1``) seeded by ``random_state``.
    name
        Classifier name for the summary (default: its class name).
    groupby, key_added
        With an AnnData of raw counts as ``X``: the ``obs`` column of the clusters (the model input is
        ``classifier.preprocess(X)``; with ``space="counts"``, ``X.X`` and its ``var_names``), and where the result
        goes back (:meth:`WhiteBoxResult.to_adata`); ``key_added=None`` writes nothing.

    Returns
    -------
    WhiteBoxResult
        ``summary``: classifier, cluster, method, space, k, n_genes, amplitude, bounds, nonnegative, library_size,
        n_cells, original_label, new_label (majority answers), new_target, flipped, cell_success_rate,
        frac_cells_changed, frac_abstention_before/after, genes (";"-joined, by gain), mean_abs_change
        (attack-space units), max_range_fraction, n_genes_changed_per_cell, library_rel_error
        (counts), steps, loss, wall_time_s.

    Raises
    ------
    InputError
        A non-differentiable classifier, bad budget / method / space, shapes, NaN, negative counts.
    UnknownNameError
        Unknown cluster, ``new_target`` or candidate gene.

    Examples
    --------
    A logistic regression on the log1p expression of ten marker genes, attacked by PGD in the NK cells with at
    most two genes changed:

    >>> import scanpy as sc
    >>> from sklearn.linear_model import LogisticRegression
    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> genes = ["MS4A1", "CD79A", "NKG7", "GNLY", "CD3E", "IL7R", "LYZ", "CST3", "FCGR3A", "PPBP"]
    >>> log = sc.pp.log1p(sc.pp.normalize_total(train, target_sum=1e4, copy=True), copy=True)
    >>> lr = LogisticRegression(max_iter=1000).fit(log[:, genes].X.toarray(), train.obs["cell_type"].astype(str))
    >>> clf = plab.classifiers.wrap(lr, genes=genes, representation="log1p")  # linear: differentiable
    >>> res = plab.attack.whitebox_attack(clf, clf.preprocess(test), test.obs["cell_type"], "NK", k=2)
    >>> s = res.summary
    >>> s["original_label"], s["new_label"], s["genes"], s["cell_success_rate"]
    ('NK', 'Naive CD4 T', 'NKG7;GNLY', 1.0)
    """
    from .._validation import to_dense
    from ._adata import attack_inputs

    if target is None:
        raise InputError("pass target=: the cluster to attack")
    counts_space = space == "counts"
    X, clusters, adata_in = attack_inputs(classifier, X, clusters, groupby, preprocess=not counts_space)
    if adata_in is not None and counts_space:
        X, var_names = to_dense(X), np.asarray(adata_in.var_names.astype(str))
    setup = _Setup(classifier, X, clusters, target, space=space, var_names=var_names, new_target=new_target,
                   bounds=bounds, nonnegative=nonnegative, library_size=library_size, loss=loss)
    budget = Budget(k=k, amplitude=amplitude, bounds=bounds, nonnegative=setup.nonnegative, library_size=library_size,
                    round_counts=round_counts)
    res = _run(setup, budget, method, steps=steps, step_size=step_size, how=gene_ranking,
               candidates=_candidates(setup, genes), random_start=random_start, random_state=random_state, name=name)
    if key_added is not None:
        if adata_in is None:
            raise InputError("key_added writes into an AnnData: pass the AnnData as X with groupby=")
        res.to_adata(adata_in, groupby=groupby, key_added=key_added, clusters=None if groupby else clusters)
    return res


def _candidates(setup: _Setup, genes):
    if genes is None:
        return None
    pos = {g: i for i, g in enumerate(setup.genes)}
    names = [str(g) for g in genes]
    missing = [g for g in names if g not in pos]
    if missing:
        raise UnknownNameError("gene", missing[0], setup.genes[:1000])
    return np.array([pos[g] for g in names], dtype=np.intp)


def budget_curve(
    classifier,
    X,
    clusters,
    targets: Sequence[str] | None = None,
    *,
    ks: Sequence[int] = (1, 2, 5, 10, 20, 50),
    amplitudes: Sequence[float] = (0.25, 0.5, 1.0),
    methods: Sequence[str] = ("fgsm", "pgd"),
    bounds: str = "range",
    nonnegative: bool | None = None,
    space: str = "model_input",
    var_names=None,
    library_size: str = "preserve",
    round_counts: bool = True,
    steps: int = 20,
    step_size: float = 0.25,
    gene_ranking: str = "gain",
    loss: str = "margin",
    genes=None,
    name: str | None = None,
) -> pd.DataFrame:
    """Success rate against the budget: one white-box attack per cluster x method x k x amplitude.

    The gradient (and so the gene ranking) is computed once per cluster; each row is
    :func:`whitebox_attack`'s summary. Parameters as :func:`whitebox_attack` (``genes``: candidate
    genes, e.g. the genes the other attacks may change); ``targets`` default to every cluster (in
    order of appearance).

    Returns
    -------
    pandas.DataFrame
        Tidy: one row per cluster x method x k x amplitude (columns of ``WhiteBoxResult.summary``).

    Examples
    --------
    The fewest genes whose change flips the NK and the B cells of a logistic regression on ten marker genes:

    >>> import scanpy as sc
    >>> from sklearn.linear_model import LogisticRegression
    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> genes = ["MS4A1", "CD79A", "NKG7", "GNLY", "CD3E", "IL7R", "LYZ", "CST3", "FCGR3A", "PPBP"]
    >>> log = sc.pp.log1p(sc.pp.normalize_total(train, target_sum=1e4, copy=True), copy=True)
    >>> lr = LogisticRegression(max_iter=1000).fit(log[:, genes].X.toarray(), train.obs["cell_type"].astype(str))
    >>> clf = plab.classifiers.wrap(lr, genes=genes, representation="log1p")  # linear: differentiable
    >>> tab = plab.attack.budget_curve(clf, clf.preprocess(test), test.obs["cell_type"], ["NK", "B"], ks=(1, 2),
    ...                                methods=["pgd"])
    >>> tab[tab["flipped"]].groupby("cluster")["k"].min().to_dict()
    {'B': 2, 'NK': 1}
    """
    clusters = np.asarray(clusters).astype(str)
    targets = list(dict.fromkeys(clusters.tolist())) if targets is None else [str(t) for t in targets]
    rows = []
    for t in targets:
        setup = _Setup(classifier, X, clusters, t, space=space, var_names=var_names, new_target=None, bounds=bounds,
                       nonnegative=nonnegative, library_size=library_size, loss=loss)
        candidates = _candidates(setup, genes)
        for method in methods:
            for k in ks:
                for amp in amplitudes:
                    budget = Budget(k=k, amplitude=amp, bounds=bounds, nonnegative=setup.nonnegative,
                                    library_size=library_size, round_counts=round_counts)
                    res = _run(setup, budget, method, steps=steps, step_size=step_size, how=gene_ranking,
                               candidates=candidates, random_start=False, random_state=0, name=name)
                    rows.append(res.summary)
    return pd.DataFrame(rows)
