"""The model registry: names of perturbation-response models, your own models, and plugins.

Three ways a model reaches :func:`make_model`, :func:`perturblab.predict.run_loco`,
:func:`~perturblab.predict.benchmark.run_benchmark` and :func:`~perturblab.predict.tuning.tune`:

- a **name** of :data:`MODELS` (the built-in models and baselines, the names given to :func:`register_model`, and
  the names third-party packages declare in the ``perturblab.models`` entry-point group);
- an **unfitted instance** of a model class (a subclass of
  :class:`~perturblab.predict.models.base.PerturbationModel` built without training cells, e.g.
  ``ScGen(n_latent=10)``): each unit builds a fresh model of that class with those parameters on its own training
  cells (the instance itself is never fitted);
- a **class** (built with its default parameters).

A plugin package declares its models in its ``pyproject.toml``::

    [project.entry-points."perturblab.models"]
    my_model = "my_package.models:MyModel"

The group is read once, on the first lookup of :data:`MODELS`; a plugin that cannot be loaded gives one
:class:`~perturblab.exceptions.PerturblabWarning` naming it and is left out.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ...exceptions import InputError, PerturblabWarning, UnknownNameError

__all__ = ["ENTRY_POINT_GROUP", "MODELS", "ModelRegistry", "ModelSpec", "register_model", "resolve_model",
           "resolve_models"]

log = logging.getLogger(__name__)

#: The entry-point group third-party packages register models in.
ENTRY_POINT_GROUP = "perturblab.models"
#: Names a model cannot take (they mean something else on the command line or in the tables).
RESERVED = ("ceiling", "baselines", "all")


def _check_class(name: str, cls) -> None:
    if not isinstance(cls, type) or not callable(getattr(cls, "predict", None)):
        raise InputError(f"model {name!r} must be a class with a predict(ctrl_adata) method (a subclass of "
                         f"perturblab.predict.models.PerturbationModel), got {cls!r}")


class ModelRegistry(MutableMapping):
    """``{name: (model class, fixed constructor parameters)}``; plugins are loaded on the first lookup."""

    def __init__(self, builtins: Mapping[str, tuple[type, dict]]):
        self._entries: dict[str, tuple[type, dict]] = dict(builtins)
        self.builtin_names = tuple(builtins)
        self._plugins_loaded = False

    # -- plugins ---------------------------------------------------------------------------------
    def load_plugins(self, reload: bool = False) -> list[str]:
        """Read the ``perturblab.models`` entry points (once; again with ``reload``); returns the names added.

        A plugin that fails to import, or is not a model class, gives one warning naming it and is skipped; a
        plugin name that is already registered is skipped with a warning (registered names win).
        """
        if self._plugins_loaded and not reload:
            return []
        self._plugins_loaded = True
        from importlib.metadata import entry_points

        added = []
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._entries and not reload:
                warnings.warn(f"model plugin {ep.name!r} ({ep.value}) is not loaded: the name is already "
                              "registered", PerturblabWarning, stacklevel=3)
                continue
            try:
                cls = ep.load()
                _check_class(ep.name, cls)
            except Exception as err:
                warnings.warn(f"model plugin {ep.name!r} ({ep.value}) could not be loaded and is left out: "
                              f"{type(err).__name__}: {err}", PerturblabWarning, stacklevel=3)
                continue
            self._entries[ep.name] = (cls, {})
            added.append(ep.name)
        if added:
            log.info("model plugins loaded: %s", ", ".join(added))
        return added

    # -- mapping ---------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> tuple[type, dict]:
        self.load_plugins()
        return self._entries[name]

    def __setitem__(self, name: str, value: tuple[type, dict]) -> None:
        self._entries[name] = value

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self.load_plugins()
        return iter(self._entries)

    def __len__(self) -> int:
        self.load_plugins()
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        self.load_plugins()
        return name in self._entries

    def __repr__(self) -> str:
        return f"ModelRegistry({', '.join(self)})"


def _builtins() -> dict[str, tuple[type, dict]]:
    from .baselines import (
        AdditiveBaseline,
        IdentityBaseline,
        LinearBaseline,
        MatchingMeanBaseline,
        MeanDeltaBaseline,
        PCAMeanDeltaBaseline,
        TrainMeanBaseline,
    )
    from .otshift import OTShift
    from .scgen import ScGen
    from .scpram import ScPRAM

    return {
        "scgen": (ScGen, {}),
        "scpram": (ScPRAM, {}),
        "scpram_first_cell": (ScPRAM, {"attention": "first_cell"}),
        "scpram_residual": (ScPRAM, {"output": "residual"}),
        "scgen_unbalanced": (ScGen, {"balance": False}),
        "ot_shift": (OTShift, {}),
        "identity": (IdentityBaseline, {}),
        "mean_delta": (MeanDeltaBaseline, {}),
        "pca_mean_delta": (PCAMeanDeltaBaseline, {}),
        "train_mean": (TrainMeanBaseline, {}),
        "matching_mean": (MatchingMeanBaseline, {}),
        "linear": (LinearBaseline, {}),
        "additive": (AdditiveBaseline, {}),
    }


#: Every model name accepted by :func:`make_model`, with its class and fixed settings: the built-in models and
#: baselines, the models given to :func:`register_model` and those of ``perturblab.models`` plugins.
MODELS = ModelRegistry(_builtins())


def register_model(name: str, cls: type, overwrite: bool = False, params: dict | None = None) -> None:
    """Make a model class available by name everywhere a model name is accepted.

    Parameters
    ----------
    name
        The model's name in the tables, reports and on the command line (``--model NAME``).
    cls
        A model class: built as ``cls(train_adata, condition_key=..., cell_type_key=..., control=...,
        stimulated=..., random_state=..., **params)`` on log-normalised training cells (cells x genes), with
        ``predict(ctrl_adata) -> AnnData`` of predicted stimulated cells (same genes) and, when it has trainable
        weights, ``train(**kwargs)``. Subclass :class:`~perturblab.predict.models.base.PerturbationModel` to get
        the input checks, the output AnnData and unfitted instances for free.
    overwrite
        Replace a model already registered under ``name`` (built-in ones included).
    params
        Fixed constructor parameters of this name (as ``"scpram_first_cell"`` fixes ScPRAM's attention).

    Raises
    ------
    InputError
        An empty or reserved name (``ceiling``, ``baselines``, ``all``), a name already taken (pass
        ``overwrite=True``), or ``cls`` not a class with a ``predict`` method.

    Notes
    -----
    Registration lives in the current process; joblib and Dask workers receive the resolved classes from the
    parent, so registered models run in parallel too. Third-party packages register through the
    ``perturblab.models`` entry-point group instead (see :mod:`perturblab.predict.models.registry`).

    Examples
    --------
    >>> import perturblab as plab
    >>> from perturblab.predict.models import MeanDeltaBaseline
    >>> class HalfShift(MeanDeltaBaseline):
    ...     name = "half_shift"
    ...     def predict(self, ctrl_adata):
    ...         return self._output(self._check_input(ctrl_adata) + 0.5 * self.delta_, ctrl_adata)
    >>> plab.predict.register_model("half_shift", HalfShift, overwrite=True)
    >>> "half_shift" in plab.predict.MODELS
    True
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"a model name must be a non-empty string, got {name!r}")
    if name in RESERVED:
        raise InputError(f"{name!r} is reserved ({', '.join(RESERVED)}); register the model under another name")
    _check_class(name, cls)
    if name in MODELS and not overwrite:
        raise InputError(f"model {name!r} is already registered ({MODELS[name][0].__name__}); pass overwrite=True "
                         "to replace it or choose another name")
    MODELS[name] = (cls, dict(params or {}))


