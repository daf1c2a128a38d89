"""Search spaces of the hyperparameter tuning (Optuna distributions), per model.

Ranges follow the hyperparameters tuned in the ISMB/ECCB 2025 VT-8 tutorial (scGen: layers,
latent size, hidden size, dropout, KL weight, learning rate; scPRAM: latent and hidden size,
noise rate, KL weight, learning rate, attention ratio), centred on each anchor's defaults
(scGen 800/100/2/0.2/5e-5/1e-3; scPRAM 1000/100/0.1/5e-4/5e-4, ratio 0.005-0.05). scGen's space
also holds ``decoder_batch_norm`` (theislab/scgen's decoder has BatchNorm, pertpy's and ours by default not).
"""

from __future__ import annotations

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from ..exceptions import InputError

__all__ = ["SEARCH_SPACES", "TRAIN_PARAMS", "suggest", "split_params", "search_space"]

#: Parameters that go to ``model.train(...)``; all others go to the model's constructor.
TRAIN_PARAMS = ("lr", "weight_decay", "batch_size")

_SCGEN = {
    "n_layers": IntDistribution(1, 3),
    "n_latent": CategoricalDistribution([10, 20, 50, 100]),
    "n_hidden": CategoricalDistribution([128, 256, 512, 800]),
    "dropout_rate": FloatDistribution(0.05, 0.3),
    "kl_weight": FloatDistribution(1e-6, 1e-2, log=True),
    "lr": FloatDistribution(1e-4, 1e-2, log=True),
    "decoder_batch_norm": CategoricalDistribution([False, True]),
}
_SCPRAM = {
    "n_latent": CategoricalDistribution([10, 20, 50, 100]),
    "n_hidden": CategoricalDistribution([256, 512, 1000]),
    "noise_rate": FloatDistribution(0.0, 0.3),
    "kl_weight": FloatDistribution(1e-5, 1e-2, log=True),
    "lr": FloatDistribution(1e-4, 1e-2, log=True),
    "ratio": FloatDistribution(0.005, 0.2, log=True),
}
#: Default search space of each tunable model of :data:`perturblab.predict.MODELS`.
SEARCH_SPACES: dict[str, dict[str, BaseDistribution]] = {
    "scgen": _SCGEN, "scgen_unbalanced": dict(_SCGEN),
    "scpram": _SCPRAM, "scpram_first_cell": dict(_SCPRAM),
    "scpram_residual": dict(_SCPRAM),
}


def search_space(model: str, space: dict[str, BaseDistribution] | None = None,
                 cls: type | None = None) -> dict[str, BaseDistribution]:
    """The search space of ``model`` (``space`` if given, else :data:`SEARCH_SPACES`, else the attribute
    ``search_space`` of the model's class ``cls``: how registered and plugin models declare theirs).

    Raises
    ------
    ValueError
        If the model has no default space and none is given, or a value is not an Optuna
        distribution.
    """
    if space is None and model not in SEARCH_SPACES and isinstance(getattr(cls, "search_space", None), dict):
        space = cls.search_space  # type: ignore[union-attr]
    if space is None:
        if model not in SEARCH_SPACES:
            raise InputError(f"no default search space for model {model!r} (tunable: {', '.join(SEARCH_SPACES)}); "
                             "pass space={name: optuna distribution} or give the model class a search_space attribute")
        space = SEARCH_SPACES[model]
    bad = [k for k, v in space.items() if not isinstance(v, BaseDistribution)]
    if bad or not space:
        raise InputError(f"search space entries must be optuna distributions (bad: {bad or 'empty space'})")
    return dict(space)


def suggest(trial, space: dict[str, BaseDistribution]) -> dict:
    """Draw every parameter of ``space`` from ``trial`` (public ``suggest_*`` calls)."""
    out = {}
    for name, dist in space.items():
        if isinstance(dist, IntDistribution):
            out[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        elif isinstance(dist, FloatDistribution):
            step = None if dist.log else dist.step
            out[name] = trial.suggest_float(name, dist.low, dist.high, step=step, log=dist.log)
        elif isinstance(dist, CategoricalDistribution):
            out[name] = trial.suggest_categorical(name, dist.choices)
        else:
            raise TypeError(f"unsupported distribution {type(dist).__name__} for {name!r}")
    return out


def split_params(params: dict) -> tuple[dict, dict]:
    """``(constructor params, train params)`` of a parameter dict (see :data:`TRAIN_PARAMS`)."""
    model = {k: v for k, v in params.items() if k not in TRAIN_PARAMS}
    train = {k: v for k, v in params.items() if k in TRAIN_PARAMS}
    return model, train
