"""PACT-style activation quantizer with a learnable clip α (METHODS §5), as a pure function.

Unsigned (inputs after ReLU):  y = clamp(x, 0, α);   y_q = round(y / Δ) · Δ,  Δ = α / (2^b - 1)
Signed (e.g. after LayerNorm): y = clamp(x, -α, α); y_q = round((y + α) / Δ) · Δ - α,  Δ = 2α / (2^b - 1)
Gradients (straight-through): to x where x is inside the clip range, to α where x is clipped.

The forward is written as ONNX's QuantizeLinear/DequantizeLinear compute it (divide by the step,
round half to even, multiply back; the signed case shifted by α), and returns exactly that value,
so an exported model's Q/DQ pairs reproduce the trained activations bit for bit.

>>> import torch
>>> pact_quantize(torch.tensor([-1.0, 0.2, 0.5, 3.0]), torch.tensor(1.0), 2, signed=False)
tensor([0.0000, 0.3333, 0.6667, 1.0000])
"""
from __future__ import annotations

import torch


class _Passthrough(torch.autograd.Function):
    """Forward: the quantized value, exactly; backward: the gradient goes to the clipped input."""

    @staticmethod
    def forward(ctx, clipped: torch.Tensor, quantized: torch.Tensor) -> torch.Tensor:
        return quantized

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


def pact_quantize(x: torch.Tensor, alpha: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    steps = 2 ** int(bits) - 1
    lower = -alpha if signed else torch.zeros_like(alpha)
    clipped = torch.minimum(torch.maximum(x, lower), alpha)
    with torch.no_grad():
        step = (alpha - lower) / steps
        if signed:
            quantized = torch.round((clipped + alpha) / step) * step - alpha
        else:
            quantized = torch.round(clipped / step) * step
    return _Passthrough.apply(clipped, quantized)