@dataclass(frozen=True)
class ModelSpec:
    """A model resolved to what builds it: ``name`` (in the tables), ``cls`` and constructor ``params``;
    ``builtin`` when it is a name perturblab ships with its shipped meaning (absent from run fingerprints)."""

    name: str
    cls: type
    params: dict = field(default_factory=dict)
    builtin: bool = False

    def build(self, train_adata, **hyperparameters):
        """A new model of this spec on ``train_adata`` (``hyperparameters`` override ``params``)."""
        return self.cls(train_adata, **{**self.params, **hyperparameters})

    def fingerprint(self) -> dict[str, Any]:
        """Class (module and qualified name) and parameters as JSON values (others as their ``repr``)."""
        return {"class": f"{self.cls.__module__}.{self.cls.__qualname__}", "params": _json_safe(self.params)}


def _json_safe(value):
    try:
        return json.loads(json.dumps(value, sort_keys=True))
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _json_safe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
        if isinstance(value, list | tuple):
            return [_json_safe(v) for v in value]
        return repr(value)


def resolve_model(model, name: str | None = None) -> ModelSpec:
    """The :class:`ModelSpec` of a model name, an unfitted model instance or a model class.

    Parameters
    ----------
    model
        A name of :data:`MODELS`, an instance of a model class (its constructor parameters are used, see
        :meth:`~perturblab.predict.models.base.PerturbationModel.get_params`) or a model class.
    name
        The name in the tables (default: the registry name, else the class's ``name`` attribute).

    Raises
    ------
    UnknownNameError
        An unknown name (with "did you mean").
    InputError
        Anything else, or an instance whose constructor parameters are unknown.
    """
    if isinstance(model, ModelSpec):
        return model if name is None or name == model.name else ModelSpec(name, model.cls, model.params)
    if isinstance(model, str):
        if model not in MODELS:
            raise UnknownNameError("model", model, MODELS, hint="register your own with "
                                   "perturblab.predict.register_model")
        cls, fixed = MODELS[model]
        builtin = model in MODELS.builtin_names and (cls, fixed) == _BUILTIN_SPECS.get(model)
        return ModelSpec(name or model, cls, dict(fixed), builtin)
    if isinstance(model, type):
        _check_class(str(name or model.__name__), model)
        return ModelSpec(name or str(getattr(model, "name", model.__name__)), model, {})
    get_params = getattr(model, "get_params", None)
    if callable(getattr(model, "predict", None)) and callable(get_params):
        return ModelSpec(name or str(getattr(model, "name", type(model).__name__)), type(model), dict(get_params()))
    raise InputError(f"a model must be a name of perturblab.predict.MODELS, a model class or an unfitted instance "
                     f"of one (e.g. ScGen(n_latent=10)), got {type(model).__name__}")


