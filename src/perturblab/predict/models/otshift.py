"""Optimal-transport neighbour shift: each control cell moved by the responses of its nearest training control
cells, those responses read from optimal-transport maps between the control and stimulated cells of every
training cell type.

Representation: log-normalised cells x genes (after :func:`perturblab.predict.prepare`).
"""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np

from ..._validation import check_fraction, check_positive
from ...exceptions import InputError
from .base import PerturbationModel

__all__ = ["OTShift"]

log = logging.getLogger(__name__)


class OTShift(PerturbationModel):
    """Cell-by-cell response transfer by optimal transport within cell types and nearest neighbours across them.

    Fit (no gradient training; seconds on Kang):

    1. a PCA of the training cells (``n_pcs`` components, seeded);
    2. for every training cell type with control and stimulated cells, the exact optimal-transport plan ``G``
       between its control and its stimulated cells (uniform weights, squared Euclidean cost in PCA space, POT
       ``ot.emd``; as CellOT and scPRAM pair cells, but within each type, so no cell is paired across types);
       the response of control cell ``j`` is its barycentric image minus itself,
       ``d_j = sum_m G_jm s_m / sum_m G_jm - x_j`` (genes; the mean of ``d_j`` over a type is exactly that
       type's mean stimulated minus mean control);
    3. the shrinkage ``lambda`` towards the pooled shift ``g`` (mean stimulated minus mean control over those
       types), chosen by leave-one-cell-type-out over the training types (``shrinkage="auto"``): the value of
       ``shrinkage_grid`` with the smallest mean relative error of the held-out types' predicted mean responses
       in the PCA space (``||pred - real||^2 / ||real||^2``, so that types with a small response weigh as much
       as monocytes). The held-out target of a benchmark is never seen: its stimulated cells are not in the
       training cells.

    Predict: for each control cell ``x_i``, its ``k`` nearest training control cells (Euclidean in PCA space,
    among the types with stimulated cells) give ``Delta_i = (1 - lambda) mean_k d_j + lambda g``; the predicted
    cell is ``x_i + Delta_i``. Each predicted cell is made from one real control cell (recorded in
    ``obs["source_cell"]``) and keeps that cell's own spread; values are not clipped at 0 (clipping moves the
    means and, on Kang, made the E-distance to the real cells worse).

    Why: the mean response differs between cell types (monocytes respond more than T cells) and between cells
    of one type; OT within a type estimates each cell's response without mixing types, the neighbours transfer
    the responses of the most similar training cells, and shifting real cells keeps their cell-to-cell
    structure, which decoded VAE cells lose (``benchmarks/predict_peers.py``).

    Parameters
    ----------
    adata
        Training cells (log-normalised), e.g. ``loco_split(...).train``, with at least one cell type that has
        ``min_cells`` cells in both conditions.
    n_pcs
        PCA components of the OT cost and the neighbour search (capped by cells and genes).
    k
        Neighbours per control cell (capped by the reference cells).
    shrinkage
        ``"auto"`` (leave-one-type-out choice from ``shrinkage_grid``) or a number in [0, 1].
    shrinkage_grid
        Candidates of ``"auto"``; with fewer than 2 reference types, 0.
    min_cells
        Cells a type needs in each condition to give responses.
    condition_key, cell_type_key, control, stimulated, random_state
        As :class:`PerturbationModel` (``random_state`` seeds the PCA).

    Attributes
    ----------
    shrinkage_
        The chosen ``lambda``; ``inner_errors_``: the leave-one-type-out error of each candidate.
    responses_
        Per-cell responses ``d_j`` (reference control cells x genes); ``reference_types_`` the types used.

    Raises
    ------
    InputError
        No training type with ``min_cells`` cells in both conditions; a shrinkage outside [0, 1].

    Examples
    --------
    >>> import perturblab as plab                                                        # doctest: +SKIP
    >>> split = plab.predict.loco_split(adata, "CD14 Mono")                              # doctest: +SKIP
    >>> pred = plab.predict.make_model("ot_shift", split.train).predict(split.target_ctrl)  # doctest: +SKIP
    """

    name = "ot_shift"

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", n_pcs: int = 50, k: int = 50, shrinkage="auto",
                 shrinkage_grid=(0.0, 0.25, 0.5, 0.75), min_cells: int = 2, random_state: int = 0):
        from sklearn.decomposition import PCA

        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state)
        check_positive(n_pcs, "n_pcs")
        check_positive(k, "k")
        check_positive(min_cells, "min_cells")
        if shrinkage != "auto":
            check_fraction(shrinkage, "shrinkage", closed_low=True)
        for v in shrinkage_grid:
            check_fraction(v, "shrinkage_grid value", closed_low=True)
        X = self._X().astype(np.float64)
        ct = self.adata.obs[self.cell_type_key].astype(str).to_numpy()
        is_c, is_s = self._mask(self.control), self._mask(self.stimulated)
        types = [t for t in np.unique(ct) if (is_c & (ct == t)).sum() >= min_cells
                 and (is_s & (ct == t)).sum() >= min_cells]
        if not types:
            raise InputError(f"no training cell type has >= {min_cells} cells in both conditions; OT shift needs "
                             "control and stimulated cells of at least one type")
        n_pcs = int(min(n_pcs, X.shape[0] - 1, X.shape[1]))
        self.pca_ = PCA(n_components=n_pcs, random_state=random_state).fit(X)
        Z = self.pca_.transform(X)
        refs, responses, labels = [], [], []
        for t in types:
            c, s = np.flatnonzero(is_c & (ct == t)), np.flatnonzero(is_s & (ct == t))
            responses.append(_barycentric_response(Z[c], Z[s], X[c], X[s]))
            refs.append(c)
            labels += [t] * len(c)
        self.reference_types_ = types
        self.responses_ = np.vstack(responses)
        self.ref_z_ = Z[np.concatenate(refs)]
        self.ref_type_ = np.asarray(labels)
        ref_cells = np.isin(ct, types)
        self.shift_ = X[is_s & ref_cells].mean(0) - X[is_c & ref_cells].mean(0)
        self.k, self.n_pcs, self.min_cells = int(k), n_pcs, min_cells
        self.inner_errors_: dict[float, float] = {}
        if shrinkage == "auto":
            self.shrinkage_ = self._choose_shrinkage(X, ct, is_c, is_s, tuple(shrinkage_grid))
        else:
            self.shrinkage_ = float(shrinkage)
        log.info("ot_shift: %d reference types, %d reference cells, shrinkage %.2f", len(types),
                 len(self.responses_), self.shrinkage_)

    def _neighbour_response(self, Z: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """Mean response of the ``k`` nearest reference cells (restricted to ``keep``) of each row of ``Z``."""
        ref_z, resp = (self.ref_z_, self.responses_) if keep is None else (self.ref_z_[keep], self.responses_[keep])
        k = min(self.k, len(ref_z))
        d2 = ((Z ** 2).sum(1)[:, None] - 2 * Z @ ref_z.T + (ref_z ** 2).sum(1)[None, :])
        nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
        return resp[nn].mean(axis=1)

    def _choose_shrinkage(self, X, ct, is_c, is_s, grid) -> float:
        """Leave-one-type-out over the reference types: the candidate with the smallest mean relative squared
        error (PCA space) of the held-out types' mean responses."""
        types = self.reference_types_
        if len(types) < 2 or not grid:
            return 0.0
        errors = dict.fromkeys(grid, 0.0)
        comps = self.pca_.components_
        for t in types:
            keep = self.ref_type_ != t
            ctrl_t = X[is_c & (ct == t)]
            knn = self._neighbour_response(self.pca_.transform(ctrl_t), keep).mean(0)
            cells = np.isin(ct, [u for u in types if u != t])
            pooled = X[is_s & cells].mean(0) - X[is_c & cells].mean(0)
            target = X[is_s & (ct == t)].mean(0) - ctrl_t.mean(0)
            scale = comps @ target
            for lam in grid:
                err = comps @ ((1 - lam) * knn + lam * pooled - target)
                errors[lam] += float(err @ err) / max(float(scale @ scale), 1e-12) / len(types)
        self.inner_errors_ = errors
        best = min(errors.values())
        return float(min(v for v, e in errors.items() if e <= best * (1 + 1e-6) + 1e-12))  # ties: least shrinkage

    def response(self, ctrl_adata: ad.AnnData) -> np.ndarray:
        """Predicted response ``Delta_i`` of each control cell (cells x genes, log-normalised units)."""
        X = self._check_input(ctrl_adata).astype(np.float64)
        knn = self._neighbour_response(self.pca_.transform(X))
        return (1 - self.shrinkage_) * knn + self.shrinkage_ * self.shift_

    def predict(self, ctrl_adata: ad.AnnData) -> ad.AnnData:
        """Each control cell moved by its predicted response (paired with it; not clipped)."""
        X = self._check_input(ctrl_adata).astype(np.float64)
        return self._output(X + self.response(ctrl_adata), ctrl_adata)


def _barycentric_response(zc: np.ndarray, zs: np.ndarray, xc: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """``d_j``: barycentric image of each control cell under the exact OT plan (uniform weights, squared
    Euclidean cost on ``zc``/``zs``) minus the cell itself, in gene space (``xc``/``xs``)."""
    import ot

    G = ot.emd(np.full(len(zc), 1.0 / len(zc)), np.full(len(zs), 1.0 / len(zs)),
               ot.dist(zc, zs, metric="sqeuclidean"), numItermax=1_000_000)
    G = np.asarray(G)
    return (G @ xs) / G.sum(axis=1, keepdims=True) - xc
