"""The result of :func:`~perturblab.interpret.pipeline.run_interpretation`: tables, summary, per-layer results as
DataFrames, and the results back in an AnnData (:meth:`InterpretResult.to_adata`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import InputError, UnknownNameError

__all__ = ["InterpretResult"]


@dataclass
class InterpretResult:
    """Tables of a run (also written to ``out_dir``), the registry table and the verdict.

    ``layer_paths`` maps each layer to its stored attention (``per_head`` (H, G, G)) in the run folder (empty for a
    run without ``out``). :meth:`layer_summaries` and :meth:`layer_matrix` give the per-layer results as
    DataFrames; :meth:`to_adata` writes the results into an AnnData (issue 12, scanpy's ``key_added``).
    """

    out_dir: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    layer_paths: dict[int, Path] = field(default_factory=dict)

    def layer_summaries(self) -> pd.DataFrame:
        """One row per layer summary (mean / max over heads) and reference: reference-recovery metrics and the
        mean perturbation AUROC (over rankable perturbations) of that layer summary.

        Returns
        -------
        pandas.DataFrame
            ``score, layer, head, reference, n_positive, auroc, auprc, epr, topk_f1, mean_perturbation_auroc,
            n_perturbations``.
        """
        rec = self.tables.get("reference_recovery", pd.DataFrame())
        if rec.empty:
            return pd.DataFrame(columns=["score", "layer", "head", "reference", "n_positive", "auroc", "auprc", "epr",
                                         "topk_f1", "mean_perturbation_auroc", "n_perturbations"])
        att = rec[rec["kind"].eq("attention") & rec["head"].isin(["mean", "max"])]
        cols = [c for c in ("score", "layer", "head", "reference", "n_positive", "auroc", "auprc", "epr", "topk_f1")
                if c in att.columns]
        out = att[cols].copy()
        pp = self.tables.get("perturbation_auroc", pd.DataFrame())
        if len(pp):
            m = pp.groupby("score")["auroc"].agg(mean_perturbation_auroc="mean", n_perturbations="count")
            out = out.join(m, on="score")
        else:
            out["mean_perturbation_auroc"], out["n_perturbations"] = np.nan, 0
        return out.reset_index(drop=True)

    def layer_matrix(self, layer: int, summary: str = "mean") -> pd.DataFrame:
        """The attention of ``layer`` summarised over heads (``"mean"`` / ``"max"``, or a head index) as a genes x
        genes DataFrame (rows: source gene, columns: target gene), read from the run folder.

        Raises
        ------
        InputError
            If the run kept no folder (``out=None``), or for an unknown layer or summary.
        """
        from .layer_pass import load_layer

        if not self.layer_paths:
            raise InputError("this run kept no attention on disk (out=None); rerun with an output folder")
        if int(layer) not in self.layer_paths:
            raise InputError(f"layer {layer} is not in this run (layers {sorted(self.layer_paths)})")
        la = load_layer(self.layer_paths[int(layer)], layer=int(layer))
        if summary == "mean":
            m = la.head_mean
        elif summary == "max":
            m = la.head_max
        else:
            try:
                m = la.per_head[int(summary)]
            except (ValueError, IndexError):
                raise InputError(f"summary must be 'mean', 'max' or a head index below {la.n_heads}, got "
                                 f"{summary!r}") from None
        return pd.DataFrame(np.asarray(m), index=pd.Index(la.genes, name="source"),
                            columns=pd.Index(la.genes, name="target"))

    def to_adata(self, adata, key_added: str = "interpret", tables: Sequence[str] | None = None):
        """Write the run's results into ``adata.uns[key_added]`` (h5ad-writable) and return ``adata``.

        Keys: ``tables`` (a dict of DataFrames: every non-empty table of the run, or those named in ``tables``;
        object columns as strings), ``registry`` and ``verdict`` (DataFrames), ``layer_summaries``
        (:meth:`layer_summaries`), ``verdict_passed`` (bool), ``attention_score_tested`` (str) and ``summary``
        (the run's ``summary.json`` as JSON text). An earlier entry under ``key_added`` is replaced.

        Examples
        --------
        >>> res = interpret.run_interpretation(adata, "results/interpret", cfg)  # doctest: +SKIP
        >>> res.to_adata(adata).uns["interpret"]["verdict"]  # doctest: +SKIP
        """
        import json

        from .._anndata import writable

        names = list(self.tables) if tables is None else list(tables)
        unknown = [n for n in names if n not in self.tables]
        if unknown:
            raise UnknownNameError("interpret table", unknown[0], tuple(self.tables))
        chosen = {n: writable(self.tables[n]) for n in names
                  if n not in ("registry", "verdict") and isinstance(self.tables[n], pd.DataFrame)
                  and len(self.tables[n])}
        adata.uns[key_added] = {
            "tables": chosen,
            "registry": writable(self.tables.get("registry", pd.DataFrame())),
            "verdict": writable(self.tables.get("verdict", pd.DataFrame())),
            "layer_summaries": writable(self.layer_summaries()),
            "verdict_passed": bool(self.summary.get("verdict", {}).get("passed", False)),
            "attention_score_tested": str(self.summary.get("attention_score_tested", "")),
            "summary": json.dumps(self.summary, default=str),
        }
        return adata
