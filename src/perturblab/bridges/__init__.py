"""Bridges between the wings: analyses that need two of them at once (nothing in the wings imports this package).

- :func:`prediction_robustness`: the attack wing's bounded modifications applied to the control cells a
  perturbation-response model predicts from.
"""

from .prediction_robustness import prediction_robustness

__all__ = ["prediction_robustness"]
