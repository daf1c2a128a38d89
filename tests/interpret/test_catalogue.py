"""The catalogue of issue-14 analyses names real functions and registry-row functions."""

import importlib

import pytest

from perturblab.interpret.catalogue import ANALYSES, default_analyses


@pytest.mark.parametrize("name", sorted(ANALYSES))
def test_catalogue_entries_resolve(name):
    spec = ANALYSES[name]
    for dotted in [*spec.function.split(" + "), *spec.rows.split(" + ")]:
        module, attr = dotted.strip().rsplit(".", 1)
        assert callable(getattr(importlib.import_module(f"perturblab.interpret.{module}"), attr)), dotted
    assert spec.question.endswith("?") and spec.section in {"robustness", "positive", "cssi", "beyond"}
    assert spec.needs and spec.seconds >= 0


def test_default_run_budget():
    # the measured cost of the default analyses on the default Papalexi run stays well inside 10 minutes
    assert sum(ANALYSES[n].seconds for n in default_analyses()) < 300
