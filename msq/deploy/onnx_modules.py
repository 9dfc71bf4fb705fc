"""Plain stand-ins for quantized layers, for tracing by the ONNX exporter.

A quantized layer carries Python-side state (its width and grid as extra state, a lazily set
activation sign flag) that the TorchScript exporter cannot trace. ``export_copy`` returns a deep copy
of a model in which every quantized layer is an ``ExportConv2d``/``ExportLinear``: a plain
``nn.Conv2d``/``nn.Linear`` whose weight holds the layer's quantized values (its integer form is put
back by ``onnx_graph``) and whose input goes through the layer's activation quantizer written with
``torch.fake_quantize_per_tensor_affine``, which the exporter turns into QuantizeLinear/DequantizeLinear.

Activation quantizer (METHODS §5, PACT with b bits, 2^b - 1 steps over the clip range):
    unsigned  Clip(x, 0, α) -> Q/DQ uint8, scale α / (2^b - 1), zero point 0: codes 0 .. 2^b - 1
    signed    Clip(x, -α, α) + α -> the same Q/DQ with scale 2α / (2^b - 1) -> - α
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from msq.deploy.integer import IntegerLayer, integer_layer
from msq.errors import ConfigError
from msq.quant import quant_layers


class ActivationQDQ:
    """The activation quantizer of one layer as plain numbers (None: float input)."""

    def __init__(self, layer) -> None:
        bits = getattr(layer, "act_bits", None)
        self.bits: Optional[int] = None if bits is None or layer.mode == "float" else int(bits)
        if self.bits is not None and self.bits > 8:
            raise ConfigError(f"act_bits = {self.bits}: the ONNX export writes activations as uint8 "
                              "QuantizeLinear/DequantizeLinear pairs, so at most 8 bits; export at a width <= 8")
        if self.bits is not None:
            self.alpha = float(layer.act_alpha.detach())
            self.signed = bool(layer.act_signed_flag)
            self.steps = 2 ** self.bits - 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.bits is None:
            return x
        if self.signed:
            shifted = torch.clamp(x, -self.alpha, self.alpha) + self.alpha
            return torch.fake_quantize_per_tensor_affine(shifted, 2 * self.alpha / self.steps, 0, 0, 255) - self.alpha
        return torch.fake_quantize_per_tensor_affine(torch.clamp(x, 0.0, self.alpha), self.alpha / self.steps, 0, 0, 255)


class ExportConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.act_qdq(x), self.weight, self.bias)


class ExportLinear(nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.act_qdq(x), self.weight, self.bias)


def _plain(layer, weight: torch.Tensor) -> nn.Module:
    if isinstance(layer, nn.Conv2d):
        out = ExportConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                           layer.dilation, layer.groups, layer.bias is not None, layer.padding_mode)
    else:
        out = ExportLinear(layer.in_features, layer.out_features, layer.bias is not None)
    out.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
    if layer.bias is not None:
        out.bias = nn.Parameter(layer.bias.detach().clone(), requires_grad=False)
    out.act_qdq = ActivationQDQ(layer)
    return out


@torch.no_grad()
def export_copy(model: nn.Module) -> tuple[nn.Module, dict[str, IntegerLayer]]:
    """(a traceable copy of ``model`` in eval mode, {fqn: the integer form of each quantized layer})."""
    twin = copy.deepcopy(model).eval()
    integers = {}
    for name, layer in quant_layers(twin):
        integers[name] = integer_layer(layer)
        parent_name, _, child = name.rpartition(".")
        parent = twin.get_submodule(parent_name) if parent_name else twin
        setattr(parent, child, _plain(layer, integers[name].dequantized()))
    return twin, integers
