"""Run pertpy's Scgen (defaults, early stopping) on one LOCO split; executed INSIDE the separate
pertpy venv by predict_compare.py --with-pertpy (it does not import perturblab).

argv: train.h5ad ctrl.h5ad target pred_out.h5ad info_out.json seed train_kwargs_json
(train_kwargs_json: keyword arguments of ``Scgen.train``, e.g. '{"max_epochs": 100, "batch_size": 32,
"early_stopping": true}')
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version

from predict_peer_runner import peak_rss_mb  # same folder: on sys.path when run as a script


def _statsmodels_shim():
    """pertpy imports ``multipletests`` from statsmodels.stats.multitest; with statsmodels 0.15 it moved:
    re-export it where pertpy looks for it."""
    import importlib

    import statsmodels.stats.multitest as mt

    if not hasattr(mt, "multipletests"):
        for name in ("statsmodels.stats._multitest", "statsmodels.stats.multicomp"):
            try:
                mod = importlib.import_module(name)
            except ImportError:
                continue
            if hasattr(mod, "multipletests"):
                mt.multipletests = mod.multipletests
                break


def main():
    train_path, ctrl_path, target, pred_path, info_path, seed, train_kwargs = sys.argv[1:8]
    train_kwargs = json.loads(train_kwargs)
    _statsmodels_shim()
    import anndata as ad
    import pertpy as pt
    import scvi

    scvi.settings.seed = int(seed)
    train = ad.read_h5ad(train_path)
    pt.tl.Scgen.setup_anndata(train, batch_key="condition", labels_key="cell_type")
    model = pt.tl.Scgen(train)
    t0, c0 = time.perf_counter(), time.process_time()
    model.train(**train_kwargs)
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    pred, _ = model.predict(ctrl_key="control", stim_key="stimulated", celltype_to_predict=target)
    ctrl = ad.read_h5ad(ctrl_path)
    out = ad.AnnData(pred.X, obs=ctrl.obs.copy() if ctrl.n_obs == pred.n_obs else None, var=ctrl.var.copy())
    out.write_h5ad(pred_path)
    epochs = len(model.history.get("elbo_train", [])) if hasattr(model, "history") else None
    with open(info_path, "w") as fh:
        json.dump({"version": version("pertpy"), "train_kwargs": train_kwargs, "train_seconds": train_s,
                   "train_cpu_seconds": train_cpu, "epochs": epochs,
                   "peak_rss_mb": peak_rss_mb()}, fh)


if __name__ == "__main__":
    main()
