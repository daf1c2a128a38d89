"""Statistics registry and the four-criterion verdict (Kendiukhov 2026, section 11).

Every test an analysis runs is added to a :class:`Registry` with its section, hypothesis, test name, N, effect size
and raw p. Benjamini-Hochberg adjustment (statsmodels ``multipletests``) runs over the confirmatory tests as one
family; exploratory tests are adjusted within their own family and never count towards a claim; tests over fewer
units than the run's minimum are flagged ``not evaluable`` and left out of both families. :func:`verdict` applies
the anchor's pass/fail criteria, as restated by the review of issue 13:

(a) attention beats every gene-level baseline (mean, variance, 1 - dropout) at ranking knock-out targets: mean
    paired delta AUROC > 0 at BH-adjusted p < alpha;
(b) adding attention to gene features raises the AUROC under every model and split design (delta CI above 0),
    confirmed on AUPRC and top-k recall when the split-design analysis ran (the joint cross-gene x
    cross-perturbation split with its AUPRC and top-k recall deltas, :func:`~perturblab.interpret.splits.split_design`);
(c) residualised on gene features, the reference AUROC keeps at least 80% of its above-chance signal
    (:func:`retained_fraction`, OLS residualiser primary, GBDT secondary), and the degree-preserving null gives
    z > 3 (raised to the Bonferroni-equivalent threshold when the tested layer was chosen among candidates);
(d) ablating the top-ranked heads degrades the outcome monotonically in k and more than entropy-matched random
    heads at matched k (signed degradation, paired over perturbations: improvements are not effects);
    uniform-attention and MLP-zero interventions at the regulatory layers cause significant drops; the
    hidden-state cosine shift (maximum over layers) of every top-k ablation exceeds 0.02.

Criteria (a), (b) and (d) rest on perturbations; with fewer than ``min_perturbations`` rankable perturbations they
are ``not evaluable`` (the n is given), never printed as if meaningful.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..exceptions import InputError
from ._types import records

if TYPE_CHECKING:
    from .ablation import AblationEffects

__all__ = [
    "FIDELITY_MIN",
    "MIN_PERTURBATIONS",
    "NULL_Z_MIN",
    "RETAINED_MIN",
    "Criterion",
    "Registry",
    "Verdict",
    "bonferroni_z",
    "retained_fraction",
    "verdict",
]

FIDELITY_MIN = 0.02
RETAINED_MIN = 0.8
NULL_Z_MIN = 3.0
#: Default minimum number of rankable perturbations for the perturbation-based criteria: the smallest n at which
#: a two-sided Wilcoxon signed-rank test can reach p < 0.05 (n = 6: 2 / 2^6 = 0.031).
MIN_PERTURBATIONS = 6


def retained_fraction(raw_auroc: float, residualised_auroc: float) -> float:
    """Share of the above-chance reference signal that survives residualisation.

    ``(AUROC_residualised - 0.5) / (AUROC_raw - 0.5)`` when the raw AUROC is above 0.5; **0** when it is at or
    below 0.5 (there is no above-chance signal to retain, so criterion (c) cannot pass). The plain ratio of
    Kendiukhov 2026 changes meaning below 0.5: raw 0.45 -> residualised 0.40 gives 2.0, "200% retained".
    Above 0.5 the value can be negative (the residual ranks below chance) or above 1 (residualisation helped).
    NaN when either AUROC is NaN.

    Examples
    --------
    >>> retained_fraction(0.70, 0.66)
    0.8
    >>> retained_fraction(0.45, 0.40)
    0.0
    """
    raw, res = float(raw_auroc), float(residualised_auroc)
    if np.isnan(raw) or np.isnan(res):
        return float("nan")
    if raw <= 0.5:
        return 0.0
    return round((res - 0.5) / (raw - 0.5), 12)


def bonferroni_z(z: float, m: int) -> float:
    """The one-sided z threshold with the Bonferroni-adjusted tail probability ``P(Z > z) / m``.

    ``bonferroni_z(3, 1) == 3``; ``bonferroni_z(3, 8)`` is about 3.62 (8 candidate layer summaries).
    """
    from scipy.stats import norm

    if m < 1:
        raise InputError(f"m must be >= 1, got {m}")
    return float(norm.isf(norm.sf(z) / m))


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
    evaluable: bool
    key: str


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
            effect: str = "", statistic: float = float("nan"), confirmatory: bool = True, claim: str = "",
            evaluable: bool = True, key: str = "") -> None:
        """Record one test. ``p`` must be in [0, 1] or NaN (test not computable, e.g. N too small).

        ``evaluable=False`` marks a test run on fewer units than the run's minimum: it is flagged ``not
        evaluable`` and left out of the BH families. ``key`` is a free identifier to find the row again.
        """
        p = float(p)
        if not (np.isnan(p) or 0.0 <= p <= 1.0):
            raise InputError(f"p-value of {hypothesis!r} is {p}, outside [0, 1]")
        self._tests.append(_Test(section, hypothesis, test, int(n), float(effect_size), effect, float(statistic), p,
                                 bool(confirmatory), claim, bool(evaluable), key))

    def table(self) -> pd.DataFrame:
        """The registry: one row per test with ``p_bh`` (BH within the confirmatory / exploratory family of the
        evaluable tests) and ``flag`` (``significant``, ``not significant``, ``exploratory``, ``not evaluable``
        or ``not computable``)."""
        from statsmodels.stats.multitest import multipletests

        cols = list(_Test.__dataclass_fields__)
        df = pd.DataFrame([asdict(t) for t in self._tests], columns=cols)
        df["p_bh"] = np.nan
        for conf in (True, False):
            sel = (df["confirmatory"] == conf) & df["p"].notna() & df["evaluable"].astype(bool)
            if sel.any():
                df.loc[sel, "p_bh"] = multipletests(df.loc[sel, "p"].to_numpy(float), method="fdr_bh")[1]
        df["flag"] = np.select(
            [df["p"].isna(), ~df["evaluable"].astype(bool), ~df["confirmatory"].astype(bool), df["p_bh"] < self.alpha],
            ["not computable", "not evaluable", "exploratory", "significant"], default="not significant")
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
    """One verdict criterion: ``passed`` is None when it could not be evaluated (counts as not passed);
    ``n`` is the number of units it rests on (perturbations; None where it rests on references)."""

    name: str
    passed: bool | None
    evidence: str
    n: int | None = None

    @property
    def status(self) -> str:
        """``"pass"``, ``"fail"`` or ``"not evaluable"``."""
        return {True: "pass", False: "fail", None: "not evaluable"}[self.passed]


@dataclass
class Verdict:
    """The four criteria and the overall pass (all four passed)."""

    criteria: list[Criterion] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.criteria) and all(c.passed is True for c in self.criteria)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{**asdict(c), "status": c.status} for c in self.criteria],
                            columns=["name", "status", "passed", "n", "evidence"])

    def to_dict(self) -> dict:
        return {"passed": self.passed, "criteria": [{**asdict(c), "status": c.status} for c in self.criteria]}


NAMES = ("(a) beats every gene baseline", "(b) delta AUROC CI > 0 under all splits",
         "(c) signal survives residualisation and degree null", "(d) causal: ablation beats random heads")


def _not_evaluable(n_perturbations: int | None, min_perturbations: int) -> str | None:
    if n_perturbations is not None and n_perturbations < min_perturbations:
        return (f"not evaluable: {n_perturbations} rankable perturbation(s) with DE targets (minimum "
                f"{min_perturbations})")
    return None


def _criterion_a(comps: pd.DataFrame | None, alpha: float, n: int | None, gate: str | None) -> Criterion:
    name = NAMES[0]
    if gate:
        return Criterion(name, None, gate, n)
    if comps is None or len(comps) == 0:
        return Criterion(name, None, "no baseline comparison available", n)
    comps = comps.copy()
    if "p_bh" not in comps.columns:
        from statsmodels.stats.multitest import multipletests

        ok = comps["p"].notna()
        comps["p_bh"] = np.nan
        if ok.any():
            comps.loc[ok, "p_bh"] = multipletests(comps.loc[ok, "p"].to_numpy(float), method="fdr_bh")[1]
    passed = bool(((comps["delta"] > 0) & (comps["p_bh"] < alpha)).all())
    ev = "; ".join(f"vs {r.b}: delta {r.delta:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}], BH p {r.p_bh:.3g}"
                   if "ci_high" in comps.columns else f"vs {r.b}: delta {r.delta:+.3f}, BH p {r.p_bh:.3g}"
                   for r in records(comps))
    return Criterion(name, passed, f"{ev} (need delta > 0 at BH p < {alpha})", n)


def _criterion_b(inc: pd.DataFrame | None, n: int | None, gate: str | None,
                 splits: pd.DataFrame | None = None) -> Criterion:
    name = NAMES[1]
    if gate:
        return Criterion(name, None, gate, n)
    if inc is None or len(inc) == 0 or not (inc["features"] == "gene + attention").any():
        return Criterion(name, None, "no incremental-value result", n)
    rows = inc[inc["features"] == "gene + attention"]
    designs = (splits[splits["features"] == "gene + attention"] if splits is not None and len(splits)
               else pd.DataFrame(columns=["model", "split", "delta_auroc", "delta_auroc_ci_low", "delta_auroc_ci_high",
                                          "delta_auprc", "delta_topk_recall"]))
    both = pd.concat([rows, designs], ignore_index=True)
    confirmed = bool(((designs["delta_auprc"] > 0) & (designs["delta_topk_recall"] > 0)).all())
    passed = bool((both["delta_auroc_ci_low"] > 0).all()) and confirmed
    ev = "; ".join(f"{r.model}/{r.split}: {r.delta_auroc:+.4f} [{r.delta_auroc_ci_low:+.4f}, "
                   f"{r.delta_auroc_ci_high:+.4f}]" for r in records(both))
    if len(designs):
        ev += "; confirmation (delta AUPRC, delta top-k recall > 0): " + "; ".join(
            f"{r.model}/{r.split}: {r.delta_auprc:+.4f}, {r.delta_topk_recall:+.4f}" for r in records(designs))
    return Criterion(name, passed, ev, n)


def _criterion_c(resid, degree_null_z, null_z_min: float) -> Criterion:
    name = NAMES[2]
    if isinstance(resid, pd.DataFrame):
        r = resid
        if "residualiser" in r.columns:
            primary = r[r["residualiser"] == "ols"]
            secondary = r[r["residualiser"] != "ols"]
        else:
            primary, secondary = r, r.iloc[:0]
        kept = primary["retained_fraction"].dropna()
        retained = float(kept.min()) if len(kept) else None
        ev_r = "; ".join(f"{x.reference}: {x.auroc:.3f} -> {x.auroc_residualised:.3f} (retained "
                         f"{x.retained_fraction:.2f})" for x in records(primary))
        ev_s = "; ".join(f"{x.reference}: retained {x.retained_fraction:.2f}" for x in records(secondary))
    else:
        retained = None if resid is None else float(resid)
        ev_r, ev_s = (f"retained {retained}" if retained is not None else ""), ""
    if degree_null_z is None:
        z = None
    else:
        zs = np.atleast_1d(np.asarray(degree_null_z, dtype=float))
        zs = zs[np.isfinite(zs)]
        z = float(zs.min()) if zs.size else None
    if retained is None or z is None or not np.isfinite(retained):
        return Criterion(name, None, f"not evaluable: residualisation {ev_r or 'missing'}; degree-null z {z}")
    passed = bool(retained >= RETAINED_MIN and z > null_z_min)
    ev = (f"OLS (primary): {ev_r}; min retained {retained:.2f} (need >= {RETAINED_MIN}; 0 when raw AUROC <= 0.5)"
          + (f"; GBDT (secondary): {ev_s}" if ev_s else "")
          + f"; degree-null z {z:.2f} (need > {null_z_min:.2f})")
    return Criterion(name, passed, ev)


def _criterion_d(ab: AblationEffects | None, alpha: float, n: int | None, gate: str | None) -> Criterion:
    name = NAMES[3]
    if gate:
        return Criterion(name, None, gate, n)
    if ab is None or not ab.ks:
        return Criterion(name, None, "no top-k / random-k ablation result", n)
    parts, ok, missing = [], True, []
    tops = [ab.top.get(k, np.nan) for k in ab.ks]
    rnds = [ab.random.get(k, np.nan) for k in ab.ks]
    if not np.isfinite(tops).all():
        missing.append("top-k degradation")
    else:
        mono = bool(np.all(np.diff(tops) >= -1e-12) and tops[-1] > 0)
        ok &= mono
        parts.append("top-k degradation " + ", ".join(f"k={k}: {t:+.4f}" for k, t in zip(ab.ks, tops))
                     + (" (monotone, > 0)" if mono else " (NOT monotone increasing and > 0)"))
    if not np.isfinite(rnds).all() or not np.isfinite(ab.top_vs_random_p):
        missing.append("top vs random")
    else:
        beats = bool(np.all(np.asarray(tops) >= np.asarray(rnds)) and ab.top_vs_random_p < alpha)
        ok &= beats
        parts.append("random-k (entropy-matched) " + ", ".join(f"k={k}: {r:+.4f}" for k, r in zip(ab.ks, rnds))
                     + f"; top - random paired over {ab.n} perturbations: {ab.top_vs_random_effect:+.4f}, one-sided "
                     f"Wilcoxon p {ab.top_vs_random_p:.3g} (need >= random at every k and p < {alpha})")
    for kind in ("uniform", "mlp"):
        t = ab.layer_tests.get(kind)
        if t is None or not np.isfinite(t.get("p", np.nan)):
            missing.append(f"{kind} at the regulatory layers {ab.regulatory_layers}")
            continue
        sig = bool(t["effect"] > 0 and t["p"] < alpha)
        ok &= sig
        parts.append(f"{kind} at layers {t['layers']}: degradation {t['effect']:+.4f}, p {t['p']:.3g} over {t['n']}")
    if not np.isfinite(ab.fidelity_min):
        missing.append("fidelity")
    else:
        fid = bool(ab.fidelity_min > FIDELITY_MIN)
        ok &= fid
        parts.append(f"min top-k hidden-state shift (max over layers) {ab.fidelity_min:.4f} (need > {FIDELITY_MIN})")
    if missing:
        # a failed part decides; otherwise what is missing makes the criterion not evaluable
        return Criterion(name, False if not ok else None,
                         "; ".join([*parts, f"not evaluable: {', '.join(missing)}"]), n)
    return Criterion(name, bool(ok), "; ".join(parts), n)


def verdict(
    baseline_comparisons: pd.DataFrame | None,
    incremental: pd.DataFrame | None,
    residualisation: pd.DataFrame | float | None,
    degree_null_z: float | Sequence[float] | np.ndarray | None,
    ablation: AblationEffects | None = None,
    *,
    n_perturbations: int | None = None,
    min_perturbations: int = MIN_PERTURBATIONS,
    alpha: float = 0.05,
    null_z_min: float = NULL_Z_MIN,
    splits: pd.DataFrame | None = None,
) -> Verdict:
    """Apply the four criteria (see the module docstring).

    Parameters
    ----------
    baseline_comparisons
        Rows of :func:`~perturblab.interpret.perturbation.compare_scores` of the tested attention score (``a``)
        against each gene-level baseline (``b``; the TF out-degree negative control excluded): ``b, delta,
        ci_low, ci_high, p`` and ``p_bh`` (BH-adjusted over the run's confirmatory family; computed over these
        rows when absent).
    incremental
        :func:`~perturblab.interpret.incremental.incremental_value` table; rows with ``features ==
        "gene + attention"`` are checked.
    residualisation
        Rows of the tested score: ``reference, residualiser ("ols" primary, "gbdt" secondary), auroc,
        auroc_residualised, retained_fraction`` (:func:`retained_fraction`); or one retained fraction.
    degree_null_z
        z-score(s) of the tested score against the degree-preserving null (the smallest is used).
    ablation
        :class:`~perturblab.interpret.ablation.AblationEffects` of the head-ablation experiment.
    n_perturbations, min_perturbations
        Rankable perturbations (with DE targets) and the minimum below which (a), (b), (d) are not evaluable.
    alpha
        Significance level (BH-adjusted for (a)).
    null_z_min
        z threshold of the degree-preserving null (3; :func:`bonferroni_z` when the layer was selected).
    splits
        :func:`~perturblab.interpret.splits.split_design` table (the ``splits`` analysis), or None: its
        ``"gene + attention"`` rows join (b), every split design's delta AUROC CI above 0 and its delta AUPRC
        and delta top-k recall above 0.

    Returns
    -------
    Verdict
    """
    gate = _not_evaluable(n_perturbations, min_perturbations)
    return Verdict([
        _criterion_a(baseline_comparisons, alpha, n_perturbations, gate),
        _criterion_b(incremental, n_perturbations, gate, splits),
        _criterion_c(residualisation, degree_null_z, null_z_min),
        _criterion_d(ablation, alpha, n_perturbations, gate),
    ])
