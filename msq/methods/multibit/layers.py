"""One set of float weights, any width: multi-bit layers, per-width BatchNorm, and width switching.

    names = prepare_multibit_(model, cfg, example_input)   # quantize_ + multi-bit layers (+ per-width BN)
    set_width_(model, 3)                                    # every searched layer at 3 bits
    with allocation(model, {"conv2": 5}): ...               # a temporary per-layer mix

The active width is state of the model itself: the ``bits`` of its quantized layers (the same
attribute MSQ prunes), so ``msq.quant.set_bit_allocation_`` by hand and ``set_width_`` agree, and
everything that reads ``layer.bits`` (accounting, reports) sees the active width. Layers pinned by
``quant.keep_first_last`` / ``quant.fixed`` stay at ``quant.fixed_bits``: the first layer sees raw
pixels and the last produces logits, both cheap in parameters and the most fragile at 2 bits, and
keeping them fixed is the usual any-precision recipe (and the same policy MSQ uses, so a multi-bit
model and an MSQ allocation compare on the same layers).

What a multi-bit layer adds to ``QuantConv2d``/``QuantLinear`` (by subclassing; class swapped in place,
parameters untouched):
  bias_correction   Ŵ_b = bias_correct(Q_b(W), W) in the quantized forward (METHODS §8)
  act_bits          with ``multibit.act_bits = "same"``, follows the layer's own ``bits``

The Any-Precision baseline (``multibit.shared_bn = False``) swaps every BatchNorm for a
``SwitchableBatchNorm``: one BatchNorm per trained width, chosen by the width of the quantized layer
that feeds it (found by tracing one forward pass), so a mixed allocation picks a BatchNorm per layer.
A width never trained uses the nearest trained width's BatchNorm (ties: the wider), no calibration.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Iterator, Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from msq.config import RunConfig
from msq.eval_mode import probe_forward
from msq.errors import ConfigError
from msq.methods.multibit.correction import bias_correct
from msq.quant import QuantConv2d, QuantLinear, quant_layers, quantize_, searched_layers, set_bit_allocation_


class MultiBitMixin:
    """Bias-corrected quantized weight; activation width that can follow the weight width."""

    def quantized_weight(self) -> torch.Tensor:
        q = super().quantized_weight()
        if self.mode != "quant" or not self.__dict__.get("bias_correction", False):
            return q
        return bias_correct(q, self.weight)

    @property
    def act_bits(self) -> Optional[int]:
        base = self.__dict__.get("act_bits")
        return self.bits if base is not None and self.__dict__.get("act_follows_bits") else base

    @act_bits.setter
    def act_bits(self, value: Optional[int]) -> None:
        self.__dict__["act_bits"] = value


class MultiBitConv2d(MultiBitMixin, QuantConv2d):
    pass


class MultiBitLinear(MultiBitMixin, QuantLinear):
    pass


MULTIBIT_CLASSES = {QuantConv2d: MultiBitConv2d, QuantLinear: MultiBitLinear}


def nearest_width(widths: list[int], bits: int) -> int:
    """The trained width closest to ``bits``; ties go to the wider one."""
    return min(widths, key=lambda w: (abs(w - bits), -w))


class SwitchableBatchNorm(nn.Module):
    """One BatchNorm per trained width (Any-Precision); the feeding layer's width picks which."""

    def __init__(self, bn: _BatchNorm, widths: list[int], source: Optional[nn.Module]) -> None:
        super().__init__()
        self.widths = sorted(int(b) for b in widths)
        self.bns = nn.ModuleDict({str(b): copy.deepcopy(bn) for b in self.widths})
        object.__setattr__(self, "source", source)   # a reference, not a submodule (no duplicate state)

    def active_width(self) -> int:
        src = self.source
        if src is None or getattr(src, "mode", "quant") == "float":
            return self.widths[-1]                   # float pretraining trains the widest BatchNorm
        return nearest_width(self.widths, src.bits)

    @torch.no_grad()
    def copy_widest_to_all_(self) -> None:
        """Start every width from the (pre)trained BatchNorm."""
        widest = self.bns[str(self.widths[-1])]
        for b in self.widths[:-1]:
            self.bns[str(b)].load_state_dict(widest.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bns[str(self.active_width())](x)

    def extra_repr(self) -> str:
        return f"widths={self.widths}"


def prepare_multibit_(model: nn.Module, cfg: RunConfig, example_input: Optional[torch.Tensor] = None) -> list[str]:
    """quantize_ with multi-bit layers, widths at max(bits); per-width BatchNorm when not shared.

    ``multibit.act_bits`` replaces ``quant.act_bits`` for this method ("same", an int, or None).
    ``example_input`` lets the per-width BatchNorms find their feeding layer by tracing a forward
    pass; without it, the quantized layer registered just before each BatchNorm is used.
    """
    mb = cfg.multibit
    quant_cfg = copy.deepcopy(cfg.quant)
    quant_cfg.act_bits = None if mb.act_bits is None else 8     # creates the PACT clips; width set below
    names = quantize_(model, quant_cfg)
    for _, layer in quant_layers(model):
        layer.__class__ = MULTIBIT_CLASSES[type(layer)]
        layer.bias_correction = mb.bias_correction
        layer.act_follows_bits = mb.act_bits == "same"
        if isinstance(mb.act_bits, int) and layer.act_bits is not None:
            layer.act_bits = mb.act_bits
    set_width_(model, max(mb.bits))
    if not mb.shared_bn:
        _switch_batchnorms_(model, mb.bits, example_input)
    return names


def _bn_sources(model: nn.Module, example_input: Optional[torch.Tensor]) -> dict[str, Optional[nn.Module]]:
    """For each BatchNorm, the quantized layer whose output it normalises (the last one run before it)."""
    layers = quant_layers(model)
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)]
    sources: dict[str, Optional[nn.Module]] = {}
    if example_input is not None:
        last: list = [None]

        def seen(name: str):          # a pre-hook must return None, or it replaces the BatchNorm's input
            def hook(module, inputs) -> None:
                sources.setdefault(name, last[0])
            return hook
        hooks = [layer.register_forward_hook(lambda m, i, o: last.__setitem__(0, m)) for _, layer in layers]
        hooks += [bn.register_forward_pre_hook(seen(name)) for name, bn in bns]
        probe_forward(model, example_input, hooks)
    previous = None
    for name, module in model.named_modules():           # registration order: the fallback
        if isinstance(module, (QuantConv2d, QuantLinear)):
            previous = module
        elif isinstance(module, _BatchNorm) and name not in sources:
            sources[name] = previous
    return sources


