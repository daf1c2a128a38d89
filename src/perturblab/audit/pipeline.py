"""``run_audit``: train, evaluate and attack classifiers, persist every unit, write tables and a report."""

from __future__ import annotations

import inspect
import resource
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import write_json, write_table
from .config import AuditConfig
from .data import load_dataset, stratified_split
from .execute import execute_units
from .store import UnitStore, prepare_out_dir
from .units import Context, Unit, choose_mode

__all__ = ["AuditResult", "run_audit", "fit_classifier", "peak_rss_mb"]

TABLES = ("accuracy", "attacks", "genes", "overview", "max_change_genes", "cgd_path", "robustness",
          "detectability", "embedding", "transfer", "defence")


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

    def __getattr__(self, name):
        if name in TABLES:
            return self.tables.get(name, pd.DataFrame())
        raise AttributeError(name)


def peak_rss_mb() -> float:
    """Peak resident memory (MiB) of this process and of its finished child processes."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return float(max(own, children))


def fit_classifier(name: str, train, label_key: str, *, dataset: str = "pbmc3k", random_state: int = 0,
                   device: str | None = None):
    """A registry classifier fitted on raw-count ``train`` (seeded; the random forest single-threaded,
    scType with :data:`~perturblab.classifiers.sctype.PBMC3K_LABEL_MAP` on PBMC3k, the MLP on
    ``device``: ``None`` = CUDA when present, else CPU)."""
    from ..classifiers import CLASSIFIERS, PBMC3K_LABEL_MAP, get_classifier

    params = inspect.signature(CLASSIFIERS[name].__init__).parameters
    kw = {}
    if "random_state" in params:
        kw["random_state"] = random_state
    if "n_jobs" in params:
        kw["n_jobs"] = 1
    if "device" in params:
        kw["device"] = device
    if name == "sctype" and dataset == "pbmc3k":
        kw["label_map"] = PBMC3K_LABEL_MAP
    clf = get_classifier(name, **kw)
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*marker genes are absent.*")
        warnings.filterwarnings("ignore", message=".*have no ScTypeDB name.*")
        return clf.fit(train, label_key)


def run_audit(config: AuditConfig | None = None, out=None, *, resume: bool = False, overwrite: bool = False,
              n_jobs: int = 1, scheduler=None, table_format: str = "parquet", progress: bool = False,
              device: str | None = None, **settings) -> AuditResult:
    """Robustness audit of cell-type classifiers (perturblab's main job).

    Loads the dataset, splits it into seeded stratified train/test halves
    (:func:`~perturblab.audit.data.stratified_split`), fits each classifier on the train half
    (raw counts), evaluates it on the test half (accuracy, macro-F1, one-vs-rest AUROC), runs the
    attacks on every cluster of the test half (each a persisted unit of work), then the optional
    evaluations, and writes tidy tables, ``summary.json`` and a self-contained ``report.html``.

    Parameters
    ----------
    config
        An :class:`AuditConfig`; or give its fields as keyword ``settings``
        (e.g. ``classifiers=["svm", "mlp"], clusters=["NK"], seed=0``).
    out
        Output folder (``None``: a temporary folder, nothing kept on disk).
    resume, overwrite
        What to do when ``out`` is not empty (else :class:`~perturblab.audit.store.OutputExistsError`):
        continue (units already persisted are not run again; settings must match) or start over.
    n_jobs
        Local worker processes for the units (joblib; -1 = all cores).
    scheduler
        Dask distributed scheduler address or ``distributed.Client`` (overrides ``n_jobs``).
    table_format
        ``"parquet"`` or ``"csv"``.
    progress
        Show rich progress bars (stderr).
    device
        torch device of the MLP (``None``: CUDA when present, else CPU). Not part of the settings
        checked on resume.

    Returns
    -------
    AuditResult

    Raises
    ------
    ValueError
        Unknown settings, clusters absent from the test half, bad table format, ...
    """
    t0 = time.perf_counter()
    if config is None:
        config = AuditConfig(**settings)
    elif settings:
        raise ValueError("give either config or keyword settings, not both")
    if table_format not in ("parquet", "csv"):
        raise ValueError(f"table_format must be 'parquet' or 'csv', got {table_format!r}")
    train, test = stratified_split(load_dataset(config.dataset), config.label_key, test_size=config.test_size,
                                   drop_labels=config.drop_labels, min_cells=config.min_cells, random_state=config.seed)
    y = test.obs[config.label_key].astype(str).to_numpy()
    clusters = _clusters(config, y)  # bad input fails before anything is written
    tmp = tempfile.TemporaryDirectory(prefix="perturblab-audit-") if out is None else None
    out_dir = prepare_out_dir(tmp.name if tmp else out, config.to_dict(), resume=resume, overwrite=overwrite)
    store = UnitStore(out_dir)
    prog = _progress(progress)
    with prog or nullcontext():
        fitted, accuracy = _fit_all(config, train, test, prog, 1 if scheduler is not None else n_jobs, device)
        contexts = _contexts(config, fitted, test, y, clusters)
        units = plan_units(config, contexts, clusters)
        task = prog.add_task("attacks and curves", total=len(units)) if prog else None
        if prog:
            prog.update(task, completed=sum(store.done(u.id) for u in units))
        n_run = execute_units(units, contexts, store, n_jobs=n_jobs, scheduler=scheduler,
                              on_done=(lambda r: prog.advance(task)) if prog else None)
        results = [store.load(u.id) for u in units]
        tables = _collect(results)
        tables["accuracy"] = accuracy
        tables["overview"] = _overview(tables.get("attacks", pd.DataFrame()))
        from .evaluations import defence, transfer

        if "transferability" in config.evaluations:
            tables["transfer"] = transfer(config, contexts, tables, results, store)
        if "defence" in config.evaluations:
            tables["defence"] = defence(config, contexts, train, test, tables, store, prog)
    background = {n: c.embedding.background() for n, c in contexts.items() if c.embedding is not None}
    wall = time.perf_counter() - t0
    summary = _summary(config, tables, units, n_run, wall, out_dir if tmp is None else None)
    result = AuditResult(config=config, tables=tables, summary=summary, out=None if tmp else out_dir,
                         background=background)
    if tmp is None:
        _write(result, out_dir, table_format)
    else:
        tmp.cleanup()
    return result


def _progress(show: bool):
    if not show:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True))


def _clusters(config: AuditConfig, y: np.ndarray) -> list[str]:
    from .._validation import check_values_present

    present = sorted(set(y))
    if config.clusters is None:
        return present
    check_values_present(config.clusters, present, "cluster")
    return list(config.clusters)


def _fit_eval(name, config, train, test, device):
    from ..classifiers import evaluate_classifier

    t = time.perf_counter()
    clf = fit_classifier(name, train, config.label_key, dataset=config.dataset, random_state=config.seed,
                         device=device)
    fit_s = time.perf_counter() - t
    t = time.perf_counter()
    row = evaluate_classifier(clf, test, config.label_key, name=name)
    row["fit_time_s"], row["evaluate_time_s"] = fit_s, time.perf_counter() - t
    row["representation"] = clf.representation
    return name, clf, row


def _fit_all(config, train, test, prog, n_jobs: int = 1, device: str | None = None):
    """Fit and evaluate every classifier (in ``n_jobs`` processes; seeded, so the same models)."""
    task = prog.add_task("training + evaluation", total=len(config.classifiers)) if prog else None
    if n_jobs == 1:
        gen = (_fit_eval(name, config, train, test, device) for name in config.classifiers)
    else:
        from joblib import Parallel, delayed

        gen = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
            delayed(_fit_eval)(name, config, train, test, device) for name in config.classifiers)
    fitted, rows = {}, {}
    for name, clf, row in gen:
        fitted[name], rows[name] = clf, row
        if prog:
            prog.advance(task)
    order = list(config.classifiers)
    return {n: fitted[n] for n in order}, pd.concat([rows[n] for n in order], ignore_index=True)


def _contexts(config, fitted, test, y, clusters) -> dict[str, Context]:
    from ..classifiers._preprocess import log1p_matrix

    need_counts = "raw_counts" in config.spaces or "defence" in config.evaluations
    need_cgd = "cgd" in config.attacks or "robustness" in config.evaluations
    need_markers = "robustness" in config.evaluations or bool({"grid", "random_walk"} & set(config.attacks))
    counts = np.asarray(test.X.toarray() if hasattr(test.X, "toarray") else test.X, dtype=np.float32)
    var_names = np.asarray(test.var_names.astype(str))
    L = log1p_matrix(test) if (need_cgd or need_markers) else None
    cgd_genes = _signature(L, y, var_names, config.cgd_n_genes) if need_cgd else []
    markers = {}
    if need_markers:
        from .robustness import marker_ranking

        markers = marker_ranking(L, y, var_names, n_top=max(*config.gene_counts, config.grid_genes, config.walk_genes))
    settings = {"seed": config.seed, "cgd_strength": config.cgd_strength, "cgd_n_genes": config.cgd_n_genes,
                "grid_genes": config.grid_genes, "walk_genes": config.walk_genes,
                "clusters": clusters, "keep_cgd_values": "transferability" in config.evaluations}
    contexts = {}
    for name, clf in fitted.items():
        X = clf.preprocess(test)
        emb = None
        if "detectability" in config.evaluations:
            from .detectability import Embedding

            emb = Embedding(X, y, umap=True, random_state=config.seed)
        contexts[name] = Context(name=name, classifier=clf, X=X, clusters=y, counts=counts if need_counts else None,
                                 var_names=var_names, cgd_genes=cgd_genes, embedding=emb, markers=markers,
                                 settings=settings)
    return contexts


def _signature(L, y, var_names, n: int) -> list[str]:
    """CGD gene order: adverSCarial's signature ranking (``getSignGenes``, Wilcoxon) on log1p data,
    computed on the 2,000 most variable genes (every other gene ranks after them) to bound time."""
    from ..attack.signature import signature_genes

    top = np.argsort(-L.var(axis=0), kind="stable")[:2000]
    ranked = signature_genes(L[:, top], y, var_names[top])["gene"].tolist()
    return ranked[: max(n, 1)]


def plan_units(config: AuditConfig, contexts: dict, clusters: list[str]) -> list[Unit]:
    """Every unit of the audit, in a deterministic order (single-gene search modes resolved)."""
    units = []
    for name, ctx in contexts.items():
        used = getattr(ctx.classifier, "used_genes_", None)
        n_model_genes = len(ctx.classifier.genes_) if used is None else len(used)
        for space in config.spaces:
            for c in clusters:
                n_cells = int((ctx.clusters == c).sum())
                for attack in config.attacks:
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
        if "robustness" in config.evaluations:
            units += [Unit("robustness", name, axis="genes", strength=float(k)) for k in config.gene_counts]
            units += [Unit("robustness", name, axis="cgd", strength=float(s)) for s in config.cgd_strengths]
    return units


def _collect(results: list[dict]) -> dict[str, pd.DataFrame]:
    attacks = [r["summary"] for r in results if r["unit"]["kind"] == "attack"]
    tables: dict[str, list] = {}
    for r in results:
        for k, df in r["tables"].items():
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


def _summary(config, tables, units, n_run, wall, out) -> dict:
    acc = tables["accuracy"]
    att = tables.get("attacks", pd.DataFrame())
    modes = {}
    if not att.empty:
        sg = att[att["attack"] == "single_gene"]
        modes = {c: sorted(set(g["mode"])) for c, g in sg.groupby("classifier")}
    return {
        "config": config.to_dict(),
        "n_units": len(units), "n_units_run": n_run, "n_units_resumed": len(units) - n_run,
        "wall_time_s": wall, "peak_rss_mb": peak_rss_mb(),
        "accuracy": acc.to_dict(orient="records"),
        "single_gene_modes": modes,
        "n_found": ({f"{k[0]}/{k[1]}": int(v) for k, v in att.groupby(["classifier", "attack"])["n_found"].sum().items()}
                    if not att.empty else {}),
        "n_classifier_calls": int(att["n_classifier_calls"].sum()) if not att.empty else 0,
        "out": str(out) if out else None,
    }


def _write(result: AuditResult, out: Path, table_format: str) -> None:
    from .report import build_report

    tdir = out / "tables"
    for name in TABLES:
        df = result.tables.get(name)
        if df is not None and len(df):
            write_table(tdir / f"{name}.{table_format}", df)
    write_json(out / "summary.json", result.summary)
    build_report(result).write(out / "report.html")
