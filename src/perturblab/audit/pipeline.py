"""``run_audit``: train, evaluate and attack classifiers, persist every unit, write tables and a report."""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import InputError
from ..io import TABLE_FORMATS, write_json, write_table
from .config import AuditConfig
from .data import anchor_split, stratified_split
from .units import Context, Unit, choose_mode, run_unit

__all__ = ["AuditResult", "run_audit", "plan_units"]

log = logging.getLogger(__name__)

TABLES = ("accuracy", "attacks", "genes", "flips", "fewest_genes", "overview", "max_change_genes", "cgd_path",
          "labels_after", "budget", "abstention", "strength", "robustness", "detectability", "embedding", "transfer",
          "defence", "label_noise")


@dataclass
class AuditResult:
    """Tables of a robustness audit (tidy pandas DataFrames; empty when not computed).

    ``accuracy``: one row per classifier (test accuracy, macro-F1, macro AUROC, fit time);
    ``attacks``: one row per attack unit (classifier, attack, cluster, modification, space, mode,
    original label, ``n_found``, ``success``, ``n_classifier_calls``, times); ``genes``: one row
    per gene found (single-gene hits, CGD's modified genes) with the unit's search ``mode`` and
    ``n_classifier_calls``; ``overview``: clusters x modifications counts per classifier and attack;
    ``max_change_genes``; ``cgd_path`` (per visited gene); ``robustness`` (curves); ``detectability``;
    ``embedding`` (before/after coordinates of CGD attacks); ``transfer`` (source x target);
    ``defence`` (adversarial training). ``summary``: the JSON summary.
    """

    config: AuditConfig
    tables: dict[str, pd.DataFrame]
    summary: dict
    out: Path | None = None
    background: dict = field(default_factory=dict)
    cells: dict = field(default_factory=dict)

    def __getattr__(self, name):
        if name in TABLES:
            return self.tables.get(name, pd.DataFrame())
        raise AttributeError(name)

    def to_adata(self, adata, groupby: str | None = None, key_added: str = "perturblab_audit"):
        """Write the audit's tables into ``adata.uns[key_added]`` and per-cell columns into ``adata.obs`` (the
        AnnData audited); see :func:`perturblab.audit.adata.audit_to_adata` for the keys. Returns ``adata``."""
        from .adata import audit_to_adata

        return audit_to_adata(self, adata, groupby=groupby, key_added=key_added)


