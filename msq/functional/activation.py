"""PACT-style activation quantizer with a learnable clip α (METHODS §5), as a pure function.

Unsigned (inputs after ReLU):  y = clamp(x, 0, α);   y_q = round(y / α · (2^b - 1)) · α / (2^b - 1)
Signed (e.g. after LayerNorm): y = clamp(x, -α, α); the same 2^b - 1 steps spread over [-α, α].
Gradients (straight-through): to x where x is inside the clip range, to α where x is clipped.

>>> import torch
>>> pact_quantize(torch.tensor([-1.0, 0.2, 0.5, 3.0]), torch.tensor(1.0), 2, signed=False)
tensor([0.0000, 0.3333, 0.6667, 1.0000])
"""
from __future__ import annotations

import torch


def pact_quantize(x: torch.Tensor, alpha: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    steps = 2 ** int(bits) - 1
    lower = -alpha if signed else torch.zeros_like(alpha)
    clipped = torch.minimum(torch.maximum(x, lower), alpha)
    span = alpha - lower
    with torch.no_grad():
        quantized = torch.round((clipped - lower) / span * steps) / steps * span + lower
    return clipped + (quantized - clipped).detach()
