"""In-silico perturbation of a gene-token model, scored against measured knock-out effects.

Geneformer's in-silico perturbation (Theodoris et al. 2023, ``in_silico_perturber.py``) deletes a gene from a
cell's input (its token removed, the following tokens shift up) or overexpresses it (its token moved to the
front of the rank-value sequence), and reads the shift of the cell and gene embeddings. The same is done here
for any :class:`~perturblab.interpret.models.GeneTokenModel`, on the token batches of its own tokenizer:

* ``delete`` - the gene's token is removed (the rest keep their order; the freed slot becomes padding);
* ``overexpress`` - rank-value models (no token values, Geneformer): the token moves to the first gene
  position; value models (scGPT bins, the own model's log1p values): its value is set to the cell's largest
  gene value. Only cells that express the gene are perturbed (Geneformer instead inserts an absent gene; left
  out here so that both model kinds are treated alike).

Read-outs per perturbed cell, at a hidden state (default: the last layer): the cell-embedding shift
``1 - cos`` of the mean over the other genes' tokens, and for every other gene ``j`` of the cell its
embedding shift ``1 - cos(h_j before, h_j after)`` and, for models whose output is a predicted expression per
token (scGPT, the own model), the expression shift ``out_j after - out_j before``. :func:`score_in_silico`
compares the per-gene shifts of a knock-out with its measured DE targets (Papalexi 2021 CRISPR-KO:
:func:`~perturblab.interpret.perturbation.de_targets`) by the predict wing's metrics, re-implemented here
(the interpret wing does not import :mod:`perturblab.predict`): AUROC of the DE targets, DE overlap
(cell-eval's ``overlap_at_k`` with ``k`` = number of DE targets), Pearson delta (predicted expression change
vs measured log2 fold change) and direction match on the DE targets, beside gene-level baselines (control
mean, variance, detection), which rank candidate targets the same way for every knock-out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..exceptions import InputError, MissingKeyError
from ._types import Genes
from .metrics import auroc
from .models.base import GeneTokenModel
from .registry_rows import registry_row

__all__ = [
    "MODES",
    "direction_match",
    "in_silico_perturbation",
    "overlap_at_k",
    "pearson_delta",
    "perturb_batch",
    "score_in_silico",
    "score_in_silico_rows",
]

MODES = ("delete", "overexpress")


def perturb_batch(batch, gene_pos: int, mode: str = "delete"):
    """A copy of ``batch`` with gene ``gene_pos`` (its position in the tokenised gene list) deleted or
    overexpressed in every cell that has its token (module docstring).

    Returns
    -------
    (TokenBatch, has_gene ``(B,)`` bool tensor)
    """
    import torch

    from .tokenizers import TokenBatch

    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    gi = batch.gene_index
    hit = gi == gene_pos
    has = hit.any(dim=1)
    ids, mask, index = batch.input_ids.clone(), batch.attention_mask.clone(), gi.clone()
    values = None if batch.values is None else batch.values.clone()
    gene_tok = None if batch.gene_token is None else batch.gene_token.clone()
    if mode == "delete":
        keep = ~hit
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept tokens first, order preserved
        ids, mask, index = (torch.gather(t, 1, order) for t in (ids, mask, index))
        values = None if values is None else torch.gather(values, 1, order)
        gene_tok = None if gene_tok is None else torch.gather(gene_tok, 1, order)
        n_keep = keep.sum(1, keepdim=True)
        freed = torch.arange(ids.shape[1], device=ids.device)[None, :] >= n_keep
        pad = batch.input_ids[~batch.attention_mask]
        if pad.numel():
            ids = torch.where(freed, pad[0], ids)
        mask = mask & ~freed
        index = torch.where(freed, torch.full_like(index, -1), index)
        if gene_tok is not None:
            gene_tok = gene_tok & ~freed
    elif values is None:  # rank-value model: move the token to the first gene position
        gmask = batch.gene_token_mask
        for b in torch.nonzero(has).flatten().tolist():
            pos = int(torch.nonzero(hit[b])[0])
            first = int(torch.nonzero(gmask[b])[0])
            if pos == first:
                continue
            perm = torch.arange(ids.shape[1], device=ids.device)
            perm[first : pos + 1] = torch.cat([perm[pos : pos + 1], perm[first:pos]])
            ids[b], index[b] = ids[b, perm], index[b, perm]
            if gene_tok is not None:
                gene_tok[b] = gene_tok[b, perm]
    else:  # value model: the cell's largest gene value
        gmask = batch.gene_token_mask
        top = torch.where(gmask, values, torch.full_like(values, -torch.inf)).max(dim=1).values
        values = torch.where(hit, top[:, None].expand_as(values), values)
    out = TokenBatch(ids, mask, index, values, batch.cell_index, gene_tok)
    return out, has


def _read(model: GeneTokenModel, batch, state: int, want_logits: bool):
    import torch

    with torch.no_grad():
        out = model.forward(batch, output_attentions=False, output_logits=want_logits)
    h = out.hidden_states[state]
    logits = out.logits if want_logits and out.logits is not None and out.logits.dim() == 2 else None
    return h, logits


def in_silico_perturbation(model: GeneTokenModel, adata, genes: Genes, perturb: Sequence[str],
                           mode: str = "delete", state: int = -1, batch_size: int = 32,
                           min_cells: int = 5) -> pd.DataFrame:
    """Delete or overexpress each gene of ``perturb`` in every cell expressing it and read the shifts.

    Parameters
    ----------
    model
        A :class:`~perturblab.interpret.models.GeneTokenModel`.
    adata
        Cells x genes in the adapter's input representation (raw counts for the bundled adapters), typically
        the control cells.
    genes
        ``(G,)`` genes under study (tokenised); the read-outs are over these genes.
    perturb
        Genes to perturb (a subset of ``genes``), e.g. the knocked-out genes of the screen.
    mode
        ``"delete"`` or ``"overexpress"``.
    state
        Hidden-state index of the read-out (0 = embeddings, -1 = last layer).
    batch_size
        Cells per forward.
    min_cells
        Perturbations expressed in fewer cells get no rows (logged in no row; ``n_cells_perturbed`` shows the rest).

    Returns
    -------
    One row per (perturbation, gene): ``perturbation, mode, gene, n_cells`` (perturbed cells in which the gene
    is a token), ``embedding_shift`` (mean ``1 - cos``), ``expression_shift`` (mean predicted change; NaN for
    models without an expression output, e.g. Geneformer), ``cell_shift`` (mean cell-embedding shift of the
    perturbation) and ``n_cells_perturbed``.

    Examples
    --------
    >>> shifts = in_silico_perturbation(model, ctrl, genes, perturb=["STAT1", "JAK2"])  # doctest: +SKIP
    >>> score_in_silico(shifts, de, features=feats)  # doctest: +SKIP
    """
    import torch

    genes = np.asarray(genes, dtype=str)
    pos = {g: i for i, g in enumerate(genes)}
    missing = [g for g in perturb if g not in pos]
    if missing:
        raise InputError(f"genes to perturb {missing} are not among the genes under study; add them to genes")
    G = genes.size
    targets = [pos[g] for g in dict.fromkeys(perturb)]
    acc: dict[int, dict[str, Any]] = {
        p: {"emb": torch.zeros(G, dtype=torch.float64), "expr": torch.zeros(G, dtype=torch.float64),
            "cnt": torch.zeros(G, dtype=torch.float64), "cell": []} for p in targets}
    want_logits: bool | None = None
    for batch in model.tokenize(adata, genes, batch_size=batch_size):  # one batch in memory at a time
        batch = batch.to(model.device)
        h0, lg0 = _read(model, batch, state, want_logits is not False)
        if want_logits is None:
            want_logits = lg0 is not None
        for p in targets:
            pb, has = perturb_batch(batch, p, mode)
            if not bool(has.any()):
                continue
            h1, lg1 = _read(model, pb, state, want_logits)
            a = acc[p]
            for b in torch.nonzero(has).flatten().tolist():
                gi0, gi1 = batch.gene_index[b], pb.gene_index[b]
                sel0 = (gi0 >= 0) & (gi0 != p)
                sel1 = (gi1 >= 0) & (gi1 != p)
                g0, g1 = gi0[sel0], gi1[sel1]
                # align the other genes' tokens before and after by gene position
                o0, o1 = torch.argsort(g0), torch.argsort(g1)
                a0, a1 = h0[b][sel0][o0].double(), h1[b][sel1][o1].double()
                gg = g0[o0].cpu()
                cos = torch.nn.functional.cosine_similarity(a0, a1, dim=-1).cpu()
                a["emb"].index_add_(0, gg, 1 - cos)
                a["cnt"].index_add_(0, gg, torch.ones_like(cos))
                if lg0 is not None and lg1 is not None:
                    a["expr"].index_add_(0, gg, (lg1[b][sel1][o1] - lg0[b][sel0][o0]).double().cpu())
                c = torch.nn.functional.cosine_similarity(a0.mean(0), a1.mean(0), dim=0)
                a["cell"].append(float(1 - c))
    rows = []
    for p in targets:
        a = acc[p]
        n_cells = len(a["cell"])
        if n_cells < min_cells:
            continue
        n = a["cnt"].clamp(min=1)
        seen = (a["cnt"] > 0).numpy()
        seen[p] = False
        idx = np.flatnonzero(seen)
        rows.append(pd.DataFrame({
            "perturbation": genes[p], "mode": mode, "gene": genes[idx], "n_cells": a["cnt"].numpy()[idx].astype(int),
            "embedding_shift": (a["emb"] / n).numpy()[idx],
            "expression_shift": (a["expr"] / n).numpy()[idx] if want_logits else np.nan,
            "cell_shift": float(np.mean(a["cell"])), "n_cells_perturbed": n_cells}))
    cols = ["perturbation", "mode", "gene", "n_cells", "embedding_shift", "expression_shift", "cell_shift",
            "n_cells_perturbed"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


def overlap_at_k(pred_ranked, real_ranked, k: int) -> float:
    """``|top_k(pred) & top_k(real)| / k`` of two ranked gene lists (cell-eval's ``overlap_at_k``)."""
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    return len(set(list(pred_ranked)[:k]) & set(list(real_ranked)[:k])) / k


def pearson_delta(pred_delta, real_delta) -> float:
    """Pearson r of predicted and measured changes (cell-eval's ``pearson_delta`` on given deltas)."""
    a, b = np.asarray(pred_delta, float), np.asarray(real_delta, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def direction_match(pred_delta, real_delta) -> float:
    """Fraction of genes whose predicted change has the measured change's sign (NaN for no gene)."""
    a, b = np.asarray(pred_delta, float), np.asarray(real_delta, float)
    return float(np.mean(np.sign(a) == np.sign(b))) if a.size else float("nan")


def score_in_silico(shifts: pd.DataFrame, de: pd.DataFrame, features: pd.DataFrame | None = None) -> pd.DataFrame:
    """Score in-silico shifts (and gene-level baselines) against measured DE targets, per knock-out.

    Parameters
    ----------
    shifts
        :func:`in_silico_perturbation` table.
    de
        :func:`~perturblab.interpret.perturbation.de_targets` table of the measured knock-outs (same gene names).
    features
        :func:`~perturblab.interpret.baselines.gene_features` of the control cells: baselines
        ``baseline mean``, ``baseline variance``, ``baseline 1-dropout`` scored on the same candidates.

    Returns
    -------
    One row per (score, perturbation): ``score`` (``in-silico embedding shift``, ``in-silico |expression
    shift|`` when available, baselines), ``kind`` (``in-silico`` / ``baseline``), ``perturbation,
    n_candidates, n_targets, auroc, de_overlap`` (top-``n_targets`` by score vs DE targets ranked by p),
    ``pearson_delta`` and ``direction_match`` (expression shift only: vs measured log2FC, over all candidates /
    the DE targets). Candidates: the genes with a shift for that knock-out and a DE test.
    """
    need = {"perturbation", "gene", "is_target", "log2fc", "p"}
    if need - set(de.columns):
        raise MissingKeyError(f"DE table lacks column(s) {sorted(need - set(de.columns))}")
    rows = []
    for p, sh in shifts.groupby("perturbation", sort=True):
        d = de[de["perturbation"] == p].set_index("gene")
        sh = sh[sh["gene"].isin(d.index)]
        if sh.empty:
            continue
        genes = sh["gene"].to_numpy()
        y = d.loc[genes, "is_target"].to_numpy(bool)
        lfc = d.loc[genes, "log2fc"].to_numpy(float)
        real_rank = d.loc[genes].sort_values(["p", "log2fc"], key=lambda s: s.abs() if s.name == "log2fc" else s,
                                             ascending=[True, False]).index.tolist()
        n_t = int(y.sum())
        preds: dict[str, tuple[str, np.ndarray, np.ndarray | None]] = {
            "in-silico embedding shift": ("in-silico", sh["embedding_shift"].to_numpy(float), None)}
        ex = sh["expression_shift"].to_numpy(float)
        if np.isfinite(ex).any():
            preds["in-silico |expression shift|"] = ("in-silico", np.abs(ex), ex)
        if features is not None:
            for col, name in (("mean", "baseline mean"), ("variance", "baseline variance"),
                              ("detection", "baseline 1-dropout")):
                preds[name] = ("baseline", features.loc[genes, col].to_numpy(float), None)
        for name, (kind, score, signed) in preds.items():
            ranked = genes[np.argsort(-score, kind="stable")]
            rows.append({"score": name, "kind": kind, "perturbation": p, "n_candidates": int(genes.size),
                         "n_targets": n_t, "auroc": auroc(score, y),
                         "de_overlap": overlap_at_k(ranked, real_rank, n_t) if n_t else np.nan,
                         "pearson_delta": pearson_delta(signed, lfc) if signed is not None else np.nan,
                         "direction_match": direction_match(signed[y], lfc[y]) if signed is not None and n_t
                         else np.nan})
    return pd.DataFrame(rows, columns=["score", "kind", "perturbation", "n_candidates", "n_targets", "auroc",
                                       "de_overlap", "pearson_delta", "direction_match"])


def score_in_silico_rows(table: pd.DataFrame, n_boot: int = 1000, random_state: int = 0) -> list[dict]:
    """Registry rows (exploratory): each in-silico score vs each baseline on the knock-outs' AUROC (paired
    Wilcoxon, :func:`~perturblab.interpret.perturbation.compare_scores`), and each in-silico score's mean AUROC
    vs 0.5 (one-sample Wilcoxon)."""
    from .perturbation import compare_scores

    rows = []
    ins = sorted(table.loc[table["kind"] == "in-silico", "score"].unique())
    base = sorted(table.loc[table["kind"] == "baseline", "score"].unique())
    for a in ins:
        v = table.loc[table["score"] == a, "auroc"].dropna().to_numpy() - 0.5
        p = float(stats.wilcoxon(v).pvalue) if v.size >= 2 and np.any(v != 0) else np.nan
        rows.append(registry_row("in-silico perturbation", f"{a} ranks measured knock-out targets above chance",
                                 "Wilcoxon signed-rank vs 0.5", p, float(v.mean()) if v.size else np.nan, v.size,
                                 effect="mean AUROC - 0.5", claim="the model predicts knock-out effects"))
        for b in base:
            c = compare_scores(table, a, b, n_boot=n_boot, random_state=random_state)
            rows.append(registry_row("in-silico perturbation", f"{a} ranks knock-out targets differently from {b}",
                                     "Wilcoxon signed-rank", c["p"], c["delta"], c["n"], effect="mean delta AUROC",
                                     statistic=c["statistic"]))
    return rows
