"""The integer form of any quantized layer: signed codes c and a step Δ with W_q = Δ c (zero point 0),
plus the per-output-channel affine (gain, offset) a bias-corrected multi-bit layer applies on top.

    MSQ / uniform   ``QuantMixin.integer_weight()`` on the layer's grid (affine or symmetric), n bits
    BSQ             the bit-plane codes C, |C| <= 2^n - 1, and Δ = s / (2^n - 1): n magnitude bits
                    plus the sign, so the codes need n + 1 signed bits
    multi-bit       the MSQ codes at the active width; with weight bias correction (METHODS §8)
                    Ŵ = gain_c · Δ c + offset_c per output channel c

``storage_bits`` is the signed two's-complement width the codes need: the layer's ``bits``, except a
binary layer (symmetric grid at 1 bit: c = ±1, so 2 bits) and BSQ (n + 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from msq.errors import ConfigError


@dataclass
class IntegerLayer:
    codes: torch.Tensor             # int64, the weight's shape
    step: torch.Tensor              # 0-d float32: W_q = step * codes
    bits: int                       # the layer's width as the report counts it
    storage_bits: int               # signed bits the codes need
    gain: Optional[torch.Tensor] = None     # [C_out, 1, ...] float32, bias-corrected layers only
    offset: Optional[torch.Tensor] = None

    def dequantized(self) -> torch.Tensor:
        """Δ c (then gain · Δ c + offset): the weight the layer computes with."""
        w = self.step * self.codes.to(torch.float32)
        return w if self.gain is None else w * self.gain + self.offset


def _signed_bits(codes: torch.Tensor) -> int:
    """Smallest two's-complement width holding every code."""
    lo, hi = int(codes.min()), int(codes.max())
    bits = 1
    while lo < -(1 << (bits - 1)) or hi > (1 << (bits - 1)) - 1:
        bits += 1
    return bits


@torch.no_grad()
def integer_layer(layer) -> IntegerLayer:
    """The integer form of one quantized layer (see the module docstring)."""
    from msq.methods.bsq.layers import is_bsq_layer
    from msq.methods.bsq.planes import max_code

    if is_bsq_layer(layer):
        codes = layer.codes()
        step = layer.log_scale.detach().exp() / max_code(layer.bits)
        need = _signed_bits(codes) if codes.numel() else 1
        if need > layer.bits + 1:
            raise ConfigError(f"a BSQ layer at {layer.bits} bits holds codes up to |{int(codes.abs().max())}|, "
                              f"which need {need} signed bits: re-quantize it first (BSQMixin.requantize_)")
        return IntegerLayer(codes, step.to(torch.float32), layer.bits, layer.bits + 1)
    codes, step = layer.integer_weight()
    storage = 2 if layer.grid == "symmetric" and layer.bits == 1 else int(layer.bits)
    out = IntegerLayer(codes, step.detach().to(torch.float32).reshape(()), int(layer.bits), storage)
    if getattr(layer, "bias_correction", False) and layer.mode == "quant":
        from msq.methods.multibit.correction import correction_affine
        out.gain, out.offset = correction_affine(out.dequantized(), layer.weight.detach())
    return out
