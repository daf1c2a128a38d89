"""Pure-PyTorch networks and losses of the VAE models (no data handling, no training loop).

Inputs are float tensors of log-normalised expression, batch x genes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from ...exceptions import InputError

__all__ = ["ScGenVAE", "ScPRAMVAE"]


def _kl_standard_normal(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, var) || N(0, 1)) summed over latent dimensions, one value per cell."""
    return kl_divergence(Normal(mu, var.sqrt()), Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(dim=1)


def _fc_layers(n_in: int, n_hidden: int, n_layers: int, dropout: float, batch_norm: bool = True) -> nn.Sequential:
    """scvi-tools FCLayers as scGen uses them: Linear -> BatchNorm(momentum .01, eps 1e-3) -> LeakyReLU -> Dropout
    (without the BatchNorm when ``batch_norm`` is False)."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers.append(nn.Linear(n_in if i == 0 else n_hidden, n_hidden))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_hidden, momentum=0.01, eps=1e-3))
        layers += [nn.LeakyReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class ScGenVAE(nn.Module):
    """scGen's VAE (Lotfollahi et al. 2019; theislab/scgen ``SCGENVAE``).

    Encoder: ``n_layers`` x [Linear -> BatchNorm -> LeakyReLU -> Dropout] of width ``n_hidden``,
    then linear heads for the posterior mean and ``var = exp(.) + 1e-4``. Decoder: the same
    stack from the latent space with ``decoder_hidden_layers`` layers (default ``n_layers``), ending
    in a plain Linear (outputs can be negative).
    Loss per batch: ``mean_cells(0.5 * sum_genes (x - x_hat)^2 + 0.5 * kl_weight * KL)``.
    ``decoder_batch_norm=False`` drops the decoder's BatchNorm layers (the layout of pertpy's JAX port).
    """

    def __init__(self, n_genes: int, n_hidden: int = 800, n_latent: int = 100, n_layers: int = 2,
                 dropout_rate: float = 0.2, kl_weight: float = 5e-5, decoder_batch_norm: bool = True,
                 decoder_hidden_layers: int | None = None):
        super().__init__()
        if decoder_hidden_layers is None:
            decoder_hidden_layers = n_layers
        if decoder_hidden_layers < 0:
            raise InputError(f"decoder_hidden_layers must be >= 0, got {decoder_hidden_layers}")
        self.kl_weight = kl_weight
        self.encoder = _fc_layers(n_genes, n_hidden, n_layers, dropout_rate)
        self.mean_head = nn.Linear(n_hidden, n_latent)
        self.var_head = nn.Linear(n_hidden, n_latent)
        self.decoder = nn.Sequential(
            _fc_layers(n_latent, n_hidden, decoder_hidden_layers, dropout_rate, decoder_batch_norm),
            nn.Linear(n_hidden if decoder_hidden_layers else n_latent, n_genes))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and variance (batch x n_latent each)."""
        h = self.encoder(x)
        return self.mean_head(h), torch.exp(self.var_head(h)) + 1e-4

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        mu, var = self.encode(x)
        z = mu + var.sqrt() * torch.randn_like(mu)
        rec = ((x - self.decode(z)) ** 2).sum(dim=1)
        return (0.5 * rec + 0.5 * self.kl_weight * _kl_standard_normal(mu, var)).mean()


class ScPRAMVAE(nn.Module):
    """scPRAM's denoising VAE (Jiang et al. 2024; jiang-q19/scPRAM ``SCPRAM``).

    Encoder ``Linear(G, h) - ReLU - Linear(h, h) - ReLU - Linear(h, 2 * n_latent)`` (mean and
    log-variance); decoder ``Linear(n_latent, h) - ReLU - Linear(h, h) - ReLU - Linear(h, G) - ReLU``
    (non-negative outputs). Denoising: the encoder sees ``x + noise_rate * N(0, 1)``, the
    reconstruction target is the clean ``x``. Loss ``mean(0.5 * rec + 0.5 * kl_weight * KL)``.
    """

    def __init__(self, n_genes: int, n_hidden: int = 1000, n_latent: int = 100, noise_rate: float = 0.1,
                 kl_weight: float = 5e-4):
        super().__init__()
        self.noise_rate = noise_rate
        self.kl_weight = kl_weight
        self.encoder = nn.Sequential(nn.Linear(n_genes, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_hidden),
                                     nn.ReLU(), nn.Linear(n_hidden, 2 * n_latent))
        self.decoder = nn.Sequential(nn.Linear(n_latent, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_hidden),
                                     nn.ReLU(), nn.Linear(n_hidden, n_genes), nn.ReLU())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = torch.chunk(self.encoder(x), 2, dim=1)
        return mu, torch.exp(logvar)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        mu, var = self.encode(x + self.noise_rate * torch.randn_like(x))
        z = mu + var.sqrt() * torch.randn_like(mu)
        rec = ((x - self.decode(z)) ** 2).sum(dim=1)
        return (0.5 * rec + 0.5 * self.kl_weight * _kl_standard_normal(mu, var)).mean()
