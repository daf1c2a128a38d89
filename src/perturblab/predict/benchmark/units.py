"""One unit of benchmark work (model x target x variant x seed): its settings and how it runs.

A unit splits the cells (leave one cell type out), alters the training cells by the dataset variant, trains the
model with the unit's seed, predicts the held-out stimulated cells from their controls and evaluates them.
The pseudo-model ``"ceiling"`` (:data:`CEILING`) evaluates half of the real stimulated cells as the prediction
of the other half (:func:`perturblab.predict.ceiling`). :func:`run_unit` is the unit function given to
:func:`perturblab.runs.execute`.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from ..._validation import check_fraction, check_positive
from ...exceptions import InputError, UnknownNameError
from ..ceiling import split_halves
from ..data import Preprocessing, loco_split
from ..evaluate import evaluate, perturbed_centroid
from ..evaluate_targets import summarise_target
from ..models import MODELS, VAEModel
from ..models.base import MODEL_KEY
from ..models.registry import ModelSpec, resolve_model
from ..protocols import protocol_of
from .variants import VARIANTS, make_variant

__all__ = [
    "CEILING",
    "NOTE_METRICS",
    "UNIT_COLUMNS",
    "BenchmarkInputs",
    "BenchmarkSettings",
    "BenchmarkUnit",
    "UnitOutput",
    "run_unit",
]

#: The identifying columns every row of a unit's table starts with.
UNIT_COLUMNS = ["model", "target", "variant", "seed"]
#: Name of the data ceiling's rows (half of the real stimulated cells predicting the other half).
CEILING = "ceiling"
#: The (metric, gene set) rows, all NaN, of a unit whose model does not apply to the data; column ``note``
#: says why.
NOTE_METRICS = (("r2_pearson_mean", "all"), ("r2_pearson_mean", "top100_degs"), ("r2_score_mean", "all"),
                ("pearson_delta", "all"), ("edistance", "pca"), ("mmd_linear", "pca"), ("wasserstein", "all"))


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

    @property
    def protocol(self) -> str:
        """Name of the protocol these settings follow (:data:`perturblab.predict.PROTOCOLS`), or ``"custom"``."""
        return protocol_of(self.preprocessing, self.model_params)


@dataclass
class BenchmarkInputs:
    """What every unit of a benchmark shares (sent once to each worker): the log-normalised cells, the
    settings and the resolved models (``{name: ModelSpec}``; a name absent there is looked up in
    :data:`perturblab.predict.MODELS`)."""

    adata: ad.AnnData
    settings: BenchmarkSettings
    keep_predictions: bool = False
    specs: dict[str, ModelSpec] = field(default_factory=dict)


@dataclass
class UnitOutput:
    """What a unit produced: the evaluation ``table``, ``training`` facts (one JSON row), the training
    ``history`` (one row per epoch), when kept the predicted cells, and ``arrays``: the
    :class:`~perturblab.predict.evaluate_targets.TargetSummary` of the unit (mean deltas, their resampled values
    in float16, DEG counts), all the metrics over targets need."""

    table: pd.DataFrame
    training: dict[str, Any]
    history: pd.DataFrame
    prediction: ad.AnnData | None = None
    arrays: dict[str, np.ndarray] | None = None


def _stream(unit: BenchmarkUnit, what: str) -> int:
    """A seed of its own for one use inside a unit (same unit, same number)."""
    return int(np.random.SeedSequence([int(unit.seed), zlib.crc32(f"{unit.target}:{what}".encode())])
               .generate_state(1)[0])


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
        ``train_seconds``, ``n_epochs``, ``n_train_stimulated`` and ``protocol`` (the name of the protocol the
        settings follow, :data:`perturblab.predict.PROTOCOLS`, or "custom") appended. Evaluation uses Systema's
        reference (:func:`perturblab.predict.perturbed_centroid` of the training cells before the variant) and
        the training stimulated cells as ``other_stim`` (Mejia et al.'s "vs rest" DEG weights), unless
        ``settings.evaluate_params`` sets them. ``unit.model == "ceiling"``: the data ceiling.

    Raises
    ------
    UnknownNameError
        For an unknown model, variant or target.
    """
    from ..._device import torch_threads

    with torch_threads(inputs.settings.torch_threads):
        return _run_unit(inputs, unit)


