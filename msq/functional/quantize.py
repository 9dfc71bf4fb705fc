"""Round-clamp weight quantizer on the nested 2^n grid (METHODS §1), as pure tensor functions.

Two grids share this nesting (``grid=``): "affine" (below; 2^n levels from -s, zero included, 1 bit
is {-s, 0}) and "symmetric" (``symmetric.py``: sign-magnitude, 2^n - 1 levels, ternary at 2 bits,
binary at 1). Bits are counted with the sign on both. Either way Q_n = Δ_n c with a signed integer
code c and zero point 0 (``weight_codes`` / ``code_step``), which is what deployment formats store.

    x   = clamp(W / (2 s) + 1/2, 0, 1)          weight mapped to [0, 1]
    q_n = clamp(round(2^n x), 0, 2^n - 1)        integer code in [0, 2^n)
    Q_n = s (2 q_n / 2^n - 1)                    dequantized; levels -s ... s (1 - 2^(1-n)); 0 is a level

Rounding with scale 2^n (not 2^n - 1) makes the grids nest: every (n-1)-bit level is an n-bit level
whose code has LSB 0, so dropping k zero LSBs changes no value.

>>> import torch
>>> fake_quantize(torch.tensor([-1.0, -0.3, 0.0, 0.9]), torch.tensor(1.0), 2)
tensor([-1.0000, -0.5000,  0.0000,  0.5000])
"""
from __future__ import annotations

import torch

from msq.functional.symmetric import (symmetric_codes, symmetric_dequantize, symmetric_drop_lsbs,
                                      symmetric_fake_quantize, symmetric_moves, symmetric_step)

GRIDS = ("affine", "symmetric")


