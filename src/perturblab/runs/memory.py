"""Peak memory of a block of work (the one meter every run uses)."""

from __future__ import annotations

import resource
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["peak_memory", "peak_rss_mb"]


def peak_rss_mb() -> float:
    """Peak resident memory (MiB) of this process or of its largest finished child process, since it started."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return float(max(own, children))


@contextmanager
def peak_memory(device=None, interval: float = 0.05) -> Iterator[dict]:
    """Measure memory while the block runs (MiB).

    Yields a dict filled at exit: ``"peak_mb"``, the peak above the level at the start (CPU: resident set size of
    this process sampled every ``interval`` s with psutil; CUDA: ``torch.cuda.max_memory_allocated``), and
    ``"peak_rss_mb"``, the absolute peak resident set size of the process. On CPU the increase underestimates a
    model's need when memory freed by earlier work in the same process is reused: compare in fresh processes for
    exact figures.

    Examples
    --------
    >>> from perturblab.runs import peak_memory
    >>> with peak_memory() as mem:
    ...     block = bytearray(50 * 2**20)
    >>> mem["peak_rss_mb"] > 0
    True
    """
    import psutil

    out = {"peak_mb": float("nan"), "peak_rss_mb": float("nan")}
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()
    cuda = device is not None and str(device).startswith("cuda")
    base_cuda = 0
    if cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], proc.memory_info().rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
        out["peak_rss_mb"] = peak[0] / 2**20
        if cuda:
            import torch

            out["peak_mb"] = (torch.cuda.max_memory_allocated() - base_cuda) / 2**20
        else:
            out["peak_mb"] = (peak[0] - base) / 2**20
