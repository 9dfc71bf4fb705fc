"""QuantConv2d / QuantLinear: float master weights, a fixed per-layer scale, the current bit-width.

A quantized layer is its float layer's own class extended with quantization state. It shares the
original Parameter objects (so an optimizer keeps its state across ``quantize_``) and remembers the
original class, so ``to_float`` gives back the very same layer.

State:
  weight, bias   the float master parameters (the only weight tensor; no per-bit tensors)
  scale          buffer, s = max|W| when quantization starts; the grid never moves afterwards
  bits           current precision n, sign included (extra state, saved in the state_dict)
  grid           "affine" or "symmetric" (msq.functional.quantize; extra state, old files: affine)
  fixed          True when the width is pinned (first/last layer, or a user pattern); not searched
  act_alpha      PACT clip of the input, a Parameter, only when activations are quantized
  mode           "float" (plain layer, used for pretraining), "quant" (fake-quantized forward) or
                 "frozen" (after ``convert_``: the weight holds Q_n(W) itself and trains no more)
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from msq.functional import code_step, fake_quantize, lsb, pact_quantize, weight_codes


class QuantMixin:
    """Quantization state and the quantized weight/input, shared by conv and linear layers."""

    weight: nn.Parameter
    scale: torch.Tensor

    def _init_quant(self, bits: int, fixed: bool, fixed_reason: str, act_bits: Optional[int],
                    act_clip_init: float, quantize_input: bool, grid: str = "affine") -> None:
        self.bits = int(bits)
        self.grid = str(grid)
        self.fixed = bool(fixed)
        self.fixed_reason = fixed_reason
        self.mode = "quant"
        self.act_bits = act_bits if quantize_input else None
        self.register_buffer("scale", torch.zeros((), device=self.weight.device))
        if self.act_bits is not None:
            self.act_alpha = nn.Parameter(torch.tensor(float(act_clip_init), device=self.weight.device))
            self.register_buffer("act_signed_flag", torch.zeros((), dtype=torch.bool, device=self.weight.device))
            self._act_calibrated = False
        self.calibrate_scale_()

    # -- state ----------------------------------------------------------------------------------
    @torch.no_grad()
    def calibrate_scale_(self) -> None:
        """s = max|W|: set when quantization starts, fixed afterwards (so the grid never moves)."""
        self.scale.fill_(float(self.weight.detach().abs().max().clamp_min(1e-12)))

    @property
    def storage_bits(self) -> int:
        """Bits each weight takes when stored: the width, sign included (what the accounting counts)."""
        return self.bits

    def get_extra_state(self) -> dict:
        return {"bits": self.bits, "fixed": self.fixed, "fixed_reason": self.fixed_reason, "grid": self.grid}

    def set_extra_state(self, state: dict) -> None:
        self.bits = int(state["bits"])
        self.fixed = bool(state["fixed"])
        self.fixed_reason = str(state.get("fixed_reason", ""))
        self.grid = str(state.get("grid", "affine"))

    # -- quantized tensors ----------------------------------------------------------------------
    def quantized_weight(self) -> torch.Tensor:
        """Q_n(W) with the straight-through gradient; the float weight in float mode."""
        if self.mode in ("float", "frozen"):  # frozen weights already lie on the grid
            return self.weight
        return fake_quantize(self.weight, self.scale, self.bits, self.grid)

    def weight_lsb(self) -> torch.Tensor:
        """The differentiable LSB of the current codes, in units of s (METHODS §2)."""
        return lsb(self.weight, self.scale, self.bits, self.grid)

    @torch.no_grad()
    def integer_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(signed int64 codes c, step Δ) with Q_n(W) = Δ c and zero point 0, for exporters.

        A frozen layer's weight already lies on the grid, so its codes are read back exactly.
        """
        return weight_codes(self.weight, self.scale, self.bits, self.grid), code_step(self.scale, self.bits, self.grid)

    def quantized_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.act_bits is None or self.mode == "float":
            return x
        if not self._act_calibrated:
            # Inputs that go negative (e.g. after LayerNorm) get a symmetric clip; after ReLU, [0, α].
            self.act_signed_flag.fill_(bool((x.detach() < 0).any()))
            self._act_calibrated = True
        return pact_quantize(x, self.act_alpha, self.act_bits, bool(self.act_signed_flag))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.act_bits is not None and prefix + "act_signed_flag" in state_dict:
            self._act_calibrated = True

    def extra_repr(self) -> str:
        pinned = ", fixed" if self.fixed else ""
        act = f", act_bits={self.act_bits}" if self.act_bits is not None else ""
        grid = f", grid={self.grid}" if self.grid != "affine" else ""
        return f"{super().extra_repr()}, bits={self.bits}{grid}{pinned}{act}, mode={self.mode}"


class QuantConv2d(QuantMixin, nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.quantized_input(x), self.quantized_weight(), self.bias)


class QuantLinear(QuantMixin, nn.Linear):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.quantized_input(x), self.quantized_weight(), self.bias)


QUANT_CLASSES = {nn.Conv2d: QuantConv2d, nn.Linear: QuantLinear}


def to_quant(module: nn.Module, **quant_kwargs) -> QuantMixin:
    """A quantized layer sharing ``module``'s parameters and submodule state (no re-initialisation)."""
    cls = QUANT_CLASSES[type(module)]
    layer = cls.__new__(cls)
    layer.__dict__.update(module.__dict__)
    # fresh containers so the new buffers/parameters do not leak into the original layer
    layer._parameters = dict(module._parameters)
    layer._buffers = dict(module._buffers)
    layer._non_persistent_buffers_set = set(module._non_persistent_buffers_set)
    layer._modules = dict(module._modules)
    layer._float_class = type(module)
    layer._init_quant(**quant_kwargs)
    return layer


def to_float(layer: QuantMixin) -> nn.Module:
    """The original float layer with the same weight/bias Parameters (lossless)."""
    cls = layer._float_class
    module = cls.__new__(cls)
    state = {k: v for k, v in layer.__dict__.items()}
    for key in ("bits", "grid", "fixed", "fixed_reason", "mode", "act_bits", "_float_class",
                "_act_calibrated"):
        state.pop(key, None)
    module.__dict__.update(state)
    module._parameters = {k: v for k, v in layer._parameters.items() if k != "act_alpha"}
    module._buffers = {k: v for k, v in layer._buffers.items() if k not in ("scale", "act_signed_flag")}
    module._non_persistent_buffers_set = set(layer._non_persistent_buffers_set)
    module._modules = dict(layer._modules)
    return module


def is_quant_layer(module: nn.Module) -> bool:
    return isinstance(module, QuantMixin)
