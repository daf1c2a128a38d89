"""Sphinx configuration of perturblab's documentation (built by ``.ci/docs.sh`` with warnings as errors).

The API reference is generated from each module's ``__all__`` (one page per wing, one section per module, one
stub page per object through autosummary; docstrings are numpydoc). The tutorials are MyST notebooks executed during
the build (myst-nb) on the shared data (``PERTURBLAB_DATA_DIR``) with small settings.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "src"))
os.environ.setdefault("MPLBACKEND", "Agg")

import perturblab  # noqa: E402

project = "perturblab"
author = "perturblab maintainers"
copyright = "2026, perturblab maintainers"
release = version = perturblab.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_nb",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]
templates_path = ["_templates"]
html_theme = "furo"
html_title = f"perturblab {release}"

autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# PERTURBLAB_DOCS_EXECUTE=off skips the tutorials (a quick local check of the API pages; CI executes them)
nb_execution_mode = os.environ.get("PERTURBLAB_DOCS_EXECUTE", "force")
if nb_execution_mode == "off":  # unexecuted cells carry no kernel language: their lexer is unknown
    suppress_warnings = ["myst-nb.lexer"]
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "dollarmath"]

# -- the API reference, one page per wing, one section per module, generated from __all__ ----------------------
# (page, title, blurb, [(module, blurb)]); a module that does not import is an error, except those in OPTIONAL.
WINGS = [
    ("core", "Core: data, runs, files, errors",
     "What every wing stands on: the data loaders, the run contract, atomic files and the errors perturblab raises.",
     [("perturblab.datasets", "Loaders of the shared data (raw counts in ``X``), reference networks, splits and "
                              "checksums."),
      ("perturblab.runs", "The run contract: output folder, settings fingerprint, resume, unit store, executor."),
      ("perturblab.io", "Atomic writes and safe reads."),
      ("perturblab.exceptions", "The errors and warnings perturblab raises.")]),
    ("attack", "Attack: classifiers, attacks, audit",
     "Adversarial robustness of cell-type classifiers: perturblab's classifiers or your own, adverSCarial's attacks "
     "and white-box attacks under biological budgets, the robustness audit.",
     [("perturblab.classifiers", "Cell-type classifiers under one protocol, your own classifier (``wrap``, "
                                 "``register_classifier``), CellTypist models."),
      ("perturblab.classifiers.files", "Classifier files (CellTypist models, skops-serialised estimators)."),
      ("perturblab.attack", "Adversarial attacks on cell-type classifiers (adverSCarial's and white-box)."),
      ("perturblab.attack.pl", "Plots of attack tables (return matplotlib Axes)."),
      ("perturblab.audit", "The robustness audit (``perturblab audit``)."),
      ("perturblab.audit.adata", "Audit results written back to an AnnData.")]),
    ("predict", "Predict: perturbation-response prediction",
     "Perturbation-response prediction: models (scGen, scPRAM, your own), baselines, metrics, the leave-one-cell-"
     "type-out protocol, benchmarks and tuning.",
     [("perturblab.predict", "Models, baselines, the LOCO protocol and evaluation."),
      ("perturblab.predict.benchmark", "The benchmark (``perturblab benchmark``): models x targets x variants."),
      ("perturblab.predict.tuning", "Hyper-parameter tuning by nested LOCO (``perturblab tune``)."),
      ("perturblab.predict.metrics", "Distribution and expression metrics."),
      ("perturblab.predict.metrics_de", "Differential-expression metrics."),
      ("perturblab.predict.metrics_targets", "Metrics across several targets."),
      ("perturblab.predict.de", "Differential expression."),
      ("perturblab.predict.intervals", "Bootstrap confidence intervals."),
      ("perturblab.predict.pl", "Plots of predictions (return matplotlib Axes).")]),
    ("interpret", "Interpret: what attention encodes",
     "Statistical tests of what a single-cell foundation model's attention encodes beyond co-expression and "
     "gene-level statistics (after Kendiukhov 2026).",
     [("perturblab.interpret", "Analyses, baselines, statistics and the pipeline (``perturblab interpret``)."),
      ("perturblab.interpret.models", "Gene-token models: perturblab's own transformer, Geneformer, scGPT."),
      ("perturblab.interpret.pl", "Plots of interpretation tables (return matplotlib Axes).")]),
    ("bridges", "Bridges between the wings",
     "Code that joins the wings: the transformer annotator, the robustness of predicted responses.",
     [("perturblab.bridges", "")]),
]
# modules that other work adds: documented once they exist (fallback module or nothing until then)
OPTIONAL = {"perturblab.predict.pl": "perturblab.predict.plotting"}


def _public(mod, names) -> list[str]:
    return sorted(n for n in names if not n.startswith("_") and not isinstance(getattr(mod, n, None), type(sys)))


def _write_api_pages() -> None:
    out = HERE / "api"
    out.mkdir(exist_ok=True)
    toc = ["API reference", "=============", "",
           "One page per wing, one section per module; each entry links to its full docstring (numpydoc).", "",
           ".. toctree::", "   :maxdepth: 2", ""]
    for page, title, blurb, modules in WINGS:
        lines = [title, "=" * len(title), "", blurb, ""]
        for name, mblurb in modules:
            try:
                mod = importlib.import_module(name)
            except ImportError:
                if name not in OPTIONAL:
                    raise
                name = OPTIONAL[name]
                mod = importlib.import_module(name)
            members = _public(mod, getattr(mod, "__all__", []))
            parent = importlib.import_module(name.rsplit(".", 1)[0])
            if name.count(".") > 1:  # a submodule: leave out what its wing's package already documents
                shown = set(getattr(parent, "__all__", []))
                members = [m for m in members if not (m in shown and getattr(parent, m, None) is getattr(mod, m))]
            lines += [name, "-" * len(name), "", f".. automodule:: {name}", "   :no-members:", ""]
            if mblurb:
                lines += [mblurb, ""]
            lines += [f".. currentmodule:: {name}", "", ".. autosummary::", "   :toctree: generated", ""]
            lines += [f"   {m}" for m in members] + [""]
        (out / f"{page}.rst").write_text("\n".join(lines))
        toc.append(f"   {page}")
    for stale in out.glob("*.rst"):
        if stale.stem not in {"index", *(w[0] for w in WINGS)}:
            stale.unlink()
    (out / "index.rst").write_text("\n".join(toc) + "\n")


_write_api_pages()


def _join_split_literals(app, what, name, obj, options, lines) -> None:
    """Join a docstring line that opens an inline literal (odd number of ``) with the next line(s) of its
    paragraph, so that numpydoc's section parsing never cuts a literal in two."""
    i = 0
    while i < len(lines) - 1:
        if lines[i].count("``") % 2 == 1 and lines[i + 1].strip():
            lines[i] = lines[i].rstrip() + " " + lines[i + 1].strip()
            del lines[i + 1]
        else:
            i += 1


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _join_split_literals, priority=100)
