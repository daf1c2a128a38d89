"""Optional extras: a wing whose extra is missing fails on import with one error naming the extra."""

from __future__ import annotations

import importlib
import sys

import pytest

from perturblab.exceptions import MissingExtraError


def _forget(monkeypatch, prefix: str) -> None:
    # the parent package's attribute is restored too: the re-import rebinds it (perturblab.classifiers would
    # otherwise stay a second copy of the module, with its own registry, for the tests that run after)
    parent, _, child = prefix.rpartition(".")
    namespace = vars(sys.modules[parent]) if parent in sys.modules else {}
    if child in namespace:
        monkeypatch.setitem(namespace, child, namespace[child])
    for name in [m for m in sys.modules if m == prefix or m.startswith(prefix + ".")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.parametrize("wing, module, extra", [("perturblab.predict", "optuna", "predict"),
                                                 ("perturblab.predict", "ot", "predict"),
                                                 ("perturblab.interpret", "transformers", "interpret")])
def test_missing_extra_is_one_error_naming_it(monkeypatch, wing, module, extra):
    import perturblab  # noqa: F401  (installs the guard)

    _forget(monkeypatch, wing)
    monkeypatch.setitem(sys.modules, module, None)  # as if the package were not installed
    with pytest.raises(MissingExtraError) as err:
        importlib.import_module(wing)
    assert str(err.value) == (f"{wing} needs the optional extra [{extra}] (missing: {module}); install it with: "
                              f"pip install 'perturblab[{extra}]'")
    assert isinstance(err.value, ImportError) and err.value.exit_code == 2


def test_core_imports_without_the_extras(monkeypatch):
    import perturblab

    for prefix in ("perturblab.attack", "perturblab.audit", "perturblab.classifiers"):
        _forget(monkeypatch, prefix)
    for module in ("optuna", "ot", "transformers", "distributed", "dask", "statsmodels"):
        monkeypatch.setitem(sys.modules, module, None)
    importlib.import_module("perturblab.audit")
    importlib.import_module("perturblab.attack")
    assert perturblab.classifiers.get_classifier("svm") is not None


def test_dask_scheduler_without_the_extra(monkeypatch):
    from perturblab.runs import execute

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtraError, match=r"\[dask\]"):
        list(execute(abs, [1, 2], scheduler="tcp://127.0.0.1:1"))
