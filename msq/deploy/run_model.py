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

from typing import Optional, Union

import torch
from torch import nn

from msq.config import RunConfig
from msq.errors import ConfigError
from msq.report.rebuild import load_run_checkpoint, model_args, model_from_payload
from msq.runs import RunStore

Allocation = Union[int, dict, None]


def _bsq_model(cfg: RunConfig, args: dict, payload: dict) -> nn.Module:
    from msq.baselines.bsq.method import BSQMethod
    from msq.quant import quantize_
    from sample_models import create_model

    model = create_model(args["name"], num_classes=args["num_classes"], in_channels=args["in_channels"],
                         image_size=args["image_size"], **args.get("kwargs", {}))
    quantize_(model, cfg.quant)
    if (payload.get("method") or {}).get("converted"):
        BSQMethod(cfg).convert_(model)        # bit-plane layers, re-shaped to the checkpoint's widths on load
    model.load_state_dict(payload["model"])
    return model


def load_run_model(home, run_id: str, bits: Allocation = None) -> tuple[nn.Module, RunConfig, dict]:
    """(model in eval mode, config, model args) of a run's last checkpoint; see the module docstring."""
    store = RunStore(home, create=False)
    run = store.run(run_id)
    run_dir = store.run_dir(run_id)
    if run.get("method") == "multibit" or (run.get("config") or {}).get("method") == "multibit":
        from msq.multibit import load_multibit_run
        from msq.multibit.layers import set_width_
        from msq.quant import set_bit_allocation_
        loaded = load_multibit_run(run_dir)
        model, cfg = loaded.model, loaded.cfg
        if isinstance(bits, dict):
            set_bit_allocation_(model, bits)
        elif bits is not None:
            set_width_(model, bits)
        return model.eval(), cfg, model_args(cfg)
    if bits is not None:
        raise ConfigError(f"bits = {bits!r}: a width or mix is chosen only for multi-bit runs; run {run_id} "
                          "was trained to one allocation (drop --width/--mix)")
    payload, _ = load_run_checkpoint(run_dir)
    cfg = RunConfig.from_dict(payload.get("config") or run.get("config") or {})
    if cfg.method != "bsq":
        return model_from_payload(payload, run.get("config") or {})
    import msq.baselines.bsq  # noqa: F401  (registers the method)
    args = model_args(cfg)
    return _bsq_model(cfg, args, payload).eval(), cfg, args


def example_input(args: dict, batch: int = 1) -> torch.Tensor:
    """A zero batch of the model's input shape [batch, C, H, W] (what the exporter traces with)."""
    return torch.zeros(batch, args["in_channels"], args["image_size"], args["image_size"])
