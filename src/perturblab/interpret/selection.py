"""Which attention layer summary is tested: pre-specified, or chosen by nested cross-validation over perturbations.

A model with ``L`` layers offers ``2 L`` candidate edge scores (mean and max over each layer's heads). Choosing the
best one on the perturbations it is then tested on (``argmax`` of the mean perturbation AUROC) biases every test
in favour of attention. Two honest alternatives:

* **pre-specified** (:func:`prespecified_score`): the layer and summary are fixed before looking at the data,
  e.g. ``"last"`` + ``"mean"`` (Kendiukhov 2026 finds regulation in late layers); no correction needed.
* **nested cross-validation** (:func:`nested_cv_selection`, the default of the pipeline): the rankable
  perturbations are split into folds; for each fold the candidate with the best mean AUROC on the *other*
  folds is chosen, and the fold's perturbations are scored with it. Every perturbation-based test (baselines,
  incremental value) then uses these out-of-fold choices, so no perturbation ever helped choose the layer it is
  tested with. The analyses that need one matrix (reference-recovery confounds and nulls, CSSI) use the
  candidate chosen on all perturbations; as that choice was made among ``2 L`` candidates, their confirmatory
  p-values are multiplied by ``2 L`` (Bonferroni) and the degree-null z threshold of criterion (c) is raised
  to the Bonferroni-equivalent (:func:`~perturblab.interpret.stats.bonferroni_z`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..exceptions import InputError, UnknownNameError
from .edges import EdgeScores

__all__ = [
    "SELECTIONS",
    "SUMMARIES",
    "LayerSelection",
    "candidate_names",
    "nested_cv_selection",
    "prespecified_score",
    "selected_scores",
]

#: Layer-selection methods.
SELECTIONS = ("nested-cv", "prespecified")
#: Layer summaries over heads.
SUMMARIES = ("mean", "max")


def candidate_names(n_layers: int) -> list[str]:
    """The ``2 L`` candidate layer summaries, ``"attention L<l> <mean|max>"``, in layer order."""
    return [f"attention L{layer} {s}" for layer in range(n_layers) for s in SUMMARIES]


def parse_layer(layer: str | int, n_layers: int) -> int:
    """A layer given as ``"last"``, ``"first"``, an index (``"3"``) or a negative index (``"-2"``: second last).

    Raises
    ------
    InputError
        For a layer outside the model or an unreadable value.
    """
    text = str(layer).strip().lower()
    if text == "last":
        return n_layers - 1
    if text == "first":
        return 0
    try:
        idx = int(text)
    except ValueError:
        raise InputError(f"layer must be 'last', 'first' or a layer index, got {layer!r}") from None
    if idx < 0:
        idx += n_layers
    if not 0 <= idx < n_layers:
        raise InputError(f"layer {layer!r} is outside the model's layers 0..{n_layers - 1}; give one of them or 'last'")
    return idx


def prespecified_score(layer: str | int, summary: str, n_layers: int) -> str:
    """Name of the pre-specified candidate, e.g. ``prespecified_score("last", "mean", 4) == "attention L3 mean"``."""
    if summary not in SUMMARIES:
        raise UnknownNameError("layer summary", summary, SUMMARIES)
    return f"attention L{parse_layer(layer, n_layers)} {summary}"


@dataclass
class LayerSelection:
    """How the tested attention score was chosen.

    Attributes
    ----------
    method
        ``"prespecified"`` or ``"nested-cv"``.
    final
        The candidate used where one matrix is needed (pre-specified, or chosen on all rankable perturbations).
    candidates
        The candidates considered.
    assignment
        ``{perturbation: candidate}``: the out-of-fold choice for each rankable perturbation (nested CV; empty
        for pre-specification).
    folds
        One row per (fold, perturbation): ``fold, perturbation, selected, train_auroc`` (the selected candidate's
        mean AUROC on the other folds).
    bonferroni_m
        Number of candidates the final choice was made among (1 when pre-specified).
    note
        One sentence for the report (e.g. why nested CV fell back to the pre-specified layer).
    """

    method: str
    final: str
    candidates: list[str]
    assignment: dict[str, str] = field(default_factory=dict)
    folds: pd.DataFrame = field(default_factory=pd.DataFrame)
    bonferroni_m: int = 1
    note: str = ""

    @property
    def tested_name(self) -> str:
        """Name of the tested score in the perturbation tables."""
        return "attention (nested CV)" if self.method == "nested-cv" else self.final

    def describe(self) -> str:
        """One sentence for the report and the command line."""
        if self.method == "prespecified":
            return f"pre-specified layer summary {self.final} (no selection on the data){self.note}"
        counts = pd.Series(self.assignment).value_counts()
        chosen = ", ".join(f"{c} in {n} of {len(self.assignment)} perturbations" for c, n in counts.items())
        return (f"nested cross-validation over {len(self.assignment)} perturbations in "
                f"{self.folds['fold'].nunique() if len(self.folds) else 0} folds among {len(self.candidates)} "
                f"candidate layer summaries (out-of-fold choices: {chosen}); analyses needing one matrix use "
                f"{self.final} (chosen on all perturbations), their confirmatory p-values Bonferroni-corrected "
                f"x{self.bonferroni_m}")

    def to_dict(self) -> dict:
        return {"method": self.method, "final": self.final, "tested_score": self.tested_name,
                "candidates": self.candidates, "assignment": self.assignment, "bonferroni_m": self.bonferroni_m,
                "description": self.describe()}


def nested_cv_selection(per_perturbation: pd.DataFrame, candidates: Sequence[str], fallback: str,
                        n_folds: int = 5, random_state: int = 0) -> LayerSelection:
    """Choose the layer summary by cross-validation over perturbations (see the module docstring).

    Parameters
    ----------
    per_perturbation
        ``score, perturbation, auroc`` for every candidate (from
        :func:`~perturblab.interpret.perturbation.perturbation_auroc`).
    candidates
        Candidate score names (ties: the first in this order).
    fallback
        The pre-specified candidate, used when fewer than 2 perturbations have a finite AUROC.
    n_folds
        Folds (at most the number of perturbations; leave-one-out when they are fewer).
    random_state
        Seed of the fold assignment.

    Returns
    -------
    LayerSelection

    Examples
    --------
    >>> sel = nested_cv_selection(per_pert, candidate_names(4), "attention L3 mean")  # doctest: +SKIP
    >>> sel.assignment  # {perturbation: candidate chosen without it}  # doctest: +SKIP
    """
    candidates = list(candidates)
    if not candidates:
        raise InputError("no candidate layer summaries")
    wide = (per_perturbation[per_perturbation["score"].isin(candidates)]
            .pivot_table(index="perturbation", columns="score", values="auroc", dropna=False)
            .reindex(columns=candidates))
    wide = wide[wide.notna().any(axis=1)]
    perts = np.array(sorted(wide.index.astype(str)))
    if perts.size < 2:
        return LayerSelection("prespecified", fallback, candidates, note=(
            f" (nested cross-validation needs >= 2 perturbations with DE targets, found {perts.size}: fell back to "
            "the pre-specified layer)"))
    k = min(int(n_folds), perts.size)
    rng = np.random.default_rng(random_state)
    fold_of = np.empty(perts.size, dtype=int)
    fold_of[rng.permutation(perts.size)] = np.arange(perts.size) % k
    wide = wide.loc[perts]
    rows, assignment = [], {}
    for f in range(k):
        train = wide.loc[perts[fold_of != f]].mean(axis=0, skipna=True)
        choice = _argmax(train, candidates)
        for p in perts[fold_of == f]:
            assignment[str(p)] = choice
            rows.append({"fold": f, "perturbation": str(p), "selected": choice, "train_auroc": float(train[choice])})
    final = _argmax(wide.mean(axis=0, skipna=True), candidates)
    return LayerSelection("nested-cv", final, candidates, assignment, pd.DataFrame(rows), len(candidates))


def _argmax(means: pd.Series, candidates: Sequence[str]) -> str:
    vals = np.array([means.get(c, np.nan) for c in candidates], dtype=float)
    if not np.isfinite(vals).any():
        return candidates[-1]
    return candidates[int(np.nanargmax(vals))]


def selected_scores(selection: LayerSelection,
                    load: Mapping[str, EdgeScores] | Callable[[str], EdgeScores]) -> tuple[EdgeScores, EdgeScores]:
    """The tested score and the final single-matrix score.

    Parameters
    ----------
    selection
        From :func:`nested_cv_selection` or a pre-specified :class:`LayerSelection`.
    load
        ``name -> EdgeScores`` (a mapping or a callable) giving a candidate's matrix.

    Returns
    -------
    (tested, final)
        ``final`` is the candidate :attr:`LayerSelection.final`. ``tested`` equals it when pre-specified; under
        nested CV it is one matrix named ``"attention (nested CV)"`` whose row of each rankable perturbed gene
        comes from that perturbation's out-of-fold candidate (the rows the perturbation-first evaluation and the
        incremental-value pairs read) and whose other rows come from ``final``. Rows of different candidates can
        differ in scale (a mean vs a max over heads): the per-perturbation AUROC ranks within a row and is not
        affected; the incremental-value classifiers see the rows as they are (the choice rarely differs between
        folds).
    """
    get = load.__getitem__ if isinstance(load, Mapping) else load
    final = get(selection.final)
    if selection.method != "nested-cv":
        return final, final
    M = np.array(final.matrix, dtype=np.float64)
    index = {g: i for i, g in enumerate(final.genes)}
    by_choice: dict[str, list[str]] = {}
    for p, c in selection.assignment.items():
        by_choice.setdefault(c, []).append(p)
    for c, perts in by_choice.items():
        src = final if c == selection.final else get(c)
        rows = [index[p] for p in perts if p in index]
        M[rows] = src.matrix[rows]
    return EdgeScores(selection.tested_name, M, final.genes, "attention", None, "selected"), final
