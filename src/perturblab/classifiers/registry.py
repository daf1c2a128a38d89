"""Classifiers by name: construction (:func:`get_classifier`) and seeded fitting (:func:`fit_classifier`)."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import cast

from ..exceptions import InputError, UnknownNameError
from .base import CellTypeClassifier
from .celltypist import CellTypistClassifier
from .chetah import ChetahClassifier
from .mlp import MLPClassifier
from .random_forest import RandomForestClassifier
from .sctype import ScTypeClassifier
from .svm import SVMClassifier

__all__ = [
    "BUILTIN_CLASSIFIERS",
    "CLASSIFIERS",
    "fit_classifier",
    "get_classifier",
    "make_classifier",
    "register_classifier",
]

#: Registry names of the classifiers, in report order: perturblab's six, then those added with
#: :func:`register_classifier` (e.g. ``"transformer"`` once :mod:`perturblab.bridges` is imported).
CLASSIFIERS: dict[str, Callable[..., CellTypeClassifier]] = {
    "sctype": ScTypeClassifier,
    "chetah": ChetahClassifier,
    "svm": SVMClassifier,
    "random_forest": RandomForestClassifier,
    "mlp": MLPClassifier,
    "celltypist": CellTypistClassifier,
}
_HINT = ("add yours with plab.classifiers.register_classifier, or pass a fitted one "
         "(plab.classifiers.wrap)")
#: perturblab's own six classifiers (the audit's default).
BUILTIN_CLASSIFIERS = tuple(CLASSIFIERS)


def register_classifier(name: str, factory: Callable[..., CellTypeClassifier], *, overwrite: bool = False) -> None:
    """Add a classifier to the registry, so that :func:`get_classifier`, :func:`fit_classifier`,
    :func:`perturblab.audit.run_audit` and ``perturblab audit --classifier NAME`` know it by name.

    Parameters
    ----------
    name
        Registry name (letters, digits, ``_`` and ``-``).
    factory
        A :class:`~perturblab.classifiers.base.CellTypeClassifier` subclass, or a callable taking keyword
        arguments (``random_state``, ``device``, ``n_jobs`` where it accepts them) that returns an unfitted one.
    overwrite
        Replace an existing entry (perturblab's six built-in names can never be replaced).

    Raises
    ------
    InputError
        A bad name, a built-in name, or a name already registered without ``overwrite``.

    Examples
    --------
    >>> from perturblab.classifiers import RandomForestClassifier, get_classifier, register_classifier
    >>> register_classifier("small_forest", lambda **kw: RandomForestClassifier(n_estimators=10, **kw),
    ...                     overwrite=True)
    >>> get_classifier("small_forest").n_estimators
    10
    """
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise InputError(f"classifier name {name!r} must be letters, digits, '_' or '-'")
    if not callable(factory):
        raise InputError(f"the factory of {name!r} must be a classifier class or a callable returning a classifier")
    if name in BUILTIN_CLASSIFIERS:
        raise InputError(f"{name!r} is one of perturblab's built-in classifiers; register yours under another name")
    if name in CLASSIFIERS and not overwrite and CLASSIFIERS[name] is not factory:
        raise InputError(f"classifier {name!r} is registered already; pass overwrite=True to replace it")
    CLASSIFIERS[name] = factory


def get_classifier(name: str, **kwargs) -> CellTypeClassifier:
    """A new, unfitted classifier by name.

    Parameters
    ----------
    name
        One of :data:`CLASSIFIERS`: ``"sctype"``, ``"chetah"``, ``"svm"``, ``"random_forest"``, ``"mlp"``,
        ``"celltypist"``, or a name added with :func:`register_classifier`.
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
        raise UnknownNameError("classifier", name, CLASSIFIERS, hint=_HINT)
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
        raise UnknownNameError("classifier", name, CLASSIFIERS, hint=_HINT)
    factory = CLASSIFIERS[name]
    init = cast("type[CellTypeClassifier]", factory).__init__ if isinstance(factory, type) else factory
    params = inspect.signature(init).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kw = dict(kwargs)
    if "random_state" in params or takes_any:
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
