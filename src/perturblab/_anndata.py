"""Results written back into an AnnData, shared by the wings (scanpy's conventions): tables under
``adata.uns[key_added]`` in a form ``AnnData.write_h5ad`` accepts, per-cell values under ``adata.obs``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .exceptions import InputError

__all__ = ["set_obs", "update_uns", "writable"]


def writable(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` that ``AnnData.write_h5ad`` accepts: object columns as strings, a plain RangeIndex."""
    out = df.reset_index(drop=True).copy()
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    out.columns = [str(c) for c in out.columns]
    return out


def update_uns(adata, key: str, tables: dict, replace_on=None) -> None:
    """Merge ``tables`` (name -> DataFrame) into ``adata.uns[key]``: rows of existing tables whose ``replace_on``
    columns match a new row are dropped, then the new rows appended; other entries (strings, dicts) are set."""
    store = adata.uns.get(key)
    store = dict(store) if isinstance(store, dict) else {}
    for name, value in tables.items():
        if isinstance(value, pd.DataFrame):
            new = writable(value)
            old = store.get(name)
            if isinstance(old, pd.DataFrame) and len(old) and replace_on:
                cols = [c for c in replace_on if c in old.columns and c in new.columns]
                if cols:
                    keys = set(map(tuple, new[cols].astype(str).to_numpy().tolist()))
                    keep = [tuple(r) not in keys for r in old[cols].astype(str).to_numpy().tolist()]
                    new = writable(pd.concat([old[keep], new], ignore_index=True))
            store[name] = new
        else:
            store[name] = value
    adata.uns[key] = store


def set_obs(adata, column: str, mask, value) -> None:
    """Write ``value`` into ``adata.obs[column]`` for the cells of ``mask`` (others keep theirs, or NaN)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (adata.n_obs,):
        raise InputError(f"the attacked cells do not match adata ({mask.size} cells for {adata.n_obs}); pass the "
                         "AnnData the attack ran on")
    kind = np.asarray(value).dtype.kind
    numeric = kind in "fiub"
    dtype = float if numeric else object
    if numeric:
        value = np.asarray(value, dtype=float) if np.ndim(value) else float(value)
    if column in adata.obs.columns:
        col = adata.obs[column].astype(dtype).copy()
    else:
        col = pd.Series(np.nan, index=adata.obs_names, dtype=dtype)
    col.iloc[np.flatnonzero(mask)] = value
    adata.obs[column] = col
