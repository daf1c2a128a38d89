"""The leave-one-cell-type-out (LOCO) protocol: train, predict and evaluate models x targets.

Each finished (target, model) unit is written atomically under ``out_dir/units/`` so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import pandas as pd

from .._io import read_table, write_h5ad, write_json, write_table
from .data import LocoSplit, loco_split
from .evaluate import evaluate
from .models import MODELS, VAEModel, make_model
from .training import TrainingHistory

__all__ = ["LocoResult", "run_loco", "peak_memory"]


@dataclass
class LocoResult:
    """Results of :func:`run_loco`.

    Attributes
    ----------
    metrics
        Tidy table: ``target, model`` + the columns of :func:`evaluate`.
    training
        One row per (target, model): ``train_seconds`` (wall, model construction + training),
        ``train_cpu_seconds`` (process CPU time; less sensitive to a busy machine), ``peak_memory_mb`` and
        ``peak_rss_mb`` (see :func:`peak_memory`),
        ``epochs``, ``best_epoch``, ``stopped_by``. ``scgen_unbalanced`` reusing ``scgen`` has NaN times.
    predictions
        ``{(target, model): AnnData}`` of predicted cells.
    splits
        ``{target: LocoSplit}``.
    histories
        ``{(target, model): TrainingHistory}``.
    """

    metrics: pd.DataFrame
    training: pd.DataFrame
    predictions: dict = field(default_factory=dict)
    splits: dict = field(default_factory=dict)
    histories: dict = field(default_factory=dict)


@contextmanager
def peak_memory(device=None, interval: float = 0.05):
    """Measure memory while the block runs (MB).

    Yields a dict filled at exit: ``"peak_mb"``, the peak above the level at the start (CPU: resident
    set size sampled every ``interval`` s with psutil; CUDA: ``torch.cuda.max_memory_allocated``), and
    ``"peak_rss_mb"``, the absolute peak resident set size of the process. On CPU the increase
    underestimates a model's need when memory freed by earlier work in the same process is reused:
    compare models in fresh processes for exact figures.
    """
    import psutil

    out = {"peak_mb": float("nan"), "peak_rss_mb": float("nan")}
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()
    cuda = device is not None and str(device).startswith("cuda")
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()

    def sample():
        while not stop.wait(interval):
            peak[0] = max(peak[0], proc.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        out["peak_rss_mb"] = peak[0] / 2**20
        if cuda:
            out["peak_mb"] = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20
        else:
            out["peak_mb"] = (peak[0] - base) / 2**20


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text))


def _unit_dir(out_dir, target, model) -> Path | None:
    return None if out_dir is None else Path(out_dir) / "units" / f"{_slug(target)}__{_slug(model)}"


def _load_unit(d: Path):
    info = json.loads((d / "training.json").read_text())
    hist = TrainingHistory(read_table(d / "history.csv"), info["best_epoch"], info["stopped_by"],
                           info["train_seconds"])
    return read_table(d / "metrics.parquet"), info, ad.read_h5ad(d / "pred.h5ad"), hist


def _save_unit(d: Path, metrics: pd.DataFrame, info: dict, pred: ad.AnnData, hist: TrainingHistory) -> None:
    d.mkdir(parents=True, exist_ok=True)
    write_h5ad(d / "pred.h5ad", pred)
    write_table(d / "history.csv", hist.history)
    write_table(d / "metrics.parquet", metrics)
    write_json(d / "training.json", info)  # written last: marks the unit as finished


def run_loco(adata: ad.AnnData, models: Sequence[str], targets: Sequence[str], *, hyperparameters: dict | None = None,
             train_kwargs: dict | None = None, evaluate_kwargs: dict | None = None, random_state: int = 0,
             device: str | None = None, out_dir=None, progress: bool = True, keys: dict | None = None,
             log=print) -> LocoResult:
    """Run the LOCO protocol: for each target, train each model without the target's stimulated
    cells, predict them from its controls and evaluate.

    Parameters
    ----------
    adata
        Log-normalised cells x genes (see :func:`prepare`).
    models
        Names accepted by :func:`make_model`. ``"scgen_unbalanced"`` reuses this run's trained
        ``"scgen"`` of the same target when there is one (same network, delta without balancing);
        otherwise it trains its own (identical, seeded) network.
    targets
        Cell types to hold out.
    hyperparameters
        ``{model name: kwargs}`` for :func:`make_model`.
    train_kwargs
        ``{model name: kwargs}`` for ``model.train``.
    evaluate_kwargs
        Passed to :func:`evaluate` (e.g. ``n_bootstrap``).
    random_state, device
        Seed of models and bootstraps; torch device.
    out_dir
        When given, finished units are saved there and reused on a rerun (resume).
    keys
        ``condition_key, cell_type_key, control, stimulated`` if not Kang's defaults.
    log
        Function receiving one line per finished unit.

    Returns
    -------
    LocoResult
    """
    hyperparameters, train_kwargs = hyperparameters or {}, train_kwargs or {}
    evaluate_kwargs = {"random_state": random_state, **(evaluate_kwargs or {})}
    keys = keys or {}
    metric_tables, train_rows = [], []
    result = LocoResult(pd.DataFrame(), pd.DataFrame())
    for target in targets:
        split: LocoSplit = loco_split(adata, target, **keys)
        result.splits[target] = split
        trained = {}
        for name in models:
            d = _unit_dir(out_dir, target, name)
            if d is not None and (d / "training.json").exists():
                table, info, pred, hist = _load_unit(d)
                log(f"{target} / {name}: reused finished result from {d}")
            else:
                t0, c0 = time.perf_counter(), time.process_time()
                if name == "scgen_unbalanced" and "scgen" in trained:
                    model, hist = trained["scgen"], trained["scgen"].history
                    mem = {"peak_mb": float("nan"), "peak_rss_mb": float("nan")}
                    pred = model.predict(split.target_ctrl, balance=False)
                    train_s = cpu_s = float("nan")  # no training of its own: shares scgen's
                else:
                    params = {**keys, "random_state": random_state, **hyperparameters.get(name, {})}
                    if issubclass(MODELS[name][0], VAEModel):
                        params.setdefault("device", device)
                    with peak_memory(device) as mem:
                        model = make_model(name, split.train, **params)
                        hist = model.train(**{"progress": progress, **train_kwargs.get(name, {})})
                    train_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
                    pred = model.predict(split.target_ctrl)
                    trained[name] = model
                pred.uns["perturblab_model"] = name
                table = evaluate(pred, split.target_stim, split.target_ctrl, **evaluate_kwargs)
                info = {"target": target, "model": name, "train_seconds": train_s, "train_cpu_seconds": cpu_s,
                        "peak_memory_mb": mem["peak_mb"], "peak_rss_mb": mem["peak_rss_mb"],
                        "epochs": int(len(hist.history)), "best_epoch": int(hist.best_epoch),
                        "stopped_by": hist.stopped_by}
                if d is not None:
                    _save_unit(d, table, info, pred, hist)
                v = table.set_index(["metric", "gene_set"])["value"]
                log(f"{target} / {name}: R2 {v[('r2_pearson_mean', 'all')]:.3f}, E-distance "
                    f"{v[('edistance', 'pca')]:.2f}, training {train_s:.1f} s")
            metric_tables.append(table.assign(target=target, model=name))
            train_rows.append(info)
            result.predictions[(target, name)] = pred
            result.histories[(target, name)] = hist
    result.metrics = pd.concat(metric_tables, ignore_index=True)[["target", "model", *metric_tables[0].columns[:-2]]]
    result.training = pd.DataFrame(train_rows)
    return result
