"""Perturbation-response prediction: scGen, scPRAM, baselines, metrics and the LOCO protocol.

The whole protocol in one call (raw counts in; tables, summary and report out)::

    import perturblab as plab
    res = plab.predict.run_loco("kang2018", ["scgen"], ["CD14 Mono"], out="results/predict")

Building blocks (all on log-normalised cells x genes after :func:`prepare`)::

    adata = plab.predict.prepare(plab.datasets.kang2018())          # 2,000 HVGs, log1p
    split = plab.predict.loco_split(adata, "CD14 Mono")            # train / target ctrl / target stim
    model = plab.predict.make_model("scgen", split.train, random_state=0)
    history = model.train(max_epochs=60, callback=None)           # TrainingHistory
    pred = model.predict(split.target_ctrl)                        # AnnData of predicted cells
    table = plab.predict.evaluate(pred, split.target_stim, split.target_ctrl)
    ceiling = plab.predict.ceiling(split.target_stim, split.target_ctrl)   # the achievable, same metrics
    cells = plab.predict.combine_cells(pred, split.target_ctrl, split.target_stim)  # obs["perturblab_source"]
    plab.predict.distance(cells, groupby="perturblab_source", metric="edistance")    # groups x groups
    plab.predict.pl.mean_var_scatter(cells)                                          # figures: plab.predict.pl

Your own model: subclass :class:`~perturblab.predict.models.PerturbationModel`, then pass an unfitted instance
(``MyModel(k=3)``) wherever a model name goes, or ``plab.predict.register_model("mine", MyModel)`` (packages:
the ``perturblab.models`` entry-point group). Your own data: any AnnData of raw counts with a cell-type and a
condition column (``run_loco(adata_or_h5ad_path, ..., settings=BenchmarkSettings(cell_type_key=..., ...))``).

Spec: ``perturbation-models.md`` (scGen v2.1.1, scPRAM, pertpy, cell-eval, ECCB 2025 tutorial).
"""

from __future__ import annotations

from . import de, intervals, metrics, metrics_de, metrics_targets, pl
from .ceiling import calibrate, ceiling
from .cells import combine_cells
from .data import LocoSplit, Preprocessing, loco_split, loco_targets, prepare
from .distance import DISTANCES, distance
from .evaluate import METRIC_DEFINITIONS, evaluate, perturbed_centroid, rank_degs
from .evaluate_targets import evaluate_targets
from .models import (
    BASELINES,
    CELL_SOURCE_KEY,
    MODEL_KEY,
    MODELS,
    AdditiveBaseline,
    IdentityBaseline,
    LinearBaseline,
    MatchingMeanBaseline,
    MeanDeltaBaseline,
    OTShift,
    PCAMeanDeltaBaseline,
    PerturbationModel,
    ScGen,
    ScPRAM,
    TrainMeanBaseline,
    baselines_for,
    make_model,
    register_model,
)
from .protocols import PROTOCOLS, Protocol, get_protocol
from .run import LocoResult, run_loco
from .training import TrainingHistory

__all__ = [
    "BASELINES",
    "CELL_SOURCE_KEY",
    "DISTANCES",
    "MODEL_KEY",
    "METRIC_DEFINITIONS",
    "MODELS",
    "PROTOCOLS",
    "AdditiveBaseline",
    "IdentityBaseline",
    "LinearBaseline",
    "LocoResult",
    "LocoSplit",
    "MatchingMeanBaseline",
    "MeanDeltaBaseline",
    "OTShift",
    "PCAMeanDeltaBaseline",
    "PerturbationModel",
    "Preprocessing",
    "Protocol",
    "ScGen",
    "ScPRAM",
    "TrainMeanBaseline",
    "TrainingHistory",
    "baselines_for",
    "calibrate",
    "ceiling",
    "combine_cells",
    "de",
    "distance",
    "evaluate",
    "evaluate_targets",
    "get_protocol",
    "intervals",
    "loco_split",
    "loco_targets",
    "make_model",
    "metrics",
    "metrics_de",
    "metrics_targets",
    "perturbed_centroid",
    "pl",
    "prepare",
    "rank_degs",
    "register_model",
    "run_loco",
]
