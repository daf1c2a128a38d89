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

Spec: ``perturbation-models.md`` (scGen v2.1.1, scPRAM, pertpy, cell-eval, ECCB 2025 tutorial).
"""

from __future__ import annotations

from . import de, intervals, metrics, metrics_de, metrics_targets
from .ceiling import calibrate, ceiling
from .data import LocoSplit, Preprocessing, loco_split, loco_targets, prepare
from .evaluate import METRIC_DEFINITIONS, evaluate, perturbed_centroid, rank_degs
from .evaluate_targets import evaluate_targets
from .models import (
    BASELINES,
    MODELS,
    AdditiveBaseline,
    IdentityBaseline,
    LinearBaseline,
    MatchingMeanBaseline,
    MeanDeltaBaseline,
    OTShift,
    PCAMeanDeltaBaseline,
    ScGen,
    ScPRAM,
    TrainMeanBaseline,
    baselines_for,
    make_model,
)
from .protocols import PROTOCOLS, Protocol, get_protocol
from .run import LocoResult, run_loco
from .training import TrainingHistory

__all__ = [
    "BASELINES",
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
    "Preprocessing",
    "Protocol",
    "ScGen",
    "ScPRAM",
    "TrainMeanBaseline",
    "TrainingHistory",
    "baselines_for",
    "calibrate",
    "ceiling",
    "de",
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
    "prepare",
    "rank_degs",
    "run_loco",
]
