"""Perturbation-response prediction: scGen, scPRAM, baselines, metrics and the LOCO protocol.

Building blocks (all on log-normalised cells x genes after :func:`prepare`)::

    import perturblab as plab
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
from .data import LocoSplit, loco_split, loco_targets, prepare
from .evaluate import METRIC_DEFINITIONS, evaluate, perturbed_centroid, rank_degs
from .evaluate_targets import evaluate_targets
from .models import BASELINES, MODELS, AdditiveBaseline, IdentityBaseline, LinearBaseline, MatchingMeanBaseline, \
    MeanDeltaBaseline, PCAMeanDeltaBaseline, ScGen, ScPRAM, TrainMeanBaseline, baselines_for, make_model
from .run import LocoResult, run_loco
from .training import TrainingHistory

__all__ = ["prepare", "loco_split", "loco_targets", "LocoSplit", "make_model", "MODELS", "BASELINES", "ScGen",
           "ScPRAM", "IdentityBaseline", "MeanDeltaBaseline", "PCAMeanDeltaBaseline", "TrainMeanBaseline",
           "MatchingMeanBaseline", "LinearBaseline", "AdditiveBaseline", "baselines_for", "TrainingHistory",
           "evaluate", "evaluate_targets", "ceiling", "calibrate", "perturbed_centroid", "rank_degs",
           "METRIC_DEFINITIONS", "metrics", "metrics_de", "metrics_targets", "de", "intervals", "run_loco",
           "LocoResult"]
