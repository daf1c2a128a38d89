"""Your own classifier under perturblab's protocol: :func:`wrap` and :func:`as_classifier`.

:func:`wrap` turns

- a fitted **scikit-learn** estimator or ``Pipeline`` with ``predict_proba`` or ``decision_function``
  (:class:`SklearnClassifier`; linear models, alone or behind ``StandardScaler`` steps, are also
  differentiable: their decision function is a torch module, so FGSM / PGD attack them);
- a **torch.nn.Module** mapping model input (cells x genes, float32) to logits over classes
  (:class:`TorchClassifier`, differentiable);
- a plain **callable** ``f(X) -> scores (cells x classes)`` or ``-> labels (cells,)``
  (:class:`CallableClassifier`)

into a classifier of :mod:`perturblab.classifiers.base` with per-cell scoring (``per_cell = True``: a
cell's answer depends on its own row, so attacks re-score only the attacked cluster). The wrapped
object keeps the original as ``estimator``.

:func:`as_classifier` is what attacks and :func:`perturblab.audit.run_audit` call on whatever they are
given: a protocol classifier passes through, a scikit-learn estimator fitted on a DataFrame (it knows its
genes from ``feature_names_in_``) is wrapped, anything else gets one error saying how to wrap it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..exceptions import InputError
from ._preprocess import gene_indices, log1p_matrix
from .base import CellTypeClassifier, NotFittedError

__all__ = ["CallableClassifier", "SklearnClassifier", "TorchClassifier", "as_classifier", "is_protocol_classifier",
           "wrap"]

REPRESENTATIONS = ("counts", "log1p", "scaled")

_HOW = ("wrap it first: plab.classifiers.wrap(obj, genes=GENES, representation='log1p') (scikit-learn estimator or "
        "Pipeline), wrap(module, genes=GENES, classes=CLASSES) (torch.nn.Module) or wrap(fn, genes=GENES, "
        "classes=CLASSES) (a function of the cells x genes matrix)")


def is_protocol_classifier(obj) -> bool:
    """True for objects that follow :mod:`perturblab.classifiers.base`: subclasses of
    :class:`~perturblab.classifiers.base.CellTypeClassifier`, or objects with ``predict`` that declare ``per_cell``
    (what the attack engine reads; scikit-learn estimators do not)."""
    if isinstance(obj, CellTypeClassifier):
        return True
    return hasattr(obj, "predict") and hasattr(obj, "per_cell")


class _Wrapped(CellTypeClassifier):
    """Shared behaviour of the wrappers: genes, representation and preprocessing chosen by the user."""

    def __init__(self, estimator, genes, representation: str, preprocess: Callable | None, classes=None):
        if representation not in REPRESENTATIONS:
            raise InputError(f"representation must be one of {', '.join(REPRESENTATIONS)}, got {representation!r}")
        if genes is None:
            raise InputError("pass genes=: the names of the model-input columns, in the order the model reads them")
        genes = np.asarray(list(genes)).astype(str)
        if genes.ndim != 1 or genes.size == 0 or len(set(genes)) != genes.size:
            raise InputError("genes must be a non-empty list of unique gene names (the model-input columns in order)")
        if representation == "scaled" and preprocess is None:
            raise InputError("representation 'scaled' needs preprocess=: a function adata -> cells x genes matrix "
                             "scaled as the model was trained (perturblab does not know your scaling)")
        self.estimator = estimator
        self.genes_ = genes
        self.representation = representation  # type: ignore[misc]
        self._preprocess = preprocess
        if classes is not None:
            self.classes_ = np.asarray(list(classes)).astype(object)

    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> model input (dense float32, cells x ``genes_``).

        With ``preprocess=`` given to :func:`wrap`: that function. Otherwise ``"log1p"``:
        ``normalize_total(1e4)`` over all genes of ``adata`` then ``log1p``; ``"counts"``: the raw counts of
        ``genes_``. Warns (:class:`~perturblab.exceptions.PerturblabWarning`) when ``adata.X`` does not look
        like raw counts.
        """
        from .._validation import warn_representation

        if self._preprocess is not None:
            X = np.asarray(self._preprocess(adata), dtype=np.float32)
            if X.shape != (adata.n_obs, len(self.genes_)):
                raise InputError(f"preprocess returned shape {X.shape}; expected cells x genes "
                                 f"({adata.n_obs}, {len(self.genes_)})")
            return np.ascontiguousarray(X)
        warn_representation(adata.X, "counts", "adata.X")
        if self.representation == "log1p":
            return log1p_matrix(adata, self.genes_)
        from .._validation import to_dense

        return to_dense(adata.X[:, gene_indices(adata, self.genes_)])

    def fit(self, adata, label_key: str):
        """Wrapped models are fitted already (fit your estimator, then wrap it); raises :class:`InputError`."""
        raise InputError(f"{type(self).__name__} wraps a fitted model: fit it yourself, then call "
                         "plab.classifiers.wrap(model, genes=...)")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({type(self.estimator).__name__}, {len(self.genes_)} genes, "
                f"{len(getattr(self, 'classes_', []))} classes, {self.representation})")


