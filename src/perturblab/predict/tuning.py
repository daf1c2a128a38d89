"""Hyperparameter tuning with Optuna, without leakage of the held-out cell type.

The ECCB 2025 tutorial's Optuna objective scored each trial on the held-out target's
stimulated cells, so its "tuned" numbers are optimistic (spec: perturbation-models.md).
Here the objective only ever receives ``loco_split(adata, target).train`` - every cell except
the target's stimulated cells - and scores a trial by a nested leave-one-cell-type-out over the
*training* cell types. The target's stimulated cells are used once, after the study, to report
the final test metrics of the tuned model next to the default model and the baselines.

Example::

    import perturblab as plab
    from perturblab.predict.tuning import prepare_without_target, tune
    adata = prepare_without_target(plab.datasets.kang2018(), "CD14 Mono")
    res = tune(adata, "scgen", "CD14 Mono", out_dir="results/tune", n_trials=30)
    res.best_params, res.final        # tuned / default / baseline test metrics
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import anndata as ad
import numpy as np
import pandas as pd

from .._validation import check_positive
from ..exceptions import InputError, SettingsMismatchError
from .benchmark.stats import higher_is_better
from .data import check_conditions, loco_split, loco_targets, prepare
from .evaluate import evaluate
from .models import VAEModel, make_model
from .models.registry import ModelSpec, resolve_model
from .tuning_space import search_space, split_params, suggest
from .tuning_storage import default_storage_url, open_storage, safe_url

__all__ = ["NestedLocoObjective", "tune", "TuningResult", "prepare_without_target", "final_comparison"]

_KEY_NAMES = ("condition_key", "cell_type_key", "control", "stimulated")


def prepare_without_target(adata: ad.AnnData, target: str, n_top_genes: int | None = 2000,
                           condition_key: str = "condition", cell_type_key: str = "cell_type", control: str = "control",
                           stimulated: str = "stimulated", flavor: str = "seurat") -> ad.AnnData:
    """Like :func:`perturblab.predict.prepare`, but the HVGs are chosen without the target's stimulated cells.

    ``prepare`` (like scGen's and scPRAM's tutorials) picks highly variable genes on all cells,
    so the held-out cells influence which genes the models see. Here every cell is
    log-normalised to the median library size of the cells *other than* ``target``'s stimulated cells
    (scanpy's default target sum, the median over all cells, would let them move every cell's values) and
    the ``n_top_genes`` HVGs are computed on all cells except ``target``'s stimulated cells: nothing the
    models see depends on the held-out cells.

    Parameters
    ----------
    adata
        Raw counts, cells x genes.
    target
        Held-out cell type.
    n_top_genes, flavor
        scanpy ``highly_variable_genes`` settings.

    Returns
    -------
    anndata.AnnData
        Log-normalised copy with the chosen genes (all cells kept).

    Raises
    ------
    KeyError, ValueError
        Missing keys or conditions, an unknown target, invalid counts.
    """
    import scanpy as sc

    check_conditions(adata, condition_key, cell_type_key, control, stimulated)
    from .._validation import check_values_present

    check_values_present([target], adata.obs[cell_type_key].astype(str).unique(), "cell type")
    held_out = ((adata.obs[cell_type_key].astype(str) == str(target))
                & (adata.obs[condition_key].astype(str) == str(stimulated))).to_numpy()
    totals = np.asarray(adata.X.sum(axis=1)).ravel()
    target_sum = float(np.median(totals[~held_out]))
    full = prepare(adata, None, condition_key, cell_type_key, control, stimulated, target_sum=target_sum,
                   flavor=flavor)
    split = loco_split(full, target, condition_key, cell_type_key, control, stimulated)
    train = split.train
    sc.pp.highly_variable_genes(train, n_top_genes=n_top_genes, flavor=flavor)
    out = full[:, train.var["highly_variable"].to_numpy()].copy()
    out.uns["perturblab_predict"] = {**full.uns["perturblab_predict"], "n_top_genes": n_top_genes,
                                     "hvg_without": f"{target} {stimulated}"}
    return out


@dataclass
class NestedLocoObjective:
    """Optuna objective: mean inner-LOCO score of a model over training cell types.

    Parameters
    ----------
    train
        The outer training cells (log-normalised): ``loco_split(adata, target).train``; it must
        not contain the outer target's stimulated cells.
    model
        Model name of :data:`perturblab.predict.MODELS`, an unfitted model instance or a
        :class:`~perturblab.predict.models.ModelSpec`.
    inner_targets
        Training cell types held out in turn inside each trial.
    space
        ``{name: optuna distribution}``.
    metric, gene_set
        Row of :func:`perturblab.predict.evaluate`'s table that scores a fold.
    max_epochs, validation_fraction
        Training of each fold; the validation loss feeds pruning.
    fixed_params
        Constructor parameters not tuned (network sizes left fixed, ``device``...).
    keys
        ``{condition_key, cell_type_key, control, stimulated}``.
    random_state
        Seed of every model (the same in all trials, so trials differ only by their parameters).
    torch_threads
        ``torch.set_num_threads`` in the objective when set.

    Notes
    -----
    Pruning: after every epoch of fold ``i`` the validation loss is reported at step
    ``i * max_epochs + epoch``; its sign is flipped when the study maximises the score, so that
    Optuna's pruners (which compare intermediate values in the study's direction) keep the
    trials with the lowest loss. The loss includes the KL term at the trial's KL weight, so
    trials with different KL weights are compared on slightly different objectives.
    """

    train: ad.AnnData
    model: str | ModelSpec
    inner_targets: list
    space: dict
    metric: str = "r2_pearson_mean"
    gene_set: str = "all"
    max_epochs: int = 100
    validation_fraction: float = 0.1
    fixed_params: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    random_state: int = 0
    torch_threads: int | None = None

    def __call__(self, trial) -> float:
        from .._device import torch_threads

        with torch_threads(self.torch_threads):
            return self._objective(trial)

    def _objective(self, trial) -> float:
        import optuna

        model_params, train_params = split_params(suggest(trial, self.space))
        sign = 1.0 if not higher_is_better(self.metric) else -1.0
        spec = resolve_model(self.model)
        is_vae = issubclass(spec.cls, VAEModel)
        scores = []
        for i, inner in enumerate(self.inner_targets):
            split = loco_split(self.train, inner, **self.keys)
            model = make_model(spec, split.train, **{**self.fixed_params, **model_params, **self.keys,
                                                     "random_state": self.random_state})
            pruned: list[int] = []

            def report(epoch, train_loss, val_loss, _i=i, _pruned=pruned):
                if math.isnan(val_loss):
                    return False
                trial.report(sign * val_loss, _i * self.max_epochs + epoch)
                if trial.should_prune():
                    _pruned.append(epoch)
                    return True
                return False

            if is_vae:
                model.train(max_epochs=self.max_epochs, validation_fraction=self.validation_fraction,
                            callback=report, **train_params)
            if pruned:
                raise optuna.TrialPruned(f"pruned at epoch {pruned[0]} of inner fold {inner!r}")
            table = evaluate(model.predict(split.target_ctrl), split.target_stim, split.target_ctrl, n_bootstrap=0,
                             random_state=self.random_state)
            row = table[(table["metric"] == self.metric) & (table["gene_set"] == self.gene_set)]
            if row.empty:
                raise InputError(f"metric {self.metric!r} with gene set {self.gene_set!r} is not computed by "
                                 "evaluate; see perturblab.predict.METRIC_DEFINITIONS")
            score = float(row["value"].iloc[0])
            trial.set_user_attr(f"score[{inner}]", score)
            scores.append(score)
        return float(np.mean(scores))


def _finished(study) -> int:
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.get_trials(deepcopy=False))


def _optimize(url, study_name, objective, n_trials, sampler_seed, pruner, timeout):
    """One worker: load the study, run trials until it holds ``n_trials`` finished ones."""
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=study_name, storage=open_storage(url),
                              sampler=optuna.samplers.TPESampler(seed=sampler_seed), pruner=pruner)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    remaining = n_trials - _finished(study)
    if remaining > 0:
        study.optimize(objective, n_trials=remaining, timeout=timeout, gc_after_trial=True,
                       callbacks=[MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED))])


@dataclass
class TuningResult:
    """Outcome of :func:`tune`.

    Attributes
    ----------
    study
        The Optuna study (reloadable from ``storage`` by ``study_name``).
    best_params, best_value
        Best trial's parameters and inner-LOCO score (``{}`` and NaN when no trial completed,
        e.g. all were pruned; the final comparison is then skipped).
    trials
        ``study.trials_dataframe()``.
    importances
        ``param, importance`` (fANOVA, :mod:`optuna.importance`); empty when not computable.
    final
        Test metrics on the held-out target: ``config`` (tuned / default / baseline), ``model``
        and :func:`perturblab.predict.evaluate`'s columns (empty if ``final=False``).
    """

    study: object
    study_name: str
    storage: str
    best_params: dict
    best_value: float
    trials: pd.DataFrame
    importances: pd.DataFrame
    final: pd.DataFrame
    inner_targets: list
    wall_time_s: float
    out_dir: Path | None = None


def tune(data, model, target: str, out=None, *, n_trials: int = 20, storage: str | None = None,
         study_name: str | None = None, space: dict | None = None, metric: str = "r2_pearson_mean",
         gene_set: str = "all", n_inner: int = 3, min_cells: int = 30, max_epochs: int = 100,
         validation_fraction: float = 0.1, fixed_params: dict | None = None, pruner=None, n_jobs: int = 1,
         timeout: float | None = None, random_state: int = 0, device: str | None = None, final: bool = True,
         n_bootstrap: int = 100, report: bool = True, n_top_genes: int | None = 2000,
         condition_key: str = "condition", cell_type_key: str = "cell_type", control: str = "control",
         stimulated: str = "stimulated", resume: bool = False, overwrite: bool = False,
         table_format: str = "parquet") -> TuningResult:
    """Tune a model's hyperparameters for one held-out cell type without touching its stimulated cells.

    Parameters
    ----------
    data
        Raw UMI counts (cells x genes; an AnnData, a dataset name or an ``.h5ad`` path). It is log-normalised
        and the ``n_top_genes`` HVGs are chosen without the target's stimulated cells
        (:func:`prepare_without_target`).
    model
        Tunable model: a name of :data:`perturblab.predict.MODELS`, an unfitted model instance or a model class.
        Its search space is ``space``, else :data:`perturblab.predict.tuning_space.SEARCH_SPACES`, else the
        class attribute ``search_space`` (``{name: optuna distribution}``) of a registered or plugin model. An
        instance's parameters are fixed in every trial (``fixed_params`` and the trial's override them).
    target
        Held-out cell type: its stimulated cells never reach the objective.
    out
        Output folder: ``study.db`` (default storage), tables and ``report.html``; follows the run contract
        (:func:`perturblab.runs.open_run`): ``resume`` continues the study (add trials by raising
        ``n_trials``), ``overwrite`` deletes the study and the outputs first.
    n_trials
        Finished trials (complete or pruned) the study must hold; a resumed study only runs the missing ones.
    storage
        SQLAlchemy URL shared by several workers or machines (e.g. ``postgresql://...``; the installed driver is
        chosen, see :func:`~perturblab.predict.tuning_storage.storage_url`); default the SQLite file
        ``out/study.db``.
    study_name
        Default ``"{model}-{target}"``. A stored study of other settings is refused.
    space
        ``{name: optuna distribution}`` (default the model's search space).
    metric, gene_set
        Score of a fold (a row of :func:`perturblab.predict.evaluate`); the direction follows
        :func:`perturblab.predict.benchmark.higher_is_better`.
    n_inner, min_cells
        The ``n_inner`` largest training cell types with ``min_cells`` cells per condition are the inner
        held-out types.
    max_epochs, validation_fraction
        Training of every trial and of the tuned final model; the validation loss drives pruning.
    fixed_params
        Constructor parameters kept fixed in every trial and in the final models.
    pruner
        Optuna pruner (default ``MedianPruner(n_startup_trials=3, n_warmup_steps=5)``).
    n_jobs
        Processes optimising the same study (joblib); more than 1 makes the order of trials, and hence the
        results, depend on timing.
    timeout
        Seconds after which each worker stops starting trials.
    random_state
        Seeds the TPE sampler (worker ``k``: ``random_state + k``) and every model.
    device
        Torch device of the models.
    final, n_bootstrap
        Evaluate the tuned model, the default model (with its own training defaults) and the baselines on the
        held-out target (bootstrap CIs).
    report
        Write ``report.html``.
    n_top_genes, condition_key, cell_type_key, control, stimulated
        Preprocessing and keys.
    resume, overwrite, table_format
        Run contract and table format (``"parquet"`` or ``"csv"``).

    Returns
    -------
    TuningResult

    Raises
    ------
    UnknownNameError, InputError
        Unknown model or target, no inner cell types, invalid numbers, no ``out`` and no ``storage``, an
        unusable storage URL.
    RunFolderError, SettingsMismatchError
        ``out`` cannot be used as asked, or a stored study of other settings.

    Examples
    --------
    A baseline's number of principal components, two trials (seconds):

    >>> import tempfile
    >>> from optuna.distributions import IntDistribution
    >>> from perturblab.predict.tuning import tune
    >>> res = tune("kang2018", "pca_mean_delta", "B", out=tempfile.mkdtemp(), n_trials=2, n_inner=1,
    ...            space={"n_components": IntDistribution(5, 20)}, n_top_genes=100, final=False, report=False)
    >>> sorted(res.best_params), len(res.trials)
    (['n_components'], 2)

    scGen, 30 trials (hours on a CPU):

    >>> import perturblab as plab
    >>> res = plab.predict.tuning.tune("kang2018", "scgen", "CD14 Mono", out="results/tune",
    ...                                n_trials=30)  # doctest: +SKIP
    >>> res.best_params, res.final  # doctest: +SKIP
    """
    import optuna

    from .._device import check_device
    from ..datasets import load
    from ..runs import data_checksum, open_run, resolve_n_jobs

    t0 = time.perf_counter()
    for name, value, low in (("n_trials", n_trials, 1), ("n_inner", n_inner, 1), ("max_epochs", max_epochs, 1),
                             ("n_bootstrap", n_bootstrap, 0), ("min_cells", min_cells, 1),
                             ("seed", random_state, 0)):
        check_positive(value, name, minimum=low)
    if timeout is not None:
        check_positive(timeout, "timeout", minimum=1e-9)
    check_device(device)
    workers = resolve_n_jobs(n_jobs)
    keys = dict(zip(_KEY_NAMES, (condition_key, cell_type_key, control, stimulated)))
    raw = load(data)
    adata = prepare_without_target(raw, target, n_top_genes=n_top_genes, **keys)
    spec = resolve_model(model)
    space = search_space(spec.name, space, cls=spec.cls)
    if out is None and storage is None:
        raise InputError("give out (SQLite storage in it) or a storage URL")
    split = loco_split(adata, target, **keys)
    inner = [t for t in loco_targets(split.train, min_cells, condition_key, cell_type_key, control, stimulated)
             if t != str(target)][:n_inner]
    if not inner:
        raise InputError(f"no training cell type has {min_cells} control and stimulated cells for the inner "
                         "leave-one-out; lower min_cells")
    fixed = dict(fixed_params or {})
    if issubclass(spec.cls, VAEModel):
        fixed["device"] = device
    objective = NestedLocoObjective(split.train, spec, inner, space, metric, gene_set, max_epochs,
                                    validation_fraction, fixed, keys, random_state,
                                    torch_threads=1 if workers > 1 else None)
    study_name = study_name or f"{spec.name}-{target}"
    from .benchmark.runner import model_fingerprint

    config = {"model": spec.name, **model_fingerprint({spec.name: spec}), "target": str(target), "metric": metric,
              "gene_set": gene_set, "inner": inner,
              "space": {k: repr(v) for k, v in space.items()}, "max_epochs": max_epochs,
              "validation_fraction": validation_fraction,
              "fixed": repr(sorted((k, v) for k, v in fixed.items() if k != "device")),
              "random_state": random_state, "n_top_genes": n_top_genes, "keys": keys, "n_bootstrap": n_bootstrap,
              "final": final}
    run = None
    if out is not None:
        run = open_run(out, "tune", {**config, "study_name": study_name,
                                     "storage": safe_url(storage) if storage else "out/study.db"},
                       data_checksum(raw), resume=resume, overwrite=overwrite)
    url = storage or default_storage_url(run.path)  # type: ignore[union-attr]
    config["data"] = data_checksum(raw)
    direction: Literal["maximize", "minimize"] = "maximize" if higher_is_better(metric) else "minimize"
    store = open_storage(url)
    stored_names = {s.study_name for s in optuna.get_all_study_summaries(store)} if overwrite else set()
    if overwrite and storage is not None and study_name in stored_names:
        optuna.delete_study(study_name=study_name, storage=store)
    study = optuna.create_study(storage=store, study_name=study_name, direction=direction, load_if_exists=True)
    stored = study.user_attrs.get("perturblab")
    if stored is None:
        study.set_user_attr("perturblab", config)
    elif stored != config:
        diff = {k: (stored.get(k), config.get(k)) for k in set(stored) | set(config) if stored.get(k) != config.get(k)}
        raise SettingsMismatchError(f"study {study_name!r} in {safe_url(url)}", diff)
    pruner = pruner or optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=5)
    if workers == 1:
        _optimize(url, study_name, objective, n_trials, random_state, pruner, timeout)
    else:
        from joblib import Parallel, delayed

        Parallel(n_jobs=workers)(delayed(_optimize)(url, study_name, objective, n_trials, random_state + k,
                                                    pruner, timeout) for k in range(workers))
    study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    best_params, best_value = (study.best_params, float(study.best_value)) if complete else ({}, float("nan"))
    result = TuningResult(study, study_name, url, best_params, best_value, study.trials_dataframe(),
                          _importances(study, random_state), pd.DataFrame(), inner, 0.0,
                          run.path if run is not None else None)
    if final and complete:
        result.final = final_comparison(adata, spec, target, study.best_params, fixed, max_epochs, keys,
                                        random_state, device, n_bootstrap)
    result.wall_time_s = time.perf_counter() - t0
    if run is not None:
        from .tuning_report import write_tuning_outputs

        write_tuning_outputs(result, run.path, report=report, table_format=table_format)
    return result


def _importances(study, random_state: int) -> pd.DataFrame:
    import optuna

    try:
        imp = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=random_state))
    except (ValueError, RuntimeError):  # fewer than two complete trials, or no parameter varies
        imp = {}
    return pd.DataFrame({"param": list(imp), "importance": list(imp.values())})


def final_comparison(adata: ad.AnnData, model, target: str, best_params: dict, fixed_params: dict,
                     max_epochs: int, keys: dict, random_state: int = 0, device: str | None = None,
                     n_bootstrap: int = 100) -> pd.DataFrame:
    """Test metrics on ``target`` of the tuned model, the default model and the baselines.

    Each is trained on ``loco_split(adata, target).train`` and evaluated against the target's real stimulated
    cells: the tuned model with ``max_epochs`` (as in the trials), the default model and the baselines with
    their own training defaults (a default model trained with the tuning's epochs would not be the default).

    ``model`` is a name of :data:`perturblab.predict.MODELS`, an unfitted instance or a
    :class:`~perturblab.predict.models.ModelSpec`.

    Returns
    -------
    pandas.DataFrame
        ``config`` (``"tuned"``, ``"default"``, ``"baseline"``), then the columns of
        :func:`perturblab.predict.benchmark.run_unit`.
    """
    from .benchmark.units import (
        BenchmarkInputs,
        BenchmarkSettings,
        BenchmarkUnit,
        run_unit,
    )
    from .models import baselines_for

    spec = resolve_model(model)
    model = spec.name
    tuned_model, tuned_train = split_params(best_params)
    fixed = {k: v for k, v in fixed_params.items() if k != "device"}
    runs = [("tuned", model, {model: {**fixed, **tuned_model}}, {model: {"max_epochs": max_epochs, **tuned_train}}),
            ("default", model, {model: fixed}, {})]
    runs += [("baseline", b, {}, {}) for b in baselines_for(adata, keys.get("condition_key", "condition"),
                                                            keys.get("control", "control")) if b != model]
    tables: list[pd.DataFrame] = []
    for config, name, model_params, train_params in runs:
        settings = BenchmarkSettings(**keys, preprocessing=None, model_params=model_params,
                                     train_params=train_params, evaluate_params={"n_bootstrap": n_bootstrap},
                                     device=device)
        unit = run_unit(BenchmarkInputs(adata, settings, specs={model: spec}),
                        BenchmarkUnit(name, str(target), "balanced", random_state))
        tables.append(unit.table.assign(config=config))
    out = pd.concat(tables, ignore_index=True)
    return out[["config", *[c for c in out.columns if c != "config"]]]
