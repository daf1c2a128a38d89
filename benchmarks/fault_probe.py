"""Fault probe: replay bad inputs, faults and hostile data through every command and grade each outcome.

Each case runs ``perturblab ...`` in process (typer's CliRunner) and is graded:

- **pass**: the expected outcome. A refusal is exactly one ``error:`` line containing the expected words, with the
  expected exit code (2 usage error, 1 failed run) and no traceback; a success produces the expected files and,
  where a check is given, the check holds (e.g. a rerun did not reuse results of other settings);
- **weak**: refused, without a traceback, but with another exit code, more than one error line, or a message
  without the expected words (the user is not told the fix);
- **fail**: a traceback, an unexpected error, or a success where a refusal was expected (numbers a user would
  trust though they are wrong).

Usage::

    PERTURBLAB_DATA_DIR=../shared/data python benchmarks/fault_probe.py [--out DIR] [--only WORD] [--json FILE]

Prints one line per case and a JSON summary (``{"n_cases", "pass", "weak", "fail"}``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Case:
    """One probe: a command line, what to prepare first, and what must happen."""

    name: str
    wing: str
    args: list[str]
    code: int = 2                      # expected exit code (0: must succeed)
    words: tuple[str, ...] = ()        # words the error line must contain (case-insensitive)
    setup: Callable[[Path], None] | None = None
    check: Callable[[Path, str], bool] | None = None
    env: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# hostile data
# ---------------------------------------------------------------------------------------------------------
def _write(adata, path: Path) -> str:
    adata.write_h5ad(path)
    return str(path)


def make_data(folder: Path) -> dict[str, str]:
    """Small real and synthetic datasets, and damaged copies, written into ``folder``."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    import perturblab as plab

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    # labelled counts for the audit: 3 clusters, one with a 300-character name, one that looks like rich markup
    long_name = "T cells of a very long annotation " * 9
    names = np.repeat([long_name.strip(), "[bold red]B[/bold red]", "NK"], [60, 60, 60])
    means = {long_name.strip(): 1.0, "[bold red]B[/bold red]": 3.0, "NK": 6.0}
    X = np.vstack([rng.poisson(np.r_[np.full(20, means[n]), np.ones(280)]) for n in names]).astype(np.float32)
    lab = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame({"cell_type": names}, index=[f"c{i}" for i in range(len(X))]),
                     var=pd.DataFrame(index=[f"G{i}" for i in range(300)]))
    files["labelled"] = _write(lab, folder / "labelled.h5ad")
    nan_lab = lab.copy()
    nan_lab.obs["cell_type"] = nan_lab.obs["cell_type"].astype(object)
    nan_lab.obs.iloc[:5, 0] = np.nan
    files["labelled_nan"] = _write(nan_lab, folder / "labelled_nan.h5ad")
    neg = lab.copy()
    neg.X = neg.X.toarray()
    neg.X[0, 0] = -3
    files["labelled_negative"] = _write(neg, folder / "labelled_negative.h5ad")
    single = lab[lab.obs["cell_type"] == "NK"].copy()
    files["labelled_one_type"] = _write(single, folder / "labelled_one_type.h5ad")

    kang = plab.datasets.kang2018()
    ct, cond = kang.obs["cell_type"].astype(str).to_numpy(), kang.obs["condition"].astype(str).to_numpy()
    keep = [rng.choice(np.flatnonzero((ct == t) & (cond == c)), 40, replace=False)
            for t in ("CD14 Mono", "B", "CD4 Naive T") for c in ("control", "stimulated")]
    small = kang[np.sort(np.concatenate(keep))].copy()
    files["kang"] = _write(small, folder / "kang_small.h5ad")
    k2 = small.copy()
    k2.obs["cell_type"] = k2.obs["cell_type"].astype(str).replace({"B": "CD14+ Mono", "CD4 Naive T": "CD14 Mono"})
    k2.obs.loc[k2.obs.index[k2.obs["cell_type"].eq("CD14 Mono")][:80], "cell_type"] = "CD14+Mono"
    files["kang_collide"] = _write(k2, folder / "kang_collide.h5ad")
    k3 = small.copy()
    k3.obs["condition"] = k3.obs["condition"].astype(object)
    k3.obs.iloc[:7, k3.obs.columns.get_loc("condition")] = np.nan
    files["kang_nan"] = _write(k3, folder / "kang_nan.h5ad")
    k4 = small.copy()
    k4.X = k4.X.toarray()
    k4.X[3, 3] = np.nan
    files["kang_nanx"] = _write(k4, folder / "kang_nanx.h5ad")
    k5 = small[np.r_[0:20, len(small) - 20:len(small)]].copy()  # too few cells per type for --target all
    files["kang_tiny"] = _write(k5, folder / "kang_tiny.h5ad")
    k6 = small.copy()
    del k6.obs["condition"]
    files["kang_nokey"] = _write(k6, folder / "kang_nokey.h5ad")
    k7 = small.copy()
    k7.X = np.log1p(k7.X.toarray() * 0.37)
    files["kang_log"] = _write(k7, folder / "kang_log.h5ad")

    pap = plab.datasets.papalexi2021()
    labels = pap.obs["perturbation"].astype(str).to_numpy()
    keep = np.concatenate([rng.choice(np.flatnonzero(labels == g), min(40, int((labels == g).sum())), replace=False)
                           for g in ("control", "STAT1", "IFNGR2", "JAK2")])
    psmall = pap[np.sort(keep)].copy()
    files["papalexi"] = _write(psmall, folder / "papalexi_small.h5ad")
    p2 = psmall.copy()
    p2.obs["perturbation"] = p2.obs["perturbation"].astype(object)
    p2.obs.iloc[:4, p2.obs.columns.get_loc("perturbation")] = None
    files["papalexi_nan"] = _write(p2, folder / "papalexi_nan.h5ad")

    (folder / "not_hdf5.h5ad").write_text("cell,gene\nc1,3\n")
    files["not_hdf5"] = str(folder / "not_hdf5.h5ad")
    raw = Path(files["kang"]).read_bytes()
    (folder / "truncated.h5ad").write_bytes(raw[: len(raw) // 3])
    files["truncated"] = str(folder / "truncated.h5ad")
    (folder / "empty.h5ad").write_bytes(b"")
    files["empty"] = str(folder / "empty.h5ad")
    (folder / "a_file").write_text("x")
    files["a_file"] = str(folder / "a_file")
    return files


# ---------------------------------------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------------------------------------
AUDIT = ["audit", "--classifier", "random_forest", "--n-bootstrap", "0"]
PREDICT = ["predict", "--model", "baselines", "--target", "B", "--n-top-genes", "200", "--n-bootstrap", "0"]
BENCH = ["benchmark", "--model", "identity", "--target", "B", "--variant", "balanced", "--n-top-genes", "200",
         "--n-bootstrap", "0"]
TUNE = ["tune", "--model", "scpram", "--target", "B", "--n-trials", "1", "--n-inner", "1", "--max-epochs", "1",
        "--n-bootstrap", "0", "--n-top-genes", "100", "--min-cells", "20"]
INTERPRET = ["interpret", "--cells-per-group", "30", "--n-cells", "30", "--epochs", "1", "--d-model", "16",
             "--n-layers", "1", "--n-heads", "2", "--max-length", "32", "--n-label-null", "10", "--n-degree-null",
             "5", "--n-bootstrap", "10", "--ablation-k", "1", "--ablation-seeds", "1", "--ablation-intervention",
             "top", "--cssi-null-repeats", "1", "--reference", "trrust", "--device", "cpu"]


def _exists(*names: str) -> Callable[[Path, str], bool]:
    return lambda out, _output: all((out / n).exists() for n in names)


def cases(files: dict[str, str], root: Path) -> list[Case]:
    f = files
    data = {"audit": f["labelled"], "predict": f["kang"], "benchmark": f["kang"], "tune": f["kang"],
            "interpret": f["papalexi"]}
    base = {"audit": AUDIT, "predict": PREDICT, "benchmark": BENCH, "tune": TUNE, "interpret": INTERPRET}
    wing = {"audit": "attack", "predict": "predict", "benchmark": "predict", "tune": "predict",
            "interpret": "interpret"}
    out: list[Case] = []

    def add(name, cmd, extra, code=2, words=(), setup=None, check=None, env=None, with_data=True):
        args = [*base[cmd], *(["--data", data[cmd]] if with_data else []), *extra]
        out.append(Case(f"{cmd}: {name}", wing[cmd], args, code, tuple(words), setup, check, env or {}))

    def other_run(cmd):
        def setup(o: Path, cmd=cmd) -> None:
            from perturblab.runs import open_run

            open_run(o, "audit" if cmd != "audit" else "predict", {"x": 1})
        return setup

    def foreign(o: Path) -> None:
        o.mkdir(parents=True)
        (o / "notes.txt").write_text("my notes")

    for cmd in base:
        # --out and the run contract
        add("--out is a file", cmd, ["--out", f["a_file"]], words=("is a file",))
        add("--out under a file", cmd, ["--out", f["a_file"] + "/sub"], words=("inside a file",))
        add("--out in /proc", cmd, ["--out", "/proc/perturblab-probe"], words=("cannot write",))
        add("--out of another command", cmd, ["--overwrite"], words=("holds the results of",), setup=other_run(cmd))
        add("--out holds other files", cmd, [], words=("holds no perturblab run",), setup=foreign)
        add("--out holds other files, --overwrite", cmd, ["--overwrite"], words=("holds no perturblab run",),
            setup=foreign, check=None)
        add("--resume with --overwrite", cmd, ["--resume", "--overwrite"], words=("exclude each other",))
        # data
        name = {"audit": "pbmc3", "predict": "kang2O18", "benchmark": "kang2O18", "tune": "kang2O18",
                "interpret": "papalexi2O21"}[cmd]
        add("--data unknown name", cmd, ["--data", name], words=("unknown dataset", "did you mean"), with_data=False)
        add("--data missing file", cmd, ["--data", str(root / "nope.h5ad")], words=("does not exist",),
            with_data=False)
        add("--data not HDF5", cmd, ["--data", f["not_hdf5"]], words=("cannot read", "not_hdf5.h5ad"),
            with_data=False)
        add("--data truncated", cmd, ["--data", f["truncated"]], words=("cannot read", "truncated"), with_data=False)
        add("--data empty file", cmd, ["--data", f["empty"]], words=("cannot read",), with_data=False)
        # numbers and choices shared by all
        add("--device bogus", cmd, ["--device", "bogus"], words=("unknown device",))
        add("--device cuda without GPU", cmd, ["--device", "cuda:7"], words=("cuda",))
        add("--n-bootstrap -1", cmd, ["--n-bootstrap", "-1"], words=("n_bootstrap",))
        add("--format xlsx", cmd, ["--format", "xlsx"], words=("format",))
        add("--quiet and --verbose", cmd, ["--quiet", "--verbose"], words=("exclude each other",))
        add("--seed -1", cmd, ["--seed", "-1"], words=("seed",))
        if cmd not in ("interpret",):
            add("--n-jobs 0", cmd, ["--n-jobs", "0"], words=("--n-jobs",))
        if cmd in ("audit", "predict", "benchmark"):
            add("--scheduler unreachable", cmd, ["--scheduler", "tcp://127.0.0.1:9"], words=("dask scheduler",))

    # ---- resume semantics (a first run, then a rerun with other settings or other data) ----
    def first_run(cmd, args):
        def setup(o: Path) -> None:
            from typer.testing import CliRunner

            from perturblab.cli import app

            r = CliRunner().invoke(app, [*base[cmd], "--data", data[cmd], *args, "--out", str(o)])
            assert r.exit_code == 0, r.output
        return setup

    def changed_data(cmd):
        def setup(o: Path) -> None:
            first_run(cmd, [])(o)
            import anndata as ad

            a = ad.read_h5ad(data[cmd])
            X = a.X.toarray() if hasattr(a.X, "toarray") else a.X
            X[0, :] = X[0, :] + 1
            a.X = X
            a.write_h5ad(root / f"changed_{cmd}.h5ad")
        return setup

    out.append(Case("predict: rerun with other seed and genes (defect 1)", "predict",
                    [*PREDICT, "--data", f["kang"], "--seed", "7", "--n-top-genes", "150", "--resume"], 2,
                    ("settings.seed: 0 -> 7", "n_top_genes: 200 -> 150"), first_run("predict", [])))
    out.append(Case("predict: rerun without --resume", "predict", [*PREDICT, "--data", f["kang"]], 2,
                    ("--resume",), first_run("predict", [])))
    out.append(Case("audit: rerun with other seed", "attack", [*AUDIT, "--data", f["labelled"], "--seed", "3",
                                                               "--resume"], 2, ("settings.seed: 0 -> 3",),
                    first_run("audit", [])))
    out.append(Case("benchmark: rerun with other variant", "predict",
                    [*BENCH[:-2], "--n-bootstrap", "0", "--data", f["kang"], "--variant", "unbalanced", "--resume"],
                    2, ("variants",), first_run("benchmark", [])))
    for cmd in ("audit", "predict", "benchmark"):
        out.append(Case(f"{cmd}: resume after the input file changed in place", wing[cmd],
                        [*base[cmd], "--data", str(root / f"changed_{cmd}.h5ad"), "--resume"], 2, ("data:",),
                        changed_data(cmd)))
    out.append(Case("interpret: rerun with another model size (defect 2)", "interpret",
                    [*INTERPRET, "--data", f["papalexi"], "--d-model", "32", "--resume"], 2, ("d_model: 16 -> 32",),
                    first_run("interpret", [])))
    out.append(Case("interpret: rerun with other references (defect 2)", "interpret",
                    [*INTERPRET, "--data", f["papalexi"], "--reference", "string", "--resume"], 2, ("references",),
                    first_run("interpret", [])))
    out.append(Case("audit: --overwrite removes the earlier tables", "attack",
                    [*AUDIT, "--data", f["labelled"], "--overwrite"], 0, (),
                    first_run("audit", ["--attack", "max_change"]),
                    lambda o, _: not (o / "tables" / "max_change_genes.parquet").exists()
                    and (o / "tables" / "attacks.parquet").exists()))
    out.append(Case("predict: same settings resume reuses everything", "predict",
                    [*PREDICT, "--data", f["kang"], "--resume"], 0, (), first_run("predict", []),
                    lambda o, output: "0 run" not in output and json.loads((o / "summary.json").read_text())[
                        "n_units_run"] == 0))

    # ---- attack wing ----
    a = [*AUDIT, "--data", f["labelled"]]
    out += [
        Case("audit: cluster typo", "attack", [*a, "--cluster", "NK cells"], 2, ("unknown cluster 'NK cells'",
                                                                                 "did you mean 'NK'")),
        Case("audit: unknown classifier", "attack", [*a, "--classifier", "xgboost"], 2, ("xgboost",)),
        Case("audit: unknown attack", "attack", [*a, "--attack", "deepfool"], 2, ("deepfool",)),
        Case("audit: unknown modification", "attack", [*a, "--modification", "perc50"], 2, ("modification",)),
        Case("audit: bad search mode", "attack", [*a, "--search-mode", "random_forest=fast"], 2, ("search mode",)),
        Case("audit: malformed search mode", "attack", [*a, "--search-mode", "mlp=dichotomic,svm"], 2,
             ("CLASSIFIER=MODE",)),
        Case("audit: --cgd-genes 0", "attack", [*a, "--attack", "cgd", "--cgd-genes", "0"], 2, ("cgd_n_genes",)),
        Case("audit: --cgd-strength 0", "attack", [*a, "--attack", "cgd", "--cgd-strength", "0"], 2,
             ("cgd_strength",)),
        Case("audit: missing label column", "attack", [*a, "--label-key", "celltype"], 2,
             ("label column 'celltype'",)),
        Case("audit: NaN labels", "attack", [*AUDIT, "--data", f["labelled_nan"]], 2, ("without a label", "NaN")),
        Case("audit: negative counts", "attack", [*AUDIT, "--data", f["labelled_negative"]], 2, ("negative",)),
        Case("audit: one cell type only", "attack", [*AUDIT, "--data", f["labelled_one_type"]], 2, ("2",)),
        Case("audit: defence without single_gene", "attack", [*a, "--attack", "cgd", "--evaluation", "defence"], 2,
             ("defence",)),
        Case("audit: transferability with one classifier", "attack", [*a, "--evaluation", "transferability"], 2,
             ("transferability",)),
        Case("audit: cluster names too long for a file name and markup-like", "attack", [*a], 0, (), None,
             _exists("report.html", "tables/attacks.parquet")),
        Case("audit: markup in a cluster name is printed as text", "attack", [*a, "--cluster", "[bold]X[/bold]"], 2,
             ("'[bold]X[/bold]'",)),
        Case("audit: kang2018 labels scType cannot name", "attack",
             ["audit", "--classifier", "sctype", "--data", "kang2018", "--cluster", "NK", "--n-bootstrap", "0"], 0,
             (), None, lambda o, output: "ScTypeDB" in output or "label" in output.lower()),
    ]
    # ---- predict wing ----
    p = [*PREDICT, "--data", f["kang"]]
    out += [
        Case("predict: target typo", "predict", [*PREDICT[:3], "--target", "CD14 mono", "--n-top-genes", "200",
                                                 "--data", f["kang"]], 2, ("did you mean 'CD14 Mono'",)),
        Case("predict: model typo", "predict", [*p, "--model", "scgan"], 2, ("did you mean 'scgen'",)),
        Case("predict: --n-top-genes 0", "predict", [*p, "--n-top-genes", "0"], 2, ("n_top_genes",)),
        Case("predict: --n-top-genes -5", "predict", [*p, "--n-top-genes", "-5"], 2, ("n_top_genes",)),
        Case("predict: --max-epochs 0", "predict", [*p, "--model", "scgen", "--max-epochs", "0"], 2,
             ("max_epochs",)),
        Case("predict: --min-cells 0", "predict", [*p, "--min-cells", "0"], 2, ("min_cells",)),
        Case("predict: --target all when none qualifies", "predict",
             [*PREDICT[:3], "--target", "all", "--data", f["kang_tiny"], "--n-top-genes", "200"], 2,
             ("no cell type has",)),
        Case("predict: control typo", "predict", [*p, "--control", "ctrl"], 2, ("did you mean 'control'",)),
        Case("predict: missing condition column", "predict", [*PREDICT, "--data", f["kang_nokey"]], 2,
             ("condition column",)),
        Case("predict: NaN conditions", "predict", [*PREDICT, "--data", f["kang_nan"]], 2, ("without a condition",)),
        Case("predict: NaN expression", "predict", [*PREDICT, "--data", f["kang_nanx"]], 2, ("NaN",)),
        Case("predict: cell types that collide as file names", "predict",
             [*PREDICT[:3], "--target", "CD14+ Mono", "--target", "CD14 Mono", "--n-top-genes", "200",
              "--n-bootstrap", "0", "--data", f["kang_collide"]], 0, (), None,
             lambda o, _: _distinct_targets(o)),
        Case("predict: log-normalised input where counts are expected", "predict",
             [*PREDICT, "--data", f["kang_log"]], 0, (), None, lambda o, output: "raw counts" in output),
    ]
    b = [*BENCH, "--data", f["kang"]]
    out += [
        Case("benchmark: --fraction 1.5", "predict", [*b, "--fraction", "1.5"], 2, ("fraction must be in (0, 1]",)),
        Case("benchmark: --min-fraction 0", "predict", [*b, "--min-fraction", "0"], 2, ("min_fraction",)),
        Case("benchmark: unknown variant", "predict", [*b, "--variant", "shifted"], 2, ("shifted",)),
        Case("benchmark: unknown target", "predict", [*b, "--target", "Unicorn"], 2, ("Unicorn",)),
        Case("benchmark: --max-epochs 0", "predict", [*b, "--model", "scgen", "--max-epochs", "0"], 2,
             ("max_epochs",)),
    ]
    t = [*TUNE, "--data", f["kang"]]
    out += [
        Case("tune: --n-trials -1", "predict", [*t, "--n-trials", "-1"], 2, ("n_trials",)),
        Case("tune: --n-trials 0", "predict", [*t, "--n-trials", "0"], 2, ("n_trials",)),
        Case("tune: --max-epochs 0", "predict", [*t, "--max-epochs", "0"], 2, ("max_epochs",)),
        Case("tune: --timeout -5", "predict", [*t, "--timeout", "-5"], 2, ("timeout",)),
        Case("tune: model without search space", "predict", [*t, "--model", "identity"], 2, ("search space",)),
        Case("tune: unparsable storage", "predict", [*t, "--storage", "not a url"], 2, ("storage URL",)),
        Case("tune: storage without driver", "predict", [*t, "--storage", "mysql://u:p@127.0.0.1:1/db"], 2,
             ("pip install",)),
        Case("tune: unreachable postgres", "predict",
             [*t, "--storage", "postgresql://u:secret@127.0.0.1:1/db"], 2, ("cannot open the Optuna storage",)),
        Case("tune: target typo", "predict", [*t, "--target", "b"], 2, ("did you mean 'B'",)),
    ]
    i = [*INTERPRET, "--data", f["papalexi"]]
    out += [
        Case("interpret: --n-cells 0", "interpret", [*i, "--n-cells", "0"], 2, ("n_cells",)),
        Case("interpret: --n-genes 0", "interpret", [*i, "--n-genes", "0"], 2, ("n_genes",)),
        Case("interpret: --epochs 0", "interpret", [*i, "--epochs", "0"], 2, ("epochs",)),
        Case("interpret: d-model not a multiple of heads", "interpret", [*i, "--d-model", "30", "--n-heads", "4"], 2,
             ("multiple",)),
        Case("interpret: geneformer without --model-path", "interpret", [*i, "--model", "geneformer"], 2,
             ("model-path",)),
        Case("interpret: --model-path missing", "interpret",
             [*i, "--model", "scgpt", "--model-path", str(root / "nope")], 2, ("does not exist",)),
        Case("interpret: own --model-path not a checkpoint", "interpret", [*i, "--model-path", f["not_hdf5"]], 2,
             ("checkpoint",)),
        Case("interpret: missing perturbation column", "interpret", [*i, "--perturbation-key", "guide"], 2,
             ("perturbation column 'guide'",)),
        Case("interpret: control typo", "interpret", [*i, "--control", "ctrl"], 2, ("did you mean 'control'",)),
        Case("interpret: NaN perturbation labels before training", "interpret",
             [*INTERPRET, "--data", f["papalexi_nan"]], 2, ("without a perturbation",), None),
        Case("interpret: --cells-per-group 0", "interpret", [*i, "--cells-per-group", "0"], 2,
             ("cells_per_group",)),
        Case("interpret: unknown reference", "interpret", [*i, "--reference", "kegg"], 2, ("kegg",)),
        Case("interpret: --ablation-k 0", "interpret", [*i, "--ablation-k", "0"], 2, ("ablation k",)),
        Case("interpret: CSSI skip path (defect 3)", "interpret", [*i, "--cssi-min-cells", "1000"], 0, (), None,
             lambda o, output: "CSSI skipped" in output and (o / "report.html").exists()),
        Case("interpret: strata column missing", "interpret", [*i, "--strata-key", "cluster"], 2,
             ("CSSI stratum column",)),
    ]
    # ---- the shared core ----
    out += [
        Case("datasets: data directory pointing nowhere (offline)", "core",
             ["audit", "--classifier", "sctype", "--n-bootstrap", "0"], 1,
             ("not found", "PERTURBLAB_DATA_DIR", "does not exist"), env={"PERTURBLAB_DATA_DIR": str(root / "void"),
                                                                          "PERTURBLAB_CACHE_DIR": str(root / "cache")}),
        Case("datasets: an edited copy of TRRUST is refused", "core",
             [*INTERPRET, "--data", f["papalexi"]], 1, ("trrust", "checksum"),
             setup=None, env={"PERTURBLAB_DATA_DIR": str(root / "edited"),
                              "PERTURBLAB_CACHE_DIR": str(root / "cache2")}),
        Case("--version", "core", ["--version"], 0, (), None, lambda o, output: output.startswith("perturblab ")),
    ]
    return out


def _distinct_targets(out: Path) -> bool:
    import pandas as pd

    m = pd.read_parquet(out / "metrics.parquet")
    r2 = m[(m["metric"] == "r2_pearson_mean") & (m["gene_set"] == "all") & (m["model"] == "mean_delta")]
    return set(r2["target"]) == {"CD14+ Mono", "CD14 Mono"} and r2["value"].nunique() == 2


def _edited_data_dir(root: Path, source: Path) -> None:
    """A copy of the data directory whose TRRUST file has one edit (STAT1 -> STAT7)."""
    dst = root / "edited"
    shutil.copytree(source, dst, ignore=shutil.ignore_patterns("*.h5ad"))
    for name in os.listdir(source):
        if name.endswith(".h5ad"):
            os.symlink(source / name, dst / name)
    trrust = dst / "references" / "trrust_v2_human.tsv"
    trrust.write_text(trrust.read_text().replace("STAT1\t", "STAT7\t", 1))


# ---------------------------------------------------------------------------------------------------------
def grade(case: Case, code: int, output: str, out: Path) -> tuple[str, str]:
    """(grade, why) of one case's exit code and output."""
    if "Traceback" in output:
        return "fail", "traceback"
    errors = [line for line in output.splitlines() if line.startswith("error:") or line.startswith("Error:")]
    if case.code == 0:
        if code != 0:
            return "fail", f"exit {code}: {errors[:1]}"
        if case.check is not None and not case.check(out, output):
            return "fail", "succeeded, but the check failed"
        return "pass", ""
    if code == 0:
        return "fail", "succeeded where a refusal was expected"
    if "unexpected" in output:
        return "fail", f"unexpected error: {errors[:1]}"
    text = " ".join(errors).lower() if errors else output.lower()
    missing = [w for w in case.words if w.lower() not in text]
    if code != case.code:
        return "weak", f"exit {code} (expected {case.code})"
    if len(errors) != 1 and not output.strip().startswith("Usage:"):
        return "weak", f"{len(errors)} error lines"
    if missing:
        return "weak", f"message lacks {missing}"
    return "pass", ""


def run(case: Case, root: Path, index: int) -> tuple[str, str, float]:
    from typer.testing import CliRunner

    from perturblab.cli import app

    out = root / f"out{index}"
    if case.setup is not None:
        case.setup(out)
    args = [a.replace("{out}", str(out)) for a in case.args]
    if "--out" not in args and case.args != ["--version"]:
        args += ["--out", str(out)]
    saved = {k: os.environ.get(k) for k in case.env}
    os.environ.update(case.env)
    t0 = time.perf_counter()
    try:
        res = CliRunner().invoke(app, args)
        output = res.output + ("" if res.exception is None or isinstance(res.exception, SystemExit)
                               else f"\nTraceback: {type(res.exception).__name__}: {res.exception}")
        code = res.exit_code
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    g, why = grade(case, code, output, out)
    return g, why, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="Work folder, emptied first (default: a temporary "
                                                              "folder).")
    parser.add_argument("--only", default="", help="Run the cases whose name contains this text.")
    parser.add_argument("--json", type=Path, default=None, help="Write every case's grade to this JSON file.")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="perturblab-probe-"))
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    source = Path(os.environ["PERTURBLAB_DATA_DIR"])
    files = make_data(root / "data")
    _edited_data_dir(root, source)
    all_cases = [c for c in cases(files, root) if args.only in c.name]
    rows, counts = [], {"pass": 0, "weak": 0, "fail": 0}
    for k, case in enumerate(all_cases):
        g, why, seconds = run(case, root, k)
        counts[g] += 1
        rows.append({"case": case.name, "wing": case.wing, "grade": g, "why": why, "seconds": round(seconds, 2)})
        print(f"{g:4s}  {case.wing:9s} {case.name}" + (f"  ({why})" if why else ""), flush=True)
    summary = {"n_cases": len(all_cases), **counts,
               "by_wing": {w: {g: sum(r["grade"] == g for r in rows if r["wing"] == w) for g in counts}
                           for w in sorted({r["wing"] for r in rows})}}
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "cases": rows}, indent=2))
    print(json.dumps(summary))
    sys.exit(0)


if __name__ == "__main__":
    main()
