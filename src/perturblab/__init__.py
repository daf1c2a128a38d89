"""perturblab: put single-cell models under controlled perturbation.

Three parts over one shared core:

- :mod:`perturblab.attack` - adversarial robustness of cell-type classifiers
  (a Python successor to the R package adverSCarial);
- :mod:`perturblab.predict` - perturbation-response prediction (scGen, scPRAM,
  baselines) and its metrics, benchmarking and tuning;
- :mod:`perturblab.interpret` - statistical tests of what single-cell foundation
  models' attention encodes.

Shared core: :mod:`perturblab.datasets`, :mod:`perturblab.classifiers`,
:mod:`perturblab.report`, :mod:`perturblab.runs` (the run contract: output folder,
resume, executor), :mod:`perturblab.io`, :mod:`perturblab.exceptions` and
:data:`perturblab.settings`.

Usage::

    import perturblab as plab
    adata = plab.datasets.pbmc3k()

Installation: ``pip install perturblab`` is the lean core (datasets, classifiers, attack, audit); the predict and
interpret wings need the extras ``[predict]`` and ``[interpret]`` (``[all]`` installs everything; see
:mod:`perturblab._extras`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from . import exceptions, io
from ._extras import install_import_guard
from ._settings import settings
from ._version import __version__

install_import_guard()  # importing a wing whose optional extra is missing: one error naming the extra

_SUBMODULES = ("datasets", "classifiers", "attack", "predict", "interpret", "report", "audit", "runs")

__all__ = [
    "__version__", "exceptions", "io", "settings",
    "datasets", "classifiers", "attack", "predict", "interpret", "report", "audit", "runs",
]

if TYPE_CHECKING:  # pragma: no cover
    from . import attack, audit, classifiers, datasets, interpret, predict, report, runs


def __getattr__(name: str):
    # Sub-packages are imported lazily so that `import perturblab` stays fast
    # (torch and scanpy are only loaded when a part that needs them is used).
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'perturblab' has no attribute {name!r}")
