"""Run pertpy's Scgen (defaults, early stopping) on one LOCO split; executed INSIDE the separate
pertpy venv by predict_compare.py --with-pertpy (it does not import perturblab).

argv: train.h5ad ctrl.h5ad target pred_out.h5ad info_out.json seed
"""

from __future__ import annotations

import json
import resource
import sys
import time


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
    train_path, ctrl_path, target, pred_path, info_path, seed = sys.argv[1:7]
    _statsmodels_shim()
    import anndata as ad
    import pertpy as pt
    import scvi

    scvi.settings.seed = int(seed)
    train = ad.read_h5ad(train_path)
    pt.tl.Scgen.setup_anndata(train, batch_key="condition", labels_key="cell_type")
    model = pt.tl.Scgen(train)
    t0 = time.perf_counter()
    model.train(early_stopping=True)  # pertpy's defaults otherwise (as in the spec's measurement)
    train_s = time.perf_counter() - t0
    pred, _ = model.predict(ctrl_key="control", stim_key="stimulated", celltype_to_predict=target)
    ctrl = ad.read_h5ad(ctrl_path)
    out = ad.AnnData(pred.X, obs=ctrl.obs.copy() if ctrl.n_obs == pred.n_obs else None, var=ctrl.var.copy())
    out.write_h5ad(pred_path)
    epochs = len(model.history.get("elbo_train", [])) if hasattr(model, "history") else None
    json.dump({"version": pt.__version__, "train_seconds": train_s, "epochs": epochs,
               "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
              open(info_path, "w"))


if __name__ == "__main__":
    main()