def _switch_batchnorms_(model: nn.Module, widths: list[int], example_input: Optional[torch.Tensor]) -> None:
    for name, source in _bn_sources(model, example_input).items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, SwitchableBatchNorm(getattr(parent, child), widths, source))


def switchable_batchnorms(model: nn.Module) -> list[SwitchableBatchNorm]:
    return [m for m in model.modules() if isinstance(m, SwitchableBatchNorm)]


def set_width_(model: nn.Module, bits: int) -> None:
    """Every searched (not fixed) quantized layer at ``bits``; fixed layers keep their width."""
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 16:
        raise ConfigError(f"width = {bits!r} is invalid: allowed an integer in [1, 16]")
    for _, layer in searched_layers(model):
        layer.bits = bits


def active_width(model: nn.Module) -> Optional[int]:
    """The common width of the searched layers, or None when they differ (a mixed allocation)."""
    widths = {layer.bits for _, layer in searched_layers(model)}
    return widths.pop() if len(widths) == 1 else None


@contextlib.contextmanager
def allocation(model: nn.Module, bits: "int | dict[str, int]") -> Iterator[nn.Module]:
    """Temporarily run ``model`` at one width (int) or a per-layer mix ``{fqn: bits}``; restored after."""
    saved = {name: layer.bits for name, layer in quant_layers(model)}
    try:
        if isinstance(bits, dict):
            set_bit_allocation_(model, bits)
        else:
            set_width_(model, bits)
        yield model
    finally:
        set_bit_allocation_(model, saved)
