"""Uniform QAT: every searched layer at ``uniform_bits``; no regularizer, no pruning, on MSQ's schedule."""
from __future__ import annotations

from typing import TYPE_CHECKING

from msq.methods.base import Method
from msq.quant import quantize_

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn


class UniformMethod(Method):
    name = "uniform"

    def prepare_model(self, model: "nn.Module", example) -> None:
        quantize_(model, self.cfg.quant, searched_bits=self.cfg.uniform_bits)
