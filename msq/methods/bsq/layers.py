"""BSQConv2d / BSQLinear: a quantized layer whose weight IS its bit planes (no float master weight).

A BSQ layer is a ``QuantConv2d``/``QuantLinear`` (so ``quant_layers``, ``bit_allocation``, the
inventory, the summary and the report treat it like any quantized layer) whose ``weight`` Parameter
is replaced by

  planes         Parameter [2, n, *W.shape] in [0, 2]: positive and negative magnitude bits, MSB first
  log_scale      Parameter, 0-d: log s, trained (MSQ's s is a fixed buffer); ``scale`` reads s detached.
                 Trained in log space so s stays positive: a plain s crossed zero within an epoch and
                 diverged on LeNet-5 (no BatchNorm to absorb it) at decay >= 0.15.

``weight`` is a read-only property: the quantized weight s C / (2^n - 1), detached, for code that
only looks at weights (signals, MACs, accounting). n changes at re-quantization, so ``planes`` changes
shape; a checkpoint with other shapes loads into a fresh layer (``_load_from_state_dict`` re-shapes).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from msq.methods.bsq.planes import (encode_planes, initial_codes, max_code, plane_coefficients, plane_sum,
                                      round_codes_ste)
from msq.methods.bsq.requantize import Requantized, requantize_codes
from msq.quant.layers import QuantConv2d, QuantLinear, QuantMixin


class BSQMixin:
    """Bit-plane state and the weight rebuilt from it; mixed in front of QuantConv2d / QuantLinear."""

    planes: nn.Parameter
    log_scale: nn.Parameter

    @property
    def storage_bits(self) -> int:
        """Bits per stored weight: ``bits`` counts BSQ's magnitude planes only, so the sign adds one
        (MSQ's and uniform's widths already include it): every method's average is counted alike."""
        return self.bits + 1

    def _init_bsq(self, weight: torch.Tensor, bits: int, max_bits: int) -> None:
        codes, scale = initial_codes(weight, bits)
        self.bits, self.max_bits, self.frozen = int(bits), int(max_bits), False
        self.log_scale = nn.Parameter(scale.to(weight.dtype).log())
        self._set_planes(encode_planes(codes, bits, weight.dtype))

    def _set_planes(self, planes: torch.Tensor) -> None:
        """A new planes Parameter (shapes may change) and the matching [2n] sum coefficients."""
        self.planes = nn.Parameter(planes.contiguous())
        self.register_buffer("plane_coeffs", plane_coefficients(planes.shape[1], planes.device, planes.dtype),
                             persistent=False)

    # -- the weight -----------------------------------------------------------------------------
    @property
    def code_limit(self) -> int:
        """|C| allowed in the forward: one MSB of headroom while the width may still grow."""
        grow = 0 if self.frozen or self.bits >= self.max_bits else 1
        return max_code(self.bits + grow)

    def codes(self) -> torch.Tensor:
        """The integer codes the forward uses, int64 [*W.shape]."""
        with torch.no_grad():
            return round_codes_ste(plane_sum(self.planes, self.plane_coeffs), self.code_limit).to(torch.int64)

    def quantized_weight(self) -> torch.Tensor:
        """W = s · clamp(round(S)) / (2^n - 1) with a straight-through round; gradients reach planes and s."""
        codes = round_codes_ste(plane_sum(self.planes, self.plane_coeffs), self.code_limit)
        return codes * (self.log_scale.exp() / max_code(self.bits))

    @property
    def scale(self) -> torch.Tensor:
        """s, detached (summaries and reports read it like MSQ's scale buffer)."""
        return self.log_scale.detach().exp()

    @property
    def weight(self) -> torch.Tensor:
        """The current quantized weight (detached): what signals, MACs and accounting look at."""
        with torch.no_grad():
            return self.quantized_weight()

    def weight_parameters(self) -> list:
        """The tensors that hold the quantized weight (not float parameters in the accounting)."""
        return [self.planes, self.log_scale]

    def calibrate_scale_(self) -> None:
        """No-op: BSQ's scale is trained, not calibrated."""

    # -- re-quantization ------------------------------------------------------------------------
    @torch.no_grad()
    def requantize_(self, adjust: bool = True) -> Requantized:
        """Round the planes back to {0, 1} keeping every value; with ``adjust``, grow/drop planes."""
        result = requantize_codes(self.codes(), self.bits, self.max_bits, adjust=adjust)
        self.log_scale.add_(math.log(result.scale_factor))
        self.bits = result.bits
        self._set_planes(encode_planes(result.codes, result.bits, self.planes.dtype))
        return result

    @torch.no_grad()
    def bit_signals(self) -> dict:
        """The per-layer signals of ``msq.methods.signals`` on BSQ's own grid.

        lsb_density: fraction of odd |C|; lsb_l1: mean |LSB| in units of s = density / (2^n - 1);
        quant_error: mean (W_q - W_real)^2, W_real = s S / (2^n - 1) from the real-valued planes.
        """
        bit_sum = plane_sum(self.planes, self.plane_coeffs)
        codes = round_codes_ste(bit_sum, self.code_limit)
        density = float((codes.abs().to(torch.int64) & 1).float().mean())
        step = self.scale / max_code(self.bits)
        return {"bits": float(self.bits), "lsb_density": density, "lsb_l1": density / max_code(self.bits),
                "quant_error": float(torch.mean(((codes - bit_sum) * step) ** 2))}

    @torch.no_grad()
    def msb_density(self) -> float:
        """Fraction of weights whose code uses the top plane (0 means the MSB can be dropped)."""
        return float((self.codes().abs() >= 2 ** (self.bits - 1)).float().mean())

    # -- state ----------------------------------------------------------------------------------
    def get_extra_state(self) -> dict:
        return {**super().get_extra_state(), "max_bits": self.max_bits, "frozen": self.frozen}

    def set_extra_state(self, state: dict) -> None:
        super().set_extra_state(state)
        self.max_bits, self.frozen = int(state["max_bits"]), bool(state["frozen"])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        incoming = state_dict.get(prefix + "planes")
        if incoming is not None and incoming.shape != self.planes.shape:
            # the checkpoint was written after re-quantization changed n: take its shape first
            self._set_planes(torch.zeros(incoming.shape, dtype=self.planes.dtype, device=self.planes.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", bsq planes={list(self.planes.shape[:2])}"


class BSQConv2d(BSQMixin, QuantConv2d):
    pass


class BSQLinear(BSQMixin, QuantLinear):
    pass


BSQ_CLASSES = {QuantConv2d: BSQConv2d, QuantLinear: BSQLinear}


def to_bsq(layer: QuantMixin, bits: int, max_bits: int) -> BSQMixin:
    """A BSQ layer from a quantized layer, sharing its bias, PACT clip and state; planes from its weight."""
    cls = BSQ_CLASSES[type(layer)]
    new = cls.__new__(cls)
    new.__dict__.update(layer.__dict__)
    weight = layer.weight.detach()
    new._parameters = {k: v for k, v in layer._parameters.items() if k != "weight"}  # planes replace it
    new._buffers = {k: v for k, v in layer._buffers.items() if k != "scale"}        # scale is trained
    new._non_persistent_buffers_set = set(layer._non_persistent_buffers_set)
    new._modules = dict(layer._modules)
    new._init_bsq(weight, bits, max_bits)
    return new


def is_bsq_layer(module: nn.Module) -> bool:
    return isinstance(module, BSQMixin)


__all__ = ["BSQConv2d", "BSQLinear", "BSQMixin", "to_bsq", "is_bsq_layer"]
