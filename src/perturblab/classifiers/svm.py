"""scAnnotatR-style classifier: one probability SVM per cell type on its 20 Wilcoxon markers."""

from __future__ import annotations

import numpy as np

from ..exceptions import InputError
from ._preprocess import GeneScaler, log1p_matrix, model_input
from .base import CellTypeClassifier

__all__ = ["SVMClassifier", "wilcoxon_z"]


def wilcoxon_z(X: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Wilcoxon rank-sum z-scores of every gene, each group against the rest.

    Parameters
    ----------
    X
        Cells x genes matrix (any representation; the test is rank-based).
    groups
        Boolean matrix, cells x groups (``groups[:, k]`` = cells of group k).

    Returns
    -------
    numpy.ndarray
        Groups x genes z-scores of the Mann-Whitney U statistic of the group (normal
        approximation with tie correction, no continuity correction; positive = higher in the
        group). Ranks are computed once for all groups; the tie term of a gene is recovered from
        the rank variance (``sum (R - (n+1)/2)^2 = (n^3 - n - sum(t^3 - t)) / 12``).
    """
    from scipy.stats import rankdata

    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    R = rankdata(X, axis=0)
    ties = n**3 - n - 12.0 * ((R - (n + 1) / 2.0) ** 2).sum(axis=0)
    groups = np.asarray(groups, dtype=bool)
    n1 = groups.sum(axis=0).astype(np.float64)
    n2 = n - n1
    if (n1 == 0).any() or (n2 == 0).any():
        raise InputError("every group needs at least one cell inside and one outside")
    U = groups.T.astype(np.float64) @ R - (n1 * (n1 + 1) / 2.0)[:, None]
    var = (n1 * n2 / 12.0)[:, None] * ((n + 1) - ties[None, :] / (n * (n - 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (U - (n1 * n2 / 2.0)[:, None]) / np.sqrt(var)
    return np.nan_to_num(z, nan=0.0)


class SVMClassifier(CellTypeClassifier):
    """scAnnotatR-style annotation: one binary SVM per cell type, probability threshold 0.5.

    Markers (per cell type, on the training data): genes with ``|mean log1p(type) - mean
    log1p(rest)| > min_mean_diff`` (0.5), the ``n_markers`` (20) with the largest Wilcoxon
    rank-sum ``|z|`` (one-vs-rest; :func:`wilcoxon_z`). Model per type, on the scaled expression
    of its markers: ``CalibratedClassifierCV(SVC(kernel="linear"), method="sigmoid", cv=5,
    ensemble=False)``, i.e. a linear SVM with Platt-scaled probabilities fitted on 5-fold
    (stratified, unshuffled, hence deterministic; fewer folds for a type with fewer than 5 cells)
    cross-validated decision values - scikit-learn's
    replacement for the deprecated ``SVC(probability=True)``. scAnnotatR trains a caret
    ``svmLinear`` with class probabilities; the linear kernel and Platt probabilities follow it.
    Input representation ``"scaled"`` (adverSCarial classifies Seurat's ``scale.data``), with the fit-time scaling
    statistics.

    ``predict``: the type with the highest probability when that probability is at least
    ``threshold``, else ``unknown_label`` ("Unknown", scAnnotatR's "unknown").

    Parameters
    ----------
    n_markers, min_mean_diff
        Markers per cell type (20) and minimum ``|mean log1p difference|`` (0.5).
    threshold
        Probability needed to call a type (0.5).
    C
        SVM regularisation.
    random_state
        Passed to ``SVC`` (the fit has no other random step).

    Attributes
    ----------
    markers_
        ``{cell type: [marker genes]}``.
    used_genes_
        Indices into ``genes_`` of the union of the markers.
    """

    representation = "scaled"
    standard_preprocess = True
    #: Native scores: the log of each type's Platt probability (the default ``class_scores``).
    score_kind = "log_proba"

    def __init__(self, n_markers: int = 20, min_mean_diff: float = 0.5, threshold: float = 0.5, C: float = 1.0,
                 random_state: int = 0):
        self.n_markers = n_markers
        self.min_mean_diff = min_mean_diff
        self.threshold = threshold
        self.C = C
        self.random_state = random_state

    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> scaled float32 matrix (cells x ``genes_``), fit-time statistics."""
        return model_input(self, adata)

    def fit(self, adata, label_key: str) -> SVMClassifier:
        """Select markers and train one SVM per cell type on raw-count ``adata`` (labels in ``obs[label_key]``).

        Raises
        ------
        ValueError
            If fewer than 2 cell types, or a cell type has no gene passing ``min_mean_diff``.
        """
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC

        y = self._labels(adata, label_key)
        classes = np.unique(y)
        if len(classes) < 2:
            raise InputError(f"need at least 2 cell types to train one-vs-rest SVMs, got {list(classes)}")
        L = log1p_matrix(adata)
        self.scaler_ = GeneScaler.fit(L)
        Z = self.scaler_.transform(L)
        groups = y[:, None] == classes[None, :]
        z = wilcoxon_z(L, groups)
        genes = np.asarray(adata.var_names.astype(str))
        self.markers_, self._idx, self.models_ = {}, {}, {}
        for k, t in enumerate(classes):
            diff = L[groups[:, k]].mean(axis=0) - L[~groups[:, k]].mean(axis=0)
            ok = np.flatnonzero(np.abs(diff) > self.min_mean_diff)
            if ok.size == 0:
                raise InputError(
                    f"cell type {t!r}: no gene has |mean log1p difference| > {self.min_mean_diff}; "
                    "lower min_mean_diff"
                )
            idx = ok[np.argsort(-np.abs(z[k, ok]), kind="stable")[: self.n_markers]]
            n_min = int(min(groups[:, k].sum(), (~groups[:, k]).sum()))
            if n_min < 2:
                raise InputError(f"cell type {t!r} has {n_min} cell(s) on one side; need >= 2 to calibrate its SVM")
            svc = SVC(kernel="linear", C=self.C, random_state=self.random_state)
            model = CalibratedClassifierCV(svc, method="sigmoid", cv=min(5, n_min), ensemble=False)
            model.fit(Z[:, idx], groups[:, k])
            self._idx[t], self.models_[t], self.markers_[t] = idx, model, list(genes[idx])
        self.genes_ = genes
        self.classes_ = classes.astype(object)
        self.used_genes_ = np.unique(np.concatenate(list(self._idx.values())))
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Per-type SVM probabilities (n_cells x n_classes); each column is its own binary model,
        so rows do not sum to 1."""
        X = self._check_input(X)
        cols = []
        for t in self.classes_:
            model = self.models_[t]
            cols.append(model.predict_proba(X[:, self._idx[t]])[:, list(model.classes_).index(True)])
        return np.column_stack(cols)

    def torch_module(self):
        """``torch.nn.Module``: scaled model input -> per-type log-probabilities (:meth:`class_scores`).

        Each type's calibrated linear SVM: ``f = x[:, markers] @ coef + intercept``,
        ``log p = log sigmoid(-(a f + b))`` (Platt scaling, scikit-learn's ``_SigmoidCalibration``).

        Raises
        ------
        InputError
            If a type's model is not a single calibrated linear SVM (``ensemble=False``).
        """
        from ..exceptions import InputError
        from ._torch import PlattLinearSVMs

        self._check_fitted()
        idx, w, c, a, b = [], [], [], [], []
        for t in self.classes_:
            model = self.models_[t]
            cal = model.calibrated_classifiers_
            if len(cal) != 1 or not hasattr(cal[0].estimator, "coef_") or len(cal[0].calibrators) != 1:
                raise InputError(f"the SVM of {t!r} is not one calibrated linear SVM; refit with the default settings")
            svc, sig = cal[0].estimator, cal[0].calibrators[0]
            sgn = 1.0 if list(svc.classes_).index(True) == 1 else -1.0  # decision_function favours classes_[1]
            idx.append(self._idx[t])
            w.append(sgn * np.asarray(svc.coef_, dtype=np.float64).ravel())
            c.append(sgn * float(np.ravel(svc.intercept_)[0]))
            a.append(float(sig.a_))
            b.append(float(sig.b_))
        return PlattLinearSVMs(idx, w, c, a, b)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most probable type when its probability >= ``threshold``, else "Unknown"."""
        P = self.predict_proba(X)
        best = np.argmax(P, axis=1)
        out = self.classes_[best].astype(object)
        out[P[np.arange(len(P)), best] < self.threshold] = self.unknown_label
        return out
