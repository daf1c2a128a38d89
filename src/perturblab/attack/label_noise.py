"""Reference corruption: train on noisy labels, measure accuracy and attack vulnerability.

Annotation references are imperfect (Open Problems' label-projection task adds 20% label noise). A
fraction ``rate`` of the training labels is changed, seeded, in one of two ways
(:func:`corrupt_labels`):

``uniform``
    each corrupted cell gets a label drawn uniformly among the *other* labels;
``similar``
    each corrupted cell gets the cell type most similar to its own: the other type whose centroid
    (mean log1p-normalised expression of its training cells, over all genes given) has the highest
    Pearson correlation with its own type's centroid (:func:`celltype_similarity`) - the plausible
    confusion of an annotator (e.g. Naive CD4 T <-> Memory CD4 T, CD14+ Mono <-> FCGR3A+ Mono).

The corrupted cells are the first ``round(rate x n)`` of one seeded permutation, so the noise sets
are nested (the 5% cells are among the 10% ones) and the two modes corrupt the same cells.
:func:`label_noise_sweep` trains a classifier at each level and reports its accuracy on clean test
labels and its vulnerability to single-gene attacks (exhaustive; flips classified with
:func:`~perturblab.attack.taxonomy.flip_taxonomy`, so that only real flips count).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..exceptions import InputError
from .single_gene import single_gene_attack
from .taxonomy import flip_taxonomy

__all__ = ["LabelNoiseResult", "celltype_similarity", "corrupt_labels", "label_noise_sweep"]

_MODES = ("uniform", "similar")


def celltype_similarity(X, labels) -> pd.DataFrame:
    """Pearson correlation between cell-type centroids.

    Parameters
    ----------
    X
        Cells x genes, log1p-normalised (dense or sparse).
    labels
        Cell type per cell.

    Returns
    -------
    pandas.DataFrame
        Types x types correlation matrix (sorted type names), 1 on the diagonal.
    """
    import scipy.sparse as sp

    labels = np.asarray(labels).astype(str)
    types = np.unique(labels)
    if len(types) < 2:
        raise InputError(f"need at least 2 cell types to compare, got {list(types)}")
    rows = []
    for t in types:
        sub = X[labels == t]
        rows.append(np.asarray(sub.mean(axis=0)).ravel() if sp.issparse(sub) else np.asarray(sub).mean(axis=0))
    C = np.corrcoef(np.vstack(rows).astype(np.float64))
    return pd.DataFrame(np.nan_to_num(C), index=types, columns=types)


def corrupt_labels(labels, rate: float, *, mode: str = "uniform", X=None, similarity: pd.DataFrame | None = None,
                   random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Change a fraction ``rate`` of ``labels`` (see the module docstring).

    Parameters
    ----------
    labels
        Training labels (one per cell).
    rate
        Fraction of cells whose label changes, in [0, 1).
    mode
        ``"uniform"`` or ``"similar"``.
    X, similarity
        ``"similar"`` mode: log1p-normalised cells x genes to compute :func:`celltype_similarity`, or
        that matrix already computed.
    random_state
        Seed of the cells chosen and of the uniform draws.

    Returns
    -------
    (noisy_labels, changed)
        The new labels (object array) and the boolean mask of the changed cells.

    Raises
    ------
    InputError
        Rate outside [0, 1), unknown mode, a single label, or "similar" without X / similarity.

    Examples
    --------
    >>> noisy, changed = corrupt_labels(["A", "A", "B", "B"], 0.5, random_state=0)
    >>> int(changed.sum())
    2
    """
    labels = np.asarray(labels).astype(str)
    if not 0 <= rate < 1:
        raise InputError(f"rate must be in [0, 1), got {rate}")
    if mode not in _MODES:
        raise InputError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")
    types = np.unique(labels)
    if len(types) < 2:
        raise InputError("label noise needs at least 2 labels")
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(labels))
    chosen = order[: round(rate * len(labels))]
    draws = rng.integers(0, len(types) - 1, size=len(labels))  # drawn for all cells: nested levels agree
    out = labels.astype(object).copy()
    if mode == "uniform":
        for i in chosen:
            others = types[types != labels[i]]
            out[i] = others[draws[i] % len(others)]
    else:
        if similarity is None:
            if X is None:
                raise InputError("mode='similar' needs X= (log1p-normalised cells x genes) or similarity=")
            similarity = celltype_similarity(X, labels)
        S = similarity.loc[types, types].to_numpy(copy=True)
        np.fill_diagonal(S, -np.inf)
        nearest = dict(zip(types, types[S.argmax(axis=1)], strict=True))
        for i in chosen:
            out[i] = nearest[labels[i]]
    changed = np.zeros(len(labels), dtype=bool)
    changed[chosen] = True
    return out, changed


@dataclass
class LabelNoiseResult:
    """Result of :func:`label_noise_sweep`.

    ``summary``: one row per mode x rate (accuracy, macro_f1, n_labels_changed, attack counts);
    ``attacks``: one row per mode x rate x cluster x modification (the single-gene attack, its flips
    and their taxonomy counts).
    """

    summary: pd.DataFrame
    attacks: pd.DataFrame


