"""Cells from a planted gene regulatory network with several cell states and knock-outs.

The ground truth every interpretability analysis is checked against: which edges
exist (globally or in one cell state only) and how knock-outs propagate. :func:`simulate_grn` builds small
dense screens with several cell states; :func:`simulate_screen` builds Replogle-scale screens (thousands of
knock-downs, 150,000 cells) chunk by chunk into a sparse matrix.

Model (a linear structural equation model on log-expression, then Poisson counts)::

    z[c, j] = mu[j] + shift[state(c), j] + sum_i w[i, j] * active(i, j, state(c)) * (z[c, i] - mu[i]) + sigma * eps
    counts[c, j] ~ Poisson(size_factor[c] * exp(z[c, j]))

Genes are ordered; the first ``n_tfs`` are transcription factors (TFs) and an edge
``i -> j`` always has ``i < j`` (a DAG), so one pass in gene order solves the model.
A knock-out of TF ``g`` fixes ``z[c, g] = mu[g] - ko_strength`` and lets the change
propagate downstream (direct and indirect targets respond).
"""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..exceptions import InputError

__all__ = ["SimulatedGRN", "simulate_grn", "simulate_screen"]


@dataclass
class SimulatedGRN:
    """Simulated cells and their planted network.

    Attributes
    ----------
    adata
        Cells x genes raw counts (sparse CSR): ``n_genes`` network genes then ``n_background`` genes.
        ``obs['state']`` (cell state), ``obs['perturbation']``
        (``'control'`` or the knocked-out gene); ``var['is_tf']``.
    edges
        Planted edges: ``source``, ``target``, ``weight``, ``state`` (``'all'`` for global edges,
        else the only state where the edge is active).
    tfs
        Names of the transcription factors (the only possible edge sources).
    knockouts
        Knocked-out TFs.
    """

    adata: ad.AnnData
    edges: pd.DataFrame
    tfs: list[str]
    knockouts: list[str]

    def reference(self, kind: str = "all") -> pd.DataFrame:
        """Planted edges as a reference table (``source``, ``target``).

        ``kind``: ``"all"`` (every planted edge), ``"global"`` (active in every state) or
        ``"state_specific"`` (active in one state only).
        """
        if kind == "all":
            e = self.edges
        elif kind == "global":
            e = self.edges[self.edges["state"] == "all"]
        elif kind == "state_specific":
            e = self.edges[self.edges["state"] != "all"]
        else:
            raise InputError(f"kind must be 'all', 'global' or 'state_specific', got {kind!r}")
        return e[["source", "target"]].reset_index(drop=True)

    def downstream(self, gene: str) -> set[str]:
        """Genes reachable from ``gene`` through planted edges (any state)."""
        children: dict[str, list[str]] = {}
        for s, t in zip(self.edges["source"], self.edges["target"]):
            children.setdefault(s, []).append(t)
        seen, stack = set(), [gene]
        while stack:
            for c in children.get(stack.pop(), []):
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        return seen


