"""Optional extras: what each needs, and one error naming the extra when it is missing.

perturblab's core (datasets, classifiers, attack, audit, runs, io) installs with ``pip install perturblab``. The
other parts need an extra:

=============  =======================================  ==========================================
extra          installs                                 needed by
=============  =======================================  ==========================================
``predict``    POT, Optuna, statsmodels                 :mod:`perturblab.predict` (scPRAM's OT, tuning, statistics)
``interpret``  transformers, statsmodels                :mod:`perturblab.interpret` (Geneformer, statistics)
``dask``       dask[distributed]                        ``--scheduler`` / ``scheduler=`` (a Dask cluster)
``postgres``   psycopg2                                 PostgreSQL tuning storage
``docs``       Sphinx, numpydoc, myst-nb, furo          building the documentation
``all``        all of the above
=============  =======================================  ==========================================

:func:`install_import_guard` (called when :mod:`perturblab` is imported) makes ``import perturblab.predict`` and
``import perturblab.interpret`` raise one :class:`~perturblab.exceptions.MissingExtraError` naming the extra when a
module it needs cannot be found, instead of an ``ImportError`` from deep inside.
"""

from __future__ import annotations

import importlib.util
import sys

from .exceptions import MissingExtraError

__all__ = ["EXTRAS", "WINGS", "install_import_guard", "missing_modules", "require"]

#: extra -> importable modules it provides (checked with ``importlib.util.find_spec``, nothing imported).
EXTRAS: dict[str, tuple[str, ...]] = {
    "predict": ("ot", "optuna", "statsmodels"),
    "interpret": ("transformers", "statsmodels"),
    "dask": ("dask", "distributed"),
    "postgres": ("psycopg2",),
    "docs": ("sphinx", "numpydoc", "myst_nb"),
}
#: package -> the extra its import needs.
WINGS = {"perturblab.predict": "predict", "perturblab.interpret": "interpret"}


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    out = []
    for name in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package missing, or sys.modules[name] is None
            found = False
        if not found:
            out.append(name)
    return out


def require(extra: str, part: str) -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` when one of its modules is missing."""
    missing = missing_modules(extra)
    if missing:
        raise MissingExtraError(part, extra, missing)


class _WingGuard:
    """A ``sys.meta_path`` finder that checks a wing's extra before the wing is imported (it never finds
    anything itself: the normal import follows)."""

    def find_spec(self, fullname, path=None, target=None):
        extra = WINGS.get(fullname)
        if extra is not None:
            require(extra, fullname)
        return None

    def invalidate_caches(self) -> None:  # importlib API
        return None


def install_import_guard() -> None:
    """Put the wing guard first on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _WingGuard) for f in sys.meta_path):
        sys.meta_path.insert(0, _WingGuard())
