"""Settings validation and the output folder / unit store (no data needed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from perturblab.audit import AuditConfig, OutputExistsError
from perturblab.audit.store import UnitStore, prepare_out_dir
from perturblab.audit.units import Unit


def test_config_defaults_and_parsing():
    cfg = AuditConfig(classifiers="svm, mlp", modifications="perc1,decile+5")
    assert cfg.classifiers == ("svm", "mlp")
    assert cfg.modifications == ("perc1", "decile+5")
    assert AuditConfig().classifiers == ("sctype", "chetah", "svm", "random_forest", "mlp", "celltypist")
    assert AuditConfig().attacks == ("single_gene",) and AuditConfig().seed == 0
    assert json.loads(json.dumps(cfg.to_dict()))["classifiers"] == ["svm", "mlp"]


@pytest.mark.parametrize("kw, msg", [
    (dict(classifiers=("svm", "xgboost")), "unknown classifier"),
    (dict(attacks=("single_gene", "fgsm")), "unknown attack"),
    (dict(modifications=("perc50",)), "unknown modification"),
    (dict(spaces=("counts",)), "unknown space"),
    (dict(evaluations=("robustness", "speed")), "unknown evaluation"),
    (dict(search_modes={"svm": "fast"}), "unknown search mode"),
    (dict(classifiers=()), "classifiers is empty"),
    (dict(evaluations=("defence",), attacks=("cgd",)), "defence"),
    (dict(test_size=1.0), "test_size"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        AuditConfig(**kw)


def test_out_dir_guard(tmp_path):
    cfg = {"seed": 0}
    out = tmp_path / "out"
    prepare_out_dir(out, cfg)  # missing -> created
    assert json.loads((out / "audit_config.json").read_text()) == cfg
    with pytest.raises(OutputExistsError, match="--resume"):
        prepare_out_dir(out, cfg)
    prepare_out_dir(out, cfg, resume=True)  # same settings
    with pytest.raises(ValueError, match="other settings.*seed"):
        prepare_out_dir(out, {"seed": 1}, resume=True)
    store = UnitStore(out)
    store.save({"unit": {"id": "u1"}, "summary": {}, "tables": {}})
    prepare_out_dir(out, {"seed": 1}, overwrite=True)
    assert not store.done("u1")
    assert json.loads((out / "audit_config.json").read_text()) == {"seed": 1}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not an audit folder"):
        prepare_out_dir(foreign, cfg, overwrite=True)
    with pytest.raises(ValueError, match="not an audit folder|holds no"):
        prepare_out_dir(foreign, cfg, resume=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="either"):
        prepare_out_dir(out, cfg, resume=True, overwrite=True)


def test_unit_store_roundtrip(tmp_path):
    store = UnitStore(tmp_path)
    df = pd.DataFrame({"gene": ["CD3E", "NKG7"], "score": [0.25, np.nan], "n": [3, 4], "flag": [True, False]})
    unit = Unit("attack", "svm", "single_gene", "NK", "perc99", mode="exhaustive")
    assert not store.done(unit.id)
    store.save({"unit": unit.to_dict(), "summary": {"n_found": np.int64(2)}, "tables": {"genes": df}})
    back = store.load(unit.id)
    assert store.done(unit.id) and back["summary"]["n_found"] == 2
    pd.testing.assert_frame_equal(back["tables"]["genes"], df, check_dtype=False)
    assert not list(store.dir.glob("*.tmp"))  # atomic write leaves no temporary file


def test_unit_ids_are_stable_and_distinct():
    a = Unit("attack", "svm", "single_gene", "CD14+ Mono", "perc99", mode="exhaustive")
    b = Unit("attack", "svm", "single_gene", "CD14+ Mono", "perc99", mode="dichotomic")
    assert a.id == Unit("attack", "svm", "single_gene", "CD14+ Mono", "perc99", mode="exhaustive").id
    assert a.id != b.id
    assert all(c.isalnum() or c in "-_" for c in a.id)
