"""Choice of the PyTorch device: CUDA when present, else CPU."""

from __future__ import annotations


def get_device(device: str | None = None):
    """Return a :class:`torch.device`.

    Parameters
    ----------
    device
        ``None`` or ``"auto"`` picks ``"cuda"`` when a GPU is available, else ``"cpu"``;
        any other string is passed to :class:`torch.device` (e.g. ``"cpu"``, ``"cuda:1"``).

    Raises
    ------
    ValueError
        If a CUDA device is requested but none is available.
    """
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but no CUDA GPU is available; use 'cpu' or 'auto'")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) random generators."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
