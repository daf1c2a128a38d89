"""A third-party model package as a plugin author writes one: a model class registered through the
``perturblab.models`` entry-point group (the test writes the dist-info that declares it)."""

from __future__ import annotations

from typing import ClassVar

from perturblab.predict.models import PerturbationModel


class ScaledShift(PerturbationModel):
    """Each control cell plus ``scale`` times the training mean delta (stimulated - control), in gene space.

    With ``scale=1`` it is the mean-delta baseline; ``scale=0`` is the identity baseline.
    """

    name = "scaled_shift"
    #: what ``perturblab tune`` searches when this model is tuned
    search_space: ClassVar[dict] = {}

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", scale: float = 1.0, random_state: int = 0):
        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state)
        X = self._X()
        self.scale = float(scale)
        self.delta_ = X[self._mask(self.stimulated)].mean(0) - X[self._mask(self.control)].mean(0)

    def predict(self, ctrl_adata):
        return self._output(self._check_input(ctrl_adata) + self.scale * self.delta_, ctrl_adata)


def _space():
    from optuna.distributions import FloatDistribution

    return {"scale": FloatDistribution(0.0, 2.0)}


ScaledShift.search_space = _space()


def write_dist_info(folder, entries: dict[str, str]) -> None:
    """Write ``folder/perturblab_test_plugin-0.1.dist-info`` declaring ``entries`` ({name: "module:attr"}) in the
    ``perturblab.models`` group, as pip does for an installed package."""
    from pathlib import Path

    d = Path(folder) / "perturblab_test_plugin-0.1.dist-info"
    d.mkdir(parents=True, exist_ok=True)
    (d / "METADATA").write_text("Metadata-Version: 2.1\nName: perturblab-test-plugin\nVersion: 0.1\n")
    lines = ["[perturblab.models]", *[f"{k} = {v}" for k, v in entries.items()]]
    (d / "entry_points.txt").write_text("\n".join(lines) + "\n")


__all__ = ["ScaledShift", "write_dist_info"]
