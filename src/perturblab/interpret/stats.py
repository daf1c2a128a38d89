"""Statistics registry and the four-criterion verdict (Kendiukhov 2026, section 11).

Every test an analysis runs is added to a :class:`Registry` with its section, hypothesis,
test name, N, effect size and raw p. Benjamini-Hochberg adjustment (statsmodels
``multipletests``) runs over the confirmatory tests as one family; exploratory tests are
adjusted within their own family and never count towards a claim. :func:`verdict` applies
the anchor's pass/fail criteria:

1. attention beats every gene-level baseline (mean, variance, 1 - dropout) at ranking knock-out
   targets (paired delta AUROC > 0 with its bootstrap CI above 0);
2. adding attention to gene features raises the AUROC under every split (delta CI above 0);
3. at least 80% of the reference-recovery signal (AUROC - 0.5) survives residualisation on gene
   features, and the degree-preserving null gives z > 3;
4. ablating the top-ranked heads changes the perturbation AUROC at least as much as ablating
   random heads, with a fidelity shift > 0.02 (the intervention really changed the model).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..exceptions import InputError

__all__ = ["Registry", "Criterion", "Verdict", "verdict", "FIDELITY_MIN", "RETAINED_MIN", "NULL_Z_MIN"]

FIDELITY_MIN = 0.02
RETAINED_MIN = 0.8
NULL_Z_MIN = 3.0


@dataclass
class _Test:
    section: str
    hypothesis: str
    test: str
    n: int
    effect_size: float
    effect: str
    statistic: float
    p: float
    confirmatory: bool
    claim: str


class Registry:
    """All statistical tests of a run, with BH adjustment.

    Parameters
    ----------
    alpha
        FDR level for the ``significant`` flag.
    """

    def __init__(self, alpha: float = 0.05):
        self.alpha = alpha
        self._tests: list[_Test] = []

    def __len__(self) -> int:
        return len(self._tests)

    def add(self, section: str, hypothesis: str, test: str, p: float, effect_size: float, n: int,
            effect: str = "", statistic: float = float("nan"), confirmatory: bool = True, claim: str = "") -> None:
        """Record one test. ``p`` must be in [0, 1] or NaN (test not computable, e.g. N too small)."""
        p = float(p)
        if not (np.isnan(p) or 0.0 <= p <= 1.0):
            raise InputError(f"p-value of {hypothesis!r} is {p}, outside [0, 1]")
        self._tests.append(_Test(section, hypothesis, test, int(n), float(effect_size), effect, float(statistic), p,
                                 bool(confirmatory), claim))

    def table(self) -> pd.DataFrame:
        """The registry: one row per test with ``p_bh`` (BH within confirmatory / exploratory family) and
        ``flag`` (``significant``, ``not significant``, ``exploratory`` or ``not computable``)."""
        from statsmodels.stats.multitest import multipletests

        cols = list(_Test.__dataclass_fields__)
        df = pd.DataFrame([asdict(t) for t in self._tests], columns=cols)
        df["p_bh"] = np.nan
        for conf in (True, False):
            sel = (df["confirmatory"] == conf) & df["p"].notna()
            if sel.any():
                df.loc[sel, "p_bh"] = multipletests(df.loc[sel, "p"].to_numpy(float), method="fdr_bh")[1]
        df["flag"] = np.select(
            [df["p"].isna(), ~df["confirmatory"].astype(bool), df["p_bh"] < self.alpha],
            ["not computable", "exploratory", "significant"], default="not significant")
        return df

    def claims(self) -> pd.DataFrame:
        """Claim-to-evidence map: per claim, the number of confirmatory tests and how many are significant."""
        df = self.table()
        df = df[df["claim"] != ""]
        if df.empty:
            return pd.DataFrame(columns=["claim", "n_tests", "n_significant", "sections"])
        return (df.groupby("claim")
                .agg(n_tests=("p", "size"), n_significant=("flag", lambda f: int((f == "significant").sum())),
                     sections=("section", lambda s: ", ".join(sorted(set(s)))))
                .reset_index())


@dataclass
class Criterion:
    """One verdict criterion: ``passed`` is None when it could not be evaluated (counts as not passed)."""

    name: str
    passed: bool | None
    evidence: str


@dataclass
class Verdict:
    """The four criteria and the overall pass (all four passed)."""

    criteria: list[Criterion] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.criteria) and all(c.passed is True for c in self.criteria)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.criteria])

    def to_dict(self) -> dict:
        return {"passed": self.passed, "criteria": [asdict(c) for c in self.criteria]}


def verdict(
    baseline_comparisons: pd.DataFrame | None,
    incremental: pd.DataFrame | None,
    retained_fraction: float | None,
    degree_null_z: float | None,
    ablation_effect_top: float | None = None,
    ablation_effect_random: float | None = None,
    ablation_fidelity: float | None = None,
) -> Verdict:
    """Apply the four criteria.

    Parameters
    ----------
    baseline_comparisons
        Rows of :func:`~perturblab.interpret.perturbation.compare_scores` of attention (``a``) against each
        gene-level baseline (``b``; the TF out-degree negative control excluded): ``b, delta, ci_low``.
    incremental
        :func:`~perturblab.interpret.incremental.incremental_value` table; rows with ``features ==
        "gene + attention"`` are checked.
    retained_fraction
        ``(AUROC_residualised - 0.5) / (AUROC_raw - 0.5)`` of the best attention score.
    degree_null_z
        z-score of the same score against the degree-preserving null.
    ablation_effect_top, ablation_effect_random, ablation_fidelity
        Mean ``|delta perturbation AUROC|`` of top-k-head ablations, of random-k ablations, and the smallest
        fidelity (hidden-state cosine shift) of the top-k ablations.
    """
    crit = []
    if baseline_comparisons is None or len(baseline_comparisons) == 0:
        crit.append(Criterion("beats every gene baseline", None, "no baseline comparison available"))
    else:
        ok = bool(((baseline_comparisons["delta"] > 0) & (baseline_comparisons["ci_low"] > 0)).all())
        ev = "; ".join(f"vs {r.b}: delta {r.delta:+.3f} (CI low {r.ci_low:+.3f})" for r in baseline_comparisons.itertuples())
        crit.append(Criterion("beats every gene baseline", ok, ev))
    if incremental is None or not (incremental["features"] == "gene + attention").any():
        crit.append(Criterion("delta AUROC CI > 0 under all splits", None, "no incremental-value result"))
    else:
        rows = incremental[incremental["features"] == "gene + attention"]
        ok = bool((rows["delta_auroc_ci_low"] > 0).all())
        ev = "; ".join(f"{r.model}/{r.split}: {r.delta_auroc:+.4f} [{r.delta_auroc_ci_low:+.4f}, {r.delta_auroc_ci_high:+.4f}]"
                       for r in rows.itertuples())
        crit.append(Criterion("delta AUROC CI > 0 under all splits", ok, ev))
    if retained_fraction is None or degree_null_z is None or not np.isfinite([retained_fraction, degree_null_z]).all():
        crit.append(Criterion("signal survives residualisation and degree null", None,
                              f"retained {retained_fraction}, degree-null z {degree_null_z}"))
    else:
        ok = bool(retained_fraction >= RETAINED_MIN and degree_null_z > NULL_Z_MIN)
        crit.append(Criterion("signal survives residualisation and degree null", ok,
                              f"retained {retained_fraction:.2f} (need >= {RETAINED_MIN}), degree-null z {degree_null_z:.2f} (need > {NULL_Z_MIN})"))
    vals = [ablation_effect_top, ablation_effect_random, ablation_fidelity]
    if any(v is None or not np.isfinite(v) for v in vals):
        crit.append(Criterion("ablation effect >= random with fidelity", None, "no ablation result"))
    else:
        ok = bool(ablation_effect_top >= ablation_effect_random and ablation_fidelity > FIDELITY_MIN)
        crit.append(Criterion("ablation effect >= random with fidelity", ok,
                              f"top-k |delta| {ablation_effect_top:.4f} vs random-k {ablation_effect_random:.4f}; "
                              f"min fidelity {ablation_fidelity:.4f} (need > {FIDELITY_MIN})"))
    return Verdict(crit)
