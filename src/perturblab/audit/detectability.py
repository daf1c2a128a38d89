"""Detectability of an attack: how large the change is and how far the cells move.

Two views of one perturbation of a cluster's cells (``before`` -> ``after``, cells x genes):

- :func:`perturbation_size`: number of genes and cells changed, mean per-cell L1 and L2 norm of
  the change, and the change as a fraction of the cluster's total (absolute) expression, all in
  the space the attack modified (model input or raw counts);
- :class:`Embedding`: a PCA (and optionally UMAP) fitted on the **unattacked** test half in the
  classifier's model-input space; attacked cells are only *transformed*, and their displacement
  is compared with the cluster's own spread. A small displacement means that a standard
  embedding-and-clustering analysis would not notice the attack.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import InputError

__all__ = ["perturbation_size", "Embedding"]


def perturbation_size(before: np.ndarray, after: np.ndarray) -> dict:
    """Size of the change ``after - before`` (cells x genes, same space).

    Returns
    -------
    dict
        ``n_genes_modified``, ``n_cells_modified``, ``l1_per_cell`` and ``l2_per_cell`` (means over
        the cluster's cells), ``frac_expression`` = sum |change| / sum |before| (0 when the
        cluster has no expression).
    """
    before = np.asarray(before, dtype=np.float64)
    D = np.asarray(after, dtype=np.float64) - before
    if D.shape != before.shape:
        raise InputError(f"before {before.shape} and after {D.shape} differ in shape")
    changed = D != 0
    total = np.abs(before).sum()
    return {
        "n_genes_modified": int(changed.any(axis=0).sum()),
        "n_cells_modified": int(changed.any(axis=1).sum()),
        "l1_per_cell": float(np.abs(D).sum(axis=1).mean()) if len(D) else 0.0,
        "l2_per_cell": float(np.sqrt((D**2).sum(axis=1)).mean()) if len(D) else 0.0,
        "frac_expression": float(np.abs(D).sum() / total) if total > 0 else 0.0,
    }


class Embedding:
    """PCA (+ optional UMAP) of the unattacked data; attacked cells are transformed into it.

    Parameters
    ----------
    X
        Unattacked model input (cells x genes) of the test half.
    clusters
        Cluster of each cell.
    n_pcs
        Number of principal components (``sklearn.decomposition.PCA``, randomized solver).
    umap
        Also fit ``umap.UMAP`` (2-D) on the PCA coordinates and transform attacked cells with it.
    random_state
        Seed of PCA and UMAP.
    """

    def __init__(self, X, clusters, *, n_pcs: int = 50, umap: bool = False, random_state: int = 0):
        from sklearn.decomposition import PCA

        X = np.asarray(X, dtype=np.float32)
        self.clusters = np.asarray(clusters).astype(str)
        n_pcs = int(min(n_pcs, X.shape[0] - 1, X.shape[1]))
        self.pca = PCA(n_components=n_pcs, svd_solver="randomized", random_state=random_state).fit(X)
        self.Z = self.pca.transform(X)
        self.names = np.unique(self.clusters)
        self.centroids = np.stack([self.Z[self.clusters == c].mean(axis=0) for c in self.names])
        self.spread = {c: float(np.median(np.linalg.norm(self.Z[self.clusters == c] - self.centroids[i], axis=1)))
                       for i, c in enumerate(self.names)}
        self.umap = None
        if umap:
            import umap as umap_lib

            self.umap = umap_lib.UMAP(n_components=2, random_state=random_state, n_jobs=1).fit(self.Z)

    def _nearest(self, Z: np.ndarray) -> np.ndarray:
        d = ((Z[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        return self.names[d.argmin(axis=1)]

    def shift(self, before: np.ndarray, after: np.ndarray, cluster: str, umap: bool = True) -> dict:
        """Displacement of the attacked cells of ``cluster`` (model input ``before`` -> ``after``).

        Returns ``pca_shift`` (mean Euclidean displacement over the PCs), ``pca_shift_rel``
        (divided by the cluster's median distance to its centroid), ``frac_left_cluster`` (cells
        nearest to the cluster's centroid before the attack and to another centroid after it,
        over the cluster's cells) and, with a fitted UMAP and ``umap=True``, ``umap_shift`` (mean
        displacement in the 2-D UMAP; UMAP's transform is slow, so the audit computes it for CGD only).
        """
        Zb, Za = self.pca.transform(before), self.pca.transform(after)
        shift = float(np.linalg.norm(Za - Zb, axis=1).mean())
        was = self._nearest(Zb) == cluster
        out = {"pca_shift": shift, "pca_shift_rel": shift / self.spread[cluster] if self.spread[cluster] else np.nan,
               "frac_left_cluster": float(np.mean(was & (self._nearest(Za) != cluster)))}
        if umap and self.umap is not None:
            out["umap_shift"] = float(np.linalg.norm(self.umap.transform(Za) - self.umap.transform(Zb), axis=1).mean())
        return out

    def coordinates(self, before: np.ndarray, after: np.ndarray) -> pd.DataFrame:
        """Long table of the cells' coordinates before and after: cell, state, pc1, pc2[, umap1, umap2]."""
        frames = []
        for state, M in (("before", before), ("after", after)):
            Z = self.pca.transform(M)
            df = pd.DataFrame({"cell": np.arange(len(M)), "state": state, "pc1": Z[:, 0], "pc2": Z[:, 1]})
            if self.umap is not None:
                U = self.umap.transform(Z)
                df["umap1"], df["umap2"] = U[:, 0], U[:, 1]
            frames.append(df)
        return pd.concat(frames, ignore_index=True)

    def background(self) -> pd.DataFrame:
        """Coordinates of the unattacked test half: cluster, pc1, pc2[, umap1, umap2]."""
        df = pd.DataFrame({"cluster": self.clusters, "pc1": self.Z[:, 0], "pc2": self.Z[:, 1]})
        if self.umap is not None:
            df["umap1"], df["umap2"] = self.umap.embedding_[:, 0], self.umap.embedding_[:, 1]
        return df
