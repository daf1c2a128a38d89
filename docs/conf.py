"""Sphinx configuration of perturblab's documentation (built by ``.ci/docs.sh`` with warnings as errors).

The API reference is generated from each part's ``__all__`` (one page per part, one stub page per object through
autosummary; docstrings are numpydoc). The tutorials are MyST notebooks executed during the build (myst-nb) on the
shared data (``PERTURBLAB_DATA_DIR``) with small settings.
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

nb_execution_mode = "force"
nb_execution_timeout = 900
nb_execution_raise_on_error = True
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "dollarmath"]

# -- the API reference, one page per part, generated from __all__ --------------------------------------------
PARTS = {
    "datasets": "Datasets: loaders of the shared data, splits and checksums.",
    "classifiers": "Cell-type classifiers under one protocol, your own classifier (wrap, register_classifier), "
                   "CellTypist models.",
    "attack": "Adversarial attacks on cell-type classifiers (adverSCarial's and white-box), and their plots.",
    "audit": "The robustness audit (``perturblab audit``).",
    "bridges": "Code that joins the wings: the transformer annotator.",
    "predict": "Perturbation-response prediction: models, baselines, metrics, benchmarks, tuning.",
    "interpret": "What a foundation model's attention encodes: analyses, baselines, statistics.",
    "runs": "The run contract: output folder, resume, unit store, executor.",
    "io": "Atomic writes and safe reads.",
    "exceptions": "The errors and warnings perturblab raises.",
}
EXTRA_MODULES = {"attack": ["perturblab.attack.pl"], "classifiers": ["perturblab.classifiers.files"],
                 "audit": ["perturblab.audit.adata"]}


def _write_api_pages() -> None:
    out = HERE / "api"
    out.mkdir(exist_ok=True)
    toc = ["API reference", "=============", "", ".. toctree::", "   :maxdepth: 1", ""]
    for part, blurb in PARTS.items():
        name = f"perturblab.{part}"
        mod = importlib.import_module(name)
        members = sorted(n for n in getattr(mod, "__all__", []) if not n.startswith("_")
                         and not isinstance(getattr(mod, n, None), type(sys)))
        lines = [name, "=" * len(name), "", blurb, "", f".. automodule:: {name}", "   :no-members:", "",
                 f".. currentmodule:: {name}", "", ".. autosummary::", "   :toctree: generated", ""]
        lines += [f"   {m}" for m in members]
        for extra in EXTRA_MODULES.get(part, []):
            sub = importlib.import_module(extra)
            lines += ["", extra, "-" * len(extra), "", f".. currentmodule:: {extra}", "", ".. autosummary::",
                      "   :toctree: generated", ""]
            lines += [f"   {m}" for m in sorted(getattr(sub, "__all__", []))]
        (out / f"{part}.rst").write_text("\n".join(lines) + "\n")
        toc.append(f"   {part}")
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