def _run_unit(inputs: BenchmarkInputs, unit: BenchmarkUnit) -> UnitOutput:
    from ...runs import peak_memory

    adata, settings = inputs.adata, inputs.settings
    spec = inputs.specs.get(unit.model)
    if spec is None and unit.model not in MODELS and unit.model != CEILING:
        raise UnknownNameError("model", unit.model, [*MODELS, CEILING])
    if unit.variant not in VARIANTS:
        raise UnknownNameError("dataset variant", unit.variant, VARIANTS)
    keys = settings.keys
    split = loco_split(adata, unit.target, **keys)
    is_stim = split.train.obs[settings.condition_key].astype(str).to_numpy() == settings.stimulated
    eval_kwargs = {"random_state": unit.seed, **settings.evaluate_params}
    if is_stim.any():  # Systema's reference and Mejia et al.'s "vs rest" weights, from the unaltered split
        eval_kwargs.setdefault("perturbed_reference", perturbed_centroid(
            split.train, settings.condition_key, settings.cell_type_key, settings.stimulated))
        eval_kwargs.setdefault("other_stim", split.train[is_stim].copy())
    if unit.model == CEILING:
        return _ceiling_unit(unit, split, eval_kwargs, inputs)
    train = make_variant(split.train, unit.variant, condition_key=settings.condition_key,
                         cell_type_key=settings.cell_type_key, stimulated=settings.stimulated,
                         random_state=unit.seed, **settings.variant_params)
    spec = spec or resolve_model(unit.model)
    params = {**settings.model_params.get(unit.model, {}), **keys, "random_state": unit.seed}
    is_vae = issubclass(spec.cls, VAEModel)
    if is_vae:
        params["device"] = settings.device
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        with peak_memory(settings.device if is_vae else None) as mem:
            model = spec.build(train, **params)
            history = model.train(**settings.train_params.get(unit.model, {})) if is_vae else model.history
        train_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        pred = model.predict(split.target_ctrl)
        pred.uns[MODEL_KEY] = unit.model
        if MODEL_KEY in pred.obs:
            pred.obs[MODEL_KEY] = unit.model
        table = evaluate(pred, split.target_stim, split.target_ctrl, **eval_kwargs)
    except InputError as err:  # the model does not apply to these data: a row that says so, the run goes on
        return _not_applicable(unit, settings, train, err)
    arrays = _summary_arrays(unit, pred, split.target_stim, split.target_ctrl, table, settings)
    for i, col in enumerate(UNIT_COLUMNS):
        table.insert(i, col, getattr(unit, col))
    n_stim = int((train.obs[settings.condition_key].astype(str) == settings.stimulated).sum())
    n_epochs = int(len(history.history))
    table = table.assign(train_seconds=train_s, n_epochs=n_epochs, n_train_stimulated=n_stim,
                         protocol=settings.protocol)
    training = {"target": unit.target, "model": unit.model, "variant": unit.variant, "seed": unit.seed,
                "train_seconds": train_s, "train_cpu_seconds": cpu_s, "peak_memory_mb": mem["peak_mb"],
                "peak_rss_mb": mem["peak_rss_mb"], "epochs": n_epochs, "best_epoch": int(history.best_epoch),
                "stopped_by": history.stopped_by, "n_train_stimulated": n_stim}
    if not len(history.history):
        history = pd.DataFrame(columns=["epoch", "train_loss", "val_loss", "seconds"])
    else:
        history = history.history
    return UnitOutput(table, training, history, pred if inputs.keep_predictions else None, arrays)