def simulate_grn(
    n_genes: int = 60,
    n_tfs: int = 10,
    n_states: int = 3,
    n_cells_per_state: int = 300,
    targets_per_tf: int = 4,
    state_specific_per_state: int = 4,
    n_knockouts: int = 4,
    n_cells_per_knockout: int = 150,
    weight_range: tuple[float, float] = (0.5, 1.0),
    noise_sd: float = 0.5,
    state_shift_sd: float = 0.5,
    ko_strength: float = 2.0,
    mean_count_range: tuple[float, float] = (0.3, 8.0),
    n_background: int = 5,
    background_mean: float = 500.0,
    random_state: int = 0,
) -> SimulatedGRN:
    """Simulate control and knock-out cells from a planted GRN with ``n_states`` cell states.

    Parameters
    ----------
    n_genes, n_tfs
        Genes in total; the first ``n_tfs`` (named ``TF0..``) are regulators, the rest ``G<i>``.
    n_states, n_cells_per_state
        Cell states (``S0..``) and the number of control cells in each.
    targets_per_tf
        Global edges per TF (active in every state), targets drawn among later genes.
    state_specific_per_state
        Extra edges per state, active only in that state (their pooled signal is diluted by ``1/n_states``).
    n_knockouts, n_cells_per_knockout
        TFs knocked out (those with most downstream genes) and cells per knock-out (spread over the states).
    weight_range
        Absolute edge weights are uniform in this range; the sign is random.
    noise_sd, state_shift_sd
        Standard deviation of the per-cell noise and of the per-state mean shift (log scale).
    ko_strength
        Log-scale reduction of the knocked-out TF (2 ~ 86% fewer transcripts).
    mean_count_range
        Baseline mean UMI counts per gene are log-uniform in this range (so detection power varies).
    n_background, background_mean
        Unregulated highly expressed genes (``B0..``, Poisson with this mean) appended after the network
        genes. Like the rest of a real transcriptome they carry most of the library, so a knock-out's
        up-regulated targets do not shift every gene through library-size normalisation.
    random_state
        Seed; the same seed gives identical data.

    Returns
    -------
    SimulatedGRN
    """
    if not 0 < n_tfs < n_genes:
        raise InputError(f"need 0 < n_tfs < n_genes, got n_tfs={n_tfs}, n_genes={n_genes}")
    if n_states < 1 or n_cells_per_state < 2:
        raise InputError("need n_states >= 1 and n_cells_per_state >= 2")
    if n_knockouts > n_tfs:
        raise InputError(f"n_knockouts={n_knockouts} exceeds n_tfs={n_tfs}")
    rng = np.random.default_rng(random_state)
    genes = [f"TF{i}" for i in range(n_tfs)] + [f"G{i}" for i in range(n_tfs, n_genes)]
    states = [f"S{k}" for k in range(n_states)]

    used: set[tuple[int, int]] = set()

    def draw_edges(n: int, state: str) -> list[tuple[int, int, float, str]]:
        out: list[tuple[int, int, float, str]] = []
        while len(out) < n:
            i = int(rng.integers(n_tfs))
            j = int(rng.integers(i + 1, n_genes))
            if (i, j) in used:
                continue
            used.add((i, j))
            w = rng.uniform(*weight_range) * rng.choice([-1.0, 1.0])
            out.append((i, j, w, state))
        return out

    edges = draw_edges(n_tfs * targets_per_tf, "all")
    for s in states if n_states > 1 else []:
        edges += draw_edges(state_specific_per_state, s)

    lo, hi = np.log(mean_count_range)
    mu = rng.uniform(float(lo), float(hi), size=n_genes)
    shift = rng.normal(0.0, state_shift_sd, size=(n_states, n_genes))
    edge_df = pd.DataFrame(edges, columns=["source", "target", "weight", "state"])
    edge_df["source"] = [genes[i] for i in edge_df["source"]]
    edge_df["target"] = [genes[j] for j in edge_df["target"]]

    # knock out the TFs with the most downstream genes (ties: lower index)
    tmp = SimulatedGRN(ad.AnnData(np.zeros((1, n_genes))), edge_df, genes[:n_tfs], [])
    reach = [len(tmp.downstream(genes[i])) for i in range(n_tfs)]
    kos = [genes[i] for i in sorted(range(n_tfs), key=lambda i: (-reach[i], i))[:n_knockouts]]

    state_of = np.repeat(np.arange(n_states), n_cells_per_state)
    pert_list = ["control"] * state_of.size
    for g in kos:
        state_of = np.concatenate([state_of, rng.integers(n_states, size=n_cells_per_knockout)])
        pert_list += [g] * n_cells_per_knockout
    pert = np.asarray(pert_list)
    n_cells = state_of.size

    W = np.zeros((n_states, n_genes, n_genes))
    for i, j, w, s in edges:
        if s == "all":
            W[:, i, j] = w
        else:
            W[states.index(s), i, j] = w
    z = np.zeros((n_cells, n_genes))
    eps = rng.normal(0.0, noise_sd, size=(n_cells, n_genes))
    ko_idx = np.array([genes.index(p) if p != "control" else -1 for p in pert])
    for j in range(n_genes):
        parent = np.einsum("ci,ci->c", W[state_of, :j, j], z[:, :j] - mu[:j]) if j else 0.0
        z[:, j] = mu[j] + shift[state_of, j] + parent + eps[:, j]
        z[ko_idx == j, j] = mu[j] - ko_strength
    size_factor = rng.lognormal(0.0, 0.2, size=n_cells)
    counts = rng.poisson(size_factor[:, None] * np.exp(np.clip(z, None, 10.0)))
    counts = np.hstack([counts, rng.poisson(size_factor[:, None] * np.full((1, n_background), background_mean))])
    genes = genes + [f"B{i}" for i in range(n_background)]

    obs = pd.DataFrame(
        {"state": pd.Categorical([states[k] for k in state_of], categories=states), "perturbation": pert},
        index=[f"cell{c}" for c in range(n_cells)],
    )
    var = pd.DataFrame({"is_tf": [i < n_tfs for i in range(len(genes))]}, index=genes)
    adata = ad.AnnData(sp.csr_matrix(counts.astype(np.float32)), obs=obs, var=var)
    return SimulatedGRN(adata=adata, edges=edge_df, tfs=genes[:n_tfs], knockouts=kos)