def run_audit(config: AuditConfig | None = None, out=None, *, data=None, resume: bool = False,
              overwrite: bool = False, n_jobs: int = 1, scheduler=None, table_format: str = "parquet",
              device: str | None = None, fitted: dict | None = None, groupby: str | None = None,
              key_added: str | None = None, **settings) -> AuditResult:
    """Robustness audit of cell-type classifiers (perturblab's main job).

    Loads the dataset, splits it into seeded stratified train/test halves
    (:func:`~perturblab.audit.data.stratified_split`), fits each classifier on the train half
    (raw counts), evaluates it on the test half (accuracy, macro-F1, one-vs-rest AUROC), runs the
    attacks on every cluster of the test half (each a persisted unit of work), then the optional
    evaluations, and writes tidy tables, ``summary.json`` and a self-contained ``report.html``.
    Follows the run contract of :mod:`perturblab.runs`: a rerun into the same ``out`` needs
    ``resume`` (same settings and the same input data, checked by content checksum) or ``overwrite``.

    Parameters
    ----------
    config
        An :class:`AuditConfig`; or give its fields as keyword ``settings``
        (e.g. ``classifiers=["svm", "mlp"], clusters=["NK"], seed=0``). ``classifiers`` may also be a dict
        ``{name: registry name or fitted classifier}``, e.g. ``{"mine": fitted, "rf": "random_forest"}``: a fitted
        scikit-learn estimator, Pipeline or torch module is wrapped (:func:`perturblab.classifiers.wrap`; a plain
        estimator must know its genes, ``feature_names_in_``), evaluated and attacked on the test half but never
        trained, and enters the run's settings by a content checksum
        (:func:`perturblab.classifiers.files.classifier_checksum`).
    out
        Output folder (``None``: a temporary folder, nothing kept on disk).
    data
        An AnnData of raw counts to audit instead of the dataset ``config.data`` names.
    resume, overwrite
        What to do when ``out`` is not empty (see :func:`perturblab.runs.open_run`).
    n_jobs
        Local worker processes (joblib; -1 = all cores; 1 = in this process).
    scheduler
        Dask distributed scheduler address or ``distributed.Client`` (overrides ``n_jobs``).
    table_format
        ``"parquet"`` or ``"csv"``.
    device
        torch device of the MLP (``None``: CUDA when present, else CPU). Not part of the settings
        checked on resume.
    fitted
        ``{name: fitted classifier}`` to audit beside ``config.classifiers`` (what a dict of ``classifiers=`` holds;
        the command line's ``--classifier-file``). Their checksums must be in ``config.classifier_checksums`` when
        a ``config`` is given (they are added otherwise).
    groupby, key_added
        Results back in the AnnData ``data`` (scanpy's conventions, :meth:`AuditResult.to_adata`): ``groupby``
        names the ``obs`` column of the cell types (default ``config.label_key``); with ``key_added`` (e.g.
        ``"perturblab_audit"``) the tables go to ``data.uns[key_added]`` and per-cell columns to ``data.obs``.

    Returns
    -------
    AuditResult

    Raises
    ------
    InputError
        Unknown settings, clusters absent from the test half (with "did you mean"), bad table format, ...
    RunFolderError, SettingsMismatchError
        ``out`` cannot be used as asked (see :func:`perturblab.runs.open_run`).

    Examples
    --------
    >>> import perturblab as plab
    >>> res = plab.audit.run_audit(classifiers=["sctype"], clusters=["B"], modifications=["perc1"],
    ...                            n_bootstrap=0)
    >>> res.attacks[["classifier", "cluster", "modification", "mode", "n_found"]]
      classifier cluster modification        mode  n_found
    0     sctype       B        perc1  exhaustive        2

    Your own fitted classifier beside a registry one, on your AnnData (raw counts), results back in it:

    >>> adata = plab.datasets.pbmc3k()
    >>> res = plab.audit.run_audit(data=adata, classifiers={"mine": fitted, "rf": "random_forest"},
    ...                            label_key="cell_type", key_added="audit")  # doctest: +SKIP
    >>> adata.uns["audit"]["attacks"], adata.obs["audit_n_flipping_genes"]  # doctest: +SKIP
    """
    from .._device import check_device
    from ..datasets import load as load_data
    from ..runs import (
        UnitStore,
        data_checksum,
        execute,
        open_run,
        peak_rss_mb,
        progress,
    )

    t0 = time.perf_counter()
    user = dict(fitted or {})
    if "classifiers" in settings:
        settings["classifiers"], aliases, objects = _classifier_spec(settings["classifiers"])
        user.update(objects)
        settings["registry_names"] = {**settings.get("registry_names", {}), **aliases}
    user = _wrap_user(user)
    if config is None:
        checks = {**settings.pop("classifier_checksums", {}), **{n: _checksum(c) for n, c in user.items()}}
        if user and "classifiers" not in settings:
            settings["classifiers"] = tuple(user)
        given: dict[str, Any] = {"data": "<AnnData>"} if data is not None else {}
        config = AuditConfig(**given, **settings, classifier_checksums=checks)
    elif settings:
        raise InputError("give either config or keyword settings, not both")
    missing = [n for n in user if n not in config.classifiers or not config.is_user_fitted(n)]
    if missing:
        raise InputError(f"fitted classifier(s) {missing} are not among config.classifiers with a checksum in "
                         "config.classifier_checksums; pass them through classifiers={name: fitted} instead")
    absent = [n for n in config.classifiers if config.is_user_fitted(n) and n not in user]
    if absent:
        raise InputError(f"config names fitted classifier(s) {absent} but they were not given; pass fitted={{name: "
                         "classifier}}")
    if table_format not in TABLE_FORMATS:
        raise InputError(f"table format must be one of {', '.join(TABLE_FORMATS)}, got {table_format!r}")
    check_device(device)
    adata = load_data(config.data if data is None else data)
    if config.split == "anchor":
        train, test = anchor_split(adata, config.label_key, random_state=config.seed)
    else:
        train, test = stratified_split(adata, config.label_key, test_size=config.test_size,
                                       drop_labels=config.drop_labels, min_cells=config.min_cells,
                                       random_state=config.seed)
    y = test.obs[config.label_key].astype(str).to_numpy()
    clusters = _clusters(config, y)  # bad input fails before anything is written
    tmp = tempfile.TemporaryDirectory(prefix="perturblab-audit-") if out is None else None
    run = open_run(tmp.name if tmp else out, "audit", config.to_dict(), data_checksum(_without_results(adata)),
                   resume=resume, overwrite=overwrite)
    store = UnitStore(run)
    log.info("audit: %d test cells, %d clusters attacked, %d classifiers", len(y), len(clusters),
             len(config.classifiers))
    fitted, accuracy = _fit_all(config, train, test, store, n_jobs if scheduler is None else 1, device, user)
    contexts = _contexts(config, fitted, test, y, clusters)
    units = plan_units(config, contexts, clusters)
    todo = [u for u in units if not store.done(u.key)]
    with progress.task("attacks and curves", total=len(units), completed=len(units) - len(todo)) as bar:
        for unit, res in execute(run_unit, todo, shared=contexts, group=lambda u: u.classifier, n_jobs=n_jobs,
                                 scheduler=scheduler, batch_size=2):
            store.save(unit.key, summary=res.summary, tables=res.tables)
            bar.advance()
    results = [store.load(u.key) for u in units]
    tables = _collect(results)
    tables["accuracy"] = accuracy
    tables["overview"] = _overview(tables.get("attacks", pd.DataFrame()))
    from .evaluations import defence, label_noise, transfer
    from .findings import fewest_genes, flips

    tables["flips"] = flips(tables.get("genes", pd.DataFrame()), contexts)
    tables["fewest_genes"] = fewest_genes(tables.get("attacks", pd.DataFrame()), tables["flips"])
    if "transferability" in config.evaluations:
        tables["transfer"] = transfer(config, contexts, tables, results, store)
    if "defence" in config.evaluations:
        tables["defence"] = defence(config, contexts, train, test, tables, store)
    if "label_noise" in config.evaluations:
        tables["label_noise"] = label_noise(config, contexts, train, test, clusters, store)
    background = {n: c.embedding.background() for n, c in contexts.items() if c.embedding is not None}
    wall = time.perf_counter() - t0
    summary = _summary(config, tables, units, len(todo), wall, run.path if tmp is None else None, peak_rss_mb())
    summary["cluster_sizes"] = {c: int((y == c).sum()) for c in clusters}
    summary["split"] = config.split
    result = AuditResult(config=config, tables=tables, summary=summary, out=None if tmp else run.path,
                         background=background, cells={"train": list(train.obs_names), "test": list(test.obs_names)})
    if tmp is None:
        _write(result, run.path, table_format)
    else:
        tmp.cleanup()
    if key_added is not None:
        from ..datasets import load as _load

        if data is None or not hasattr(data, "obs"):
            raise InputError("key_added writes the results into the AnnData given as data=; pass data=adata")
        result.to_adata(_load(data), groupby=groupby, key_added=key_added)
    return result