def _final_step(est):
    steps = getattr(est, "steps", None)
    return steps[-1][1] if steps else est


class SklearnClassifier(_Wrapped):
    """A fitted scikit-learn classifier or ``Pipeline`` under perturblab's protocol (see :func:`wrap`).

    ``predict`` is the estimator's own ``predict``; ``predict_proba`` is the estimator's (or, for an
    estimator with only ``decision_function``, a softmax of its decision scores); :meth:`class_scores`
    (what CGD differences) is the decision function when the estimator has one (``score_kind
    "decision_function"``), else the log-probabilities. Linear models (``coef_`` / ``intercept_``), alone or
    behind ``StandardScaler`` steps, expose :meth:`torch_module` (their decision scores as a torch module), so
    white-box attacks (:func:`perturblab.attack.whitebox_attack`) apply to them.
    """

    def __init__(self, estimator, genes, representation: str = "log1p", preprocess: Callable | None = None):
        if not hasattr(estimator, "predict") or not (hasattr(estimator, "predict_proba")
                                                     or hasattr(estimator, "decision_function")):
            raise InputError(f"{type(estimator).__name__} has no predict_proba or decision_function; wrap a fitted "
                             "scikit-learn classifier, or wrap(fn, genes=..., classes=...) a scoring function")
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            raise NotFittedError(f"{type(estimator).__name__} is not fitted (no classes_): fit it before wrapping")
        n_in = getattr(estimator, "n_features_in_", None)
        super().__init__(estimator, genes, representation, preprocess, classes)
        if n_in is not None and int(n_in) != len(self.genes_):
            raise InputError(f"the estimator reads {n_in} features but {len(self.genes_)} genes were given; pass the "
                             "genes of its training columns, in order")
        self.score_kind = "decision_function" if hasattr(estimator, "decision_function") else "log_proba"  # type: ignore[misc]

    def _frame(self, X):
        X = self._check_input(X)
        if getattr(self.estimator, "feature_names_in_", None) is not None:  # fitted on a DataFrame: keep names
            import pandas as pd

            return pd.DataFrame(X, columns=self.genes_, copy=False)
        return X

    def predict(self, X) -> np.ndarray:
        """The estimator's per-cell labels."""
        return np.asarray(self.estimator.predict(self._frame(X))).astype(object)

    def decision_scores(self, X) -> np.ndarray:
        """Decision scores (cells x classes); a binary estimator's single column ``s`` becomes ``[-s/2, s/2]``."""
        S = np.asarray(self.estimator.decision_function(self._frame(X)), dtype=np.float64)
        if S.ndim == 1:
            S = np.column_stack([-S / 2, S / 2])
        return S

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (cells x classes): ``predict_proba``, or a softmax of the decision scores."""
        if hasattr(self.estimator, "predict_proba"):
            return np.asarray(self.estimator.predict_proba(self._frame(X)), dtype=np.float64)
        S = self.decision_scores(X)
        S = np.exp(S - S.max(axis=1, keepdims=True))
        return S / S.sum(axis=1, keepdims=True)

    def class_scores(self, X) -> np.ndarray:
        """Native class scores: the decision function when there is one, else log-probabilities."""
        if self.score_kind == "decision_function":
            return self.decision_scores(X)
        return super().class_scores(X)

    def auroc_scores(self, X) -> np.ndarray:
        """Scores that rank cells per class for AUROC: :meth:`class_scores` (they do not saturate)."""
        return self.class_scores(X)

    def _affine(self):
        """(A, b) with decision scores = x @ A + b for a linear model behind StandardScaler steps, else None."""
        est = self.estimator
        steps = [s for _, s in getattr(est, "steps", [("", est)]) if s not in (None, "passthrough")]
        last = steps[-1]
        coef, intercept = getattr(last, "coef_", None), getattr(last, "intercept_", None)
        if coef is None or intercept is None or not hasattr(last, "decision_function"):
            return None
        from sklearn.preprocessing import StandardScaler

        W = np.asarray(coef, dtype=np.float64).T  # genes x (classes or 1)
        b = np.asarray(intercept, dtype=np.float64).ravel()
        for step in reversed(steps[:-1]):
            if not isinstance(step, StandardScaler):
                return None
            mean = step.mean_ if step.with_mean and step.mean_ is not None else 0.0
            scale = step.scale_ if step.with_std and step.scale_ is not None else 1.0
            W = W / np.asarray(scale, dtype=np.float64)[:, None]
            b = b - np.asarray(mean * np.ones(W.shape[0]), dtype=np.float64) @ W
        if W.shape[1] == 1:  # binary: [-s/2, s/2], as decision_scores
            W = np.hstack([-W / 2, W / 2])
            b = np.array([-b[0] / 2, b[0] / 2])
        return W, b

    @property
    def differentiable(self) -> bool:
        """True when the estimator is a linear model, alone or behind ``StandardScaler`` steps."""
        return self._affine() is not None

    def __getattr__(self, name):
        if name == "torch_module" and self.__dict__.get("estimator") is not None and self._affine() is not None:
            return self._torch_module
        raise AttributeError(name)

    def _torch_module(self):
        """``torch.nn.Module``: model input -> decision scores (a linear model's ``x @ W + b``)."""
        from ._torch import LinearScores

        W, b = self._affine()
        return LinearScores(np.arange(W.shape[0]), W, b)


class TorchClassifier(_Wrapped):
    """A ``torch.nn.Module`` classifier (model input -> logits over ``classes``) under perturblab's protocol.

    ``predict`` is the argmax of the logits, ``predict_proba`` their softmax, :meth:`class_scores` the logits
    (``score_kind "logit"``); :meth:`torch_module` returns the module (evaluation mode), so white-box attacks
    apply. Scoring runs without gradients in batches of ``batch_size`` cells on the module's device.
    """

    score_kind = "logit"

    def __init__(self, module, genes, classes, representation: str = "log1p", preprocess: Callable | None = None,
                 batch_size: int = 4096):
        import torch

        if not isinstance(module, torch.nn.Module):
            raise InputError(f"expected a torch.nn.Module, got {type(module).__name__}")
        if classes is None:
            raise InputError("pass classes=: the cell-type names of the module's output columns, in order")
        super().__init__(module, genes, representation, preprocess, classes)
        self.batch_size = int(batch_size)

    def _device(self):
        import torch

        for p in (*self.estimator.parameters(), *self.estimator.buffers()):
            return p.device
        return torch.device("cpu")

    def logits(self, X) -> np.ndarray:
        """Module outputs (cells x classes, float64)."""
        import torch

        X = self._check_input(X)
        self.estimator.eval()
        dev, out = self._device(), []
        with torch.no_grad():
            for s in range(0, X.shape[0], self.batch_size):
                out.append(self.estimator(torch.from_numpy(X[s:s + self.batch_size]).to(dev)).cpu().numpy())
        L = np.concatenate(out).astype(np.float64) if out else np.zeros((0, len(self.classes_)))
        if L.ndim != 2 or L.shape[1] != len(self.classes_):
            raise InputError(f"the module returned shape {L.shape}; expected cells x {len(self.classes_)} classes")
        return L

    def class_scores(self, X) -> np.ndarray:
        """Native class scores: the logits."""
        return self.logits(X)

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the logits (cells x classes)."""
        L = self.logits(X)
        L = np.exp(L - L.max(axis=1, keepdims=True))
        return L / L.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """Argmax of the logits."""
        return self.classes_[np.argmax(self.logits(X), axis=1)]

    def torch_module(self):
        """The wrapped module (evaluation mode): model input -> logits."""
        self.estimator.eval()
        return self.estimator


class CallableClassifier(_Wrapped):
    """A function of the model input under perturblab's protocol: ``fn(X)`` (X: cells x genes float32) returns
    per-cell class scores (cells x ``classes``; the label is their argmax) or per-cell labels (cells,).

    With label output, ``predict_proba`` is one-hot and ``class_scores`` its log (CGD then sees steps, not
    slopes: prefer scores)."""

    def __init__(self, fn: Callable, genes, classes, representation: str = "log1p",
                 preprocess: Callable | None = None):
        if classes is None:
            raise InputError("pass classes=: the cell-type names the function answers (or of its score columns)")
        super().__init__(fn, genes, representation, preprocess, classes)
        self.score_kind = "raw_score"  # type: ignore[misc]

    def _out(self, X) -> np.ndarray:
        out = np.asarray(self.estimator(self._check_input(X)))
        if out.shape[:1] != (X.shape[0],) or out.ndim not in (1, 2):
            raise InputError(f"the function returned shape {out.shape}; expected ({X.shape[0]},) labels or "
                             f"({X.shape[0]}, {len(self.classes_)}) scores")
        if out.ndim == 2 and out.shape[1] != len(self.classes_):
            raise InputError(f"the function returned {out.shape[1]} score columns for {len(self.classes_)} classes")
        return out

    def class_scores(self, X) -> np.ndarray:
        out = self._out(X)
        if out.ndim == 2:
            return out.astype(np.float64)
        P = (out.astype(str)[:, None] == self.classes_.astype(str)[None, :]).astype(np.float64)
        return np.log(np.clip(P, 1e-300, None))

    def predict_proba(self, X) -> np.ndarray:
        S = self.class_scores(X)
        S = np.exp(S - S.max(axis=1, keepdims=True))
        return S / S.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        out = self._out(X)
        if out.ndim == 1:
            return out.astype(object)
        return self.classes_[np.argmax(out, axis=1)]


def wrap(obj, genes: Sequence[str] | None = None, representation: str = "log1p", preprocess: Callable | None = None,
         *, classes: Sequence[str] | None = None) -> CellTypeClassifier:
    """Your fitted classifier as a perturblab classifier (attacks, audits, evaluation).

    Parameters
    ----------
    obj
        A fitted scikit-learn estimator or ``Pipeline`` (``predict_proba`` or ``decision_function``), a
        ``torch.nn.Module`` returning logits (cells x classes), or a callable ``fn(X)`` returning per-cell class
        scores (cells x classes) or labels (cells,). A perturblab classifier is returned unchanged.
    genes
        The model-input columns (gene names) in the order the model reads them. Default: the estimator's
        ``feature_names_in_`` (scikit-learn models fitted on a DataFrame).
    representation
        What the model reads: ``"log1p"`` (default: ``normalize_total(1e4)`` then ``log1p``, scanpy's standard),
        ``"counts"`` (raw UMI counts) or ``"scaled"`` (then ``preprocess`` is required). Attacks write their
        modifications in this space; :meth:`preprocess` builds it from raw counts.
    preprocess
        Optional ``adata -> cells x genes`` function giving the model input from a raw-count AnnData (your own
        normalisation); default: perturblab's for ``representation``.
    classes
        Cell-type names of the output columns (torch modules and callables; scikit-learn: ``classes_``).

    Returns
    -------
    CellTypeClassifier
        :class:`SklearnClassifier`, :class:`TorchClassifier` or :class:`CallableClassifier`, per-cell.

    Raises
    ------
    InputError
        Missing ``genes`` / ``classes``, a gene count that differs from the estimator's, an object that is none
        of the above.
    NotFittedError
        A scikit-learn estimator that is not fitted.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> import perturblab as plab
    >>> X = np.array([[0.0, 3.0], [0.1, 2.5], [3.0, 0.0], [2.8, 0.2]])
    >>> lr = LogisticRegression().fit(X, ["B", "B", "NK", "NK"])
    >>> clf = plab.classifiers.wrap(lr, genes=["MS4A1", "NKG7"])
    >>> clf.predict(np.array([[0.0, 2.0]], dtype=np.float32)).tolist()
    ['B']
    >>> clf.per_cell, clf.score_kind, plab.classifiers.is_differentiable(clf)
    (True, 'decision_function', True)
    """
    if is_protocol_classifier(obj):
        return obj
    if genes is None:
        names = getattr(obj, "feature_names_in_", None)
        genes = None if names is None else list(names)
    try:
        import torch

        is_module = isinstance(obj, torch.nn.Module)
    except ImportError:  # pragma: no cover - torch is a core dependency
        is_module = False
    if is_module:
        return TorchClassifier(obj, genes, classes, representation, preprocess)
    if hasattr(obj, "predict") and (hasattr(obj, "predict_proba") or hasattr(obj, "decision_function")):
        return SklearnClassifier(obj, genes, representation, preprocess)
    if callable(obj):
        return CallableClassifier(obj, genes, classes, representation, preprocess)
    raise InputError(f"cannot wrap a {type(obj).__name__}: pass a fitted scikit-learn estimator, a torch.nn.Module "
                     "or a function of the cells x genes matrix")


def as_classifier(obj, genes=None, where: str = "this function"):
    """What attacks and audits call on the classifier they are given.

    A perturblab classifier (or an adverSCarial-style cluster-level callable ``f(X, clusters, target)``, a
    callable without ``predict``) is returned unchanged; a fitted scikit-learn estimator is wrapped with
    :func:`wrap` when its genes are known (``genes``, or ``feature_names_in_``); anything else raises one
    :class:`InputError` saying how to wrap it.
    """
    if is_protocol_classifier(obj):
        return obj
    is_estimator = hasattr(obj, "predict") and (hasattr(obj, "predict_proba") or hasattr(obj, "decision_function"))
    if is_estimator and hasattr(obj, "classes_"):
        names = genes if genes is not None else getattr(obj, "feature_names_in_", None)
        if names is not None:
            return SklearnClassifier(obj, names)
    if callable(obj) and not hasattr(obj, "predict"):
        try:
            import torch

            if isinstance(obj, torch.nn.Module):
                raise InputError(f"{where} got a torch.nn.Module: {_HOW}")
        except ImportError:  # pragma: no cover
            pass
        return obj  # adverSCarial's cluster-level contract f(X, clusters, target) -> (label, score)
    raise InputError(f"{where} got a {type(obj).__name__}, which is not a perturblab classifier; {_HOW}")
