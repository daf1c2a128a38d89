"""Attack the predictors: the attack wing's bounded modifications applied to the control cells a perturbation-
response model predicts from (the bridge between the attack and predict wings).

A prediction is only as trustworthy as its sensitivity to its input. :func:`prediction_robustness` takes a trained
model (ScGen, ScPRAM, a baseline) and one held-out cell type, modifies ``k`` genes of the target's control cells
with adverSCarial's modifications (perc1 / perc99 / deciles; statistics over all control cells of the training
data and the target, as the attacks compute them over all cells), predicts again and measures how far the
prediction moved: R2 of the gene means against the real stimulated cells, E-distance to them, and the overlap of the
predicted DEG set with the unmodified prediction's, in total and per gene modified.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..attack.modifications import get_modification
from ..exceptions import InputError, UnknownNameError

__all__ = ["prediction_robustness"]


def _top(mean_pred: np.ndarray, mean_ctrl: np.ndarray, n: int) -> set[int]:
    """The ``n`` genes with the largest |predicted - control| mean difference (the predicted DEGs)."""
    return set(np.argsort(-np.abs(mean_pred - mean_ctrl), kind="stable")[:n].tolist())


def _pca_edistance(pred: np.ndarray, real: np.ndarray, ctrl: np.ndarray, n_pcs: int, random_state: int) -> float:
    from sklearn.decomposition import PCA

    from ..predict.metrics import edistance

    pca = PCA(n_components=min(n_pcs, real.shape[1], real.shape[0] + ctrl.shape[0] - 1), random_state=random_state)
    pca.fit(np.vstack([real, ctrl]))
    return float(edistance(pca.transform(pred), pca.transform(real)))


def prediction_robustness(model, split, *, modifications: Sequence[str] = ("perc1", "perc99"),
                          n_genes: Sequence[int] = (1, 5, 20), genes: Sequence[str] | None = None, n_degs: int = 100,
                          n_pcs: int = 30, random_state: int = 0) -> pd.DataFrame:
    """How much a trained model's prediction moves when ``k`` genes of its input control cells are modified.

    Parameters
    ----------
    model
        A trained :class:`~perturblab.predict.models.PerturbationModel` (``predict(ctrl_adata)``).
    split
        The :class:`~perturblab.predict.LocoSplit` it was trained on (``train`` without the target's stimulated
        cells, ``target_ctrl``, ``target_stim``); log-normalised cells x genes.
    modifications
        Modification names of :mod:`perturblab.attack.modifications` (``perc1``, ``perc99``, ``decile+5``...).
        Statistics are computed over every control cell (training controls and the target's), as the attacks
        compute them over all cells of a column.
    n_genes
        Numbers of genes modified together (the first ``k`` of ``genes``).
    genes
        Genes to modify, in order (default: the target's real top DEGs by ``|stimulated - control|`` mean, the genes a
        prediction should get right).
    n_degs
        Size of the predicted DEG sets compared (by ``|predicted - control|`` mean).
    n_pcs
        Principal components of the E-distance space (fitted on the real stimulated and control cells).
    random_state
        Seed of the modifications' random draws, the PCA and the model's prediction.

    Returns
    -------
    pandas.DataFrame
        One row per modification x k (and one ``"none"`` row): ``model, target, modification, n_genes, genes,
        r2_pearson_mean`` (R2 of gene means vs the real stimulated cells, higher is better), ``r2_change``,
        ``edistance`` (lower is better), ``edistance_change``, ``deg_overlap`` (share of the unmodified prediction's
        top DEGs still predicted), ``r2_change_per_gene``, ``edistance_change_per_gene``, ``seconds``.

    Raises
    ------
    InputError, UnknownNameError
        Unknown genes or modification, ``k`` larger than the genes given.

    Examples
    --------
    >>> import perturblab as plab
    >>> from perturblab.bridges import prediction_robustness
    >>> adata = plab.predict.prepare(plab.datasets.kang2018(), n_top_genes=500)
    >>> split = plab.predict.loco_split(adata, "B")
    >>> model = plab.predict.make_model("mean_delta", split.train)
    >>> history = model.train()
    >>> tab = prediction_robustness(model, split, n_genes=(1, 5))
    >>> tab[["modification", "n_genes", "r2_pearson_mean"]].round(2).values.tolist()
    [['none', 0, 0.53], ['perc1', 1, 0.53], ['perc1', 5, 0.35], ['perc99', 1, 0.6], ['perc99', 5, 0.68]]

    Switching off the target's five top real DEGs in its control cells (``perc1``) lowers the R2 of the predicted
    gene means from 0.53 to 0.35.
    """
    from ..predict.metrics import r2_pearson

    ctrl_a, stim_a = split.target_ctrl, split.target_stim
    names = np.asarray(ctrl_a.var_names).astype(str)
    C = np.asarray(ctrl_a.X.toarray() if hasattr(ctrl_a.X, "toarray") else ctrl_a.X, dtype=np.float32)
    S = np.asarray(stim_a.X.toarray() if hasattr(stim_a.X, "toarray") else stim_a.X, dtype=np.float32)
    train = split.train
    train_ctrl = train[train.obs[model.condition_key].astype(str).to_numpy() == model.control]
    T = np.asarray(train_ctrl.X.toarray() if hasattr(train_ctrl.X, "toarray") else train_ctrl.X, dtype=np.float32)
    pool = np.vstack([T, C])  # every control cell: the column statistics of the modifications
    mask = np.r_[np.zeros(len(T), bool), np.ones(len(C), bool)]
    if genes is None:
        order = np.argsort(-np.abs(S.mean(0) - C.mean(0)), kind="stable")
    else:
        pos = {g: i for i, g in enumerate(names)}
        for g in genes:
            if g not in pos:
                raise UnknownNameError("gene", g, names)
        order = np.array([pos[g] for g in genes])
    if max(n_genes) > len(order):
        raise InputError(f"n_genes {max(n_genes)} exceeds the {len(order)} genes given; lower n_genes")

    def measure(X_ctrl: np.ndarray) -> tuple[float, float, set[int]]:
        pred = model.predict(ctrl_a.__class__(X_ctrl, obs=ctrl_a.obs.copy(), var=ctrl_a.var.copy()))
        P = np.asarray(pred.X.toarray() if hasattr(pred.X, "toarray") else pred.X, dtype=np.float32)
        return (r2_pearson(P.mean(0), S.mean(0)), _pca_edistance(P, S, C, n_pcs, random_state),
                _top(P.mean(0), C.mean(0), n_degs))

    t0 = time.perf_counter()
    r2_0, ed_0, degs_0 = measure(C)
    name = getattr(model, "name", type(model).__name__)
    rows = [{"model": name, "target": split.target, "modification": "none", "n_genes": 0, "genes": "",
             "r2_pearson_mean": r2_0, "r2_change": 0.0, "edistance": ed_0, "edistance_change": 0.0,
             "deg_overlap": 1.0, "seconds": time.perf_counter() - t0}]
    for mod in modifications:
        modification = get_modification(mod, random_state=random_state)
        for k in n_genes:
            t0 = time.perf_counter()
            idx = order[:k]
            X = C.copy()
            X[:, idx] = modification.values(pool, mask, idx)
            r2, ed, degs = measure(X)
            rows.append({"model": name, "target": split.target, "modification": mod, "n_genes": int(k),
                         "genes": ";".join(names[idx]), "r2_pearson_mean": r2, "r2_change": r2 - r2_0,
                         "edistance": ed, "edistance_change": ed - ed_0, "deg_overlap": len(degs & degs_0) / n_degs,
                         "seconds": time.perf_counter() - t0})
    out = pd.DataFrame(rows)
    per_gene = out["n_genes"].replace(0, np.nan)
    return out.assign(r2_change_per_gene=out["r2_change"] / per_gene,
                      edistance_change_per_gene=out["edistance_change"] / per_gene)