def _clusters(config: AuditConfig, y: np.ndarray) -> list[str]:
    from .._validation import check_values_present

    present = sorted(set(y))
    if config.clusters is None:
        return present
    check_values_present(config.clusters, present, "cluster")
    return list(config.clusters)


def _without_results(adata):
    """``adata`` without the ``obs`` columns an earlier ``key_added`` wrote (listed in ``uns[key]["obs_columns"]``),
    so that results written back do not change the data checksum a resumed run compares."""
    written = [c for v in adata.uns.values() if isinstance(v, dict) for c in list(v.get("obs_columns", []))]
    written = [c for c in written if c in adata.obs.columns]
    if not written:
        return adata
    import anndata as ad

    return ad.AnnData(X=adata.X, obs=adata.obs.drop(columns=written), var=adata.var, obsm=dict(adata.obsm))


def _classifier_spec(spec) -> tuple[str | tuple[str, ...] | None, dict, dict]:
    """``classifiers=`` as (names, {alias: registry name}, {name: fitted object})."""
    from ..classifiers.wrap import is_protocol_classifier

    if isinstance(spec, str) or spec is None:
        return spec, {}, {}
    items = list(spec.items()) if isinstance(spec, dict) else [(None, v) for v in spec]
    names, aliases, objects = [], {}, {}
    for key, value in items:
        if isinstance(value, str):
            name = value if key is None else str(key)
            if name != value:
                aliases[name] = value
        else:
            base = getattr(value, "name", None) if is_protocol_classifier(value) else None
            name = str(key) if key is not None else str(base or type(value).__name__.lower())
            objects[name] = value
        names.append(name)
    return tuple(names), aliases, objects


