"""One unit of benchmark work (model x target x variant x seed): its settings and how it runs.

A unit splits the cells (leave one cell type out), alters the training cells by the dataset variant, trains the
model with the unit's seed, predicts the held-out stimulated cells from their controls and evaluates them.
:func:`run_unit` is the unit function given to :func:`perturblab.runs.execute`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import anndata as ad
import pandas as pd

from ..._validation import check_fraction, check_positive
from ...exceptions import InputError, UnknownNameError
from ..data import Preprocessing, loco_split
from ..evaluate import evaluate
from ..models import MODELS, VAEModel, make_model
from .variants import VARIANTS, make_variant

__all__ = ["BenchmarkUnit", "BenchmarkSettings", "BenchmarkInputs", "UnitOutput", "run_unit", "UNIT_COLUMNS"]

#: The identifying columns every row of a unit's table starts with.
UNIT_COLUMNS = ["model", "target", "variant", "seed"]


@dataclass(frozen=True, order=True)
class BenchmarkUnit:
    """One model trained and evaluated on one held-out cell type, dataset variant and seed."""

    model: str
    target: str
    variant: str
    seed: int

    @property
    def key(self) -> dict:
        """The unit's identity in the run's :class:`~perturblab.runs.UnitStore`."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.model} / {self.target} / {self.variant} / seed {self.seed}"


@dataclass
class BenchmarkSettings:
    """Everything a unit needs besides its four fields (the same for all units of a benchmark).

    Attributes
    ----------
    condition_key, cell_type_key, control, stimulated
        obs columns and condition values.
    preprocessing
        How raw counts become the models' input (:class:`~perturblab.predict.Preprocessing`: normalisation,
        log1p, highly variable genes); ``None`` when the data given are already log-normalised.
    min_cells
        Default targets: cell types with at least this many cells in each condition.
    model_params
        ``{model name: constructor keyword arguments}`` (e.g. ``{"scgen": {"n_latent": 10}}``).
    train_params
        ``{model name: keyword arguments of .train()}`` (e.g. ``{"scgen": {"max_epochs": 50}}``).
    evaluate_params
        Keyword arguments of :func:`perturblab.predict.evaluate` (``n_bootstrap``, ``n_degs``...).
    variant_params
        Keyword arguments of :func:`~perturblab.predict.benchmark.make_variant` (``fraction``,
        ``min_fraction``).
    device
        Torch device of the VAE models (``None``: CUDA when present). Not part of the fingerprint.
    torch_threads
        If set, ``torch.set_num_threads`` in each unit (1 when units run in parallel). Not part of the
        fingerprint.

    Raises
    ------
    InputError
        For an invalid value (a negative number of bootstrap resamples, a share outside (0, 1], ...).
    """

    condition_key: str = "condition"
    cell_type_key: str = "cell_type"
    control: str = "control"
    stimulated: str = "stimulated"
    preprocessing: Preprocessing | None = field(default_factory=Preprocessing)
    min_cells: int = 30
    model_params: dict = field(default_factory=dict)
    train_params: dict = field(default_factory=dict)
    evaluate_params: dict = field(default_factory=dict)
    variant_params: dict = field(default_factory=dict)
    device: str | None = None
    torch_threads: int | None = None

    def __post_init__(self) -> None:
        from ..._device import check_device

        check_device(self.device)
        check_positive(self.min_cells, "min_cells")
        if "n_bootstrap" in self.evaluate_params:
            check_positive(self.evaluate_params["n_bootstrap"], "n_bootstrap", minimum=0)
        for name in ("fraction", "min_fraction"):
            if name in self.variant_params:
                check_fraction(self.variant_params[name], name)
        for model, params in self.train_params.items():
            if params.get("max_epochs") is not None:
                check_positive(params["max_epochs"], f"max_epochs of {model}")

    @property
    def keys(self) -> dict:
        """``condition_key, cell_type_key, control, stimulated`` as keyword arguments."""
        return dict(condition_key=self.condition_key, cell_type_key=self.cell_type_key, control=self.control,
                    stimulated=self.stimulated)

    def fingerprint(self) -> dict:
        """The settings that change results (device and threads do not), as plain JSON values."""
        d = asdict(self)
        d.pop("device")
        d.pop("torch_threads")
        return d


