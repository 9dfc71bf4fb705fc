"""Bit-plane views of integer codes: split codes into {0,1} planes (MSB first) and back.

>>> import torch
>>> to_bit_planes(torch.tensor([5, 2]), 3)
tensor([[1, 0],
        [0, 1],
        [1, 0]], dtype=torch.uint8)
"""
from __future__ import annotations

import torch


def to_bit_planes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Unsigned codes in [0, 2^n) -> uint8 planes of shape [n, *codes.shape], MSB first."""
    shifts = torch.arange(bits - 1, -1, -1, device=codes.device).view(-1, *([1] * codes.dim()))
    return ((codes.unsqueeze(0).to(torch.int64) >> shifts) & 1).to(torch.uint8)


def from_bit_planes(planes: torch.Tensor) -> torch.Tensor:
    """Inverse of ``to_bit_planes``: planes [n, *shape] (MSB first, any real dtype) -> codes."""
    bits = planes.shape[0]
    weights = (2 ** torch.arange(bits - 1, -1, -1, device=planes.device)).view(-1, *([1] * (planes.dim() - 1)))
    return (planes.to(torch.int64) * weights).sum(0)


def to_sign_magnitude_planes(signed: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed integers with |c| < 2^n -> (positive planes, negative planes), each [n, *shape], MSB first.

    A positive c sets bits of |c| in the positive planes only; a negative c in the negative planes.
    """
    magnitude = signed.abs()
    planes = to_bit_planes(magnitude, bits)
    positive = planes * (signed > 0).to(torch.uint8)
    negative = planes * (signed < 0).to(torch.uint8)
    return positive, negative


def from_sign_magnitude_planes(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """Inverse of ``to_sign_magnitude_planes``: sum_i (p_i - n_i) 2^(n-1-i)."""
    return from_bit_planes(positive) - from_bit_planes(negative)


def plane_densities(planes: torch.Tensor) -> torch.Tensor:
    """Fraction of ones in each plane: shape [n]."""
    return planes.flatten(1).float().mean(1)
