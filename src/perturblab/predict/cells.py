"""Control, real and predicted cells in one AnnData, each cell's source in ``obs["perturblab_source"]``."""

from __future__ import annotations

from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd

from ..exceptions import InputError
from .models.base import CELL_SOURCE_KEY, MODEL_KEY

__all__ = ["CELL_SOURCE_KEY", "MODEL_KEY", "SOURCES", "combine_cells"]

#: The values of ``obs["perturblab_source"]``.
SOURCES = ("control", "real", "predicted")


def _tagged(adata: ad.AnnData, source: str, model: str) -> ad.AnnData:
    out = ad.AnnData(np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X, dtype=np.float32),
                     obs=adata.obs.copy(), var=pd.DataFrame(index=adata.var_names.astype(str)))
    out.obs[CELL_SOURCE_KEY] = source
    out.obs[MODEL_KEY] = model
    out.obs_names = [f"{source}:{model}:{n}" if model else f"{source}:{n}" for n in adata.obs_names.astype(str)]
    return out


def combine_cells(predicted, control: ad.AnnData | None = None, real: ad.AnnData | None = None) -> ad.AnnData:
    """The control, real stimulated and predicted cells in one AnnData (same genes), ready for scanpy plots and
    :func:`perturblab.predict.distance` (``groupby="perturblab_source"`` or ``"perturblab_model"``).

    Parameters
    ----------
    predicted
        A prediction (the AnnData of ``model.predict``) or ``{model name: prediction}``.
    control, real
        The control cells the prediction was made from and the measured stimulated cells (optional;
        log-normalised, cells x genes, the prediction's genes).

    Returns
    -------
    anndata.AnnData
        Cells stacked (control, real, then each prediction); ``obs["perturblab_source"]`` is ``"control"``,
        ``"real"`` or ``"predicted"``, ``obs["perturblab_model"]`` the model's name (empty for measured cells);
        obs names prefixed by source (and model) so they stay unique. ``X`` is dense float32.

    Raises
    ------
    InputError
        No cells, or parts with different genes.

    Examples
    --------
    >>> import perturblab as plab
    >>> adata = plab.predict.prepare(plab.datasets.kang2018(), n_top_genes=200)
    >>> split = plab.predict.loco_split(adata, "B")
    >>> pred = plab.predict.make_model("mean_delta", split.train).predict(split.target_ctrl)
    >>> cells = plab.predict.combine_cells(pred, split.target_ctrl, split.target_stim)
    >>> dict(sorted(cells.obs["perturblab_source"].value_counts().items()))
    {'control': 95, 'predicted': 95, 'real': 116}
    """
    preds = dict(predicted) if isinstance(predicted, Mapping) else {None: predicted}
    parts = []
    if control is not None:
        parts.append(_tagged(control, "control", ""))
    if real is not None:
        parts.append(_tagged(real, "real", ""))
    for name, p in preds.items():
        if name is None:
            from_obs = str(p.obs[MODEL_KEY].iloc[0]) if MODEL_KEY in p.obs and p.n_obs else "model"
            name = p.uns.get(MODEL_KEY, from_obs)
        parts.append(_tagged(p, "predicted", str(name)))
    if not parts or sum(p.n_obs for p in parts) == 0:
        raise InputError("no cells to combine; pass at least one prediction with cells")
    genes = parts[0].var_names
    for p in parts[1:]:
        if not p.var_names.equals(genes):
            raise InputError("the parts have different genes (names or order); subset them to the prediction's "
                             "genes in the same order")
    out = ad.concat(parts, join="outer", merge="same")
    out.obs[CELL_SOURCE_KEY] = pd.Categorical(out.obs[CELL_SOURCE_KEY].astype(str), categories=list(SOURCES))
    return out
