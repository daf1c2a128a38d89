"""Baselines that every comparison shows beside the deep models (Systema, PerturBench, scPerturBench,
Ahlmann-Eltze et al. 2025: simple baselines often match deep models). All work on log-normalised cells x
genes; each follows :class:`~perturblab.predict.models.base.PerturbationModel` (built from the training
cells, ``predict(ctrl_adata)`` returns the predicted stimulated cells).

Predictions made cell by cell from the control cells record each cell's source in ``obs["source_cell"]``,
so :func:`perturblab.predict.evaluate` resamples them together with their control cells.
"""

from __future__ import annotations

import anndata as ad
import numpy as np

from ...exceptions import InputError
from .base import PerturbationModel

#: Choices of :class:`MeanDeltaBaseline`'s control mean.
CONTROL_CELLS = ("all", "with_stimulated")

__all__ = ["AdditiveBaseline", "IdentityBaseline", "LinearBaseline", "MatchingMeanBaseline", "MeanDeltaBaseline",
           "PCAMeanDeltaBaseline", "TrainMeanBaseline"]


class IdentityBaseline(PerturbationModel):
    """Control as prediction: the predicted stimulated cells are the control cells unchanged."""

    name = "identity"

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:
        """Return a copy of ``ctrl_adata``'s expression labelled "predicted"."""
        return self._output(self._check_input(ctrl_adata), ctrl_adata)


class MeanDeltaBaseline(PerturbationModel):
    """Gene-space vector arithmetic: ``x + (mean of stimulated - mean of control)`` over training cells.

    The means pool the training cells of each condition (scGen paper's "vector arithmetic"
    baseline). The shifted values are not clipped (can be negative).

    Parameters
    ----------
    adata
        Training cells (log-normalised), e.g. ``loco_split(...).train``.
    control_cells
        Which control cells give the control mean. ``"all"`` (default, perturblab's protocol): every training
        control cell, so the held-out type's own control cells (kept in ``loco_split(...).train``) count.
        ``"with_stimulated"`` (the scGen protocol): only the control cells of cell types that also have
        stimulated training cells, so both means pool the same cell types and the held-out type is absent
        from both. On Kang CD14 Mono R2 .778 with ``"all"``, .767 with ``"with_stimulated"``
        (``benchmarks/predict_protocol.py``).
    condition_key, cell_type_key, control, stimulated, random_state
        As :class:`PerturbationModel`.

    Raises
    ------
    UnknownNameError
        An unknown ``control_cells``.
    """

    name = "mean_delta"

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", control_cells: str = "all", random_state: int = 0):
        from ...exceptions import UnknownNameError

        if control_cells not in CONTROL_CELLS:
            raise UnknownNameError("control_cells", control_cells, CONTROL_CELLS)
        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state)
        X = self._X()
        ctrl = self._mask(self.control)
        if control_cells == "with_stimulated":
            ct = self.adata.obs[self.cell_type_key].astype(str).to_numpy()
            ctrl &= np.isin(ct, np.unique(ct[self._mask(self.stimulated)]))
        self.control_cells = control_cells
        self.delta_ = X[self._mask(self.stimulated)].mean(0) - X[ctrl].mean(0)

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


class TrainMeanBaseline(PerturbationModel):
    """scPerturBench's ``trainMean``: cells drawn around the mean of the training stimulated cells.

    bm2-lab/scPerturBench (``Cellular_context_generalization/o.o.d./trainMean.py``): for the held-out cell
    type, the training cells of the perturbation (all other cell types' stimulated cells) give a per-gene
    mean ``m``; the control cells of the held-out type give a per-gene standard deviation ``sd`` (population
    SD, ddof 0, as ``np.std``); as many cells as there are control cells are drawn independently per gene
    from ``N(m, sd)``. The held-out type's own response is ignored: the negative control of Mejia et al.'s
    calibration ("predict the dataset mean"). Draws are seeded (``random_state``; scPerturBench's are not)
    and not clipped (values can be negative, as there). The cells are not made from individual control
    cells: the prediction is not paired with them.

    Parameters
    ----------
    adata
        Training cells (log-normalised), e.g. ``loco_split(...).train``.
    condition_key, cell_type_key, control, stimulated, random_state
        As :class:`PerturbationModel`.
    """

    name = "train_mean"

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", random_state: int = 0):
        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state)
        self.mean_ = self._X()[self._mask(self.stimulated)].mean(0)

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:
        """Draw ``ctrl_adata.n_obs`` cells from ``N(training stimulated mean, SD of ctrl_adata)`` per gene."""
        X = self._check_input(ctrl_adata)
        rng = np.random.default_rng(self.random_state)
        out = self.mean_ + rng.standard_normal(X.shape) * X.std(axis=0)
        return self._output(out, ctrl_adata, paired=False)


