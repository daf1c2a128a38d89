"""The package version (one place; ``perturblab.__version__`` and run folders read it)."""

__version__ = "0.1.0"
