"""The full public perturbation datasets: registry entries, checksum-verified download (served from
127.0.0.1 in place of the public URL), and Kang's condition column."""

from __future__ import annotations

import hashlib

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from perturblab import datasets
from perturblab.datasets import DataFile


def _serve(www, monkeypatch, relpath, adata, checksum="md5"):
    """Serve ``adata`` as ``relpath``'s file from the local server with a correct checksum."""
    root, base = www
    adata.write_h5ad(root / "file.h5ad")
    raw = (root / "file.h5ad").read_bytes()
    entry = datasets.REGISTRY[relpath]
    local = DataFile(relpath, hashlib.sha256(raw).hexdigest() if checksum == "sha256" else None, entry.source,
                     url=f"{base}/file.h5ad", md5=hashlib.md5(raw).hexdigest() if checksum == "md5" else None)
    monkeypatch.setitem(datasets.REGISTRY, relpath, local)


def _screen(n=6):
    obs = pd.DataFrame({"perturbation": ["control", "STAT1", "JAK2"] * (n // 3)}, index=[f"c{i}" for i in range(n)])
    return ad.AnnData(np.arange(n * 4, dtype=np.float32).reshape(n, 4), obs=obs)


@pytest.mark.parametrize("loader,arg,relpath", [
    (datasets.norman2019, None, "perturbation/NormanWeissman2019_filtered.h5ad"),
    (datasets.replogle2022, "rpe1", "perturbation/ReplogleWeissman2022_rpe1.h5ad"),
    (datasets.replogle2022, "k562_essential", "perturbation/ReplogleWeissman2022_K562_essential.h5ad"),
    (datasets.adamson2016, "upr", "perturbation/AdamsonWeissman2016_GSM2406681_10X010.h5ad"),
])
def test_screen_loaders_download_their_registered_file(www, dirs, monkeypatch, loader, arg, relpath):
    screen = _screen()
    _serve(www, monkeypatch, relpath, screen)
    got = loader() if arg is None else loader(arg)
    assert (dirs[1] / relpath).is_file()
    np.testing.assert_array_equal(got.X, screen.X)
    assert list(got.obs["perturbation"]) == list(screen.obs["perturbation"])


def test_registry_entries_are_pinned():
    for relpath in [r for r in datasets.REGISTRY if r.startswith("perturbation/")]:
        entry = datasets.REGISTRY[relpath]
        assert entry.url.startswith("https://") and (entry.sha256 or entry.md5)
    assert datasets.REGISTRY["perturbation/NormanWeissman2019_filtered.h5ad"].url.startswith(
        "https://zenodo.org/records/10044268/")


def test_unknown_screen_and_experiment():
    with pytest.raises(ValueError, match="unknown Replogle 2022 screen 'hek293'"):
        datasets.replogle2022("hek293")
    with pytest.raises(ValueError, match="unknown Adamson 2016 experiment 'x'"):
        datasets.adamson2016("x")


def test_kang2018_full_adds_condition(www, dirs, monkeypatch):
    obs = pd.DataFrame({"label": ["ctrl", "stim", "stim", "ctrl"], "cell_type": ["B cells"] * 4,
                        "replicate": ["patient_101"] * 4}, index=list("abcd"))
    _serve(www, monkeypatch, "perturbation/kang_2018.h5ad", ad.AnnData(np.ones((4, 3), np.float32), obs=obs),
           checksum="sha256")
    got = datasets.kang2018_full()
    assert list(got.obs["condition"]) == ["control", "stimulated", "stimulated", "control"]
    assert list(got.obs["label"]) == ["ctrl", "stim", "stim", "ctrl"]  # kept


def test_add_kang_condition_checks_input():
    kept = ad.AnnData(np.ones((2, 1)), obs=pd.DataFrame({"condition": ["x", "y"]}, index=["a", "b"]))
    assert list(datasets.add_kang_condition(kept).obs["condition"]) == ["x", "y"]  # never overwritten
    with pytest.raises(KeyError, match="needs obs\\['label'\\]"):
        datasets.add_kang_condition(ad.AnnData(np.ones((2, 1))))
    odd = ad.AnnData(np.ones((2, 1)), obs=pd.DataFrame({"label": ["ctrl", "IFN"]}, index=["a", "b"]))
    with pytest.raises(ValueError, match="other than ctrl/stim: \\['IFN'\\]"):
        datasets.add_kang_condition(odd)