def _wrap_user(user: dict) -> dict:
    from ..classifiers.wrap import as_classifier

    out = {}
    for name, obj in user.items():
        clf = as_classifier(obj, where=f"run_audit (classifier {name!r})")
        if not hasattr(clf, "predict"):
            raise InputError(f"classifier {name!r} is a cluster-level function; the audit needs a per-cell classifier: "
                             "plab.classifiers.wrap(fn, genes=..., classes=...)")
        if not hasattr(clf, "classes_"):
            raise InputError(f"classifier {name!r} is not fitted; fit it first, or give its registry name")
        out[name] = clf
    return out


def _checksum(clf) -> str:
    from ..classifiers.files import classifier_checksum

    return classifier_checksum(clf)


def _fit_eval(inputs, name: str):
    """Fit and evaluate one classifier (the unit function of the training step)."""
    from ..classifiers import evaluate_classifier, fit_classifier
    from ..classifiers.registry import CLASSIFIERS as REGISTRY

    config, train, test, device, factories = inputs
    for reg, factory in factories.items():  # names registered in the parent (plugins, bridges) exist in workers too
        REGISTRY.setdefault(reg, factory)
    t = time.perf_counter()
    clf, notes = fit_classifier(config.registry_name(name), train, config.label_key, random_state=config.seed,
                                device=device, **config.classifier_kwargs(name))
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    row = evaluate_classifier(clf, test, config.label_key, name=name, n_bootstrap=config.n_bootstrap,
                              random_state=config.seed)
    row["fit_time_s"], row["evaluate_time_s"] = fit_s, time.perf_counter() - t
    row["representation"] = clf.representation
    row["notes"] = "; ".join(notes)
    return clf, row


def _factories(config) -> dict:
    """The registry entries of the trained classifiers that are not perturblab's own (shipped to workers)."""
    from ..classifiers.registry import BUILTIN_CLASSIFIERS, CLASSIFIERS

    regs = {config.registry_name(n) for n in config.trainable()}
    return {r: CLASSIFIERS[r] for r in regs if r not in BUILTIN_CLASSIFIERS}


def _evaluate_user(config, test, name: str, clf):
    """Evaluate a fitted classifier the user passed (never trained here)."""
    import warnings

    from ..classifiers import evaluate_classifier

    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = evaluate_classifier(clf, test, config.label_key, name=name, n_bootstrap=config.n_bootstrap,
                                  random_state=config.seed)
    notes = ["fitted by the user (not trained by the audit)",
             *dict.fromkeys(str(w.message) for w in caught if "perturblab" in (w.filename or ""))]
    row["fit_time_s"], row["evaluate_time_s"] = 0.0, time.perf_counter() - t
    row["representation"] = getattr(clf, "representation", "")
    row["notes"] = "; ".join(notes)
    return row