@dataclass
class BenchmarkInputs:
    """What every unit of a benchmark shares (sent once to each worker): the log-normalised cells and the
    settings."""

    adata: ad.AnnData
    settings: BenchmarkSettings
    keep_predictions: bool = False


@dataclass
class UnitOutput:
    """What a unit produced: the evaluation ``table``, ``training`` facts (one JSON row), the training
    ``history`` (one row per epoch) and, when kept, the predicted cells."""

    table: pd.DataFrame
    training: dict[str, Any]
    history: pd.DataFrame
    prediction: ad.AnnData | None = None


def run_unit(inputs: BenchmarkInputs, unit: BenchmarkUnit) -> UnitOutput:
    """Split, alter the training cells, train, predict and evaluate one unit.

    Parameters
    ----------
    inputs
        All cells, log-normalised (cells x genes), and the benchmark's settings.
    unit
        What to run; ``unit.seed`` seeds the variant's draws, the model and the bootstrap.

    Returns
    -------
    UnitOutput
        Its table is :func:`perturblab.predict.evaluate`'s with the unit's fields in front and
        ``train_seconds``, ``n_epochs`` and ``n_train_stimulated`` appended.

    Raises
    ------
    UnknownNameError
        For an unknown model, variant or target.
    """
    from ...runs import peak_memory

    adata, settings = inputs.adata, inputs.settings
    if unit.model not in MODELS:
        raise UnknownNameError("model", unit.model, MODELS)
    if unit.variant not in VARIANTS:
        raise UnknownNameError("dataset variant", unit.variant, VARIANTS)
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    keys = settings.keys
    split = loco_split(adata, unit.target, **keys)
    train = make_variant(split.train, unit.variant, condition_key=settings.condition_key,
                         cell_type_key=settings.cell_type_key, stimulated=settings.stimulated,
                         random_state=unit.seed, **settings.variant_params)
    params = {**settings.model_params.get(unit.model, {}), **keys, "random_state": unit.seed}
    is_vae = issubclass(MODELS[unit.model][0], VAEModel)
    if is_vae:
        params["device"] = settings.device
    t0, c0 = time.perf_counter(), time.process_time()
    with peak_memory(settings.device if is_vae else None) as mem:
        model = make_model(unit.model, train, **params)
        history = model.train(**settings.train_params.get(unit.model, {})) if is_vae else model.history
    train_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    pred = model.predict(split.target_ctrl)
    pred.uns["perturblab_model"] = unit.model
    table = evaluate(pred, split.target_stim, split.target_ctrl,
                     **{"random_state": unit.seed, **settings.evaluate_params})
    for i, col in enumerate(UNIT_COLUMNS):
        table.insert(i, col, getattr(unit, col))
    n_stim = int((train.obs[settings.condition_key].astype(str) == settings.stimulated).sum())
    n_epochs = int(len(history.history))
    table = table.assign(train_seconds=train_s, n_epochs=n_epochs, n_train_stimulated=n_stim)
    training = {"target": unit.target, "model": unit.model, "variant": unit.variant, "seed": unit.seed,
                "train_seconds": train_s, "train_cpu_seconds": cpu_s, "peak_memory_mb": mem["peak_mb"],
                "peak_rss_mb": mem["peak_rss_mb"], "epochs": n_epochs, "best_epoch": int(history.best_epoch),
                "stopped_by": history.stopped_by, "n_train_stimulated": n_stim}
    if not len(history.history):
        history = pd.DataFrame(columns=["epoch", "train_loss", "val_loss", "seconds"])
    else:
        history = history.history
    return UnitOutput(table, training, history, pred if inputs.keep_predictions else None)


def check_models(models) -> list[str]:
    """The model names, checked against :data:`perturblab.predict.MODELS` (with "did you mean")."""
    names = [str(m) for m in models]
    if not names:
        raise InputError("no model given; choose among " + ", ".join(MODELS))
    for m in names:
        if m not in MODELS:
            raise UnknownNameError("model", m, MODELS)
    return names
