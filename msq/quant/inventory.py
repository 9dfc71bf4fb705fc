"""What the quantized layers are: name, kind, shape, parameter count and MACs per sample.

MACs are measured with forward hooks on one example input, so they are right for any model whose
layer output sizes depend on the input (convs, token-wise linears in a ViT).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import nn

from msq.eval_mode import probe_forward
from msq.quant.api import quant_layers


@dataclass
class LayerInfo:
    index: int
    fqn: str
    kind: str            # "conv2d", "dwconv2d" (depthwise) or "linear"
    shape: list
    params: int
    macs: int            # multiply-accumulates per input sample
    bits: int
    fixed: bool
    fixed_reason: str
    act_bits: Optional[int] = None

    def as_dict(self) -> dict:
        return asdict(self)


def _kind(layer: nn.Module) -> str:
    if isinstance(layer, nn.Conv2d):
        depthwise = layer.groups > 1 and layer.groups == layer.in_channels
        return "dwconv2d" if depthwise else "conv2d"
    return "linear"


@torch.no_grad()
def layer_inventory(model: nn.Module, example_input: Optional[torch.Tensor] = None) -> list[LayerInfo]:
    """One LayerInfo per quantized layer, in order; MACs are 0 when no example input is given."""
    layers = quant_layers(model)
    macs = {name: 0 for name, _ in layers}
    if example_input is not None:
        hooks = []
        for name, layer in layers:
            def hook(module, inputs, output, name=name):
                per_sample = output.numel() // output.shape[0]          # outputs per sample
                fan_in = module.weight[0].numel()                        # MACs per output element
                macs[name] = per_sample * fan_in
            hooks.append(layer.register_forward_hook(hook))
        probe_forward(model, example_input, hooks)
    return [LayerInfo(index=i, fqn=name, kind=_kind(layer), shape=list(layer.weight.shape),
                      params=layer.weight.numel(), macs=int(macs[name]), bits=layer.bits, fixed=layer.fixed,
                      fixed_reason=layer.fixed_reason, act_bits=layer.act_bits)
            for i, (name, layer) in enumerate(layers)]


def float_param_count(model: nn.Module) -> int:
    """Parameters that stay float (biases, BatchNorm, PACT clips): all but the quantized weights."""
    quantized = {id(p) for _, layer in quant_layers(model)   # BSQ layers hold the weight in bit planes
                 for p in (layer.weight_parameters() if hasattr(layer, "weight_parameters") else [layer.weight])}
    return sum(p.numel() for p in model.parameters() if id(p) not in quantized)


def trainable_param_count(model: nn.Module) -> int:
    """Σ numel over parameters with requires_grad (METHODS §6, the same for MSQ and BSQ)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
