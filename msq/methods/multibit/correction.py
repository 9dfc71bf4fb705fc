"""Weight bias correction (EMQ; METHODS §8), as a pure tensor function.

Quantizing shifts and rescales a layer's weight distribution, and by a different amount at each
width: at 2 bits most small weights round to 0, so σ shrinks and μ moves. The next BatchNorm sees
different statistics at every width, which is why Any-Precision nets keep one BatchNorm per width.
Correcting the first two moments in weight space, per output channel c, removes that difference:

    Ŵ_b = (Q_b(W) − μ_c(Q_b(W))) · σ_c(W) / (σ_c(Q_b(W)) + ε) + μ_c(W)

so every width presents the same per-channel mean and standard deviation as the float weights, and
one shared BatchNorm serves all widths, including widths never trained (5, 6, 7 bits).

Gradients flow through every term (Q_b by its straight-through estimator, the moments exactly): the
correction is part of the forward pass the network learns with. Per output channel is our choice of
granularity (the paper's is not known to us). Storage cost: a corrected layer is still b-bit codes
plus one affine pair (gain, offset) per output channel.

>>> import torch
>>> w = torch.tensor([[0.1, -0.2, 0.3, 0.05]])
>>> q = torch.tensor([[0.0, -0.5, 0.5, 0.0]])
>>> c = bias_correct(q, w)
>>> bool(torch.allclose(c.mean(1), w.mean(1))) and bool(torch.allclose(c.std(1, unbiased=False), w.std(1, unbiased=False)))
True
"""
from __future__ import annotations

import torch

EPS = 1e-8


def channel_moments(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel mean and population std of ``w`` [C_out, ...], each shaped [C_out, 1, ...]."""
    flat = w.reshape(w.shape[0], -1)
    shape = (w.shape[0],) + (1,) * (w.dim() - 1)
    mean = flat.mean(dim=1)
    std = flat.var(dim=1, unbiased=False).clamp_min(0.0).sqrt()
    return mean.reshape(shape), std.reshape(shape)


def bias_correct(q: torch.Tensor, w: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Ŵ = (q − μ_c(q)) · σ_c(w) / (σ_c(q) + ε) + μ_c(w), per output channel (dim 0).

    ``q`` is the quantized weight Q_b(W) and ``w`` the float weight, same shape [C_out, ...].
    A channel that quantizes to a constant (σ_c(q) = 0) becomes the constant μ_c(w).
    """
    q_mean, q_std = channel_moments(q)
    w_mean, w_std = channel_moments(w)
    return (q - q_mean) * (w_std / (q_std + eps)) + w_mean


def correction_affine(q: torch.Tensor, w: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(gain, offset) per channel such that Ŵ = gain · q + offset: what a deployed layer stores."""
    q_mean, q_std = channel_moments(q)
    w_mean, w_std = channel_moments(w)
    gain = w_std / (q_std + eps)
    return gain, w_mean - gain * q_mean
