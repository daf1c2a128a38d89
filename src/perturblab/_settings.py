"""Package-wide settings: :data:`settings` (``perturblab.settings``).

Examples
--------
>>> import perturblab as plab
>>> plab.settings.verbosity = 0      # warnings and errors only
>>> plab.settings.verbosity = 1      # and one line per step (default)
"""

from __future__ import annotations

import logging
import sys

from .exceptions import InputError

__all__ = ["Settings", "settings"]

_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


class Settings:
    """Settings shared by every part of perturblab.

    Attributes
    ----------
    verbosity
        0: warnings and errors only; 1 (default): one line per step of a run; 2: debug details and third-party
        warnings. perturblab logs through the :mod:`logging` logger ``"perturblab"``; this sets its level.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger("perturblab")
        if not self._logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self._logger.addHandler(handler)
            self._logger.propagate = False
        self.verbosity = 1

    @property
    def verbosity(self) -> int:
        return self._verbosity

    @verbosity.setter
    def verbosity(self, value: int) -> None:
        if value not in _LEVELS:
            raise InputError(f"verbosity must be 0, 1 or 2, got {value!r}")
        self._verbosity = int(value)
        self._logger.setLevel(_LEVELS[self._verbosity])


settings = Settings()
