"""The symmetric (sign-magnitude) nested grid: zero-centred levels, binary at 1 bit.

With n bits *including the sign*, a weight gets the signed code c and the value Q_n = Δ_n c:

    n >= 2:  Δ_n = s 2^(1-n),  c = clamp(round(W / Δ_n), -(2^(n-1) - 1), 2^(n-1) - 1)
    n == 1:  Δ_1 = s / 2,      c = sign(W) in {-1, +1}          (binary, sign(0) = +1)

So 2 bits is ternary {-s/2, 0, s/2}, 3 bits is {0, ±s/4, ±s/2, ±3s/4}, ... The step doubles with
each dropped bit exactly as on the affine grid of ``quantize.py``, so every (n-1)-bit level is an
n-bit level (the grids nest down to 1 bit: the binary levels ±s/2 are the ternary's non-zero ones).
A weight whose value does not move when one bit is dropped has a "zero LSB": for n >= 3 that is an
even code, for n = 2 a non-zero code (the step to binary moves only the zeros).
Compared with the affine grid it gives up the single most negative level (-s) for symmetry; its
codes are a narrow-range signed integer with zero point 0 (what INT-n deployment kernels expect).

>>> import torch
>>> symmetric_fake_quantize(torch.tensor([-1.0, -0.3, 0.1, 0.9]), torch.tensor(1.0), 2)
tensor([-0.5000, -0.5000,  0.0000,  0.5000])
>>> symmetric_fake_quantize(torch.tensor([-1.0, -0.3, 0.1, 0.9]), torch.tensor(1.0), 1)
tensor([-0.5000, -0.5000,  0.5000,  0.5000])
"""
from __future__ import annotations

import torch


def symmetric_step(scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Δ_n = s 2^(1-n) for n >= 2 and s / 2 at one bit (binary at the ternary's levels)."""
    return scale * 2.0 ** (1 - max(int(bits), 2))


def symmetric_max_code(bits: int) -> int:
    """Largest |c|: 2^(n-1) - 1, and 1 for binary."""
    return max(2 ** (int(bits) - 1) - 1, 1)


class _SymmetricRoundSTE(torch.autograd.Function):
    """Signed codes forward (round-clamp, or sign at one bit); identity gradient inside [-s, s]."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, bits: int, inside: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inside)
        if bits == 1:
            return torch.where(y >= 0, 1.0, -1.0).to(y.dtype)
        hi = float(symmetric_max_code(bits))
        return torch.clamp(torch.round(y), -hi, hi)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


def symmetric_ste_codes(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Float-valued signed codes c with dc/dW = 1/Δ_n wherever |W| <= s (the clip range)."""
    step = symmetric_step(scale, bits)
    inside = (w.detach().abs() <= scale).to(w.dtype)
    return _SymmetricRoundSTE.apply(w / step, int(bits), inside)


def symmetric_codes(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed integer codes as int64 (no gradient)."""
    with torch.no_grad():
        return symmetric_ste_codes(w.detach(), scale, bits).to(torch.int64)


def symmetric_dequantize(codes: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    return symmetric_step(scale, bits) * codes.float()


def symmetric_fake_quantize(w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """Q_n(W) on the symmetric grid with the straight-through gradient."""
    return symmetric_step(scale, bits) * symmetric_ste_codes(w, scale, bits)


def symmetric_moves(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Boolean mask of weights whose value changes when one bit is dropped (a set LSB)."""
    if int(bits) == 2:
        return codes == 0
    return (codes & 1).bool()


def symmetric_drop_lsbs(codes: torch.Tensor, bits: int, k: int) -> torch.Tensor:
    """Codes of the same values rounded to n-k bits (exact where the k dropped bits are zero)."""
    if k <= 0:
        return codes
    target = int(bits) - k
    if target == 1:
        # binary keeps the sign; a zero (which has no sign) goes to +1, as sign(0) does
        return torch.where(codes >= 0, 1, -1).to(codes.dtype)
    q = torch.div(codes.abs() + 2 ** (k - 1), 2 ** k, rounding_mode="floor") * codes.sign()
    hi = symmetric_max_code(target)
    return torch.clamp(q, -hi, hi)
