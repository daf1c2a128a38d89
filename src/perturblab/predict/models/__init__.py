"""Perturbation-response models (scGen, scPRAM, OT shift) and baselines, and the :func:`make_model` factory."""

from __future__ import annotations

from ...exceptions import UnknownNameError
from .base import SOURCE_KEY, PerturbationModel, VAEModel
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
from .scpram import ScPRAM, ot_match

__all__ = ["BASELINES", "MODELS", "SOURCE_KEY", "AdditiveBaseline", "IdentityBaseline", "LinearBaseline",
           "MatchingMeanBaseline", "MeanDeltaBaseline", "OTShift", "PCAMeanDeltaBaseline", "PerturbationModel",
           "ScGen", "ScPRAM", "TrainMeanBaseline", "VAEModel", "baselines_for", "make_model", "ot_match"]

#: Every model name accepted by :func:`make_model`, with its class and fixed settings.
MODELS: dict[str, tuple[type[PerturbationModel], dict]] = {
    "scgen": (ScGen, {}),
    "scpram": (ScPRAM, {}),
    "scpram_first_cell": (ScPRAM, {"attention": "first_cell"}),
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
#: The baselines shown beside every model: control as prediction, control + mean shift (gene and PCA
#: space), scPerturBench's trainMean, Systema's matching mean, Ahlmann-Eltze et al.'s linear model. None is
#: trained (``scgen_unbalanced`` is a trained model, not a baseline). The additive model joins them where
#: the data hold combinations (:func:`baselines_for`).
BASELINES = ("identity", "mean_delta", "pca_mean_delta", "train_mean", "matching_mean", "linear")


def baselines_for(adata, condition_key: str = "condition", control: str = "control",
                  separator: str = "+") -> tuple[str, ...]:
    """:data:`BASELINES`, plus ``"additive"`` when a condition of ``adata`` is a combination (contains
    ``separator`` once the control is removed, e.g. ``"A+B"``)."""
    names = {str(v) for v in adata.obs[condition_key].unique()} if condition_key in adata.obs else set()
    combos = [n for n in names if len([p for p in n.split(separator) if p and p != control]) > 1]
    return (*BASELINES, "additive") if combos else BASELINES


def make_model(name: str, train_adata, **hyperparameters) -> PerturbationModel:
    """Build the model called ``name`` on ``train_adata`` (log-normalised training cells).

    Parameters
    ----------
    name
        One of :data:`MODELS`: ``"scgen"``, ``"scpram"``, ``"scpram_first_cell"``, ``"scgen_unbalanced"``,
        ``"ot_shift"``, ``"identity"``, ``"mean_delta"``, ``"pca_mean_delta"``, ``"train_mean"``, ``"matching_mean"``,
        ``"linear"``, ``"additive"``.
    train_adata
        Training cells (e.g. ``loco_split(...).train``).
    **hyperparameters
        Passed to the class (keys, network sizes, ``random_state``, ``device``...).

    Raises
    ------
    UnknownNameError
        For an unknown name (a ``ValueError`` and ``KeyError``).

    Examples
    --------
    >>> model = make_model("linear", split.train, random_state=0)   # doctest: +SKIP
    >>> pred = model.predict(split.target_ctrl)                    # doctest: +SKIP
    """
    if name not in MODELS:
        raise UnknownNameError("model", name, MODELS)
    cls, fixed = MODELS[name]
    return cls(train_adata, **{**fixed, **hyperparameters})
