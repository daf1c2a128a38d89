"""Settings validation and the output folder / unit store (no data needed)."""

from __future__ import annotations

import json

import pytest

from perturblab.audit import AuditConfig
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
    (dict(attacks=("single_gene", "fgsn")), "unknown attack 'fgsn'; did you mean 'fgsm'"),
    (dict(modifications=("perc50",)), "unknown modification"),
    (dict(spaces=("counts",)), "unknown space"),
    (dict(evaluations=("robustness", "speed")), "unknown evaluation"),
    (dict(search_modes={"svm": "fast"}), "unknown search mode"),
    (dict(classifiers=()), "classifiers is empty"),
    (dict(evaluations=("defence",), attacks=("cgd",)), "defence"),
    (dict(test_size=1.0), "test_size"),
    (dict(cgd_n_genes=0), "cgd_n_genes"),
    (dict(n_bootstrap=-1), "n_bootstrap"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ValueError, match=msg):
        AuditConfig(**kw)


def test_unit_keys_are_stable_and_distinct():
    from perturblab.runs import unit_id

    a = Unit("attack", "svm", "single_gene", "CD14+ Mono", "perc99", mode="exhaustive")
    b = Unit("attack", "svm", "single_gene", "CD14+ Mono", "perc99", mode="dichotomic")
    c = Unit("attack", "svm", "single_gene", "CD14 Mono", "perc99", mode="exhaustive")
    assert unit_id(a.key) == unit_id(Unit("attack", "svm", "single_gene", "CD14+ Mono", "perc99",
                                          mode="exhaustive").key)
    assert len({unit_id(a.key), unit_id(b.key), unit_id(c.key)}) == 3  # names that share a slug do not collide
    assert all(ch in "0123456789abcdef" for ch in unit_id(a.key))  # file names never come from data
