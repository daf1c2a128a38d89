"""Tuning storage on a real PostgreSQL server (several workers on one study).

Needs PERTURBLAB_TEST_PG_URL (``source .ci/postgres.sh``). With CI=true the test runs and
fails when the URL is missing; elsewhere it is deselected without it (see conftest.py).
"""

from __future__ import annotations

import os
import uuid

import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from perturblab.predict.tuning import tune


@pytest.mark.postgres
def test_two_workers_share_a_postgres_study(kang_small_counts, tmp_path):
    url = os.environ.get("PERTURBLAB_TEST_PG_URL")
    if not url:
        pytest.fail("PERTURBLAB_TEST_PG_URL is not set: run `source .ci/postgres.sh` before the tests")
    assert url.startswith("postgresql")
    # a bare postgresql:// URL works too: the installed driver (psycopg2) is chosen, not SQLAlchemy's psycopg 3
    from perturblab.predict.tuning_storage import storage_url

    assert storage_url(url.replace("postgresql+psycopg2://", "postgresql://")).startswith("postgresql+psycopg2://")
    name = f"perturblab-test-{uuid.uuid4().hex[:8]}"
    space = {"n_latent": CategoricalDistribution([4, 8]), "n_hidden": CategoricalDistribution([16])}
    try:
        res = tune(kang_small_counts, "scgen", "B", out=tmp_path, storage=url, study_name=name, n_trials=3, n_jobs=2,
                   space=space, n_inner=1, max_epochs=1, fixed_params={"n_layers": 1}, final=False, report=False,
                   n_top_genes=100)
        states = [t.state for t in optuna.load_study(study_name=name, storage=url).trials]
        assert states.count(optuna.trial.TrialState.COMPLETE) >= 3
        assert not (tmp_path / "study.db").exists()  # nothing went to the SQLite default
        assert res.storage == url
        # resuming from another process/machine: the stored study is found and left as it is
        again = tune(kang_small_counts, "scgen", "B", out=tmp_path, storage=url, study_name=name, n_trials=3,
                     space=space, n_inner=1, max_epochs=1, fixed_params={"n_layers": 1}, final=False, report=False,
                     n_top_genes=100, resume=True)
        assert len(again.study.trials) == len(states)
    finally:
        optuna.delete_study(study_name=name, storage=url)