class MatchingMeanBaseline(PerturbationModel):
    """Systema's "matching mean": the prediction's centroid is the mean of the training centroids of the
    perturbation's components.

    mlbio-epfl/systema (``src/run_matching-mean.py``): a perturbation ``"A+B"`` is predicted by the average
    of the mean expression of the training cells perturbed by ``A`` alone and by ``B`` alone (each pooled
    over all training cells of that condition; a component without training cells is replaced by all
    perturbed training cells, as there). A single perturbation has one component: on Kang ("stimulated") the
    centroid is the mean of every training stimulated cell, the same centroid as :class:`TrainMeanBaseline`.
    Systema predicts only a centroid; to give cells, the held-out type's control cells are moved to it
    (``x_i - mean(control) + centroid``), keeping their spread; each predicted cell is paired with its
    control cell.

    Parameters
    ----------
    adata
        Training cells (log-normalised).
    separator
        Separator of combination names (``"A+B"``).
    condition_key, cell_type_key, control, stimulated, random_state
        As :class:`PerturbationModel`; ``stimulated`` is the perturbation to predict.
    """

    name = "matching_mean"

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", separator: str = "+", random_state: int = 0):
        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state)
        X = self._X()
        cond = self.adata.obs[self.condition_key].astype(str).to_numpy()
        perturbed = cond != self.control
        parts = [p for p in self.stimulated.split(separator) if p and p != self.control]
        self.components_ = parts
        self.fallback_ = [p for p in parts if not (cond == p).any()]
        means = [X[cond == p].mean(0) if (cond == p).any() else X[perturbed].mean(0) for p in parts]
        self.centroid_ = np.mean(means, axis=0)

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:
        """Move the control cells so that their mean is the matching-mean centroid."""
        X = self._check_input(ctrl_adata)
        return self._output(X - X.mean(0) + self.centroid_, ctrl_adata)


class LinearBaseline(PerturbationModel):
    """Ridge regression of the response on the cell type, in PCA space (after Ahlmann-Eltze et al. 2025).

    Ahlmann-Eltze, Huber & Anders, Nat Methods 2025 ("Deep-learning-based gene perturbation effect
    prediction does not yet outperform simple linear baselines"; ``run_linear_pretrained_model.R``,
    ``solve_y_axb``) fit ``Y ~ G K B + c``: ``Y`` the training pseudobulk changes (genes x conditions,
    perturbed mean minus control mean), ``G`` a gene embedding (the first ``pca_dim`` PCA scores of the
    genes over the training pseudobulks, ``prcomp`` with centred columns), ``B`` a perturbation embedding,
    ``c`` the mean change over the training conditions, and
    ``K = (G'G + lambda I)^-1 G' (Y - c) B' (B B' + lambda I)^-1`` with ``lambda = 0.1`` and ``pca_dim = 10``
    (the paper's defaults). Followed here with one change of meaning: the unknown is the cell type, not the
    perturbation, so a cell type is embedded by the PCA scores of its CONTROL pseudobulk (the paper embeds a
    gene perturbation by its target gene's row of ``G``); the held-out type's control cells give its
    embedding at prediction time. The predicted change ``G K b + c`` is added to every control cell (paired).
    As in the paper, ``prcomp`` centres each pseudobulk over genes, so ``G`` has no component along the
    all-genes direction: the part of the response shared by every gene comes from ``c`` alone.

    Parameters
    ----------
    adata
        Training cells (log-normalised) with at least 2 cell types that have both conditions.
    pca_dim
        Dimensions of both embeddings (capped by the number of pseudobulks / cell types minus 1).
    ridge
        Ridge penalty ``lambda`` of both sides.
    condition_key, cell_type_key, control, stimulated, random_state
        As :class:`PerturbationModel` (the PCA is exact: no randomness).

    Raises
    ------
    InputError
        Fewer than 2 training cell types with both conditions.
    """

    name = "linear"

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", pca_dim: int = 10, ridge: float = 0.1, random_state: int = 0):
        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state)
        X = self._X().astype(np.float64)
        ct = self.adata.obs[self.cell_type_key].astype(str).to_numpy()
        is_c, is_s = self._mask(self.control), self._mask(self.stimulated)
        ctrl_types = [t for t in np.unique(ct) if (is_c & (ct == t)).any()]
        both = [t for t in ctrl_types if (is_s & (ct == t)).any()]
        if len(both) < 2:
            raise InputError(f"the linear baseline needs at least 2 training cell types with control and "
                             f"stimulated cells, got {len(both)}; add cell types or use mean_delta")
        ctrl_pb = {t: X[is_c & (ct == t)].mean(0) for t in ctrl_types}
        stim_pb = {t: X[is_s & (ct == t)].mean(0) for t in both}
        # gene embedding: PCA scores of the genes over every training pseudobulk (columns centred)
        M = np.column_stack([ctrl_pb[t] for t in ctrl_types] + [stim_pb[t] for t in both])
        M = M - M.mean(axis=0)
        d_gene = max(1, min(pca_dim, M.shape[1] - 1))
        U, sv, _ = np.linalg.svd(M, full_matrices=False)
        self.gene_embedding_ = U[:, :d_gene] * sv[:d_gene]
        # cell-type embedding: PCA of the control pseudobulks (types x genes)
        Cpb = np.vstack([ctrl_pb[t] for t in ctrl_types])
        self.ctrl_center_ = Cpb.mean(0)
        _, _, Vt = np.linalg.svd(Cpb - self.ctrl_center_, full_matrices=False)
        self.type_axes_ = Vt[: max(1, min(pca_dim, len(ctrl_types) - 1))]
        B = self._embed(np.vstack([ctrl_pb[t] for t in both])).T          # d_type x types
        Y = np.column_stack([stim_pb[t] - ctrl_pb[t] for t in both])       # genes x types
        self.center_ = Y.mean(axis=1)
        G = self.gene_embedding_
        left = np.linalg.solve(G.T @ G + ridge * np.eye(G.shape[1]), G.T @ (Y - self.center_[:, None]))
        self.K_ = np.linalg.solve((B @ B.T + ridge * np.eye(B.shape[0])).T, (left @ B.T).T).T
        self.pca_dim, self.ridge, self.types_ = pca_dim, ridge, both

    def _embed(self, ctrl_means: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(ctrl_means) - self.ctrl_center_) @ self.type_axes_.T

    def change(self, ctrl_mean) -> np.ndarray:
        """Predicted change (stimulated minus control mean, per gene) of a cell type with control mean
        ``ctrl_mean``: ``G K b + c``."""
        b = self._embed(np.asarray(ctrl_mean, dtype=np.float64)).ravel()
        return self.gene_embedding_ @ (self.K_ @ b) + self.center_

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:
        """Add the predicted change of ``ctrl_adata``'s cell type to each of its control cells."""
        X = self._check_input(ctrl_adata)
        return self._output(X + self.change(X.mean(0)), ctrl_adata)


