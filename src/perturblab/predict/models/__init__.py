"""Perturbation-response models (scGen, scPRAM, OT shift) and baselines, and the :func:`make_model` factory."""

from __future__ import annotations

from .base import CELL_SOURCE_KEY, MODEL_KEY, SOURCE_KEY, PerturbationModel, VAEModel
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
from .registry import ENTRY_POINT_GROUP, MODELS, ModelSpec, register_model, resolve_model, resolve_models
from .scgen import ScGen
from .scpram import ScPRAM, ot_match

__all__ = ["BASELINES", "CELL_SOURCE_KEY", "ENTRY_POINT_GROUP", "MODELS", "MODEL_KEY", "SOURCE_KEY",
           "AdditiveBaseline", "IdentityBaseline", "LinearBaseline", "MatchingMeanBaseline", "MeanDeltaBaseline",
           "ModelSpec", "OTShift", "PCAMeanDeltaBaseline", "PerturbationModel", "ScGen", "ScPRAM",
           "TrainMeanBaseline", "VAEModel", "baselines_for", "make_model", "ot_match", "register_model",
           "resolve_model", "resolve_models"]

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


def make_model(model, train_adata, **hyperparameters) -> PerturbationModel:
    """Build a model on ``train_adata`` (log-normalised training cells, cells x genes).

    Parameters
    ----------
    model
        A name of :data:`MODELS` (``"scgen"``, ``"scpram"``, ``"scpram_first_cell"``, ``"scpram_residual"``,
        ``"scgen_unbalanced"``, ``"ot_shift"``, ``"identity"``, ``"mean_delta"``, ``"pca_mean_delta"``,
        ``"train_mean"``, ``"matching_mean"``, ``"linear"``, ``"additive"``, and the names given to
        :func:`register_model` or declared by ``perturblab.models`` plugins), an unfitted model instance
        (``ScGen(n_latent=10)``: a new model of its class and parameters is built, the instance is left unfitted)
        or a model class.
    train_adata
        Training cells (e.g. ``loco_split(...).train``).
    **hyperparameters
        Passed to the class (keys, network sizes, ``random_state``, ``device``...); they override the
        instance's parameters.

    Returns
    -------
    PerturbationModel
        Built on ``train_adata``; the VAE models still need ``.train()``.

    Raises
    ------
    UnknownNameError
        For an unknown name (a ``ValueError`` and ``KeyError``).
    InputError
        For something that is neither a name, a model class nor a model instance.

    Examples
    --------
    >>> import perturblab as plab
    >>> adata = plab.predict.prepare(plab.datasets.kang2018(), n_top_genes=200)
    >>> split = plab.predict.loco_split(adata, "B")
    >>> model = plab.predict.make_model("mean_delta", split.train)
    >>> pred = model.predict(split.target_ctrl)
    >>> pred.n_obs == split.target_ctrl.n_obs, pred.obs["perturblab_source"].unique().tolist()
    (True, ['predicted'])
    >>> unfitted = plab.predict.PCAMeanDeltaBaseline(n_components=10)
    >>> plab.predict.make_model(unfitted, split.train).pca_.n_components_
    10
    """
    return resolve_model(model).build(train_adata, **hyperparameters)
