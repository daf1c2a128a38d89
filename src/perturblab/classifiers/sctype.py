"""scType: marker-based cell-type scoring (Ianevski et al. 2022, IanevskiAleksandr/sc-type).

Follows ``R/gene_sets_prepare.R`` and ``R/sctype_score_.R`` of sc-type and adverSCarial's
``scType_classifier`` wrapper (per-cell argmax of the scores, cluster = majority vote).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..exceptions import InputError, PerturblabWarning, UnknownNameError
from ._preprocess import GeneScaler, log1p_matrix, model_input
from .base import CellTypeClassifier
from .label_maps import read_label_map

__all__ = ["PBMC3K_BROAD_LABEL_MAP", "PBMC3K_LABEL_MAP", "ScTypeClassifier", "marker_sensitivity"]

#: ScTypeDB ("Immune system") cell names -> adverSCarial's PBMC3k labels, the strict map (names that
#: denote the same cell type; ``read_label_map("pbmc3k_strict")``). ScTypeDB names not listed here
#: (e.g. "Effector CD4+ T cells", "Plasma B cells") stay unmapped and count as errors.
#: "CD8+ NKT-like cells" is sc-type's own answer for PBMC3k's CD8 T cluster (its tutorial).
#: The documented table with every ScTypeDB immune name: :func:`~perturblab.classifiers.label_maps.sctype_label_map`.
PBMC3K_LABEL_MAP: dict[str, str] = {
    "Naive B cells": "B",
    "Memory B cells": "B",
    "Naive CD4+ T cells": "Naive CD4 T",
    "Memory CD4+ T cells": "Memory CD4 T",
    "Naive CD8+ T cells": "CD8 T",
    "Memory CD8+ T cells": "CD8 T",
    "Effector CD8+ T cells": "CD8 T",
    "CD8+ NKT-like cells": "CD8 T",
    "Natural killer  cells": "NK",
    "Classical Monocytes": "CD14+ Mono",
    "Non-classical monocytes": "FCGR3A+ Mono",
    "Myeloid Dendritic cells": "DC",
    "Plasmacytoid Dendritic cells": "DC",
    "Platelets": "Platelet",
    "Megakaryocyte": "Platelet",
}

#: The broad map (``read_label_map("pbmc3k")``): the strict map plus lineage-consistent names
#: (B-lineage precursors and plasma cells -> B, effector CD4 and CD4+ NKT-like -> Memory CD4 T,
#: intermediate monocytes and macrophages -> CD14+ Mono); see :mod:`perturblab.classifiers.label_maps`.
PBMC3K_BROAD_LABEL_MAP: dict[str, str] = read_label_map("pbmc3k")


def marker_sensitivity(positive: dict[str, list[str]]) -> pd.Series:
    """sc-type's marker sensitivity: ``rescale(#cell types listing g, from [n_types, 1] to [0, 1])``.

    A gene listed as positive marker by one cell type gets 1, by all ``n_types`` gets 0
    (``w = (count - n) / (1 - n)``; with a single cell type every weight is 0.5, as
    ``scales::rescale`` returns the middle of the range for an empty input range).
    """
    n = len(positive)
    counts = pd.Series([g for genes in positive.values() for g in genes]).value_counts()
    if n == 1:
        return pd.Series(0.5, index=counts.index)
    return (counts - n) / (1 - n)


def _normalise_sets(sets: dict[str, list[str]]) -> dict[str, list[str]]:
    return {str(t): sorted({str(g).replace(" ", "").upper() for g in genes} - {"", "NA"}) for t, genes in sets.items()}


def _gene_sets(markers) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    if not isinstance(markers, dict) or "positive" not in markers:
        raise InputError(
            "markers must be a dict {'positive': {cell type: [genes]}, 'negative': {cell type: [genes]}} "
            "as returned by perturblab.datasets.sctype_markers(..., as_dict=True)"
        )
    return _normalise_sets(markers["positive"]), _normalise_sets(markers.get("negative", {}))


class ScTypeClassifier(CellTypeClassifier):
    """scType cell-type scoring on scaled data (unsupervised; marker database ScTypeDB).

    Representation ``"scaled"``: log1p-normalised then z-scored per gene with the statistics
    learned by :meth:`fit` (differs from adverSCarial, which z-scores the attacked matrix with its
    own statistics: fixed statistics make ``preprocess`` a per-cell map, so a cell's scores
    depend on that cell alone and ``per_cell`` holds).

    Per-cell score of cell type t (sc-type's ``sctype_score``)::

        score_t = sum_{g in pos_t} w_g z_g / sqrt(|pos_t|) - sum_{g in neg_t} v_g z_g / sqrt(|neg_t|)

    with ``w_g`` the marker sensitivity (:func:`marker_sensitivity`) and, as in sc-type's code,
    ``v_g = w_g`` for a negative marker that is also a positive marker of some cell type (the
    anchor multiplies the gene's z-row in place before summing) and ``v_g = 1`` otherwise.
    Only markers present in the data count in ``|pos_t|``/``|neg_t|``; cell types with no positive
    marker in the data are dropped (sc-type drops their NaN rows). Scoring is one matrix product
    ``X[:, used_genes_] @ W`` (cells x markers @ markers x types).

    Parameters
    ----------
    tissue
        ScTypeDB ``tissueType`` (default ``"Immune system"``, 34 cell types).
    db
        ``"full"`` (default) or ``"short"`` ScTypeDB.
    markers
        Custom marker sets ``{"positive": {cell type: [genes]}, "negative": {...}}`` used instead of
        ``tissue``/``db`` (default: ``perturblab.datasets.sctype_markers(tissue, db, as_dict=True)``,
        sc-type's ``gene_sets_prepare`` parsing without HGNChelper symbol correction).
    label_map
        ScTypeDB cell name -> dataset label, used by :meth:`map_labels` (accuracy, flip taxonomy): a
        dict, a DataFrame (columns ``sctype_name``, ``label``), a CSV/TSV path, or a shipped map's
        name, ``"pbmc3k"`` (broad, :data:`PBMC3K_BROAD_LABEL_MAP`) or ``"pbmc3k_strict"``
        (:data:`PBMC3K_LABEL_MAP`); see :func:`~perturblab.classifiers.label_maps.read_label_map`.
        ``None``: answers are ScTypeDB names. Names the map leaves out have no dataset counterpart
        and count as errors: :func:`~perturblab.classifiers.label_maps.unmapped_fraction` says for
        how many cells.

    Attributes
    ----------
    classes_
        ScTypeDB cell names with at least one positive marker in the data (sorted).
    weights_
        Marker genes x ``classes_`` matrix ``W`` (DataFrame).
    used_genes_
        Indices into ``genes_`` of the marker genes (attacks skip all other genes).
    """

    representation = "scaled"
    standard_preprocess = True
    score_kind = "raw_score"

    def __init__(self, tissue: str = "Immune system", db: str = "full", markers: dict | None = None,
                 label_map=None):
        self.tissue = tissue
        self.db = db
        self.markers = markers
        self.label_map = read_label_map(label_map) or None

    def preprocess(self, adata) -> np.ndarray:
        """Raw-count AnnData -> scaled float32 matrix (cells x ``genes_``), fit-time statistics."""
        return model_input(self, adata)

    def fit(self, adata, label_key: str | None = None) -> ScTypeClassifier:
        """Learn the per-gene scaling statistics of raw-count ``adata`` and build the marker matrix.

        ``label_key`` is optional (scType is unsupervised); when given, the dataset labels that no
        ScTypeDB name maps to under ``label_map`` are reported in a warning (they count as errors).

        Raises
        ------
        ValueError
            If no marker gene of the database is in ``adata`` (warns with the count when some are missing).
        """
        from .._validation import warn_representation

        if label_key is None:  # with a label key, _labels warns
            warn_representation(adata.X, "counts", "adata.X (training data)")
        if self.markers is None:
            from perturblab.datasets import sctype_markers

            markers = sctype_markers(tissue=self.tissue, db=self.db, as_dict=True)
        else:
            markers = self.markers
        pos, neg = _gene_sets(markers)
        sens = marker_sensitivity(pos)
        genes = np.asarray(adata.var_names.astype(str))
        upper = pd.Index([g.upper() for g in genes])
        all_markers = sorted(set().union(*pos.values(), *neg.values()))
        present = [g for g in all_markers if g in upper]
        if not present:
            raise InputError(
                f"none of the {len(all_markers)} marker genes of the database is among adata.var_names "
                "(gene symbols expected, matched case-insensitively)"
            )
        if len(present) < len(all_markers):
            warnings.warn(
                f"{len(all_markers) - len(present)} of {len(all_markers)} marker genes are absent from the data "
                "and ignored", PerturblabWarning, stacklevel=2,
            )
        present_set = set(present)
        pos = {t: [g for g in gs if g in present_set] for t, gs in pos.items()}
        neg = {t: [g for g in gs if g in present_set] for t, gs in neg.items()}
        classes = sorted(t for t, gs in pos.items() if gs)
        pos_present = set().union(*pos.values())
        row = {g: i for i, g in enumerate(present)}
        W = np.zeros((len(present), len(classes)), dtype=np.float64)
        for j, t in enumerate(classes):
            for g in pos[t]:
                W[row[g], j] += sens[g] / np.sqrt(len(pos[t]))
            for g in neg[t]:
                W[row[g], j] -= (sens[g] if g in pos_present else 1.0) / np.sqrt(len(neg[t]))
        first = pd.Series(np.arange(len(upper)), index=upper)
        first = first[~first.index.duplicated()]
        self.genes_ = genes
        self.classes_ = np.asarray(classes, dtype=object)
        self.used_genes_ = first.loc[present].to_numpy()
        self.weights_ = pd.DataFrame(W, index=present, columns=classes)
        self._W = W.astype(np.float32)
        self.scaler_ = GeneScaler.fit(log1p_matrix(adata))
        if label_key is not None:
            labels = set(self._labels(adata, label_key))
            unmapped = sorted(labels - set((self.label_map or {}).values()))
            if unmapped:
                warnings.warn(
                    f"dataset labels {unmapped} have no ScTypeDB name mapped to them (label_map); "
                    "their cells count as errors", PerturblabWarning, stacklevel=2,
                )
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """scType scores (n_cells x n_classes) of the scaled model input ``X``."""
        X = self._check_input(X)
        return X[:, self.used_genes_] @ self._W

    def class_scores(self, X: np.ndarray) -> np.ndarray:
        """Native class scores: the raw scType scores (:meth:`decision_function`, float64).

        adverSCarial's scType wrapper hands these to CGD (``typePredictions = es.max``)."""
        return self.decision_function(X).astype(np.float64)

    def torch_module(self):
        """``torch.nn.Module``: scaled model input (cells x ``genes_``) -> raw scType scores."""
        from ._torch import LinearScores

        self._check_fitted()
        return LinearScores(self.used_genes_, self._W)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Softmax over cell types of the per-cell scType scores (temperature 1).

        The softmax keeps the score order (``predict`` = argmax of the scores, as adverSCarial's
        wrapper) and turns score differences into probability ratios ``exp(score_a - score_b)``.
        """
        S = self.decision_function(X).astype(np.float64)
        S -= S.max(axis=1, keepdims=True)
        P = np.exp(S)
        return P / P.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Per-cell labels: the ScTypeDB cell type with the highest score (never "Unknown")."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def map_labels(self, labels) -> np.ndarray:
        """ScTypeDB names -> dataset labels via ``label_map`` (unmapped names are kept)."""
        labels = np.asarray(labels).astype(object)
        if not self.label_map:
            return labels
        return np.array([self.label_map.get(x, x) for x in labels], dtype=object)

    def sctype_cluster_call(self, X: np.ndarray, clusters, target: str) -> tuple[str, pd.Series]:
        """sc-type's own cluster call (not adverSCarial's majority vote, see ``predict_cluster``).

        Sums each cell type's score over the cells of cluster ``target``; the label is the type
        with the highest sum, or ``unknown_label`` ("Unknown") when that sum is below
        ``n_cells / 4``.

        Returns
        -------
        (label, summed_scores)
            ``summed_scores``: Series over ``classes_``, sorted decreasingly.

        Raises
        ------
        ValueError
            If cluster ``target`` has no cells.
        """
        clusters = np.asarray(clusters).astype(str)
        mask = clusters == str(target)
        if not mask.any():
            raise UnknownNameError("cluster", target, set(map(str, clusters)))
        X = np.asarray(X)
        if len(clusters) != X.shape[0]:
            raise InputError(f"clusters has {len(clusters)} entries for {X.shape[0]} cells")
        sums = pd.Series(self.decision_function(X[mask]).sum(axis=0), index=self.classes_)
        sums = sums.sort_values(ascending=False, kind="stable")
        label = str(sums.index[0]) if sums.iloc[0] >= mask.sum() / 4 else self.unknown_label
        return label, sums
