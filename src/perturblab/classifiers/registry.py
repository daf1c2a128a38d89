"""Classifiers by name: construction (:func:`get_classifier`) and seeded fitting (:func:`fit_classifier`)."""

from __future__ import annotations

import inspect
import warnings

from ..exceptions import UnknownNameError
from .base import CellTypeClassifier
from .celltypist import CellTypistClassifier
from .chetah import ChetahClassifier
from .mlp import MLPClassifier
from .random_forest import RandomForestClassifier
from .sctype import ScTypeClassifier
from .svm import SVMClassifier

__all__ = ["CLASSIFIERS", "get_classifier", "make_classifier", "fit_classifier"]

#: Registry names of perturblab's classifiers, in report order.
CLASSIFIERS: dict[str, type[CellTypeClassifier]] = {
    "sctype": ScTypeClassifier,
    "chetah": ChetahClassifier,
    "svm": SVMClassifier,
    "random_forest": RandomForestClassifier,
    "mlp": MLPClassifier,
    "celltypist": CellTypistClassifier,
}


def get_classifier(name: str, **kwargs) -> CellTypeClassifier:
    """A new, unfitted classifier by name.

    Parameters
    ----------
    name
        One of :data:`CLASSIFIERS`: ``"sctype"``, ``"chetah"``, ``"svm"``, ``"random_forest"``, ``"mlp"``,
        ``"celltypist"``.
    **kwargs
        Passed to the classifier's constructor (e.g. ``random_state``, ``n_estimators``).

    Raises
    ------
    UnknownNameError
        If ``name`` is unknown.

    Examples
    --------
    >>> from perturblab.classifiers import get_classifier
    >>> get_classifier("random_forest", n_estimators=10).n_estimators
    10
    """
    if name not in CLASSIFIERS:
        raise UnknownNameError("classifier", name, CLASSIFIERS)
    return CLASSIFIERS[name](**kwargs)


def make_classifier(name: str, *, random_state: int = 0, device: str | None = None, **kwargs) -> CellTypeClassifier:
    """A new, unfitted registry classifier, seeded where it takes a seed, single-threaded where it has ``n_jobs``,
    on ``device`` where it takes one (arguments a classifier does not take are not passed to it).

    Raises
    ------
    UnknownNameError
        If ``name`` is unknown.
    """
    if name not in CLASSIFIERS:
        raise UnknownNameError("classifier", name, CLASSIFIERS)
    params = inspect.signature(CLASSIFIERS[name].__init__).parameters
    kw = dict(kwargs)
    if "random_state" in params:
        kw["random_state"] = random_state
    if "n_jobs" in params:
        kw.setdefault("n_jobs", 1)
    if "device" in params:
        kw["device"] = device
    return get_classifier(name, **kw)


def fit_classifier(name: str, train, label_key: str, *, random_state: int = 0, device: str | None = None,
                   **kwargs) -> tuple[CellTypeClassifier, list[str]]:
    """A registry classifier fitted on raw-count ``train``, and the warnings its fitting raised.

    Seeded (``random_state`` where the classifier takes one), single-threaded where it has ``n_jobs`` (results
    do not depend on it, and runs parallelise over classifiers and units instead), on ``device`` where it takes
    one (``None``: CUDA when present, else CPU).

    Parameters
    ----------
    name
        Registry name (:data:`CLASSIFIERS`).
    train
        Raw UMI counts, cells x genes, labels in ``train.obs[label_key]``.
    label_key
        Label column.
    random_state, device
        See above.
    **kwargs
        Further constructor arguments (e.g. scType's ``label_map``).

    Returns
    -------
    (classifier, notes)
        The fitted classifier and the messages of the warnings raised while fitting (e.g. scType: "labels have
        no ScTypeDB name"), so that a caller can show them beside the classifier's accuracy.
    """
    clf = make_classifier(name, random_state=random_state, device=device, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf.fit(train, label_key)
    notes = list(dict.fromkeys(str(w.message) for w in caught
                               if issubclass(w.category, UserWarning) and "perturblab" in (w.filename or "")))
    return clf, notes
