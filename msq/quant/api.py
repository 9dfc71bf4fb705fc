"""``quantize_(model, cfg)`` prepares a model in place; ``convert`` freezes it; ``restore_`` undoes it.

    model = create_model("lenet5")
    layers = quantize_(model, QuantConfig(init_bits=8))      # Conv2d/Linear -> QuantConv2d/QuantLinear
    ... train ...
    restore_(model)                                          # the original float layers, same tensors
"""
from __future__ import annotations

import fnmatch
from typing import Callable, Optional, Union

import torch
from torch import nn

from msq.config import QuantConfig, RunConfig
from msq.errors import ConfigError, NothingToQuantizeError
from msq.quant.layers import QUANT_CLASSES, QuantMixin, is_quant_layer, to_float, to_quant

LayerFilter = Callable[[str, nn.Module], bool]


def _matches(name: str, patterns: list) -> Optional[str]:
    return next((p for p in patterns if fnmatch.fnmatchcase(name, p)), None)


def quantizable_layers(model: nn.Module, cfg: QuantConfig,
                       filter_fn: Optional[LayerFilter] = None) -> list[tuple[str, nn.Module]]:
    """Conv2d and Linear layers (exact types) in registration order, minus excluded/filtered ones."""
    found = []
    for name, module in model.named_modules():
        if name == "" or type(module) not in QUANT_CLASSES or _matches(name, cfg.exclude):
            continue
        if filter_fn is not None and not filter_fn(name, module):
            continue
        found.append((name, module))
    return found


def quantize_(model: nn.Module, cfg: Union[QuantConfig, RunConfig, None] = None, *,
              filter_fn: Optional[LayerFilter] = None, searched_bits: Optional[int] = None) -> list[str]:
    """Swap every quantizable layer of ``model`` for its quantized version, in place.

    ``searched_bits`` overrides ``cfg.init_bits`` for the layers that are not fixed (uniform QAT uses
    it). Returns the quantized layers' fully qualified names, in order.
    """
    if isinstance(cfg, RunConfig):
        cfg = cfg.quant
    cfg = cfg or QuantConfig()
    if any(is_quant_layer(m) for m in model.modules()):
        raise ConfigError("quantize_: the model is already quantized; call restore_(model) first")
    targets = quantizable_layers(model, cfg, filter_fn)
    if not targets:
        kinds = sorted({type(m).__name__ for m in model.modules() if len(list(m.children())) == 0})
        raise NothingToQuantizeError(
            "quantize_: the model has no Conv2d or Linear layer left to quantize "
            f"(exclude={cfg.exclude!r}; leaf layers found: {', '.join(kinds) or 'none'}). "
            "Remove patterns from quant.exclude or use a model with Conv2d/Linear layers.")
    last = len(targets) - 1
    names = []
    for index, (name, module) in enumerate(targets):
        fixed_reason = ""
        if cfg.keep_first_last and index == 0:
            fixed_reason = "first layer"
        elif cfg.keep_first_last and index == last:
            fixed_reason = "last layer"
        elif _matches(name, cfg.fixed):
            fixed_reason = f"matches quant.fixed pattern {_matches(name, cfg.fixed)!r}"
        fixed = bool(fixed_reason)
        bits = cfg.fixed_bits if fixed else (searched_bits if searched_bits is not None else cfg.init_bits)
        layer = to_quant(module, bits=bits, fixed=fixed, fixed_reason=fixed_reason, act_bits=cfg.act_bits,
                         act_clip_init=cfg.act_clip_init, quantize_input=index > 0, grid=cfg.grid)
        _set_submodule(model, name, layer)
        names.append(name)
    return names


def restore_(model: nn.Module) -> nn.Module:
    """Put the original float layers back (same Parameter objects: lossless). Returns ``model``."""
    for name, layer in quant_layers(model):
        _set_submodule(model, name, to_float(layer))
    return model


@torch.no_grad()
def convert_(model: nn.Module) -> nn.Module:
    """Freeze: each weight becomes Q_n(W) exactly and stops training (mode "frozen").

    Outputs equal the fake-quantized model's exactly (Q_n is idempotent on grid values). The float
    master weights are replaced, so call ``restore_`` before ``convert_`` if you need them back.
    """
    for _, layer in quant_layers(model):
        if layer.mode != "frozen":
            layer.mode = "quant"    # the layer's own quantized weight (multi-bit layers add their correction)
            layer.weight.copy_(layer.quantized_weight())
            layer.weight.requires_grad_(False)
            layer.mode = "frozen"
    return model


def quant_layers(model: nn.Module) -> list[tuple[str, QuantMixin]]:
    """The model's quantized layers as (fully qualified name, layer), in registration order."""
    return [(name, m) for name, m in model.named_modules() if is_quant_layer(m)]


def searched_layers(model: nn.Module) -> list[tuple[str, QuantMixin]]:
    return [(name, m) for name, m in quant_layers(model) if not m.fixed]


def set_mode_(model: nn.Module, mode: str) -> None:
    """"float" runs every quantized layer as its float layer (pretraining); "quant" fake-quantizes."""
    if mode not in ("float", "quant"):
        raise ConfigError(f"mode = {mode!r} is invalid: allowed 'float' or 'quant'")
    if any(layer.mode == "frozen" for _, layer in quant_layers(model)):
        raise ConfigError("set_mode_: the model was converted (frozen); its float weights are gone")
    for _, layer in quant_layers(model):
        layer.mode = mode


@torch.no_grad()
def calibrate_scales_(model: nn.Module) -> None:
    """Set every layer's scale to max|W| (done once, when the quantized phases start)."""
    for _, layer in quant_layers(model):
        layer.calibrate_scale_()


def bit_allocation(model: nn.Module) -> dict[str, int]:
    """The current width of every quantized layer: ``{fqn: bits}``."""
    return {name: layer.bits for name, layer in quant_layers(model)}


def set_bit_allocation_(model: nn.Module, allocation: dict[str, int]) -> None:
    """Set layer widths from ``{fqn: bits}``; unknown names raise with the known ones listed."""
    layers = dict(quant_layers(model))
    unknown = sorted(set(allocation) - set(layers))
    if unknown:
        raise ConfigError(f"unknown layer name(s) {', '.join(unknown)}: "
                          f"the quantized layers are {', '.join(layers)}")
    for name, bits in allocation.items():
        if not isinstance(bits, int) or not 1 <= bits <= 16:
            raise ConfigError(f"bits of {name} = {bits!r} is invalid: allowed an integer in [1, 16]")
        layers[name].bits = bits


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)
