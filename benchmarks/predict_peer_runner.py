"""Train one peer model on one leave-one-cell-type-out split and write its prediction; run INSIDE the peer's own
virtual environment by ``predict_peers.py`` (only the ``perturblab`` runner imports perturblab).

argv: PEER train.h5ad ctrl.h5ad TARGET SEED pred_out.h5ad info_out.json

PEER: ``pertpy_scgen`` (pertpy >= 1.4, the JAX Scgen), ``scpram_pypi`` (scPRAM from PyPI), ``biolord``, or
``perturblab:MODEL`` (a model of perturblab's registry, for the same time and memory accounting).
Writes the predicted cells (one per control cell of TARGET, in the order of ctrl.h5ad, obs names kept) and a
JSON with the package version, training and prediction seconds (wall and CPU), epochs and the process's peak
resident memory (``VmHWM`` of the process, imports and data included, as for every peer; not ``ru_maxrss``, which
on Linux keeps the parent's resident memory across the fork and exec that start the runner).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from importlib.metadata import version


def peak_rss_mb() -> float:
    """Peak resident memory of this process image in MB: ``VmHWM`` from ``/proc/self/status`` where it exists.
    ``ru_maxrss`` would report at least the parent's resident memory at the fork that started this process
    (Linux folds it in at exec), e.g. 1.3 GB for every peer started by ``predict_peers.py``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


KEYS = {"condition_key": "condition", "cell_type_key": "cell_type", "ctrl_key": "control",
        "stim_key": "stimulated", "pred_key": "predicted"}


def _pertpy_scgen(train, ctrl, target, seed):
    """pertpy's defaults (n_hidden 800, n_latent 100, batch 128, epochs min(400, 20000/n*400)) with early
    stopping (patience 45), as the spec's "defaults, ES"."""
    import pertpy as pt

    pt.tl.Scgen.setup_anndata(train, batch_key="condition", labels_key="cell_type")
    model = pt.tl.Scgen(train)
    t0, c0 = time.perf_counter(), time.process_time()
    model.train(early_stopping=True, seed=int(seed))
    fit = (time.perf_counter() - t0, time.process_time() - c0)
    pred, _ = model.predict(ctrl_key="control", stim_key="stimulated", celltype_to_predict=target)
    hist = getattr(model, "history", {}) or {}
    epochs = len(hist.get("train_loss", [])) if isinstance(hist, dict) else None
    return pred, fit, epochs, version("pertpy")


def _scpram(train, ctrl, target, seed):
    """scPRAM's released code and defaults: 100 epochs, batch 128, lr 5e-4, ratio 0.05 (no validation)."""
    import numpy as np
    import torch
    from scpram import models

    torch.manual_seed(int(seed))
    np.random.seed(int(seed))
    model = models.SCPRAM(input_dim=train.n_vars, device="cpu")
    model = model.to(model.device)
    t0, c0 = time.perf_counter(), time.process_time()
    model.train_SCPRAM(train, epochs=100)
    fit = (time.perf_counter() - t0, time.process_time() - c0)
    model.eval()
    pred = model.predict(train, target, KEYS, ratio=0.05)
    return pred, fit, 100, version("scpram")


BIOLORD_MODULE = {"decoder_width": 1024, "decoder_depth": 4, "attribute_nn_width": 512, "attribute_nn_depth": 2,
                  "n_latent_attribute_categorical": 4, "gene_likelihood": "normal", "reconstruction_penalty": 1e2,
                  "unknown_attribute_penalty": 1e1, "unknown_attribute_noise_param": 1e-1,
                  "attribute_dropout_rate": 0.1, "use_batch_norm": False, "use_layer_norm": False}
BIOLORD_PLAN = {"n_epochs_warmup": 0, "latent_lr": 1e-4, "latent_wd": 1e-4, "decoder_lr": 1e-4, "decoder_wd": 1e-4,
                "attribute_nn_lr": 1e-2, "attribute_nn_wd": 4e-8, "step_size_lr": 45, "cosine_scheduler": True,
                "scheduler_final_lr": 1e-5}


