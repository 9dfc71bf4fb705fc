"""A run's trained model, rebuilt from its newest readable checkpoint, for any method.

    model, cfg, args = load_run_model("runs", run_id)                 # msq, uniform, bsq
    model, cfg, args = load_run_model("runs", run_id, bits=3)         # multi-bit: every searched layer at 3
    model, cfg, args = load_run_model("runs", run_id, bits={"conv2": 5})   # multi-bit: a per-layer mix

``args`` are ``create_model``'s arguments (name, classes, channels, image size); the model is in eval
mode, fake-quantized, at the widths it was trained to (multi-bit: its widest trained width unless
``bits`` says otherwise). Models named by a ``file.py:factory`` are imported from that file: the run's
own config named it, on this machine.
"""
from __future__ import annotations

from typing import Union

from torch import nn

from msq.config import RunConfig
from msq.errors import ConfigError
from msq.methods import get_method
from msq.quant import set_bit_allocation_
from msq.report.rebuild import example_input, load_run_model as load_run_folder_model
from msq.runs import RunStore

Allocation = Union[int, dict, None]
__all__ = ["Allocation", "example_input", "load_run_model"]


def load_run_model(home, run_id: str, bits: Allocation = None) -> tuple[nn.Module, RunConfig, dict]:
    """(model in eval mode, config, model args) of a run's last checkpoint; see the module docstring."""
    store = RunStore(home, create=False)
    run = store.run(run_id)
    loaded = load_run_folder_model(store.run_dir(run_id), run.get("config") or {})
    model, cfg = loaded.model, loaded.cfg
    if get_method(cfg.method).one_allocation:
        if bits is not None:
            raise ConfigError(f"bits = {bits!r}: a width or mix is chosen only for multi-bit runs; run {run_id} "
                              "was trained to one allocation (drop --width/--mix)")
        return model, cfg, loaded.args
    from msq.methods.multibit.layers import set_width_
    from msq.methods.multibit.evaluate import quantized_at_widest_
    quantized_at_widest_(model, cfg)
    if isinstance(bits, dict):
        set_bit_allocation_(model, bits)
    elif bits is not None:
        set_width_(model, bits)
    return model.eval(), cfg, loaded.args