def _not_applicable(unit: BenchmarkUnit, settings: BenchmarkSettings, train: ad.AnnData,
                    err: Exception) -> UnitOutput:
    """The unit of a model that cannot be built, or cannot predict or be evaluated, on these data (the linear
    baseline with one training cell type, a target with too few cells...): NaN rows of :data:`NOTE_METRICS`
    with the reason in column ``note``, and one warning."""
    import warnings

    from ...exceptions import PerturblabWarning
    from ..evaluate import definition

    note = f"not applicable: {err}"
    warnings.warn(f"{unit.model} on {unit.target!r} ({unit.variant}, seed {unit.seed}) gives NaN metrics: {err}",
                  PerturblabWarning, stacklevel=2)
    n_stim = int((train.obs[settings.condition_key].astype(str) == settings.stimulated).sum())
    table = pd.DataFrame([{**unit.key, "metric": m, "gene_set": g, "value": np.nan, "ci_low": np.nan,
                           "ci_high": np.nan, "n_bootstrap": 0, "definition": definition(m), "ci_method": "none",
                           "ci_flag": "not applicable", "bias": np.nan, "paired": False, "note": note}
                          for m, g in NOTE_METRICS])
    table = table.assign(train_seconds=0.0, n_epochs=0, n_train_stimulated=n_stim, protocol=settings.protocol)
    training = {"target": unit.target, "model": unit.model, "variant": unit.variant, "seed": unit.seed,
                "train_seconds": 0.0, "train_cpu_seconds": 0.0, "peak_memory_mb": 0.0, "peak_rss_mb": 0.0,
                "epochs": 0, "best_epoch": 0, "stopped_by": "not applicable", "n_train_stimulated": n_stim,
                "note": note}
    return UnitOutput(table, training, pd.DataFrame(columns=["epoch", "train_loss", "val_loss", "seconds"]))


def _summary_arrays(unit, pred, truth, ctrl, table, settings) -> dict[str, np.ndarray]:
    """The unit's :class:`TargetSummary` as arrays; the resampled deltas in float16 (the metrics over targets
    rank and compare whole delta vectors: 3 significant digits per gene are plenty, and a unit stays small)."""
    v = table.set_index("metric")["value"]
    nsig = (float(v.get("de_nsig_counts_real", np.nan)), float(v.get("de_nsig_counts_pred", np.nan)))
    nsig_known = nsig if np.all(np.isfinite(nsig)) else None
    params = settings.evaluate_params
    summary = summarise_target(pred, truth, ctrl, n_bootstrap=int(params.get("n_bootstrap", 100)),
                               paired=params.get("paired", "auto"), layer=params.get("layer"),
                               fdr=params.get("fdr", 0.05), nsig=nsig_known, random_state=_stream(unit, "targets"),
                               name=unit.target)
    arrays = summary.arrays()
    arrays["boot_pred"] = arrays["boot_pred"].astype(np.float16)
    arrays["boot_real"] = arrays["boot_real"].astype(np.float16)
    return arrays


def _ceiling_unit(unit: BenchmarkUnit, split, eval_kwargs: dict, inputs: BenchmarkInputs) -> UnitOutput:
    """The data ceiling of one target: half of its real stimulated cells as the prediction of the other half
    (:func:`perturblab.predict.ceiling`, ``method="split"``, seeded by the unit's seed); nothing trained."""
    settings = inputs.settings
    empty = pd.DataFrame(columns=["epoch", "train_loss", "val_loss", "seconds"])
    training = {"target": unit.target, "model": unit.model, "variant": unit.variant, "seed": unit.seed,
                "train_seconds": 0.0, "train_cpu_seconds": 0.0, "peak_memory_mb": 0.0, "peak_rss_mb": 0.0,
                "epochs": 0, "best_epoch": 0, "stopped_by": "none", "n_train_stimulated": 0}
    if split.target_stim.n_obs < 4:
        import warnings

        from ...exceptions import PerturblabWarning

        warnings.warn(f"no ceiling for {unit.target!r}: {split.target_stim.n_obs} stimulated cells cannot be split "
                      "in two halves of >= 2", PerturblabWarning, stacklevel=2)
        return UnitOutput(pd.DataFrame(columns=UNIT_COLUMNS), training, empty, None, None)
    half_pred, half_real = split_halves(split.target_stim, "split", unit.seed)
    table = evaluate(half_pred, half_real, split.target_ctrl, **{**eval_kwargs, "paired": False})
    arrays = _summary_arrays(unit, half_pred, half_real, split.target_ctrl, table,
                             replace(settings, evaluate_params={**settings.evaluate_params, "paired": False}))
    for i, col in enumerate(UNIT_COLUMNS):
        table.insert(i, col, getattr(unit, col))
    table = table.assign(train_seconds=0.0, n_epochs=0, n_train_stimulated=0, protocol=settings.protocol)
    return UnitOutput(table, training, empty, None, arrays)

