"""CellTypist (Dominguez Conde et al. 2022) trained and applied through the ``celltypist`` library, or a
pretrained CellTypist model loaded with celltypist's own loader (:meth:`CellTypistClassifier.from_model`)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from ..exceptions import InputError, PerturblabWarning
from ._preprocess import CLIP, gene_indices, log1p_matrix, model_input
from .base import CellTypeClassifier, ClusterCall, majority_vote

__all__ = ["CellTypistClassifier"]


class CellTypistClassifier(CellTypeClassifier):
    """CellTypist logistic regression, trained with ``celltypist.train`` in SGD mode.

    Why SGD mode: celltypist 1.7.1's default path builds ``LogisticRegression(multi_class="ovr")``,
    an argument removed in scikit-learn 1.8, so it fails with the scikit-learn 1.9 we depend on;
    ``use_SGD=True`` trains an ``SGDClassifier(loss="log_loss")`` (one-vs-rest logistic regression)
    and works with any recent scikit-learn, which we prefer to pinning an old scikit-learn.

    Representation ``"log1p"`` (``normalize_total(1e4)`` + ``log1p``, as CellTypist requires).
    Prediction is CellTypist's own: the model's ``StandardScaler`` (fitted by ``celltypist.train``),
    values above 10 clipped (as ``celltypist.annotate``), then ``Model.predict_labels_and_prob``
    (decision function, sigmoid probabilities, "best match" label = argmax).

    AUROC uses :meth:`auroc_scores` (the decision scores), not the probabilities: SGD-trained
    CellTypist models have decision scores in the thousands (PBMC3k train half: intercepts
    -2,700 to -7,400), so the float64 sigmoid rounds 95% of the probabilities to exactly 0 or 1
    and the tied cells make a one-vs-rest AUROC meaningless (0.66 on the PBMC3k test half with
    the probabilities, 0.98 with the decision scores, whose per-class order is the same as the
    exact probabilities').

    Parameters
    ----------
    alpha
        L2 regularisation of the SGD classifier (CellTypist's default 1e-4).
    max_iter
        Passes over the data (``None``: CellTypist's default, 1000 below 50,000 cells).
    n_jobs
        Threads for the one-vs-rest fits (results do not depend on it).
    random_state
        Seed of the SGD classifier (``SGDClassifier(random_state=...)``).

    Attributes
    ----------
    model_
        The ``celltypist.models.Model``.
    used_genes_
        Indices into ``genes_`` of the model's features (genes expressed in the training data).
    """

    representation = "log1p"
    score_kind = "decision_function"

    def __init__(self, alpha: float = 1e-4, max_iter: int | None = None, n_jobs: int | None = None,
                 random_state: int = 0):
        self.alpha = alpha
        self.max_iter = max_iter
        self.n_jobs = n_jobs
        self.random_state = random_state

    majority_voting = False
    # set by from_model (a pretrained model)
    model_path_: str | None
    pretrained_: bool
    over_clustering: str | np.ndarray | None
    min_prop: float
    resolution: float | None

    @classmethod
    def from_model(cls, model, *, majority_voting: bool = False, over_clustering=None, min_prop: float = 0.0,
                   resolution: float | None = None) -> CellTypistClassifier:
        """A pretrained CellTypist model (e.g. ``Immune_All_Low.pkl``) as a fitted perturblab classifier.

        **Security:** a CellTypist model file is a Python pickle, and loading a pickle runs code stored in it.
        Load only files you trust. perturblab never picks a model for you: pass the file explicitly (there is
        no default model and nothing is downloaded; ``celltypist.models.download_models`` fetches models).

        The file is read by celltypist's own loader (``celltypist.models.Model.load``) and predictions follow
        ``celltypist.annotate``: log1p expression (``normalize_total(1e4)`` over all genes of the AnnData, then
        ``log1p``), the model's ``StandardScaler``, values above 10 clipped, decision scores, "best match" label.
        Model genes absent from the data get the scaler's mean (standardised value 0), which equals celltypist
        dropping those features; a warning names how many. With ``majority_voting=True`` the answers are
        celltypist's majority voting over an over-clustering (``celltypist.classifier.Classifier.majority_vote``,
        celltypist's own code): each over-cluster gets its most frequent per-cell label ("Heterogeneous" when that
        label's share is below ``min_prop``). A cell's answer then depends on the other cells of its
        over-cluster, so the classifier is cluster-level (``per_cell = False``: attacks re-classify the whole
        matrix per variant; CGD, which needs per-cell scores, does not apply).

        Parameters
        ----------
        model
            Path of a CellTypist ``.pkl`` model file, the file name of a model already in celltypist's model
            folder (``celltypist.models.models_path``), or a ``celltypist.models.Model``.
        majority_voting
            Answer with celltypist's majority voting (default False: per-cell "best match").
        over_clustering
            With majority voting: an ``obs`` column name, or one label per cell of the AnnData passed to
            :meth:`preprocess`; ``None`` (default) runs celltypist's own over-clustering there (Leiden on a
            PCA / neighbourhood graph of the log1p data; ``resolution`` default by cell count, as celltypist).
        min_prop
            celltypist's ``min_prop``: the smallest share of the dominant label that names an over-cluster.
        resolution
            Leiden resolution of the over-clustering (``None``: celltypist's default).

        Returns
        -------
        CellTypistClassifier
            Fitted: ``model_``, ``classes_`` (the model's cell types), ``genes_`` (the model's features).

        Raises
        ------
        InputError
            The file does not exist, or is not a CellTypist model.

        Examples
        --------
        >>> clf = CellTypistClassifier.from_model("Immune_All_Low.pkl", majority_voting=True)  # doctest: +SKIP
        >>> X = clf.preprocess(adata)  # raw counts; runs the over-clustering  # doctest: +SKIP
        >>> clf.predict(X)  # majority-voted labels, one per cell  # doctest: +SKIP
        """
        import celltypist

        if isinstance(model, celltypist.models.Model):
            loaded, source = model, None
        else:
            if model is None or not str(model).strip():
                raise InputError("pass the CellTypist model file explicitly (a .pkl path): perturblab has no default "
                                 "model, and loading a model file runs code from it")
            path = Path(str(model)).expanduser()
            if not path.is_file() and path.name == str(model):
                path = Path(celltypist.models.models_path) / str(model)
            if not path.is_file():
                raise InputError(f"CellTypist model file {str(model)!r} not found; pass the path of a .pkl model file "
                                 "(celltypist.models.download_models fetches CellTypist's models)")
            try:
                loaded = celltypist.models.Model.load(str(path))
            except Exception as err:  # celltypist raises a bare Exception for invalid models
                raise InputError(f"{path} is not a CellTypist model ({' '.join(str(err).split())[:200]}); pass a file "
                                 "written by celltypist (Model.write)") from None
            source = path
        clf = cls()
        clf.model_ = loaded
        clf.model_path_ = None if source is None else str(source)
        clf.pretrained_ = True
        clf.genes_ = np.asarray(loaded.features).astype(str)
        clf.classes_ = np.asarray(loaded.cell_types).astype(object)
        clf.used_genes_ = np.arange(len(clf.genes_), dtype=np.int64)
        clf.majority_voting = bool(majority_voting)
        if clf.majority_voting:
            clf.per_cell = False  # type: ignore[misc]
        clf.over_clustering = over_clustering
        clf.min_prop = float(min_prop)
        clf.resolution = resolution
        return clf

    def _scaler_mean(self) -> np.ndarray:
        sc = self.model_.scaler
        return np.asarray(sc.mean_ if getattr(sc, "with_mean", True) and sc.mean_ is not None
                          else np.zeros(len(sc.scale_)), dtype=np.float64)

    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> log1p-normalised float32 matrix (cells x ``genes_``).

        For a model loaded with :meth:`from_model`: model genes absent from ``adata`` get the scaler's mean
        (warned), and with majority voting the over-clustering of these cells is read or computed and kept in
        ``over_clustering_`` (one label per cell, the cells of this AnnData).
        """
        if not getattr(self, "pretrained_", False):  # trained here: every gene of the training data
            return model_input(self, adata)
        from .._validation import warn_representation

        warn_representation(adata.X, "counts", "adata.X")
        present = np.isin(self.genes_, np.asarray(adata.var_names.astype(str)))
        if not present.any():
            raise InputError("none of the CellTypist model's genes is in adata.var_names; pass gene symbols as the "
                             "model's (e.g. adata.var_names = adata.var['gene_symbols'])")
        X = np.empty((adata.n_obs, len(self.genes_)), dtype=np.float32)
        if present.all():
            X[:] = log1p_matrix(adata, self.genes_)
        else:
            warnings.warn(f"{int((~present).sum())} of the CellTypist model's {len(self.genes_)} genes are not in the "
                          "data; they get the model's mean expression (as celltypist, which drops them)",
                          PerturblabWarning, stacklevel=2)
            gene_indices(adata, self.genes_[present])
            X[:, present] = log1p_matrix(adata, self.genes_[present])
            X[:, ~present] = self._scaler_mean()[~present].astype(np.float32)
        if self.majority_voting:
            self.over_clustering_ = self._over_clustering(adata)
        return X

    def _over_clustering(self, adata) -> np.ndarray:
        oc = self.over_clustering
        if isinstance(oc, str):
            from .._validation import check_labels

            return check_labels(adata, oc, "over-clustering")
        if oc is not None:
            oc = np.asarray(oc).astype(str)
            if oc.shape != (adata.n_obs,):
                raise InputError(f"over_clustering has {oc.size} labels for {adata.n_obs} cells; give one per cell")
            return oc
        import anndata as ad
        from celltypist.classifier import Classifier

        log = ad.AnnData(log1p_matrix(adata), obs={"_": np.zeros(adata.n_obs)}, var={"_": np.zeros(adata.n_vars)})
        log.obs_names, log.var_names = adata.obs_names, adata.var_names
        runner = Classifier.__new__(Classifier)  # celltypist's own over-clustering, without its file handling
        runner.adata = log
        return np.asarray(runner.over_cluster(resolution=self.resolution)).astype(str)

    def majority_vote_labels(self, labels, over_clustering=None) -> np.ndarray:
        """celltypist's majority voting of per-cell ``labels`` over ``over_clustering`` (default: the one kept
        by :meth:`preprocess`); celltypist's ``Classifier.majority_vote`` with ``min_prop``."""
        import pandas as pd
        from celltypist.classifier import AnnotationResult, Classifier

        oc = getattr(self, "over_clustering_", None) if over_clustering is None else np.asarray(over_clustering)
        labels = np.asarray(labels).astype(str)
        if oc is None or len(oc) != len(labels):
            raise InputError(f"majority voting needs the over-clustering of these {len(labels)} cells; call "
                             "preprocess(adata) on them first, or pass over_clustering=")
        index = pd.Index(np.arange(len(labels)).astype(str))
        res = AnnotationResult(pd.DataFrame({"predicted_labels": pd.Categorical(labels)}, index=index), None, None,
                               None)
        quiet = logging.getLogger("celltypist.logger")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # celltypist logs two INFO lines per vote
        try:
            res = Classifier.majority_vote(res, pd.Series(np.asarray(oc).astype(str), index=index),
                                           min_prop=self.min_prop)
        finally:
            quiet.setLevel(level)
        return res.predicted_labels["majority_voting"].astype(str).to_numpy().astype(object)

    def fit(self, adata, label_key: str) -> CellTypistClassifier:
        """Train with ``celltypist.train(use_SGD=True)`` on raw-count ``adata`` (labels in ``obs[label_key]``)."""
        import celltypist

        y = self._labels(adata, label_key)
        if len(np.unique(y)) < 2:
            raise InputError(f"need at least 2 cell types to train CellTypist, got {list(np.unique(y))}")
        X = log1p_matrix(adata)
        genes = np.asarray(adata.var_names.astype(str))
        # our normalisation is exact, but the genes passed may be a subset of those the library size
        # was computed on, so CellTypist's "sums to 1e4" check is skipped
        model = celltypist.train(X, labels=y, genes=genes, check_expression=False, use_SGD=True,
                                 alpha=self.alpha, max_iter=self.max_iter, n_jobs=self.n_jobs,
                                 random_state=self.random_state)
        pos = {g: i for i, g in enumerate(genes)}
        self.model_ = model
        self.standard_preprocess = True  # type: ignore[misc]  # trained here: model_input; a loaded model is not
        self.genes_ = genes
        self.classes_ = np.asarray(model.classifier.classes_).astype(object)
        self.used_genes_ = np.array([pos[g] for g in model.classifier.features], dtype=np.int64)
        return self

    def _run(self, X: np.ndarray):
        X = self._check_input(X)
        scaler = self.model_.scaler
        Z = (X[:, self.used_genes_].astype(np.float64) - self._scaler_mean()) / scaler.scale_
        Z[Z > CLIP] = CLIP
        return self.model_.predict_labels_and_prob(Z)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """CellTypist decision scores (n_cells x n_classes)."""
        return self._run(X)[0]

    def single_gene_scorer(self, Xc: np.ndarray, gene_idx: np.ndarray, V: np.ndarray):
        """Fast exhaustive single-gene scoring (the attack engine's hook, :mod:`perturblab.attack._fastpath`).

        The decision scores are linear in the clipped standardised features, so gene ``g`` taking the values
        ``V[:, i]`` moves them by ``(z_new - z_old) * coef[:, g]`` (``z`` the feature after scaling and clipping
        at 10). Returns ``scores(s, e) -> (genes s:e, cells, classes)``, or ``None`` with majority voting (the
        answers are then not the per-cell argmax).
        """
        if self.majority_voting:
            return None
        base, coef, dz = self._feature_change(Xc)
        gene_idx = np.asarray(gene_idx, dtype=np.intp)

        def scores(s: int, e: int) -> np.ndarray:
            g = gene_idx[s:e]
            j, d = dz(g, V[:, s:e])
            return base[None] + d.T[:, :, None] * coef[:, j].T[:, None, :]

        return scores

    def additive_stage(self, Xc: np.ndarray):
        """The decision scores as an additive first stage (the max-change fast path,
        :func:`perturblab.attack._fastpath.additive_stage`): each gene adds ``(z_new - z_old) * coef[:, g]``.

        Returns ``(base, delta, scores)`` (see :class:`~perturblab.attack._fastpath.AdditiveStage`), or ``None``
        with majority voting."""
        if self.majority_voting:
            return None
        base, coef, dz = self._feature_change(Xc)

        def delta(g: np.ndarray, V: np.ndarray) -> np.ndarray:
            j, d = dz(np.asarray(g, dtype=np.intp), V)
            return d @ coef[:, j].T

        return base, delta, lambda F: F

    def _feature_change(self, Xc: np.ndarray):
        """Decision scores of the rows ``Xc`` (float64), the coefficients (classes x features) and
        ``dz(genes, V) -> (feature columns, change of the clipped standardised features, cells x genes)``; a gene
        outside the model's features changes nothing."""
        sc, coef = self.model_.scaler, np.asarray(self.model_.classifier.coef_, dtype=np.float64)
        used = np.asarray(self.used_genes_)
        col = np.full(len(self.genes_), -1, dtype=np.intp)
        col[used] = np.arange(len(used))
        mean, scale = self._scaler_mean(), np.asarray(sc.scale_, dtype=np.float64)

        def z(values: np.ndarray, j: np.ndarray) -> np.ndarray:
            return np.minimum((values.astype(np.float64) - mean[j]) / scale[j], CLIP)

        def dz(g: np.ndarray, V: np.ndarray):
            j = col[g]
            known = j >= 0
            jj = np.where(known, j, 0)
            return jj, (z(V, jj) - z(Xc[:, g], jj)) * known[None, :]

        return self.decision_function(Xc).astype(np.float64), coef, dz

    def class_scores(self, X: np.ndarray) -> np.ndarray:
        """Native class scores: CellTypist's decision scores (its label is their argmax)."""
        return np.asarray(self.decision_function(X), dtype=np.float64)

    def torch_module(self):
        """``torch.nn.Module``: log1p model input -> CellTypist decision scores (scaler, clip at 10, linear)."""
        from ._torch import StandardizedLinear

        self._check_fitted()
        sc, lin = self.model_.scaler, self.model_.classifier
        return StandardizedLinear(self.used_genes_, self._scaler_mean(), sc.scale_, lin.coef_, lin.intercept_,
                                  clip=CLIP)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """CellTypist probabilities (sigmoid of each one-vs-rest decision score; rows do not sum to 1)."""
        return self._run(X)[1]

    def auroc_scores(self, X: np.ndarray) -> np.ndarray:
        """Scores that rank cells per class for AUROC (n_cells x n_classes): the decision scores.

        A strictly increasing function of each :meth:`predict_proba` column that does not
        saturate (see the class docstring); used by
        :func:`~perturblab.classifiers.evaluation.evaluate_classifier`.
        """
        return self.decision_function(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """CellTypist's "best match" label (argmax of the decision scores); with majority voting
        (:meth:`from_model`), celltypist's majority-voted labels of these cells (``X`` must hold the cells
        :meth:`preprocess` was called on, in order)."""
        labels = np.asarray(self._run(X)[2]).astype(object)
        return self.majority_vote_labels(labels) if self.majority_voting else labels

    def predict_cluster(self, X: np.ndarray, clusters, target: str) -> ClusterCall:
        """Majority answer over the cells of ``target``; with majority voting, the voted labels of all cells of
        ``X`` (the over-clustering spans clusters) restricted to ``target``'s cells."""
        if not self.majority_voting:
            return super().predict_cluster(X, clusters, target)
        from ..exceptions import UnknownNameError

        clusters = np.asarray(clusters).astype(str)
        mask = clusters == str(target)
        if not mask.any():
            raise UnknownNameError("cluster", target, set(clusters))
        return majority_vote(self.predict(X)[mask])