def unit_interval(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Map weights in [-s, s] onto [0, 1] (clamped): x = clamp(W / 2s + 1/2, 0, 1)."""
    return torch.clamp(w / (2 * scale) + 0.5, 0.0, 1.0)


def quantize_codes(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer codes q_n in [0, 2^n - 1] as int64 (no gradient)."""
    levels = 2 ** int(bits)
    with torch.no_grad():
        q = torch.round(unit_interval(w, scale) * levels)
        return torch.clamp(q, 0, levels - 1).to(torch.int64)


def dequantize_codes(codes: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Q_n = s (2 q / 2^n - 1) for integer codes q."""
    return scale * (2.0 * codes.float() / 2 ** int(bits) - 1.0)


def signed_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed integer c = q - 2^(n-1), in [-2^(n-1), 2^(n-1) - 1]; LSB(c) == LSB(q)."""
    return codes - 2 ** (int(bits) - 1)


class _RoundClampSTE(torch.autograd.Function):
    """clamp(round(y), 0, hi) forward; identity gradient backward (the straight-through estimator).

    The gradient is cut only where the weight lies outside [-s, s], by the clamp in ``unit_interval``.
    """

    @staticmethod
    def forward(ctx, y: torch.Tensor, hi: float) -> torch.Tensor:
        return torch.clamp(torch.round(y), 0.0, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def ste_codes(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Integer-valued float codes q_n with a straight-through gradient dq/dW = 2^n / 2s inside [-s, s]."""
    levels = 2 ** int(bits)
    return _RoundClampSTE.apply(unit_interval(w, scale) * levels, float(levels - 1))


def fake_quantize(w: torch.Tensor, scale: torch.Tensor, bits: int, grid: str = "affine") -> torch.Tensor:
    """Q_n(W): quantize-dequantize with a straight-through gradient inside [-s, s].

    Shapes: ``w`` any shape, ``scale`` a 0-d tensor (or broadcastable); returns ``w``'s shape.
    """
    if grid == "symmetric":
        return symmetric_fake_quantize(w, scale, bits)
    return scale * (2.0 * ste_codes(w, scale, bits) / 2 ** int(bits) - 1.0)


def lsb(w: torch.Tensor, scale: torch.Tensor, bits: int, grid: str = "affine") -> torch.Tensor:
    """Differentiable LSB of the n-bit code, in units of s (METHODS §2).

        LSB = (Q_n(W) - sg(Q_{n-1}(W))) / s = 2 q_n / 2^n - sg(2 q_{n-1} / 2^(n-1))

    values in {-2^(1-n), 0, +2^(1-n)}, computed in the code domain so they are exact. The
    stop-gradient matters: without it both STE terms carry the same gradient and the LSB's gradient
    is exactly zero. On the symmetric grid the same difference (Q_n - sg(Q_{n-1})) / s is taken; at
    2 bits it is non-zero on the ternary zeros, which the step to binary would move.
    """
    if grid == "symmetric":
        with torch.no_grad():
            coarse = symmetric_fake_quantize(w.detach(), scale, bits - 1)
        return (symmetric_fake_quantize(w, scale, bits) - coarse) / scale
    fine = ste_codes(w, scale, bits) * (2.0 / 2 ** int(bits))
    with torch.no_grad():
        coarse = ste_codes(w, scale, bits - 1) * (2.0 / 2 ** (int(bits) - 1))
    return fine - coarse


def lsb_density(w: torch.Tensor, scale: torch.Tensor, bits: int, grid: str = "affine") -> float:
    """Fraction of weights whose value moves when one bit is dropped (1 - LSB sparsity): the odd codes."""
    if grid == "symmetric":
        return float(symmetric_moves(symmetric_codes(w, scale, bits), bits).float().mean())
    codes = quantize_codes(w, scale, bits)
    return float((codes & 1).float().mean())


def quantization_error(w: torch.Tensor, scale: torch.Tensor, bits: int, grid: str = "affine") -> float:
    """Mean squared error ||Q_n(W) - W||^2 / N."""
    with torch.no_grad():
        return float(torch.mean((fake_quantize(w, scale, bits, grid) - w) ** 2))


def drop_lsbs(codes: torch.Tensor, bits: int, k: int) -> torch.Tensor:
    """Round n-bit codes to the (n-k)-bit grid: clamp(floor(q / 2^k + 1/2), 0, 2^(n-k) - 1).

    On nested grids a code whose k low bits are zero maps to q >> k exactly and keeps its value.
    """
    if k <= 0:
        return codes
    q = torch.div(codes + 2 ** (k - 1), 2 ** k, rounding_mode="floor")
    return torch.clamp(q, 0, 2 ** (int(bits) - k) - 1)


# -- one signed-integer view of both grids (exporters, packing, signals) -------------------------
def code_step(scale: torch.Tensor, bits: int, grid: str = "affine") -> torch.Tensor:
    """Δ_n such that Q_n = Δ_n c: 2s / 2^n on the affine grid (see ``symmetric_step`` for the other)."""
    if grid == "symmetric":
        return symmetric_step(scale, bits)
    return scale * (2.0 / 2 ** int(bits))


def weight_codes(w: torch.Tensor, scale: torch.Tensor, bits: int, grid: str = "affine") -> torch.Tensor:
    """Signed integer codes c (int64) with Q_n(W) = code_step(s, n) * c and zero point 0."""
    if grid == "symmetric":
        return symmetric_codes(w, scale, bits)
    return signed_codes(quantize_codes(w, scale, bits), bits)


def code_range(bits: int, grid: str = "affine") -> tuple[int, int]:
    """Smallest and largest signed code of the grid: [-2^(n-1), 2^(n-1) - 1] or ±(2^(n-1) - 1)."""
    if grid == "symmetric":
        hi = 1 if int(bits) == 1 else 2 ** (int(bits) - 1) - 1
        return -hi, hi
    return -(2 ** (int(bits) - 1)), 2 ** (int(bits) - 1) - 1


def dequantize_weight_codes(codes: torch.Tensor, scale: torch.Tensor, bits: int,
                            grid: str = "affine") -> torch.Tensor:
    """Q_n from signed codes (the inverse of ``weight_codes``)."""
    if grid == "symmetric":
        return symmetric_dequantize(codes, scale, bits)
    return dequantize_codes(codes + 2 ** (int(bits) - 1), scale, bits)


def moved_by_drop(codes: torch.Tensor, bits: int, grid: str = "affine") -> torch.Tensor:
    """Mask of signed codes whose value changes when one bit is dropped (their LSB is set)."""
    if grid == "symmetric":
        return symmetric_moves(codes, bits)
    return (codes & 1).bool()


def drop_weight_lsbs(codes: torch.Tensor, bits: int, k: int, grid: str = "affine") -> torch.Tensor:
    """Signed codes rounded to n - k bits; exact where the k dropped bits are zero."""
    if grid == "symmetric":
        return symmetric_drop_lsbs(codes, bits, k)
    shift = 2 ** (int(bits) - 1)
    return drop_lsbs(codes + shift, bits, k) - 2 ** (int(bits) - k - 1)
