"""Common behaviour of all perturbation-response models: construction from AnnData,
input checks, prediction output, and (for the VAEs) latent space, training and save/load.

Representation: every model works on **log-normalised** expression (cells x genes).
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any, ClassVar

import anndata as ad
import numpy as np
import pandas as pd

from ..._device import get_device, seed_everything
from ..._validation import check_finite, to_dense, warn_representation
from ...exceptions import InputError
from ..data import check_conditions
from ..training import EpochCallback, TrainingHistory, fit_module

__all__ = ["CELL_SOURCE_KEY", "MODEL_KEY", "SOURCE_KEY", "PerturbationModel", "VAEModel"]

PREDICTED = "predicted"
#: obs column of a prediction (and of :func:`perturblab.predict.combine_cells`) saying where each cell comes
#: from: ``"control"``, ``"real"`` (measured stimulated cells) or ``"predicted"``.
CELL_SOURCE_KEY = "perturblab_source"
#: obs column (and ``uns`` key) naming the model that made a predicted cell (empty for measured cells).
MODEL_KEY = "perturblab_model"
#: obs column of a prediction naming the control cell (its obs name) each predicted cell was made from;
#: :func:`perturblab.predict.evaluate` resamples a predicted cell together with its source control cell.
SOURCE_KEY = "source_cell"


def _deferrable(init: Any) -> Any:
    """Wrap a model's ``__init__``: record its constructor parameters (:meth:`PerturbationModel.get_params`), and
    without training cells leave the model unfitted (parameters only) instead of building it."""
    sig = inspect.signature(init)
    data_name = list(sig.parameters)[1] if len(sig.parameters) > 1 else "adata"

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        if self.__dict__.get("_perturblab_building"):  # a subclass's __init__ calling super().__init__
            return init(self, *args, **kwargs)
        bound = sig.bind_partial(self, *args, **kwargs)
        params: dict = {}
        for pname, value in list(bound.arguments.items())[1:]:
            kind = sig.parameters[pname].kind
            if pname == data_name:
                continue
            if kind is inspect.Parameter.VAR_KEYWORD:
                params.update(value)
            elif kind is not inspect.Parameter.VAR_POSITIONAL:
                params[pname] = value
        self._init_params = params
        if bound.arguments.get(data_name) is None:
            self._unfitted = True
            return None
        self._unfitted = False
        self._perturblab_building = True
        try:
            return init(self, *args, **kwargs)
        finally:
            self._perturblab_building = False

    wrapper._perturblab_deferrable = True  # type: ignore[attr-defined]
    return wrapper


class PerturbationModel:
    """Base class: a model built from training cells with control and stimulated conditions.

    Built without training cells (``ScGen(n_latent=10)``), a model is **unfitted**: it holds its constructor
    parameters only (:meth:`get_params`), :meth:`fit` builds it on training cells, and it can be passed wherever a
    model name is accepted (:func:`~perturblab.predict.make_model`, :func:`~perturblab.predict.run_loco`,
    :func:`~perturblab.predict.benchmark.run_benchmark`, :func:`~perturblab.predict.tuning.tune`), which build a
    fresh model of its class and parameters for every training set. Subclasses get this behaviour automatically.

    Parameters
    ----------
    adata
        Training cells (log-normalised, cells x genes), e.g. ``loco_split(...).train``; ``None``: unfitted.
    condition_key, cell_type_key
        obs columns with the condition and the cell type.
    control, stimulated
        The two values of ``condition_key``.
    random_state
        Seed of every random choice of the model.

    Raises
    ------
    KeyError, ValueError
        Missing keys or conditions, NaN/inf in ``X``.
    """

    name = "base"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None and not getattr(init, "_perturblab_deferrable", False):
            cls.__init__ = _deferrable(init)

    def __init__(self, adata: ad.AnnData, condition_key: str = "condition", cell_type_key: str = "cell_type",
                 control: str = "control", stimulated: str = "stimulated", random_state: int = 0):
        check_conditions(adata, condition_key, cell_type_key, control, stimulated)
        check_finite(adata.X, "adata.X")
        warn_representation(adata.X, "log1p", "adata.X")
        self.adata = adata
        self.condition_key, self.cell_type_key = condition_key, cell_type_key
        self.control, self.stimulated = str(control), str(stimulated)
        self.random_state = random_state
        self.var_names = pd.Index(adata.var_names.astype(str))
        self.history = TrainingHistory()

    # -- parameters and fitting ------------------------------------------------------------------
    def get_params(self) -> dict:
        """The constructor parameters given to this model (training cells excluded), as a new dict."""
        return dict(self.__dict__.get("_init_params", {}))

    @property
    def is_fitted(self) -> bool:
        """Whether the model was built on training cells (VAE models also need :meth:`train` to predict)."""
        return not self.__dict__.get("_unfitted", False)

    def fit(self, adata: ad.AnnData):
        """Build this model on ``adata`` (log-normalised training cells) with its constructor parameters; returns
        ``self``. VAE models are then trained with :meth:`train`."""
        type(self).__init__(self, adata, **self.get_params())
        return self

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params}){'' if self.is_fitted else ' (unfitted)'}"

    # -- helpers ---------------------------------------------------------------------------------
    def _mask(self, condition: str, adata: ad.AnnData | None = None) -> np.ndarray:
        a = self.adata if adata is None else adata
        return a.obs[self.condition_key].astype(str).to_numpy() == condition

    def _X(self, adata: ad.AnnData | None = None) -> np.ndarray:
        return to_dense((self.adata if adata is None else adata).X)

    def _check_input(self, adata: ad.AnnData, name: str = "ctrl_adata") -> np.ndarray:
        if not self.is_fitted:
            from ...exceptions import NotFittedError

            raise NotFittedError(f"{type(self).__name__} was built without training cells; call "
                                 ".fit(train_adata) first, or pass it to make_model / run_loco")
        genes = pd.Index(adata.var_names.astype(str))
        if not genes.equals(self.var_names):
            missing = self.var_names.difference(genes)
            raise InputError(
                f"{name} has {len(genes)} genes but the model was trained on {len(self.var_names)} "
                f"({len(missing)} training genes are missing, or the order differs); subset to "
                "model.var_names in the same order")
        if adata.n_obs == 0:
            raise InputError(f"{name} has no cells")
        check_finite(adata.X, name)
        warn_representation(adata.X, "log1p", name)
        return to_dense(adata.X)

    def _output(self, X_pred: np.ndarray, ctrl_adata: ad.AnnData, paired: bool = True) -> ad.AnnData:
        """The prediction as AnnData: row ``i`` made from control cell ``i`` when ``paired`` (its obs name is
        recorded in ``obs[SOURCE_KEY]``), else cells not tied to any control cell (no such column).

        ``obs[condition_key]`` and ``obs["perturblab_source"]`` are ``"predicted"``, ``obs["perturblab_model"]``
        and ``uns["perturblab_model"]`` name the model."""
        obs = ctrl_adata.obs.copy()
        obs[self.condition_key] = PREDICTED
        obs[CELL_SOURCE_KEY] = PREDICTED
        obs[MODEL_KEY] = self.name
        if paired:
            obs[SOURCE_KEY] = ctrl_adata.obs_names.astype(str)
        else:
            obs = obs.drop(columns=[SOURCE_KEY], errors="ignore")
        out = ad.AnnData(np.asarray(X_pred, dtype=np.float32), obs=obs, var=pd.DataFrame(index=self.var_names))
        out.uns[MODEL_KEY] = self.name
        return out

    # -- API -------------------------------------------------------------------------------------
    def train(self, **kwargs) -> TrainingHistory:
        """Models without trainable weights fit in their constructor; returns an empty history."""
        return self.history

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:  # pragma: no cover - abstract
        """The predicted stimulated cells of ``ctrl_adata``'s control cells (log-normalised, same genes as the
        training cells): an AnnData with ``obs["perturblab_source"] == "predicted"`` and
        ``obs["perturblab_model"]`` / ``uns["perturblab_model"]`` naming the model
        (:func:`perturblab.predict.combine_cells` adds the control and real cells)."""
        raise TypeError(f"{type(self).__name__} must define predict")


PerturbationModel.__init__ = _deferrable(PerturbationModel.__init__)  # type: ignore[method-assign]


class VAEModel(PerturbationModel):
    """Base of the VAE models: network construction, training, latent space, save/load."""

    module_class: Any = None
    #: training defaults of the anchor (overridable in ``train``)
    train_defaults: ClassVar[dict] = {}

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", random_state: int = 0, device: str | None = None, **module_kwargs):
        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state)
        self.device = get_device(device)
        self.module_kwargs = module_kwargs
        seed_everything(random_state)
        self.module = self.module_class(adata.n_vars, **module_kwargs).to(self.device)
        self.module.eval()
        self.is_trained = False

    def train(self, max_epochs: int | None = None, batch_size: int | None = None,
              early_stopping: bool | None = None, patience: int | None = None,
              validation_fraction: float | None = None, callback: EpochCallback | None = None,
              **optim_kwargs) -> TrainingHistory:
        """Train on all cells of the training AnnData (a seeded ``validation_fraction`` is held out).

        Parameters default to the anchor's settings (``train_defaults``); ``callback(epoch,
        train_loss, val_loss) -> bool`` can stop training (Optuna pruning). Early stopping monitors
        the validation value of the training objective. Returns the :class:`TrainingHistory`
        (also stored as ``self.history``).
        """
        given = dict(max_epochs=max_epochs, batch_size=batch_size, early_stopping=early_stopping,
                     patience=patience, validation_fraction=validation_fraction, **optim_kwargs)
        settings = {**self.train_defaults, **{k: v for k, v in given.items() if v is not None}}
        seed_everything(self.random_state)
        self.history = fit_module(self.module, self._X(), callback=callback, random_state=self.random_state,
                                  device=self.device, description=f"{self.name}", **settings)
        self.train_settings = settings
        self.is_trained = True
        return self.history

    def _require_trained(self):
        if not self.is_trained:
            from ...exceptions import NotFittedError

            raise NotFittedError(f"{type(self).__name__} is not trained yet; call .train() first")

    def _encode(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        import torch

        self.module.eval()
        out = []
        with torch.no_grad():
            for s in range(0, X.shape[0], batch_size):
                mu, _ = self.module.encode(torch.as_tensor(X[s:s + batch_size], device=self.device))
                out.append(mu.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.module_kwargs.get("n_latent", 100)), np.float32)

    def _decode(self, Z: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        import torch

        self.module.eval()
        out = []
        with torch.no_grad():
            for s in range(0, Z.shape[0], batch_size):
                out.append(self.module.decode(torch.as_tensor(Z[s:s + batch_size], dtype=torch.float32,
                                                              device=self.device)).cpu().numpy())
        return np.concatenate(out)

    def get_latent_representation(self, adata: ad.AnnData | None = None) -> np.ndarray:
        """Posterior means of the latent variables (cells x n_latent) of ``adata`` (default: training cells)."""
        self._require_trained()
        X = self._X() if adata is None else self._check_input(adata, "adata")
        return self._encode(X)

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write ``model.pt`` (state dict) and ``config.json`` into the folder ``path``.

        Raises :class:`~perturblab.exceptions.RunFolderError` if the folder already holds a model and
        ``overwrite`` is False.
        """
        from ...exceptions import RunFolderError
        from ...io import save_torch, write_json

        self._require_trained()
        path = Path(path)
        if (path / "model.pt").exists() and not overwrite:
            raise RunFolderError(f"{path} already holds a saved model; pass overwrite=True to replace it")
        save_torch(path / "model.pt", self.module.state_dict())
        write_json(path / "config.json", {
            "class": type(self).__name__, "module_kwargs": self.module_kwargs, "random_state": self.random_state,
            "keys": [self.condition_key, self.cell_type_key, self.control, self.stimulated],
            "var_names": list(self.var_names), "history": self.history.history.to_dict(orient="list"),
            "best_epoch": self.history.best_epoch, "stopped_by": self.history.stopped_by})
        return path

    @classmethod
    def _saved_module_kwargs(cls, kwargs: dict) -> dict:
        """Constructor arguments of a saved model (subclasses fill in options newer than the checkpoint)."""
        return kwargs

    @classmethod
    def load(cls, path: str | Path, adata: ad.AnnData, device: str | None = None):
        """Load a model saved by :meth:`save`; ``adata`` is the training data (same genes, same order).

        Weights are read with ``torch.load(weights_only=True)``.

        Raises
        ------
        InputError
            If the saved model is of another class or its genes differ from ``adata``'s.
        """
        from ...exceptions import InputError
        from ...io import load_torch, read_json

        path = Path(path)
        cfg = read_json(path / "config.json")
        if cfg["class"] != cls.__name__:
            raise InputError(f"{path} holds a {cfg['class']} model, not a {cls.__name__}; load it with that class")
        if list(map(str, adata.var_names)) != cfg["var_names"]:
            raise InputError("adata's genes differ from the saved model's genes (names or order); subset adata to "
                             "the model's genes in the same order")
        cond, ct, ctrl, stim = cfg["keys"]
        model = cls(adata, cond, ct, ctrl, stim, random_state=cfg["random_state"], device=device,
                    **cls._saved_module_kwargs(cfg["module_kwargs"]))
        state = load_torch(path / "model.pt", map_location=model.device)
        model.module.load_state_dict(state)
        model.module.eval()
        model.history = TrainingHistory(pd.DataFrame(cfg["history"]), cfg["best_epoch"], cfg["stopped_by"])
        model.is_trained = True
        return model
