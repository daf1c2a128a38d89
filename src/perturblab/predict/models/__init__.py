"""Perturbation-response models (scGen, scPRAM) and baselines, and the :func:`make_model` factory."""

from __future__ import annotations

from .base import PerturbationModel, VAEModel
from .baselines import IdentityBaseline, MeanDeltaBaseline, PCAMeanDeltaBaseline
from .scgen import ScGen
from .scpram import ScPRAM, ot_match

__all__ = ["PerturbationModel", "VAEModel", "ScGen", "ScPRAM", "IdentityBaseline", "MeanDeltaBaseline",
           "PCAMeanDeltaBaseline", "ot_match", "make_model", "MODELS", "BASELINES"]

#: Every model name accepted by :func:`make_model`, with its class and fixed settings.
MODELS = {
    "scgen": (ScGen, {}),
    "scpram": (ScPRAM, {}),
    "scpram_first_cell": (ScPRAM, {"attention": "first_cell"}),
    "scgen_unbalanced": (ScGen, {"balance": False}),
    "identity": (IdentityBaseline, {}),
    "mean_delta": (MeanDeltaBaseline, {}),
    "pca_mean_delta": (PCAMeanDeltaBaseline, {}),
}
#: The baselines shown beside every model (``scgen_unbalanced`` is scGen's latent arithmetic without balancing).
BASELINES = ("identity", "mean_delta", "pca_mean_delta", "scgen_unbalanced")


def make_model(name: str, train_adata, **hyperparameters) -> PerturbationModel:
    """Build the model called ``name`` on ``train_adata`` (log-normalised training cells).

    Parameters
    ----------
    name
        One of :data:`MODELS`: ``"scgen"``, ``"scpram"``, ``"scpram_first_cell"``,
        ``"scgen_unbalanced"``, ``"identity"``, ``"mean_delta"``, ``"pca_mean_delta"``.
    train_adata
        Training cells (e.g. ``loco_split(...).train``).
    **hyperparameters
        Passed to the class (keys, network sizes, ``random_state``, ``device``...).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    cls, fixed = MODELS[name]
    return cls(train_adata, **{**fixed, **hyperparameters})
