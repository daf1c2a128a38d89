"""Flip taxonomy: which cluster-level flips are vulnerabilities, and which are not.

A "flip" changes a cluster's majority answer. Counted naively, flips overstate a classifier's
vulnerability: on PBMC3k scType was already wrong on many clusters it "flips" (74 of its 130 hits),
some flips move a cluster to its correct label (25), and some only move between two names of the same
dataset label (e.g. "Naive B cells" -> "Memory B cells", both B). :func:`flip_taxonomy` sorts each flip,
in this order of precedence:

``no_flip``
    the new answer equals the original one.
``to_correct`` (b)
    the original answer was wrong, the new one is the cluster's true label: the attack repaired the call.
``already_wrong`` (a)
    the original answer was wrong (and the new one too): the classifier had nothing to lose.
``within_label`` (c)
    both answers map to the same dataset label (after the label map).
``to_abstention``
    a correct call became an abstention ("Unknown", "Unassigned", CHETAH's "Node<k>"): a denial of
    answer, reported apart (the abstention analysis of :mod:`perturblab.attack.abstention`).
``real_flip`` (d)
    a correct call became another dataset label (or an unmapped name): the only category counted as
    a vulnerability in headlines (``is_vulnerability``).

"Correct" compares the mapped answer with the cluster's true label (the dataset label of its cells,
e.g. the cluster name when clusters are the annotated cell types).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..classifiers.base import NA_LABELS
from ..exceptions import MissingKeyError

__all__ = ["FLIP_CATEGORIES", "flip_taxonomy", "taxonomy_counts"]

#: The categories, in order of precedence.
FLIP_CATEGORIES = ("no_flip", "to_correct", "already_wrong", "within_label", "to_abstention", "real_flip")
_NODE = re.compile(r"^Node\d+$")
_DEFAULT_ABSTENTIONS = frozenset({"Unknown", "Unassigned", "UNDETERMINED"}) | NA_LABELS


def _mapper(label_map, classifier):
    if label_map is not None:
        from ..classifiers.label_maps import read_label_map

        table = read_label_map(label_map)
        return lambda labels: np.array([table.get(x, x) for x in labels], dtype=object)
    if classifier is not None and hasattr(classifier, "map_labels"):
        return lambda labels: np.asarray(classifier.map_labels(np.asarray(labels, dtype=object))).astype(object)
    return lambda labels: np.asarray(labels, dtype=object)


def _abstains(labels, classifier, abstention_labels):
    labels = np.asarray(labels).astype(str)
    if abstention_labels is not None:
        return np.isin(labels, [str(x) for x in abstention_labels])
    if classifier is not None:
        from ..classifiers.base import is_abstention

        return is_abstention(classifier, labels)
    return np.isin(labels, list(_DEFAULT_ABSTENTIONS)) | np.array([bool(_NODE.match(x)) for x in labels], dtype=bool)


def flip_taxonomy(
    table: pd.DataFrame,
    *,
    true_col: str = "cluster",
    original_col: str = "original_label",
    new_col: str = "new_label",
    label_map=None,
    classifier=None,
    abstention_labels=None,
) -> pd.DataFrame:
    """Classify every cluster-level result of ``table`` (see the module docstring).

    Parameters
    ----------
    table
        Cluster-level results, one row per (cluster, attack, gene, ...): the true dataset label of the
        cluster (``true_col``), the classifier's original call (``original_col``) and its call after the
        attack (``new_col``; missing = no flip).
    label_map
        Classifier answer -> dataset label (dict, DataFrame, CSV path or a shipped map's name, see
        :func:`~perturblab.classifiers.label_maps.read_label_map`); default ``classifier.map_labels``
        when ``classifier`` is given, else the identity.
    classifier
        Optional: its ``map_labels`` and abstentions (:func:`~perturblab.classifiers.base.is_abstention`).
    abstention_labels
        Answers that are abstentions (default: the classifier's, else "Unknown", "Unassigned",
        "UNDETERMINED", "NA" and CHETAH's "Node<k>").

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``original_mapped``, ``new_mapped``, ``original_correct``,
        ``new_correct``, ``flip_category`` (one of :data:`FLIP_CATEGORIES`) and ``is_vulnerability``
        (True for ``real_flip`` only).

    Raises
    ------
    MissingKeyError
        If a named column is absent.

    Examples
    --------
    >>> t = pd.DataFrame({"cluster": ["B", "B", "NK", "NK"],
    ...                   "original_label": ["Naive B cells", "Naive B cells", "Pro-B cells", "Natural killer  cells"],
    ...                   "new_label": ["Memory B cells", "Cancer cells", "Natural killer  cells", "Unknown"]})
    >>> flip_taxonomy(t, label_map="pbmc3k")["flip_category"].tolist()
    ['within_label', 'real_flip', 'to_correct', 'to_abstention']
    """
    for col in (true_col, original_col, new_col):
        if col not in table.columns:
            columns = ", ".join(map(str, table.columns))
            raise MissingKeyError(f"column {col!r} not found in the table (columns: {columns}); "
                                  "pass true_col=, original_col=, new_col=")
    out = table.copy()
    mapper = _mapper(label_map, classifier)
    true = out[true_col].astype(str).to_numpy()
    orig = out[original_col].astype(str).to_numpy()
    new_raw = out[new_col]
    missing = new_raw.isna().to_numpy()
    new = np.where(missing, orig, new_raw.astype(str).to_numpy())
    om, nm = mapper(orig).astype(str), mapper(new).astype(str)
    oc, nc = om == true, nm == true
    absn = _abstains(new, classifier, abstention_labels)
    cat = np.full(len(out), "real_flip", dtype=object)
    cat[oc & absn] = "to_abstention"
    cat[oc & (nm == om)] = "within_label"
    cat[~oc] = "already_wrong"
    cat[~oc & nc] = "to_correct"
    cat[new == orig] = "no_flip"
    out["original_mapped"], out["new_mapped"] = om, nm
    out["original_correct"], out["new_correct"] = oc, nc
    out["flip_category"] = pd.Categorical(cat, categories=FLIP_CATEGORIES)
    out["is_vulnerability"] = cat == "real_flip"
    return out


def taxonomy_counts(classified: pd.DataFrame, by=("classifier",)) -> pd.DataFrame:
    """Counts of each flip category per group of a :func:`flip_taxonomy` table (wide: one column per
    category, plus ``n_flips`` (all but ``no_flip``) and ``n_vulnerabilities`` (``real_flip``))."""
    by = [b for b in by if b in classified.columns]
    if by:
        wide = classified.groupby(by, observed=False)["flip_category"].value_counts().unstack(fill_value=0)
    else:
        wide = classified["flip_category"].value_counts().to_frame().T
    wide = wide.reindex(columns=list(FLIP_CATEGORIES), fill_value=0)
    wide["n_flips"] = wide.drop(columns="no_flip").sum(axis=1)
    wide["n_vulnerabilities"] = wide["real_flip"]
    return wide.reset_index() if by else wide.reset_index(drop=True)
