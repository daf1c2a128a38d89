"""Optuna storages for :func:`perturblab.predict.tuning.tune`: SQLite in the output folder, or any SQLAlchemy
URL shared by several workers or machines (PostgreSQL, MySQL), with one clear error for a URL that cannot be
used."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..exceptions import InputError

__all__ = ["default_storage_url", "storage_url", "open_storage", "safe_url"]

#: Drivers perturblab can use per database, in order of preference, with the pip package that provides each.
_DRIVERS = {
    "postgresql": (("psycopg2", "psycopg2", "psycopg2-binary"), ("psycopg", "psycopg", "psycopg[binary]")),
    "mysql": (("pymysql", "pymysql", "pymysql"), ("mysqldb", "MySQLdb", "mysqlclient")),
}


def default_storage_url(out_dir: str | Path) -> str:
    """SQLite file ``out_dir/study.db`` as an SQLAlchemy URL."""
    path = Path(out_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'study.db'}"


def storage_url(url: str) -> str:
    """``url`` with an installed driver made explicit (``postgresql://`` -> ``postgresql+psycopg2://``).

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; perturblab installs psycopg2 (extra
    ``postgres``), so the driver that is installed is named explicitly.

    Raises
    ------
    InputError
        The URL cannot be parsed, or no driver for its database is installed (the message names the package).
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise InputError(f"cannot parse the storage URL {url!r}; use e.g. sqlite:///study.db or "
                         "postgresql://user:password@host:5432/db") from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    options = _DRIVERS.get("postgresql" if backend == "postgres" else backend)
    if options is None:
        return url
    for name, module, _package in options:
        if "+" in parsed.drivername and driver != name:
            continue
        if importlib.util.find_spec(module) is not None:
            return parsed.set(drivername=f"{parsed.get_backend_name()}+{name}").render_as_string(hide_password=False)
    wanted = [p for n, _, p in options if "+" not in parsed.drivername or driver == n]
    raise InputError(f"no database driver for {safe_url(url)} is installed; pip install {wanted[0]}"
                     + (" (or pip install 'perturblab[postgres]')" if backend.startswith("postgres") else ""))


def safe_url(url: str) -> str:
    """The storage URL with any password masked (what is written to disk and printed)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


def open_storage(url: str):
    """An Optuna RDB storage for any SQLAlchemy URL (SQLite file, PostgreSQL, MySQL...).

    Heartbeats mark trials of a killed worker as failed (after 2 minutes without a beat) and retry their
    parameters once, so a study resumes cleanly after an interruption.

    Raises
    ------
    InputError
        The URL is unusable (see :func:`storage_url`) or the database cannot be reached.
    """
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import SQLAlchemyError

    url = storage_url(url)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {
        "pool_pre_ping": True, "connect_args": {"connect_timeout": 10}} if "psycopg" in url else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # heartbeats are marked experimental in optuna
            warnings.simplefilter("ignore", ExperimentalWarning)
            return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=30, grace_period=120,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    except (SQLAlchemyError, OSError, ValueError) as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0][:200]
        raise InputError(f"cannot open the Optuna storage {safe_url(url)} ({reason}); check that the database "
                         "server runs and the URL, user and password are right") from None
