"""scPRAM (Jiang et al. 2024, Bioinformatics): denoising VAE + optimal transport + attention.

Follows jiang-q19/scPRAM @ a4624294 (``SCPRAM.predict``); see the spec ``perturbation-models.md``.
"""

from __future__ import annotations

from typing import ClassVar

import anndata as ad
import numpy as np

from ...exceptions import InputError
from ._modules import ScPRAMVAE
from .base import VAEModel

__all__ = ["ScPRAM", "ot_match"]


def ot_match(z_stim: np.ndarray, z_ctrl: np.ndarray, method: str = "emd", reg: float = 0.05) -> np.ndarray:
    """For each control latent, the index of the stimulated latent that receives most of its mass.

    Uniform weights, Euclidean cost (POT ``ot.dist(metric="euclidean")``). ``method="emd"``:
    exact optimal transport (``ot.emd``, as scPRAM's code; O(n^2) memory); ``"sinkhorn"``:
    entropic OT (``ot.sinkhorn``, as scPRAM's slides) with regularisation ``reg`` on the
    cost divided by its maximum.
    """
    import ot

    M = ot.dist(z_stim.astype(np.float64), z_ctrl.astype(np.float64), metric="euclidean")
    a = np.full(len(z_stim), 1.0 / len(z_stim))
    b = np.full(len(z_ctrl), 1.0 / len(z_ctrl))
    if method == "emd":
        G = ot.emd(a, b, M, numItermax=1_000_000)
    elif method == "sinkhorn":
        G = ot.sinkhorn(a, b, M / M.max(), reg, method="sinkhorn_log", numItermax=10_000)
    else:
        raise InputError(f"unknown OT method {method!r}; use 'emd' or 'sinkhorn'")
    return np.asarray(G).argmax(axis=0)


