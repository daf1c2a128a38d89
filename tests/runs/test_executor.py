"""The executor: in process, joblib workers (that end with their parent), errors that name the unit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from perturblab.exceptions import InputError, RunFailedError
from perturblab.runs import execute, resolve_n_jobs


def _square(x):
    return x * x


def _scaled(shared, x):
    return shared["factor"] * x


def _fails(x):
    if x == 3:
        raise ZeroDivisionError("boom")
    if x == 4:
        raise InputError("bad unit input")
    return x


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_results_do_not_depend_on_the_backend(n_jobs):
    assert sorted(execute(_square, [1, 2, 3], n_jobs=n_jobs)) == [(1, 1), (2, 4), (3, 9)]
    shared = {"a": {"factor": 10}, "b": {"factor": -1}}
    got = dict(execute(_scaled, [1, 2, 3, 4], shared=shared, group=lambda t: "a" if t % 2 else "b", n_jobs=n_jobs,
                       batch_size=2))
    assert got == {1: 10, 2: -2, 3: 30, 4: -4}


def test_in_process_order_and_errors():
    assert [t for t, _ in execute(_square, [3, 1, 2])] == [3, 1, 2]
    with pytest.raises(RunFailedError, match="unit 3 failed: ZeroDivisionError: boom"):
        list(execute(_fails, [1, 3]))
    with pytest.raises(InputError, match="bad unit input"):  # perturblab's own errors pass through unchanged
        list(execute(_fails, [4]))


def test_n_jobs():
    assert resolve_n_jobs(1) == 1 and resolve_n_jobs(-1) == (os.cpu_count() or 1)
    with pytest.raises(InputError, match="--n-jobs"):
        resolve_n_jobs(0)


def _children(pid: int) -> set[int]:
    import psutil

    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def test_workers_end_with_their_parent(tmp_path):
    """A killed driver leaves no joblib worker behind (they watch their parent)."""
    import psutil

    code = textwrap.dedent(f"""
        import os, time
        from perturblab.runs import execute
        def slow(x):
            open(os.path.join({str(tmp_path)!r}, f"started-{{os.getpid()}}"), "w").close()
            time.sleep(60)
            return x
        list(execute(slow, list(range(4)), n_jobs=2))
    """)
    script = tmp_path / "driver.py"
    script.write_text(code)
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(tmp_path.glob("started-*"))) < 2:
        time.sleep(0.2)
    workers = {int(p.name.split("-")[1]) for p in tmp_path.glob("started-*")}
    assert len(workers) >= 2, "the driver did not start its workers"
    assert workers <= _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
                                         for p in workers):
        time.sleep(0.2)
    alive = [p for p in workers if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    for p in alive:  # clean up before failing
        os.kill(p, signal.SIGKILL)
    assert not alive, f"{len(alive)} workers outlived their driver"