def _biolord(train, ctrl, target, seed):
    """biolord with the parameters of published benchmarks (CellDISECT's, normal likelihood for log-normalised
    data): cell type and condition as categorical attributes; the target's control cells are moved to
    condition "stimulated" (compute_prediction_adata)."""
    import biolord
    import scvi

    scvi.settings.seed = int(seed)
    biolord.Biolord.setup_anndata(train, categorical_attributes_keys=["cell_type", "condition"])
    model = biolord.Biolord(train, n_latent=32, model_name="peers", train_classifiers=False,
                            module_params={**BIOLORD_MODULE, "seed": int(seed)})
    t0, c0 = time.perf_counter(), time.process_time()
    model.train(max_epochs=500, batch_size=512, plan_kwargs=BIOLORD_PLAN, early_stopping=True,
                early_stopping_patience=10, check_val_every_n_epoch=5, num_workers=0, enable_checkpointing=False,
                accelerator="cpu", enable_progress_bar=False)
    fit = (time.perf_counter() - t0, time.process_time() - c0)
    mask = ((train.obs["cell_type"] == target) & (train.obs["condition"] == "control")).to_numpy()
    source = train[mask]
    preds = model.compute_prediction_adata(train, source, target_attributes=["condition"])
    pred = preds[(preds.obs["condition"] == "stimulated").to_numpy()]
    modes = model.training_plan.epoch_history["mode"]  # one "train" entry per epoch trained
    epochs = sum(m == "train" for m in modes)
    return pred, fit, epochs, biolord.__version__


def _perturblab(model_name, train, ctrl, target, seed):
    import perturblab
    from perturblab.predict import make_model
    from perturblab.predict.models import VAEModel

    t0, c0 = time.perf_counter(), time.process_time()
    kwargs = {"random_state": int(seed)}
    from perturblab.predict import MODELS

    if issubclass(MODELS[model_name][0], VAEModel):
        kwargs["device"] = "cpu"
    model = make_model(model_name, train, **kwargs)
    history = model.train()
    fit = (time.perf_counter() - t0, time.process_time() - c0)
    return model.predict(ctrl), fit, len(history.history), perturblab.__version__


def main():
    peer, train_path, ctrl_path, target, seed, pred_path, info_path = sys.argv[1:8]
    import anndata as ad
    import numpy as np

    train, ctrl = ad.read_h5ad(train_path), ad.read_h5ad(ctrl_path)
    t0 = time.perf_counter()
    if peer.startswith("perturblab:"):
        pred, fit, epochs, pkg_version = _perturblab(peer.split(":", 1)[1], train, ctrl, target, seed)
    else:
        pred, fit, epochs, pkg_version = {"pertpy_scgen": _pertpy_scgen, "scpram_pypi": _scpram,
                                      "biolord": _biolord}[peer](train, ctrl, target, seed)
    total = time.perf_counter() - t0
    X = pred.X.toarray() if hasattr(pred.X, "toarray") else np.asarray(pred.X)
    if X.shape != ctrl.shape:
        raise SystemExit(f"{peer} predicted {X.shape} for {ctrl.shape} control cells")
    out = ad.AnnData(X.astype(np.float32), obs=ctrl.obs.copy(), var=ctrl.var.copy())
    out.obs["source_cell"] = ctrl.obs_names.astype(str)
    out.write_h5ad(pred_path)
    with open(info_path, "w") as fh:
        json.dump({"peer": peer, "version": pkg_version, "train_seconds": fit[0], "train_cpu_seconds": fit[1],
                   "predict_seconds": total - fit[0], "epochs": epochs, "seed": int(seed), "target": target,
                   "peak_rss_mb": peak_rss_mb(), "peak_rss_source": "VmHWM"}, fh)


if __name__ == "__main__":
    main()
