"""One-shot calibration of the grids a multi-bit model shares across widths (``multibit.calibration``).

Why not MSQ's s = max|W|: MSQ starts at 8 bits, where the max-based grid is fine. A multi-bit model
also runs at 2 bits, where that grid has levels {−s, −s/2, 0, s/2}: nearly every weight rounds to 0 and
the 2-bit network starts near chance. The same holds for activations with PACT's default clip α = 6
(2-bit levels {0, 2, 4, 6} for post-BatchNorm activations of scale ~1).

So when the quantized phase starts, each layer's weight scale s and input clip α are set once to the
value that minimises Σ_b log MSE_b over the widths: the log weighs every width's *relative* error
alike (otherwise the 2-bit error, orders of magnitude larger, would choose alone and clip the 8-bit
network's largest weights for nothing). With bias correction on, the weight error is that of the
corrected weights, which is what the network computes with. The grids stay fixed afterwards, as in
MSQ (nested across widths). ``calibration = "max"`` keeps MSQ's max|W| and the configured α.
"""
from __future__ import annotations

import torch
from torch import nn

from msq.eval_mode import probe_forward
from msq.functional import fake_quantize, pact_quantize
from msq.methods.multibit.correction import bias_correct
from msq.quant import quant_layers

FRACTIONS = torch.linspace(0.1, 1.0, 37)     # candidate s (or α) as fractions of max|W| (or max x)


def _best(candidates: torch.Tensor, error_at) -> float:
    """The candidate with the smallest Σ_b log(error_b); ``error_at(c)`` returns one error per width."""
    costs = [sum(torch.log(torch.as_tensor(e, dtype=torch.float64) + 1e-30) for e in error_at(float(c)))
             for c in candidates]
    return float(candidates[int(torch.argmin(torch.stack(costs)))])


@torch.no_grad()
def best_weight_scale(w: torch.Tensor, widths: list[int], correct: bool, grid: str = "affine") -> float:
    """s minimising Σ_b log ||Ŵ_b − W||² (Ŵ_b = Q_b(W; s) on ``grid``, bias-corrected when ``correct``)."""
    top = float(w.abs().max().clamp_min(1e-12))

    def errors(s: float) -> list:
        scale = torch.tensor(s)
        out = []
        for b in widths:
            q = fake_quantize(w, scale, b, grid)
            out.append(float(torch.mean(((bias_correct(q, w) if correct else q) - w) ** 2)))
        return out
    return _best(FRACTIONS * top, errors)


@torch.no_grad()
def best_act_clip(x: torch.Tensor, widths: list[int], signed: bool) -> float:
    """α minimising Σ_b log ||pact_b(x; α) − x||² on a sample of inputs ``x``."""
    top = float(x.abs().max().clamp_min(1e-6))
    sample = x.flatten()[torch.randperm(x.numel(), generator=torch.Generator().manual_seed(0))[:200_000]]

    def errors(a: float) -> list:
        alpha = torch.tensor(a)
        return [float(torch.mean((pact_quantize(sample, alpha, b, signed) - sample) ** 2)) for b in widths]
    return _best(FRACTIONS * top, errors)


@torch.no_grad()
def calibrate_grids_(model: nn.Module, widths: list[int], batch: torch.Tensor) -> dict[str, dict]:
    """Set every layer's weight scale and (if it quantizes its input) PACT clip; returns what was set.

    ``batch``: a few hundred training images, run once at the model's current widths to record each
    layer's input. Activation widths are each layer's ``act_bits`` over the widths (they follow
    ``bits`` under ``act_bits = "same"``).
    """
    layers = quant_layers(model)
    inputs: dict[str, torch.Tensor] = {}
    hooks = [layer.register_forward_pre_hook(lambda m, args, name=name: inputs.__setitem__(name, args[0].detach()))
             for name, layer in layers]
    probe_forward(model, batch, hooks)
    chosen = {}
    for name, layer in layers:
        layer_widths = [layer.bits] if layer.fixed else widths
        correct = bool(getattr(layer, "bias_correction", False))
        layer.scale.fill_(best_weight_scale(layer.weight.detach(), layer_widths, correct, layer.grid))
        chosen[name] = {"scale": float(layer.scale)}
        if layer.act_bits is not None and name in inputs:
            act_widths = sorted({_act_width(layer, b) for b in layer_widths})
            signed = bool((inputs[name] < 0).any())
            layer.act_alpha.fill_(best_act_clip(inputs[name], act_widths, signed))
            chosen[name]["act_alpha"] = float(layer.act_alpha)
    return chosen


def _act_width(layer, bits: int) -> int:
    saved = layer.bits
    layer.bits = bits
    try:
        return layer.act_bits
    finally:
        layer.bits = saved
