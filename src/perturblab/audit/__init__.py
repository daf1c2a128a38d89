"""The robustness audit: train, evaluate and attack cell-type classifiers, persist, report.

:func:`run_audit` (and ``perturblab audit`` on the command line) fits the classifiers of
:mod:`perturblab.classifiers` on a seeded stratified train half, evaluates them on the test
half and runs the attacks of :mod:`perturblab.attack` on every cluster, as independent units of
work that run in parallel (joblib or Dask), are persisted atomically and resume after an
interruption (:mod:`perturblab.runs`). Results: tidy tables, a JSON summary and a self-contained
HTML report.
"""

from .config import ATTACKS, CLASSIFIERS, EVALUATIONS, SPACES, AuditConfig
from .data import stratified_split
from .pipeline import AuditResult, plan_units, run_audit

__all__ = [
    "ATTACKS",
    "CLASSIFIERS",
    "EVALUATIONS",
    "SPACES",
    "AuditConfig",
    "AuditResult",
    "plan_units",
    "run_audit",
    "stratified_split",
]
