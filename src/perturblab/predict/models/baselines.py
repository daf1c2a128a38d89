"""Baselines that every comparison shows beside the deep models (Systema, PerturBench:
simple shifts often match deep models). All work on log-normalised cells x genes.
"""

from __future__ import annotations

import anndata as ad

from .base import PerturbationModel

__all__ = ["IdentityBaseline", "MeanDeltaBaseline", "PCAMeanDeltaBaseline"]


class IdentityBaseline(PerturbationModel):
    """Control as prediction: the predicted stimulated cells are the control cells unchanged."""

    name = "identity"

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:
        """Return a copy of ``ctrl_adata``'s expression labelled "predicted"."""
        return self._output(self._check_input(ctrl_adata), ctrl_adata)


class MeanDeltaBaseline(PerturbationModel):
    """Gene-space vector arithmetic: ``x + (mean of stimulated - mean of control)`` over training cells.

    The means pool all training cells of each condition (scGen paper's "vector arithmetic"
    baseline). The shifted values are not clipped (can be negative).
    """

    name = "mean_delta"

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", random_state: int = 0):
        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state)
        X = self._X()
        self.delta_ = X[self._mask(self.stimulated)].mean(0) - X[self._mask(self.control)].mean(0)

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:
        """Shift each control cell by the gene-space mean delta."""
        return self._output(self._check_input(ctrl_adata) + self.delta_, ctrl_adata)


class PCAMeanDeltaBaseline(PerturbationModel):
    """PCA-space vector arithmetic (scGen paper's "PCA arithmetic"): project on a PCA fitted on the
    training cells, add the mean delta of the PC scores, map back with the inverse transform.

    Parameters
    ----------
    n_components
        Number of principal components (default 100, the size of scGen's latent space).
    random_state
        Seed of the randomized PCA solver.
    """

    name = "pca_mean_delta"

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", n_components: int = 100, random_state: int = 0):
        from sklearn.decomposition import PCA

        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state)
        X = self._X()
        n_components = min(n_components, X.shape[0] - 1, X.shape[1])
        self.pca_ = PCA(n_components=n_components, random_state=random_state).fit(X)
        Z = self.pca_.transform(X)
        self.delta_ = Z[self._mask(self.stimulated)].mean(0) - Z[self._mask(self.control)].mean(0)

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:
        """Shift each control cell's PC scores by the mean delta and reconstruct the genes."""
        X = self._check_input(ctrl_adata)
        return self._output(self.pca_.inverse_transform(self.pca_.transform(X) + self.delta_), ctrl_adata)