def simulate_screen(
    n_genes: int = 4000,
    n_regulators: int = 2000,
    n_perturbations: int = 2000,
    cells_per_perturbation: int = 70,
    n_control: int = 10_000,
    targets_per_regulator: int = 4,
    weight_range: tuple[float, float] = (0.3, 0.8),
    noise_sd: float = 0.5,
    ko_strength: float = 2.0,
    mean_count_range: tuple[float, float] = (0.02, 4.0),
    chunk_size: int = 5000,
    random_state: int = 0,
) -> SimulatedGRN:
    """A Replogle-scale CRISPR screen from a planted GRN, generated in chunks of cells into a sparse matrix.

    The same structural equation model as :func:`simulate_grn` (one cell state, global edges, Poisson counts),
    solved without dense cells x genes x genes arrays: the network is a sparse ``(G, G)`` matrix and each chunk
    of ``chunk_size`` cells is propagated through it (``x <- e + x W``, exact after as many passes as the longest
    planted path), then drawn as counts and stored as CSR. Memory: one chunk (``chunk_size x G`` float64) plus
    the sparse result. Replogle et al. 2022 (K562 essential) has about 2,000 knock-downs of mostly non-TF genes,
    ~70 cells each and ~10,000 non-targeting controls; here every perturbed gene is a *regulator* with planted
    targets, so that knock-down effects propagate.

    Parameters
    ----------
    n_genes, n_regulators
        Genes in total; the first ``n_regulators`` (``TF0..``) have ``targets_per_regulator`` targets each
        among later genes (a DAG), the rest are ``G<i>``.
    n_perturbations, cells_per_perturbation, n_control
        Knocked-down regulators (the first ones), cells per knock-down, control cells (``"control"``).
    weight_range, noise_sd, ko_strength
        As :func:`simulate_grn` (absolute weights uniform in the range with a random sign; log-scale noise;
        log-scale reduction of the knocked-down gene).
    mean_count_range
        Baseline mean UMI counts per gene, log-uniform (sparse data: most genes are rarely detected).
    chunk_size
        Cells generated at a time (the random draws are made chunk by chunk, so another chunk size gives
        another, equally distributed, matrix).
    random_state
        Seed; the same seed and chunk size give the same matrix.

    Returns
    -------
    SimulatedGRN
        ``adata.X`` CSR float32 counts; ``obs['perturbation']``, ``obs['state']`` (one state, ``S0``).

    Raises
    ------
    InputError
        If ``n_perturbations > n_regulators`` or ``n_regulators >= n_genes``.

    Examples
    --------
    >>> sim = simulate_screen(n_genes=300, n_regulators=100, n_perturbations=50, cells_per_perturbation=20,
    ...                       n_control=500, random_state=0)
    >>> sim.adata.shape
    (1500, 300)
    """
    if not 0 < n_regulators < n_genes:
        raise InputError(f"need 0 < n_regulators < n_genes, got n_regulators={n_regulators}, n_genes={n_genes}")
    if not 0 <= n_perturbations <= n_regulators:
        raise InputError(f"n_perturbations={n_perturbations} must be between 0 and n_regulators={n_regulators}")
    rng = np.random.default_rng(random_state)
    genes = [f"TF{i}" for i in range(n_regulators)] + [f"G{i}" for i in range(n_regulators, n_genes)]
    src_list: list[int] = []
    dst_list: list[int] = []
    for i in range(n_regulators):
        tg = rng.choice(np.arange(i + 1, n_genes), size=min(targets_per_regulator, n_genes - i - 1), replace=False)
        src_list += [i] * tg.size
        dst_list += tg.tolist()
    src, dst = np.asarray(src_list, dtype=np.int64), np.asarray(dst_list, dtype=np.int64)
    w = rng.uniform(*weight_range, size=src.size) * rng.choice([-1.0, 1.0], size=src.size)
    W = sp.csr_matrix((w, (src, dst)), shape=(n_genes, n_genes))
    depth = _longest_path(src, dst, n_genes)
    lo, hi = np.log(mean_count_range)
    mu = rng.uniform(float(lo), float(hi), size=n_genes)
    kos = genes[:n_perturbations]
    labels = np.array(["control"] * n_control + [g for g in kos for _ in range(cells_per_perturbation)])
    ko_of = np.concatenate([np.full(n_control, -1), np.repeat(np.arange(n_perturbations), cells_per_perturbation)])
    blocks = []
    for start in range(0, labels.size, chunk_size):
        ko = ko_of[start : start + chunk_size]
        e = rng.normal(0.0, noise_sd, size=(ko.size, n_genes))
        rows = np.flatnonzero(ko >= 0)
        x = e.copy()
        x[rows, ko[rows]] = -ko_strength
        for _ in range(depth):
            x = e + np.asarray(x @ W)
            x[rows, ko[rows]] = -ko_strength
        size = rng.lognormal(0.0, 0.2, size=ko.size)
        counts = rng.poisson(size[:, None] * np.exp(np.clip(mu + x, None, 10.0)))
        del e, x
        b = sp.csr_matrix(counts.astype(np.float32))
        blocks.append([b.data, b.indices.astype(np.int32), np.diff(b.indptr).astype(np.int64)])
        del counts, b
    X = _stack_csr(blocks, labels.size, n_genes)
    obs = pd.DataFrame({"state": pd.Categorical(["S0"] * labels.size), "perturbation": labels},
                       index=[f"cell{c}" for c in range(labels.size)])
    var = pd.DataFrame({"is_tf": [i < n_regulators for i in range(n_genes)]}, index=genes)
    edges = pd.DataFrame({"source": [genes[i] for i in src], "target": [genes[j] for j in dst], "weight": w,
                          "state": "all"})
    return SimulatedGRN(adata=ad.AnnData(X, obs=obs, var=var), edges=edges, tfs=genes[:n_regulators], knockouts=kos)


def _stack_csr(blocks: list[list], n_rows: int, n_cols: int) -> sp.csr_matrix:
    """CSR from per-chunk ``[data, indices, row lengths]``, freeing each chunk's arrays once copied (peak: the
    result plus one of its arrays, not twice the matrix as ``scipy.sparse.vstack``)."""
    parts = []
    for k in range(2):
        parts.append(np.concatenate([b[k] for b in blocks]))
        for b in blocks:
            b[k] = None
    indptr = np.concatenate([[0], np.cumsum(np.concatenate([b[2] for b in blocks]))])
    return sp.csr_matrix((parts[0], parts[1], indptr), shape=(n_rows, n_cols))


def _longest_path(src: np.ndarray, dst: np.ndarray, n: int) -> int:
    """Number of edges on the longest path of a DAG whose edges all go from a lower to a higher index."""
    length = np.zeros(n, dtype=int)
    order = np.argsort(src, kind="stable")
    for s, t in zip(src[order], dst[order]):  # sources in increasing order: length[s] is final when read
        length[t] = max(length[t], length[s] + 1)
    return int(length.max(initial=0))
