"""One entry point for the ``--data`` option of every command: a dataset name or the path of an ``.h5ad`` file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anndata as ad

from ..exceptions import UnknownNameError
from ..io import read_h5ad

__all__ = ["DATASETS", "load"]


def _loaders() -> dict[str, Callable[[], ad.AnnData]]:
    from ._perturbation import adamson2016, kang2018_full, norman2019, replogle2022
    from ._singlecell import kang2018, papalexi2021, pbmc3k, pbmc68k_reduced

    return {
        "pbmc3k": pbmc3k,
        "kang2018": kang2018,
        "kang2018_full": kang2018_full,
        "papalexi2021": papalexi2021,
        "pbmc68k_reduced": pbmc68k_reduced,
        "norman2019": norman2019,
        "replogle2022_k562_essential": lambda: replogle2022("k562_essential"),
        "replogle2022_k562_gwps": lambda: replogle2022("k562_gwps"),
        "replogle2022_rpe1": lambda: replogle2022("rpe1"),
        "adamson2016_pilot": lambda: adamson2016("pilot"),
        "adamson2016_epistasis": lambda: adamson2016("epistasis"),
        "adamson2016_upr": lambda: adamson2016("upr"),
    }


#: Dataset names :func:`load` accepts (besides paths of ``.h5ad`` files).
DATASETS = tuple(_loaders())


def load(data: str | os.PathLike | ad.AnnData) -> ad.AnnData:
    """The AnnData named by ``data``: a perturblab dataset name, the path of an ``.h5ad`` file, or an AnnData.

    Parameters
    ----------
    data
        One of :data:`DATASETS` (e.g. ``"pbmc3k"``, ``"kang2018"``, ``"papalexi2021"``), a path ending in
        ``.h5ad``, or an AnnData (returned as is).

    Returns
    -------
    anndata.AnnData

    Raises
    ------
    UnknownNameError
        A name that is neither a dataset nor an ``.h5ad`` path (with the closest dataset name).
    InputError
        An ``.h5ad`` path that does not exist or cannot be read (truncated, corrupt, not HDF5).
    DataFileNotFoundError
        A dataset whose file is neither local nor downloadable (offline).

    Examples
    --------
    >>> import perturblab as plab
    >>> plab.datasets.load("kang2018").obs["condition"].value_counts().to_dict()
    {'stimulated': 1380, 'control': 1330}
    """
    if isinstance(data, ad.AnnData):
        return data
    text = str(data)
    loaders = _loaders()
    if text in loaders:
        return loaders[text]()
    path = Path(text).expanduser()
    if path.suffix == ".h5ad" or path.exists():
        return read_h5ad(path, what="--data")
    raise UnknownNameError("dataset", text, loaders, hint="or give the path of an .h5ad file")