class ScPRAM(VAEModel):
    """scPRAM: per-cell attention over optimal-transport deltas in a denoising VAE's latent space.

    Parameters
    ----------
    adata
        Training cells, log-normalised (cells x genes).
    condition_key, cell_type_key, control, stimulated
        obs columns and condition values.
    n_hidden, n_latent, noise_rate, kl_weight
        Network (scPRAM's defaults: 1000, 100, 0.1, 5e-4).
    random_state, device
        Seed and torch device (``None``: CUDA when present).
    ratio, ot_method, attention
        Defaults of :meth:`predict`.
    output
        Default of :meth:`predict`: ``"decoded"`` (scPRAM's cells) or ``"residual"`` (the decoded response added
        to each real control cell).

    Notes
    -----
    Training defaults: Adam lr 5e-4, weight decay 1e-5, gradient norm clipped at 10, batch 128,
    at most 100 epochs. Differs from scPRAM's code: a seeded 10% validation split with early
    stopping (patience 25, on the denoising objective) and seeds everywhere; latents are
    posterior means (the code encodes with a random draw, so predictions vary run to run).

    The stopping rule was chosen without the benchmark targets (``benchmarks/scpram_stopping_selection.py``
    with its defaults: the stimulated cells of CD14 Mono, CD4 Naive T and B removed before preprocessing,
    leave-one-type-out on NK, CD8 T, CD16 Mono and T activated, seeds 0 and 1). Mean R2 of the gene
    means (all genes / top-100 DEGs): patience 25 .803 / .772 at 52 epochs on average, the released code's fixed
    100 epochs .801 / .766, fixed 60 epochs .799 / .764 (patience 50 kept the same epochs as 25); fixed 100 epochs
    trains twice as long and wins on NK (.824 vs .811) but loses on T activated (.821 vs .836), the other
    small type. So patience 25 stays, now chosen rather than assumed; the best epoch in hindsight would give
    .831, the headroom no rule here reaches.

    ``output="residual"`` (registered as ``"scpram_residual"``; not in scPRAM) keeps each real control cell and adds
    the decoded response ``decode(z_i + delta_i) - decode(z_i)``: the decoder's reconstruction error no longer
    enters the prediction, genes the decoder leaves at 0 (its final ReLU) do not move, and each predicted cell
    keeps its control cell's own values. On the 8 Kang types (``benchmarks/predict_peers.py``, seeds 0-2) it
    raises R2 of the means and the DE overlap over the decoded cells of the same networks, while cell-eval's
    discrimination score falls: a decoded prediction does not carry the control cells' sample mean, which both
    its delta and the real delta subtract, so it shares that mean's sampling noise with the real delta
    (:func:`~perturblab.predict.metrics_targets.perfect_discrimination_l2`).
    """

    name = "scpram"
    module_class = ScPRAMVAE
    train_defaults: ClassVar[dict] = dict(max_epochs=100, batch_size=128, lr=5e-4, weight_decay=1e-5, grad_clip=10.0,
                          validation_fraction=0.1, early_stopping=True, patience=25)

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", n_hidden: int = 1000, n_latent: int = 100, noise_rate: float = 0.1,
                 kl_weight: float = 5e-4, random_state: int = 0, device: str | None = None, ratio: float = 0.05,
                 ot_method: str = "emd", attention: str = "per_cell", output: str = "decoded"):
        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state, device,
                         n_hidden=n_hidden, n_latent=n_latent, noise_rate=noise_rate, kl_weight=kl_weight)
        _check_options(ratio, ot_method, attention, output)  # before training, not after it
        self.ratio, self.ot_method, self.attention, self.output = ratio, ot_method, attention, output

    def predict(self, ctrl_adata: ad.AnnData, ratio: float | None = None, ot_method: str | None = None,
                attention: str | None = None, sinkhorn_reg: float = 0.05, output: str | None = None) -> ad.AnnData:
        """Predict the stimulated state of control cells.

        Reference cells: the training controls of the other cell types (those not among
        ``ctrl_adata``'s cell types) and all training stimulated cells. Each reference control is
        matched by optimal transport to a stimulated cell, ``delta_j = z_stim(match_j) - z_ctrl_j``.
        For each cell ``i`` to predict, the ``k = ceil(n_ref * ratio)`` reference controls with the
        highest cosine similarity get weights ``cos_ij / sum cos``; ``z_i + sum_j w_ij delta_j`` is
        decoded.

        Parameters
        ----------
        ctrl_adata
            Control cells, log-normalised, the training genes in the same order.
        ratio
            Share of reference cells used by the attention (default 0.05, scPRAM's default).
        ot_method
            ``"emd"`` (exact, as the released code) or ``"sinkhorn"`` (see :func:`ot_match`).
        attention
            ``"per_cell"`` (the method as published; default) or ``"first_cell"`` (the released
            code: the top-k and weights of the FIRST cell give one delta added to every cell).
        output
            ``"decoded"`` (scPRAM: ``decode(z_i + d_i)``; default) or ``"residual"`` (``x_i + decode(z_i + d_i) -
            decode(z_i)``: the decoded response added to the real control cell ``x_i``).

        Returns
        -------
        anndata.AnnData
            Predicted cells (log-normalised scale; decoded cells are non-negative, residual ones are not clipped),
            row ``i`` made from control cell ``i``; ``condition`` = "predicted".

        Raises
        ------
        InputError
            An unknown ``ot_method``, ``attention`` or ``output``, ``ratio`` outside (0, 1], or no training control
            cells of other cell types.
        """
        self._require_trained()
        ratio = self.ratio if ratio is None else ratio
        ot_method = self.ot_method if ot_method is None else ot_method
        attention = self.attention if attention is None else attention
        output = self.output if output is None else output
        _check_options(ratio, ot_method, attention, output)
        X = self._check_input(ctrl_adata)
        ref_ctrl = self._mask(self.control)
        if self.cell_type_key in ctrl_adata.obs:
            targets = set(ctrl_adata.obs[self.cell_type_key].astype(str))
            ref_ctrl &= ~self.adata.obs[self.cell_type_key].astype(str).isin(targets).to_numpy()
        if not ref_ctrl.any():
            raise InputError("no training control cells of other cell types to learn the response from")
        Z = self.get_latent_representation()
        z_ctrl, z_stim = Z[ref_ctrl], Z[self._mask(self.stimulated)]
        deltas = z_stim[ot_match(z_stim, z_ctrl, ot_method, sinkhorn_reg)] - z_ctrl
        z_test = self._encode(X)
        cos = _cosine(z_test, z_ctrl)
        k = int(np.ceil(len(z_ctrl) * ratio))
        rows = cos[:1] if attention == "first_cell" else cos
        top = np.argpartition(-rows, k - 1, axis=1)[:, :k]
        w = np.take_along_axis(rows, top, axis=1)
        w = w / w.sum(axis=1, keepdims=True)
        d = np.einsum("ik,ikd->id", w, deltas[top])
        if output == "residual":
            return self._output(X + self._decode(z_test + d) - self._decode(z_test), ctrl_adata)
        return self._output(self._decode(z_test + d), ctrl_adata)


def _check_options(ratio: float, ot_method: str, attention: str, output: str) -> None:
    if not 0 < ratio <= 1:
        raise InputError(f"ratio must be in (0, 1], got {ratio}")
    if ot_method not in ("emd", "sinkhorn"):
        raise InputError(f"unknown OT method {ot_method!r}; use 'emd' or 'sinkhorn'")
    if attention not in ("per_cell", "first_cell"):
        raise InputError(f"unknown attention {attention!r}; use 'per_cell' or 'first_cell'")
    if output not in ("decoded", "residual"):
        raise InputError(f"unknown output {output!r}; use 'decoded' or 'residual'")


def _cosine(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    An = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    Bn = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-12)
    return An @ Bn.T