class AdditiveBaseline(PerturbationModel):
    """The additive model of combinations: control plus the sum of the single perturbations' shifts.

    Ahlmann-Eltze et al. 2025 (``run_additive_model.py``): ``pred(A+B) = c + (mean A - c) + (mean B - c)``
    with ``c`` the mean of the training control cells and ``mean A`` that of the cells perturbed by ``A``
    alone (all pooled over the training cells); here the shift is added to each control cell (paired).
    Combinations are condition names joined by ``separator`` (``"IFNB+TNF"``). Data without combinations,
    such as Kang (one perturbation), have a single component: the model is then the single-perturbation
    shift, identical to :class:`MeanDeltaBaseline`, so it belongs in tables only where combinations exist
    (:func:`perturblab.predict.models.baselines_for`). A combination whose components were not all measured
    alone raises an error: there is nothing to add.

    Parameters
    ----------
    adata
        Training cells (log-normalised) with the control and every component of ``stimulated`` alone.
    stimulated
        The perturbation to predict, e.g. ``"A+B"`` (need not occur in ``adata``).
    separator
        Separator of combination names.
    condition_key, cell_type_key, control, random_state
        As :class:`PerturbationModel`.

    Raises
    ------
    InputError
        A component with no training cells of its own.
    """

    name = "additive"

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", separator: str = "+", random_state: int = 0):
        parts = [p for p in str(stimulated).split(separator) if p and p != str(control)]
        if not parts:
            raise InputError(f"perturbation {stimulated!r} has no component besides the control; name the "
                             "perturbation to predict")
        present = set(map(str, adata.obs[condition_key].unique())) if condition_key in adata.obs else set()
        missing = [p for p in parts if p not in present]
        if missing and condition_key in adata.obs:
            raise InputError(f"the additive model needs every component of {stimulated!r} measured alone, but "
                             f"{missing} has no training cells in obs[{condition_key!r}]; predict a combination "
                             "of measured single perturbations")
        super().__init__(adata, condition_key, cell_type_key, control, parts[0], random_state)
        self.stimulated, self.components_ = str(stimulated), parts
        X = self._X()
        cond = self.adata.obs[self.condition_key].astype(str).to_numpy()
        c = X[cond == self.control].mean(0)
        self.shifts_ = {p: X[cond == p].mean(0) - c for p in parts}
        self.delta_ = np.sum(list(self.shifts_.values()), axis=0)

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:
        """Shift each control cell by the sum of the components' shifts."""
        return self._output(self._check_input(ctrl_adata) + self.delta_, ctrl_adata)