def resolve_models(models) -> dict[str, ModelSpec]:
    """``{table name: ModelSpec}`` of a list of names / instances / classes, of a ``{name: model}`` mapping, or of
    a list of ``(name or None, model)`` pairs.

    An instance or class whose name clashes with another entry (e.g. ``ScGen(n_latent=10)`` beside
    ``"scgen"``) gets its parameters appended to the name (``scgen[n_latent=10]``); a remaining clash raises.

    Raises
    ------
    InputError
        No model, or two entries with the same name.
    """
    if isinstance(models, Mapping):
        items = list(models.items())
    else:
        items = [m if isinstance(m, tuple) and len(m) == 2 and (m[0] is None or isinstance(m[0], str))
                 else (None, m) for m in models]
    if not items:
        raise InputError("no model given; choose among " + ", ".join(MODELS))
    specs: dict[str, ModelSpec] = {}
    for given, m in items:
        spec = resolve_model(m, given)
        if spec.name in specs and specs[spec.name] == spec:
            continue
        if spec.name in specs and given is None and not isinstance(m, str):
            label = ",".join(f"{k}={v}" for k, v in sorted(spec.params.items()))
            spec = ModelSpec(f"{spec.name}[{label}]", spec.cls, spec.params, spec.builtin)
        if spec.name in specs and specs[spec.name] != spec:
            raise InputError(f"two different models are called {spec.name!r}; name them with a mapping, e.g. "
                             "models={'mine': MyModel(...)}")
        specs[spec.name] = spec
    return specs


_BUILTIN_SPECS = dict(MODELS._entries)