def label_noise_sweep(
    make_classifier: Callable | str,
    train,
    test,
    label_key: str = "cell_type",
    *,
    rates: Sequence[float] = (0.0, 0.05, 0.1, 0.2),
    modes: Sequence[str] = ("uniform", "similar"),
    targets: Sequence[str] | None = None,
    modifications: Sequence[str] = ("perc1", "perc99"),
    attack_genes=None,
    label_map=None,
    random_state: int = 0,
    name: str | None = None,
) -> LabelNoiseResult:
    """Train at each noise level; report accuracy and single-gene vulnerability against the level.

    Parameters
    ----------
    make_classifier
        A function returning a new, unfitted classifier, or a registry name (``get_classifier``).
    train, test
        Raw-count AnnData halves; labels in ``obs[label_key]`` (test labels stay clean).
    rates, modes
        Noise levels and corruption modes (:func:`corrupt_labels`). Rate 0 is trained once.
    targets
        Test clusters attacked (default: all test labels).
    modifications
        Single-gene modifications (exhaustive search).
    attack_genes
        Candidate genes of the attacks (default all; a panel keeps slow classifiers affordable).
    label_map
        Passed to :func:`~perturblab.attack.taxonomy.flip_taxonomy` (default: the classifier's map).
    random_state
        Seed of the corruption.

    Returns
    -------
    LabelNoiseResult
        ``summary`` columns: classifier, mode, rate, n_labels_changed, accuracy, macro_f1,
        n_pairs (clusters x modifications), n_pairs_flipped, n_flipping_genes, n_real_flips (genes whose
        flip is a ``real_flip``), n_to_abstention, n_pairs_real_flip, wall_time_s.

    Examples
    --------
    The SVM trained on clean labels and with 20% of its training labels replaced at random, attacked on the B and
    NK cells over ten marker genes:

    >>> import perturblab as plab
    >>> train, test = plab.datasets.pbmc3k_split(random_state=0)
    >>> panel = ["MS4A1", "CD79A", "CD79B", "SSR4", "CD74", "HLA-DRA", "NKG7", "GNLY", "CD3E", "LYZ"]
    >>> res = plab.attack.label_noise_sweep("svm", train, test, rates=(0.0, 0.2), modes=("uniform",),
    ...                                     targets=["B", "NK"], attack_genes=panel)
    >>> cols = ["mode", "rate", "n_labels_changed", "accuracy", "n_flipping_genes"]
    >>> print(res.summary[cols].round(2).to_string(index=False))
       mode  rate  n_labels_changed  accuracy  n_flipping_genes
    uniform   0.0                 0      0.77                 0
    uniform   0.2               264      0.57                 3
    """
    from ..classifiers import evaluate_classifier, get_classifier
    from ..classifiers._preprocess import log1p_matrix

    make = (lambda: get_classifier(make_classifier)) if isinstance(make_classifier, str) else make_classifier
    y = train.obs[label_key].astype(str).to_numpy()
    clusters = test.obs[label_key].astype(str).to_numpy()
    targets = sorted(set(clusters)) if targets is None else [str(t) for t in targets]
    sim = celltype_similarity(log1p_matrix(train), y) if "similar" in modes else None
    summary, attacks, cache = [], [], {}
    for mode in modes:
        for rate in rates:
            t0 = time.perf_counter()
            key = "none" if rate == 0 else (mode, rate)
            if key not in cache:
                noisy, changed = corrupt_labels(y, rate, mode=mode, similarity=sim, random_state=random_state)
                tr = train.copy()
                tr.obs[label_key] = pd.Categorical(noisy.astype(str))
                clf = make().fit(tr, label_key)
                clf_name = name or type(clf).__name__
                ev = evaluate_classifier(clf, test, label_key, name=clf_name).iloc[0]
                X = clf.preprocess(test)
                rows = []
                for t in targets:
                    for m in modifications:
                        r = single_gene_attack(clf, X, clusters, t, m, genes=attack_genes)
                        tab = r.table.assign(cluster=t)
                        cls = flip_taxonomy(tab, classifier=clf, label_map=label_map) if len(tab) else tab.assign(
                            flip_category=pd.Series(dtype=object), is_vulnerability=pd.Series(dtype=bool))
                        rows.append({"cluster": t, "modification": m, "original_label": r.baseline_label,
                                     "n_flipping_genes": len(tab), "n_real_flips": int(cls["is_vulnerability"].sum()),
                                     "n_already_wrong": int((cls["flip_category"] == "already_wrong").sum()),
                                     "n_to_correct": int((cls["flip_category"] == "to_correct").sum()),
                                     "n_within_label": int((cls["flip_category"] == "within_label").sum()),
                                     "n_to_abstention": int((cls["flip_category"] == "to_abstention").sum())})
                cache[key] = (int(changed.sum()), ev, pd.DataFrame(rows), clf_name)
            n_changed, ev, att, clf_name = cache[key]
            summary.append({"classifier": clf_name, "mode": mode, "rate": float(rate), "n_labels_changed": n_changed,
                            "accuracy": float(ev["accuracy"]), "macro_f1": float(ev["macro_f1"]),
                            "n_pairs": len(att), "n_pairs_flipped": int((att["n_flipping_genes"] > 0).sum()),
                            "n_flipping_genes": int(att["n_flipping_genes"].sum()),
                            "n_real_flips": int(att["n_real_flips"].sum()),
                            "n_to_abstention": int(att["n_to_abstention"].sum()),
                            "n_pairs_real_flip": int((att["n_real_flips"] > 0).sum()),
                            "wall_time_s": time.perf_counter() - t0})
            attacks.append(att.assign(classifier=clf_name, mode=mode, rate=float(rate)))
    att = pd.concat(attacks, ignore_index=True)
    lead = ["classifier", "mode", "rate"]
    att = att[lead + [c for c in att.columns if c not in lead]]
    return LabelNoiseResult(summary=pd.DataFrame(summary), attacks=att)
