"""One unit of benchmark work (model x target x variant x seed): its settings, how it runs, and
how finished units are persisted so that an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import anndata as ad
import pandas as pd

from .._io import read_table, write_json, write_table
from .benchmark_variants import make_variant
from .data import loco_split
from .evaluate import evaluate
from .models import MODELS, VAEModel, make_model

__all__ = ["BenchmarkUnit", "BenchmarkSettings", "UnitStore", "run_unit", "UNIT_COLUMNS"]

#: The identifying columns every row of a unit's table starts with.
UNIT_COLUMNS = ["model", "target", "variant", "seed"]


@dataclass(frozen=True, order=True)
class BenchmarkUnit:
    """One model trained and evaluated on one held-out cell type, dataset variant and seed."""

    model: str
    target: str
    variant: str
    seed: int

    @property
    def key(self) -> str:
        """File-name-safe unique name (readable part + a hash of the exact fields)."""
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.target).strip("-")[:40] or "target"
        digest = hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.model}__{self.variant}__seed{self.seed}__{slug}__{digest}"


@dataclass
class BenchmarkSettings:
    """Everything a unit needs besides its four fields (the same for all units of a benchmark).

    Attributes
    ----------
    condition_key, cell_type_key, control, stimulated
        obs columns and condition values.
    model_params
        ``{model name: constructor keyword arguments}`` (e.g. ``{"scgen": {"n_latent": 10}}``).
    train_params
        ``{model name: keyword arguments of .train()}`` (e.g. ``{"scgen": {"max_epochs": 50}}``).
    evaluate_params
        Keyword arguments of :func:`perturblab.predict.evaluate` (``n_bootstrap``, ``n_degs``...).
    variant_params
        Keyword arguments of :func:`make_variant` (``fraction``, ``min_fraction``).
    device
        Torch device of the VAE models (``None``: CUDA when present).
    torch_threads
        If set, ``torch.set_num_threads`` in each unit (use 1 when running units in parallel).
    """

    condition_key: str = "condition"
    cell_type_key: str = "cell_type"
    control: str = "control"
    stimulated: str = "stimulated"
    model_params: dict = field(default_factory=dict)
    train_params: dict = field(default_factory=dict)
    evaluate_params: dict = field(default_factory=dict)
    variant_params: dict = field(default_factory=dict)
    device: str | None = None
    torch_threads: int | None = None

    def fingerprint(self) -> dict:
        """The settings that change results (device and threads do not), as plain JSON values."""
        d = asdict(self)
        d.pop("device"), d.pop("torch_threads")
        return json.loads(json.dumps(d, sort_keys=True, default=str))


def run_unit(adata: ad.AnnData, unit: BenchmarkUnit, settings: BenchmarkSettings) -> pd.DataFrame:
    """Split, alter the training cells, train, predict and evaluate one unit.

    Parameters
    ----------
    adata
        All cells, log-normalised (cells x genes; see :func:`perturblab.predict.prepare`).
    unit
        What to run; ``unit.seed`` seeds the variant's draws, the model and the bootstrap.
    settings
        Shared settings.

    Returns
    -------
    pandas.DataFrame
        :func:`perturblab.predict.evaluate`'s table with the unit's fields in front and
        ``train_seconds``, ``n_epochs`` and ``n_train_stimulated`` appended.

    Raises
    ------
    ValueError
        For an unknown model, variant or target (and everything :func:`loco_split` raises).
    """
    if unit.model not in MODELS:
        raise ValueError(f"unknown model {unit.model!r}; choose one of {', '.join(MODELS)}")
    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    keys = dict(condition_key=settings.condition_key, cell_type_key=settings.cell_type_key,
                control=settings.control, stimulated=settings.stimulated)
    split = loco_split(adata, unit.target, **keys)
    train = make_variant(split.train, unit.variant, condition_key=settings.condition_key,
                         cell_type_key=settings.cell_type_key, stimulated=settings.stimulated,
                         random_state=unit.seed, **settings.variant_params)
    params = {**settings.model_params.get(unit.model, {}), **keys, "random_state": unit.seed}
    is_vae = issubclass(MODELS[unit.model][0], VAEModel)
    if is_vae:
        params["device"] = settings.device
    t0 = time.perf_counter()
    model = make_model(unit.model, train, **params)
    if is_vae:
        history = model.train(progress=False, **settings.train_params.get(unit.model, {}))
        n_epochs = len(history.history)
    else:
        n_epochs = 0
    pred = model.predict(split.target_ctrl)
    seconds = time.perf_counter() - t0
    table = evaluate(pred, split.target_stim, split.target_ctrl,
                     **{"random_state": unit.seed, **settings.evaluate_params})
    for i, col in enumerate(UNIT_COLUMNS):
        table.insert(i, col, getattr(unit, col))
    n_stim = int((train.obs[settings.condition_key].astype(str) == settings.stimulated).sum())
    return table.assign(train_seconds=seconds, n_epochs=n_epochs, n_train_stimulated=n_stim)


class UnitStore:
    """Finished units as one Parquet file each under ``folder/units`` (written atomically).

    ``folder/config.json`` records the settings and the data the units were computed with; a
    store refuses to mix units of different configurations.

    Parameters
    ----------
    folder
        Output folder of the benchmark (created if missing).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.units_dir = self.folder / "units"

    def path(self, unit: BenchmarkUnit) -> Path:
        return self.units_dir / f"{unit.key}.parquet"

    def is_done(self, unit: BenchmarkUnit) -> bool:
        return self.path(unit).exists()

    def save(self, unit: BenchmarkUnit, table: pd.DataFrame) -> Path:
        """Persist a finished unit (temp file + rename: never half-written)."""
        return write_table(self.path(unit), table)

    def load(self, units) -> pd.DataFrame:
        """Concatenate the tables of ``units`` (all must be done), in the given order."""
        missing = [u for u in units if not self.is_done(u)]
        if missing:
            raise FileNotFoundError(f"{len(missing)} units are not finished, e.g. {missing[0]}")
        return pd.concat([read_table(self.path(u)) for u in units], ignore_index=True)

    def check_config(self, config: dict, overwrite: bool = False) -> None:
        """Write ``config.json``, or check that an existing one matches ``config``.

        Raises
        ------
        ValueError
            If the folder holds units of another configuration and ``overwrite`` is False.
        """
        path = self.folder / "config.json"
        config = json.loads(json.dumps(config, sort_keys=True, default=str))
        if path.exists() and not overwrite:
            old = json.loads(path.read_text())
            if old != config:
                diff = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
                raise ValueError(f"{self.folder} holds benchmark results of another configuration (differs in "
                                 f"{', '.join(diff)}); use a new output folder or overwrite=True")
            return
        if overwrite and self.units_dir.exists():
            for p in self.units_dir.glob("*.parquet"):
                p.unlink()
        write_json(path, config)
