"""Running a model in eval mode without changing what the caller left it in.

Evaluation, EL2N scoring, Hessian estimates and the one-input probes of the layer inventory and the
multi-bit calibration all switch BatchNorm/dropout to eval for a while; these put the mode (and any
hooks a probe registered) back whatever happens inside.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch import nn


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def probe_forward(model: nn.Module, example_input: torch.Tensor, hooks: Iterable) -> None:
    """One no-grad forward pass in eval mode for the registered ``hooks`` to observe; removes them after."""
    try:
        with eval_mode(model), torch.no_grad():
            model(example_input)
    finally:
        for handle in hooks:
            handle.remove()
