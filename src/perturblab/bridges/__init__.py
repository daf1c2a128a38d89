"""Bridges between the wings: code that needs more than one wing, imported by nobody but the command line and users.

perturblab's wings do not import each other ("no arrow between wings"): :mod:`perturblab.classifiers`,
:mod:`perturblab.attack` and :mod:`perturblab.audit` never import :mod:`perturblab.interpret` or
:mod:`perturblab.predict`. What joins them lives here, and importing this package registers it:

- :mod:`perturblab.bridges.transformer`: a cell-type annotator fine-tuned from the interpret wing's gene-token
  transformer, registered as the classifier ``"transformer"`` (:func:`perturblab.classifiers.register_classifier`),
  so that attacks and ``perturblab audit --classifier transformer`` use it.
- :func:`prediction_robustness`: the attack wing's bounded modifications applied to the control cells a
  perturbation-response model predicts from.
"""

from __future__ import annotations

from .prediction_robustness import prediction_robustness
from .transformer import TransformerAnnotator

__all__ = ["TransformerAnnotator", "prediction_robustness"]


def _register() -> None:
    from ..classifiers.registry import register_classifier
    from .transformer import TransformerAnnotator

    register_classifier("transformer", TransformerAnnotator, overwrite=True)


_register()