def _fit_all(config, train, test, store, n_jobs: int = 1, device: str | None = None, user: dict | None = None):
    """Fit and evaluate every classifier (in ``n_jobs`` processes; seeded, so the same models); the user's fitted
    classifiers are evaluated only."""
    from ..runs import execute, progress

    fitted, rows = {}, {}
    user = user or {}
    for name, clf in user.items():
        fitted[name], rows[name] = clf, _evaluate_user(config, test, name, clf)
    with progress.task("training + evaluation", total=len(config.trainable())) as bar:
        for name, (clf, row) in execute(_fit_eval, config.trainable(),
                                        shared={"inputs": (config, train, test, device, _factories(config))},
                                        n_jobs=n_jobs):
            fitted[name], rows[name] = clf, row
            for note in row["notes"].iloc[0].split("; ") if row["notes"].iloc[0] else []:
                log.warning("%s: %s", name, note)
            bar.advance()
    order = list(config.classifiers)
    return {n: fitted[n] for n in order}, pd.concat([rows[n] for n in order], ignore_index=True)


def _contexts(config, fitted, test, y, clusters) -> dict[str, Context]:
    from ..classifiers._preprocess import log1p_matrix

    need_counts = "raw_counts" in config.spaces or "defence" in config.evaluations
    need_cgd = "cgd" in config.attacks or "robustness" in config.evaluations
    need_markers = bool({"robustness", "strength", "label_noise"} & set(config.evaluations)
                        or {"grid", "random_walk"} & set(config.attacks))
    counts = np.asarray(test.X.toarray() if hasattr(test.X, "toarray") else test.X, dtype=np.float32)
    var_names = np.asarray(test.var_names.astype(str))
    L = log1p_matrix(test) if (need_cgd or need_markers) else None
    cgd_genes = _signature(L, y, var_names) if need_cgd else []
    markers = {}
    if need_markers:
        from .robustness import marker_ranking

        markers = marker_ranking(L, y, var_names, n_top=max(*config.gene_counts, config.grid_genes, config.walk_genes,
                                                            config.strength_genes))
    contexts = {}
    for name, clf in fitted.items():
        X = clf.preprocess(test)
        emb = None
        if "detectability" in config.evaluations:
            from .detectability import Embedding

            emb = Embedding(X, y, umap=True, random_state=config.seed)
        contexts[name] = Context(name=name, classifier=clf, X=X, clusters=y, counts=counts if need_counts else None,
                                 var_names=var_names, cgd_genes=cgd_genes, embedding=emb, markers=markers,
                                 config=config, attacked=list(clusters),
                                 keep_cgd_values="transferability" in config.evaluations)
    return contexts


def _signature(L, y, var_names) -> list[str]:
    """CGD gene order: adverSCarial's signature ranking (``getSignGenes``, Wilcoxon) on log1p data,
    computed on the 2,000 most variable genes (every other gene ranks after them) to bound time. Each
    classifier walks through the first ``cgd_n_genes`` of them that it reads (:meth:`Context.cgd_genes_in`)."""
    from ..attack.signature import signature_genes

    top = np.argsort(-L.var(axis=0), kind="stable")[:2000]
    return signature_genes(L[:, top], y, var_names[top])["gene"].tolist()


