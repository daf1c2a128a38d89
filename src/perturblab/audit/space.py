"""Attack realism: attacking the raw counts through the classifier's own preprocessing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..exceptions import InputError

__all__ = ["RawCountsModel"]


class RawCountsModel:
    """A fitted classifier seen from the raw counts: ``predict(C) = clf.predict(clf.preprocess(C))``.

    Attacks on this object modify raw UMI counts (cells x all genes of the dataset, dense
    float32) instead of the model input, so every modification also goes through the
    classifier's normalisation (library size over all genes, log1p, fit-time scaling): the
    realistic setting where an adversary can only change what the sequencer measures. The
    audit's column ``space`` says ``"raw_counts"`` for these results and ``"model_input"`` for
    attacks on ``clf.preprocess`` output.

    A cell's prediction still depends on its own row only (``per_cell = True``), but every gene
    enters the library size, so ``used_genes_`` is ``None`` (no gene can be skipped). Negative
    values (e.g. a CGD down-step) are read as 0 counts.

    Parameters
    ----------
    classifier
        A fitted :class:`~perturblab.classifiers.base.CellTypeClassifier`.
    var_names
        Gene names of the count matrix columns (all genes of the dataset, in order).
    """

    per_cell = True
    representation = "counts"
    used_genes_ = None

    def __init__(self, classifier, var_names):
        self.classifier = classifier
        self.genes_ = np.asarray(var_names).astype(str)
        self.classes_ = classifier.classes_
        self.unknown_label = getattr(classifier, "unknown_label", "Unknown")

    def model_input(self, C: np.ndarray) -> np.ndarray:
        """Raw counts (cells x ``genes_``) -> the classifier's model input."""
        import anndata as ad

        C = np.asarray(C, dtype=np.float32)
        if C.ndim != 2 or C.shape[1] != len(self.genes_):
            raise InputError(f"counts must be cells x {len(self.genes_)} genes, got shape {C.shape}")
        C = np.maximum(C, 0.0)
        return self.classifier.preprocess(ad.AnnData(C, var=pd.DataFrame(index=self.genes_)))

    def predict(self, C: np.ndarray) -> np.ndarray:
        """Per-cell labels of raw counts ``C``."""
        return self.classifier.predict(self.model_input(C))

    def predict_proba(self, C: np.ndarray) -> np.ndarray:
        """Per-cell class scores (``classes_`` order) of raw counts ``C``."""
        return self.classifier.predict_proba(self.model_input(C))

    def map_labels(self, labels) -> np.ndarray:
        return self.classifier.map_labels(labels)
