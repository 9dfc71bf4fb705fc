"""BSQ's weight representation as pure tensor functions (METHODS §7).

A layer of n bits holds its weights as signed integers C with |C| <= 2^n - 1, stored as two stacks of
magnitude bit planes, positive and negative, MSB first, in one tensor ``planes`` of shape
[2, n, *W.shape] (planes[0] = Wp, planes[1] = Wn). The weight is

    S = Σ_i (Wp_i - Wn_i) 2^(n-1-i)            the bit sum (real-valued while the planes train in [0, 2])
    C = clamp(round(S), -L, L)                  straight-through: identity gradient
    W = s C / (2^n - 1)                         s: the layer's trainable scale; the step is s / (2^n - 1)

Note on counting: n magnitude bits plus the sign give 2^(n+1) - 1 levels; BSQ (and this code) report n.

>>> import torch
>>> planes = encode_planes(torch.tensor([5, -2, 0]), 3)
>>> planes[0].T.tolist(), planes[1].T.tolist()
([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
>>> plane_sum(planes, plane_coefficients(3)).tolist()
[5.0, -2.0, 0.0]
"""
from __future__ import annotations

from typing import Optional

import torch

from msq.functional import from_sign_magnitude_planes, to_sign_magnitude_planes


def max_code(bits: int) -> int:
    """Largest magnitude n bit planes can hold: 2^n - 1."""
    return 2 ** int(bits) - 1


def initial_codes(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """BSQ's round-clamp of float weights: s = max|W|, C = clamp(round(W / s · (2^n - 1)), ±(2^n - 1)).

    Returns (int64 codes, 0-d scale). The same rule as the BSQ authors' ``ini2bit``.
    """
    with torch.no_grad():
        scale = w.detach().abs().max().clamp_min(1e-12)
        codes = torch.round(w.detach() / scale * max_code(bits)).clamp(-max_code(bits), max_code(bits))
        return codes.to(torch.int64), scale


def encode_planes(codes: torch.Tensor, bits: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Signed integer codes with |C| < 2^n -> float planes [2, n, *codes.shape] of 0/1, MSB first."""
    positive, negative = to_sign_magnitude_planes(codes, bits)
    return torch.stack([positive, negative]).to(dtype)


def decode_planes(planes: torch.Tensor) -> torch.Tensor:
    """Inverse of ``encode_planes`` for binary planes: int64 codes Σ_i (p_i - n_i) 2^(n-1-i)."""
    return from_sign_magnitude_planes(planes[0].round(), planes[1].round())


def plane_coefficients(bits: int, device: Optional[torch.device] = None,
                       dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[2n] weights of the flattened planes: +2^(n-1-i) for Wp_i, -2^(n-1-i) for Wn_i."""
    powers = 2.0 ** torch.arange(bits - 1, -1, -1, device=device, dtype=dtype)
    return torch.cat([powers, -powers])


def plane_sum(planes: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """S = Σ_i (Wp_i - Wn_i) 2^(n-1-i) as ONE matrix-vector product over the [2n, N] planes.

    Vectorised on purpose: the backward is one outer product, not 2n separate kernels.
    """
    flat = planes.reshape(coefficients.numel(), -1)                 # [2n, N], a view
    return torch.matmul(coefficients, flat).view(planes.shape[2:])  # backward: outer(coeffs, grad), contiguous


class _RoundClampSTE(torch.autograd.Function):
    """clamp(round(S), -L, L) forward; identity gradient backward (BSQ's straight-through rounding)."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, limit: float) -> torch.Tensor:
        return torch.round(s).clamp_(-limit, limit)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def round_codes_ste(bit_sum: torch.Tensor, limit: int) -> torch.Tensor:
    """Integer-valued codes from the real bit sum, |C| <= ``limit``, with a straight-through gradient."""
    return _RoundClampSTE.apply(bit_sum, float(limit))
