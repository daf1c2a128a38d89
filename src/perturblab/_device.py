"""Choice of the PyTorch device: CUDA when present, else CPU."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from .exceptions import InputError

__all__ = ["check_device", "get_device", "seed_everything"]

_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def check_device(device: str | None) -> str:
    """Validate a device name without touching torch's device list; returns ``"auto"`` for None.

    Raises
    ------
    InputError
        An unknown device name, or a CUDA device on a machine without one.
    """
    name = "auto" if device is None else str(device).strip().lower()
    if not _PATTERN.match(name):
        raise InputError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    if name.startswith("cuda"):
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.split(":")[1]) if ":" in name else 0
        if n == 0:
            raise InputError(f"device {device!r} requested but this machine has no CUDA GPU; use --device cpu or auto")
        if index >= n:
            raise InputError(f"device {device!r} requested but this machine has {n} GPU(s) (cuda:0..cuda:{n - 1})")
    if name == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise InputError("device 'mps' requested but Apple's MPS backend is not available; use cpu or auto")
    return name


def get_device(device: str | None = None):
    """Return a :class:`torch.device`.

    Parameters
    ----------
    device
        ``None`` or ``"auto"`` picks ``"cuda"`` when a GPU is available, else ``"cpu"``;
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` otherwise (a ``torch.device`` is accepted as is).

    Raises
    ------
    InputError
        For an unknown device, or a CUDA device on a machine without one.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    name = check_device(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) random generators."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op CPU threads (``None`` or 0: unchanged), then restore the count before:
    a unit never leaves its thread setting to the code that runs after it in the same process (float32 results of
    torch on CPU depend on the number of threads)."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
