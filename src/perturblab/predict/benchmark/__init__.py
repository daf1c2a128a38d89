"""Benchmark perturbation-response models: models x targets x seeds x dataset variants.

Example::

    import perturblab as plab
    from perturblab.predict.benchmark import BenchmarkSettings, run_benchmark
    res = run_benchmark("kang2018", "results/bench", models=["scgen", "scpram"],
                        targets=["CD14 Mono", "B"], seeds=[0, 1], n_jobs=2)
    res.table        # tidy: model, target, variant, seed, metric, gene_set, value, ci_low, ci_high, ...

Modules: :mod:`.units` (one unit and its settings), :mod:`.variants` (balanced / unbalanced / proportion
shift), :mod:`.runner` (the resumable, parallel runner), :mod:`.stats` (ranking, paired tests, degradation),
:mod:`.report` (HTML).
"""

from .report import HEADLINE_METRICS, benchmark_report
from .runner import (
    BenchmarkResult,
    benchmark_units,
    execute_benchmark,
    model_fingerprint,
    model_specs,
    prepare_input,
    run_benchmark,
)
from .stats import degradation, higher_is_better, paired_tests, rank_models
from .units import (
    UNIT_COLUMNS,
    BenchmarkInputs,
    BenchmarkSettings,
    BenchmarkUnit,
    UnitOutput,
    run_unit,
)
from .variants import VARIANTS, make_variant, variant_keep_fractions

__all__ = [
    "HEADLINE_METRICS",
    "UNIT_COLUMNS",
    "VARIANTS",
    "BenchmarkInputs",
    "BenchmarkResult",
    "BenchmarkSettings",
    "BenchmarkUnit",
    "UnitOutput",
    "benchmark_report",
    "benchmark_units",
    "degradation",
    "execute_benchmark",
    "higher_is_better",
    "make_variant",
    "model_fingerprint",
    "model_specs",
    "paired_tests",
    "prepare_input",
    "rank_models",
    "run_benchmark",
    "run_unit",
    "variant_keep_fractions",
]