def plan_units(config: AuditConfig, contexts: dict, clusters: list[str]) -> list[Unit]:
    """Every unit of the audit, in a deterministic order (single-gene search modes resolved; white-box attacks only
    on differentiable classifiers)."""
    from ..classifiers import is_differentiable

    units = []
    for name, ctx in contexts.items():
        used = getattr(ctx.classifier, "used_genes_", None)
        n_model_genes = len(ctx.classifier.genes_) if used is None else len(used)
        for space in config.spaces:
            for c in clusters:
                n_cells = int((ctx.clusters == c).sum())
                for attack in config.attacks:
                    if attack in ("pgd", "fgsm"):  # white-box: differentiable classifiers only
                        if is_differentiable(ctx.classifier):
                            units.append(Unit("attack", name, attack, c, "", space))
                        continue
                    if attack == "cgd":
                        units.append(Unit("attack", name, attack, c, "", space))
                        continue
                    if attack in ("grid", "random_walk"):  # combinations over all modifications
                        units.append(Unit("attack", name, attack, c, "+".join(config.modifications), space))
                        continue
                    for mod in config.modifications:
                        mode = ""
                        if attack == "single_gene":
                            n_genes = n_model_genes if space == "model_input" else len(ctx.var_names)
                            model = ctx.classifier if space == "model_input" else None
                            mode = choose_mode(model, n_genes, n_cells, config.search_mode(name))
                        units.append(Unit("attack", name, attack, c, mod, space, mode))
        if "strength" in config.evaluations:
            units.append(Unit("strength", name))
        if "robustness" in config.evaluations:
            units += [Unit("robustness", name, axis="genes", strength=float(k)) for k in config.gene_counts]
            units += [Unit("robustness", name, axis="cgd", strength=float(s)) for s in config.cgd_strengths]
    return units


def _collect(results) -> dict[str, pd.DataFrame]:
    attacks = [r.summary for r in results if r.key["kind"] == "attack"]
    tables: dict[str, list] = {}
    for r in results:
        for k, df in r.tables.items():
            if k != "cgd_values" and len(df) and not df.isna().all().all():
                tables.setdefault(k, []).append(df)
    out = {k: pd.concat(v, ignore_index=True) for k, v in tables.items()}
    out["attacks"] = pd.DataFrame(attacks)
    return out


def _overview(attacks: pd.DataFrame) -> pd.DataFrame:
    """adverSCarial's overviews: number of genes found per classifier, attack, space, cluster and modification."""
    if attacks.empty:
        return pd.DataFrame()
    cols = ["classifier", "attack", "space", "mode", "cluster", "modification", "n_found", "n_classifier_calls"]
    return attacks[cols].sort_values(cols[:6], kind="stable").reset_index(drop=True)


def _summary(config, tables, units, n_run, wall, out, peak_mb) -> dict:
    acc = tables["accuracy"]
    att = tables.get("attacks", pd.DataFrame())
    modes = {}
    n_found = {}
    if not att.empty:
        sg = att[att["attack"] == "single_gene"]
        modes = {c: sorted(set(g["mode"])) for c, g in sg.groupby("classifier")}
        n_found = {f"{k[0]}/{k[1]}": int(v) for k, v in att.groupby(["classifier", "attack"])["n_found"].sum().items()}
    return {
        "config": config.to_dict(),
        "n_units": len(units), "n_units_run": n_run, "n_units_resumed": len(units) - n_run,
        "wall_time_s": wall, "peak_rss_mb": peak_mb,
        "accuracy": acc.to_dict(orient="records"),
        "single_gene_modes": modes,
        "n_found": n_found,
        "n_classifier_calls": int(att["n_classifier_calls"].sum()) if not att.empty else 0,
        "headline": _headline(att, tables.get("flips", pd.DataFrame()), list(config.classifiers)),
        "out": str(out) if out else None,
    }


def _headline(attacks: pd.DataFrame, flip_table: pd.DataFrame, classifiers: list[str]) -> str:
    """The run's headline: real flips per classifier (see :func:`perturblab.audit.findings.headline`)."""
    from .findings import headline

    if attacks.empty:
        return "no attack unit ran"
    return " | ".join(headline(attacks, flip_table, c) for c in classifiers)


def _write(result: AuditResult, out: Path, table_format: str) -> None:
    from .report import build_report

    tdir = out / "tables"
    for name in TABLES:
        df = result.tables.get(name)
        if df is not None and len(df):
            write_table(tdir / f"{name}.{table_format}", df)
    write_json(out / "summary.json", result.summary)
    build_report(result).write(out / "report.html")
