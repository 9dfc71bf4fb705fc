"""BSQ's periodic re-quantization as a pure function on integer codes (METHODS §7).

While they train, the bit planes are real numbers in [0, 2]; the forward pass already uses the
rounded bit sum C = round(S). Re-quantizing re-encodes exactly that C as binary planes (the carry
happens in the integer domain, so the represented value is preserved), then adjusts the width:

- overflow: |C| > 2^n - 1 (planes above 1 carry into a bit the layer does not have yet) -> grow
  MSBs until C fits, at most to ``max_bits`` (beyond it C is clamped: the one lossy case);
- an all-zero MSB plane (every |C| < 2^(n-1)) -> drop it; the step s / (2^n - 1) is unchanged;
- an all-zero LSB plane (every C even) -> drop it; C halves and the step doubles.
Every value s C / (2^n - 1) is kept: the caller rescales s by ``scale_factor``.

>>> import torch
>>> r = requantize_codes(torch.tensor([4, -8, 0]), bits=5, max_bits=8)
>>> r.codes.tolist(), r.bits, r.dropped_lsb, r.dropped_msb
([1, -2, 0], 2, 2, 1)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from msq.methods.bsq.planes import max_code


@dataclass
class Requantized:
    codes: torch.Tensor      # int64, |C| <= 2^bits - 1
    bits: int
    old_bits: int
    scale_factor: float      # new s / old s, so that s C / (2^n - 1) is unchanged
    grown: int = 0           # MSBs added on overflow
    dropped_lsb: int = 0
    dropped_msb: int = 0
    clamped: int = 0         # codes clamped at max_bits (values changed)


def _common_trailing_zeros(magnitude: torch.Tensor, limit: int) -> int:
    """How many low bits are zero in every code (at most ``limit``)."""
    k = 0
    while k < limit and bool((magnitude % 2 ** (k + 1) == 0).all()):
        k += 1
    return k


@torch.no_grad()
def requantize_codes(codes: torch.Tensor, bits: int, max_bits: int, adjust: bool = True) -> Requantized:
    """Fit the integer codes of an n-bit layer: grow on overflow, then (if ``adjust``) drop all-zero
    LSB and MSB planes. With ``adjust=False`` (bits frozen) the width never changes and overflow clamps.
    A layer keeps at least one plane.
    """
    codes = codes.to(torch.int64)
    old_bits, n = int(bits), int(bits)
    step = 1                                 # new step / old step (a power of two)
    peak = int(codes.abs().max()) if codes.numel() else 0
    grown = clamped = 0
    if peak > max_code(n):
        ceiling = max(n, max_bits) if adjust else n
        needed = min(peak.bit_length(), ceiling)
        grown = needed - n
        n = needed
        if peak > max_code(n):
            clamped = int((codes.abs() > max_code(n)).sum())
            codes = codes.clamp(-max_code(n), max_code(n))
            peak = max_code(n)
    dropped_lsb = dropped_msb = 0
    if adjust and peak > 0:
        dropped_lsb = _common_trailing_zeros(codes.abs(), n - 1)
        if dropped_lsb:
            codes = torch.div(codes, 2 ** dropped_lsb, rounding_mode="trunc")   # exact: low bits are zero
            peak >>= dropped_lsb
            n -= dropped_lsb
            step = 2 ** dropped_lsb
    if adjust:
        while n > 1 and peak < 2 ** (n - 1):
            n -= 1
            dropped_msb += 1
    scale_factor = step * max_code(n) / max_code(old_bits)
    return Requantized(codes, n, old_bits, scale_factor, grown, dropped_lsb, dropped_msb, clamped)
