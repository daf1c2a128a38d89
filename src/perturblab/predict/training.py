"""A small training loop for the VAE modules: mini-batches, Adam, validation, early stopping.

Early stopping monitors the validation value of the **same objective the model is trained on**
(same KL weight). Differs from pertpy/scvi-tools: they monitor the validation ELBO with the KL
term at full weight while training with weight 5e-5, so they always stop at epoch ~47.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

__all__ = ["TrainingHistory", "fit_module", "EpochCallback"]

#: ``callback(epoch, train_loss, val_loss) -> bool``; returning True stops training (e.g. Optuna pruning).
EpochCallback = Callable[[int, float, float], bool]


@dataclass
class TrainingHistory:
    """What happened during training.

    Attributes
    ----------
    history
        One row per epoch: ``epoch`` (1-based), ``train_loss``, ``val_loss`` (NaN without
        validation), ``seconds`` (cumulative wall time).
    best_epoch
        Epoch whose weights were kept (lowest validation loss; the last epoch without validation).
    stopped_by
        ``"max_epochs"``, ``"early_stopping"``, ``"callback"`` or ``"none"`` (no training needed).
    wall_time_s
        Total training time in seconds.
    """

    history: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["epoch", "train_loss", "val_loss", "seconds"]))
    best_epoch: int = 0
    stopped_by: str = "none"
    wall_time_s: float = 0.0


def fit_module(module: Any, X: np.ndarray, *, max_epochs: int, batch_size: int, lr: float,
               weight_decay: float, adam_eps: float = 1e-8, grad_clip: float | None = None,
               validation_fraction: float = 0.1, early_stopping: bool = True, patience: int = 25,
               min_delta: float = 0.0, callback: EpochCallback | None = None, random_state: int = 0,
               device=None, description: str = "training") -> TrainingHistory:
    """Train ``module`` (with a ``loss(x) -> scalar`` method) on the rows of ``X``.

    Parameters
    ----------
    module
        A module from :mod:`perturblab.predict.models._modules`.
    X
        Training cells x genes (float32, log-normalised).
    max_epochs, batch_size, lr, weight_decay, adam_eps, grad_clip
        Optimisation settings (Adam; ``grad_clip`` is a max gradient norm or None).
    validation_fraction
        Share of the cells held out for validation (seeded split; 0 disables validation and
        early stopping).
    early_stopping, patience, min_delta
        Stop when the validation loss has not improved by more than ``min_delta`` for
        ``patience`` epochs; the best epoch's weights are restored.
    callback
        Called after each epoch as ``callback(epoch, train_loss, val_loss)``; True stops.
    random_state
        Seeds the split, the batch order, the weights' noise (dropout, sampling).
    device
        Device of ``X`` (default: the module's).
    description
        Name of the step in progress reports (:mod:`perturblab.runs.progress`).

    Returns
    -------
    TrainingHistory
    """
    from ..exceptions import InputError
    from ..runs import progress

    if not isinstance(max_epochs, int | np.integer) or max_epochs < 1:
        raise InputError(f"max_epochs must be an integer >= 1, got {max_epochs!r}")
    if not 0 <= validation_fraction < 1:
        raise InputError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    torch.manual_seed(random_state)
    device = next(module.parameters()).device if device is None else device
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(X.shape[0])
    n_val = int(round(validation_fraction * X.shape[0]))
    X_t = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
    val = X_t[torch.as_tensor(perm[:n_val], device=device)] if n_val >= 2 else None
    train_idx = perm[n_val:] if val is not None else perm
    n_train = len(train_idx)
    opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=weight_decay, eps=adam_eps)
    rows, best, best_state, best_epoch, bad, stopped = [], np.inf, None, 0, 0, "max_epochs"
    t0 = time.perf_counter()
    with progress.task(description, total=max_epochs) as bar:
        for epoch in range(1, max_epochs + 1):
            module.train()
            order = train_idx[rng.permutation(n_train)]
            total, seen = 0.0, 0
            for start in range(0, n_train, batch_size):
                idx = order[start:start + batch_size]
                if len(idx) < 2:  # BatchNorm needs two cells; a lone last cell is left for the next epoch
                    continue
                loss = module.loss(X_t[torch.as_tensor(idx, device=device)])
                opt.zero_grad()
                loss.backward()
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
                opt.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
            train_loss = total / max(seen, 1)
            val_loss = float("nan")
            if val is not None:
                module.eval()
                with torch.no_grad():
                    val_loss = float(module.loss(val))
            rows.append((epoch, train_loss, val_loss, time.perf_counter() - t0))
            bar.advance(info=f"train {train_loss:.4g} val {val_loss:.4g}")
            if val is not None and val_loss < best - min_delta:
                best, best_epoch, bad = val_loss, epoch, 0
                best_state = copy.deepcopy(module.state_dict()) if early_stopping else None
            else:
                bad += 1
            if callback is not None and callback(epoch, train_loss, val_loss):
                stopped = "callback"
                break
            if early_stopping and val is not None and bad >= patience:
                stopped = "early_stopping"
                break
    if early_stopping and best_state is not None:
        module.load_state_dict(best_state)
    else:
        best_epoch = rows[-1][0]
    module.eval()
    hist = pd.DataFrame(rows, columns=["epoch", "train_loss", "val_loss", "seconds"])
    return TrainingHistory(hist, best_epoch, stopped, time.perf_counter() - t0)
