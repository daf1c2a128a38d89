"""scGen (Lotfollahi et al. 2019, Nat Methods): VAE + latent vector arithmetic.

Follows theislab/scgen v2.1.1 (``SCGEN``/``SCGENVAE``); see the spec ``perturbation-models.md``.
"""

from __future__ import annotations

import anndata as ad
import numpy as np

from ..data import balanced_indices
from ._modules import ScGenVAE
from .base import VAEModel

__all__ = ["ScGen"]


class ScGen(VAEModel):
    """scGen: predict stimulated cells as ``decode(z_ctrl + delta)``.

    Parameters
    ----------
    adata
        Training cells, log-normalised (cells x genes); the held-out stimulated cells must
        not be in it (use :func:`perturblab.predict.loco_split`).
    condition_key, cell_type_key, control, stimulated
        obs columns and condition values.
    n_hidden, n_latent, n_layers, dropout_rate, kl_weight
        Network (defaults of scGen: 800, 100, 2, 0.2, 5e-5).
    decoder_batch_norm
        BatchNorm in the decoder's hidden layers (default True, as scGen). False is the layout of pertpy's
        JAX port, which learns faster. Kang leave-one-out, CD14 Mono held out, mean of seeds 0-2, 2-core CPU:
        without it, 60 epochs give R2 .809 / .713 (all genes / top-100 DEGs) in 33 s; with it, the default
        100 epochs give .810 / .714 in 61 s (``benchmarks/predict_compare.py --models scgen --max-epochs 60
        --hyperparameters '{"scgen": {"decoder_batch_norm": false}}' --seed S``).
    random_state
        Seeds weights, training and the balancing of :meth:`predict`.
    device
        ``None``/``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.

    Notes
    -----
    Training defaults (:meth:`train`): Adam lr 1e-3, weight decay 1e-6, eps 0.01, batch 128,
    10% validation, early stopping with patience 25 on the training objective, at most 100
    epochs. Differs from scgen: its ``predict`` draws the balancing with an unseeded rng
    (results change run to run); here it is seeded. Differs from pertpy: early stopping monitors
    the objective trained on, not the full-KL ELBO.
    """

    name = "scgen"
    module_class = ScGenVAE
    train_defaults = dict(max_epochs=100, batch_size=128, lr=1e-3, weight_decay=1e-6, adam_eps=0.01,
                          validation_fraction=0.1, early_stopping=True, patience=25)

    def __init__(self, adata, condition_key="condition", cell_type_key="cell_type", control="control",
                 stimulated="stimulated", n_hidden: int = 800, n_latent: int = 100, n_layers: int = 2,
                 dropout_rate: float = 0.2, kl_weight: float = 5e-5, decoder_batch_norm: bool = True,
                 random_state: int = 0, device: str | None = None, balance: bool = True):
        super().__init__(adata, condition_key, cell_type_key, control, stimulated, random_state, device,
                         n_hidden=n_hidden, n_latent=n_latent, n_layers=n_layers, dropout_rate=dropout_rate,
                         kl_weight=kl_weight, decoder_batch_norm=decoder_batch_norm)
        self.balance = balance
        if balance is False:
            self.name = "scgen_unbalanced"

    def delta(self, balance: bool | None = None, restrict_arithmetic_to="all",
              random_state: int | None = None) -> np.ndarray:
        """Latent shift ``mean z(stimulated) - mean z(control)`` over the training cells.

        Parameters
        ----------
        balance
            scGen's procedure (default ``self.balance``): resample each cell type up to the
            largest, then subsample both conditions to the same number of cells. ``False``:
            plain means over all cells (the unbalanced latent-arithmetic baseline).
        restrict_arithmetic_to
            ``"all"`` or ``{obs_key: [values]}``: use only training cells whose ``obs_key`` is in
            ``values`` (scgen's option; balancing applies when more than one value is given).
        random_state
            Seed of the balancing draws (default: the model's).
        """
        self._require_trained()
        balance = self.balance if balance is None else balance
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        mask = np.ones(self.adata.n_obs, dtype=bool)
        if restrict_arithmetic_to != "all":
            if not isinstance(restrict_arithmetic_to, dict) or len(restrict_arithmetic_to) != 1:
                raise ValueError("restrict_arithmetic_to must be 'all' or a dict {obs_key: [values]}")
            (key, values), = restrict_arithmetic_to.items()
            if key not in self.adata.obs:
                raise KeyError(f"restrict_arithmetic_to key {key!r} not found in the training adata.obs")
            values = [values] if isinstance(values, str) else list(values)
            mask = self.adata.obs[key].astype(str).isin(list(map(str, values))).to_numpy()
            balance = balance and len(values) > 1
        ct = self.adata.obs[self.cell_type_key].astype(str).to_numpy()
        Z = self.get_latent_representation()
        sides = []
        for cond in (self.control, self.stimulated):
            idx = np.flatnonzero(mask & self._mask(cond))
            if idx.size == 0:
                raise ValueError(f"no training cells with {self.condition_key} == {cond!r} for the latent delta")
            if balance:
                idx = idx[balanced_indices(ct[idx], rng)]
            sides.append(idx)
        if balance:
            n = min(len(sides[0]), len(sides[1]))
            sides = [rng.choice(s, size=n, replace=False) for s in sides]
        return Z[sides[1]].mean(0) - Z[sides[0]].mean(0)

    def predict(self, ctrl_adata: ad.AnnData, balance: bool | None = None, restrict_arithmetic_to="all",
                random_state: int | None = None) -> ad.AnnData:
        """Predict the stimulated state of control cells: ``decode(posterior mean + delta)``.

        Parameters
        ----------
        ctrl_adata
            Control cells, log-normalised, the training genes in the same order.
        balance, restrict_arithmetic_to, random_state
            See :meth:`delta`.

        Returns
        -------
        anndata.AnnData
            Predicted cells x genes (log-normalised scale; may hold negative values, as
            scGen's decoder ends in a plain Linear); obs copied, ``condition`` = "predicted".
        """
        self._require_trained()
        X = self._check_input(ctrl_adata)
        d = self.delta(balance, restrict_arithmetic_to, random_state)
        return self._output(self._decode(self._encode(X) + d), ctrl_adata)
