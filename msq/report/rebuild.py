"""Rebuilding a run's quantized model from its config (torch; imported lazily by the report).

The model is created exactly as the trainer creates it (registry name, dataset shape, model_kwargs)
and quantized with the run's ``quant`` section; a checkpoint's state_dict then fills in the weights,
scales and widths (widths and fixed flags travel as each layer's extra state).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from msq.config import RunConfig
from msq.errors import ModelLoadError
from msq.quant import quant_layers, quantize_
from msq.quant.inventory import float_param_count
from msq.runs.checkpoint_files import read_candidates

EXPORTABLE_METHODS = ("msq", "uniform", "hawq")


def model_args(cfg: RunConfig) -> dict:
    """What ``create_model`` needs besides the name: the dataset's classes, channels and image size.
    Answered from the dataset table without loading data (an image folder is scanned for its classes)."""
    from msq.data import dataset_info, load_dataset

    info = dataset_info(cfg.data.name)
    if info["num_classes"] is None:
        data = load_dataset(cfg.data)
        info = {"num_classes": data.num_classes, "in_channels": data.in_channels, "image_size": data.image_size}
    return {"name": cfg.model, "num_classes": int(info["num_classes"]), "in_channels": int(info["in_channels"]),
            "image_size": int(info["image_size"]), "kwargs": dict(cfg.model_kwargs)}


def build_quantized_model(cfg: RunConfig, args: dict) -> nn.Module:
    """A fresh model with the run's quantized layers (weights not yet loaded)."""
    from sample_models import create_model

    if cfg.method not in EXPORTABLE_METHODS:
        raise ModelLoadError(f"run.method = {cfg.method!r}: quantized export and load support the methods "
                             f"{', '.join(EXPORTABLE_METHODS)} (their layers hold one weight tensor each)")
    model = create_model(args["name"], num_classes=args["num_classes"], in_channels=args["in_channels"],
                         image_size=args["image_size"], **args.get("kwargs", {}))
    quantize_(model, cfg.quant)
    return model


def load_run_checkpoint(path: str | Path, notify: Optional[Callable[[str], None]] = None) -> tuple[dict, Path]:
    """(payload, file read) of a run folder's newest readable checkpoint (the stop snapshot, then
    checkpoint.pt, then checkpoint.prev.pt: ``msq.runs.checkpoint_files``), or of one checkpoint file.
    A damaged file that is skipped is told to ``notify`` (default: stderr) in one line naming it."""
    from msq.training.checkpoint import load_first_readable

    path = Path(path)
    candidates = read_candidates(path) if path.is_dir() else [path]
    found = load_first_readable(candidates, what=f"cannot read the model of {path}", notify=notify)
    if found is None:
        raise ModelLoadError(f"no checkpoint at {path}: the run saved none yet (one is written at the end of "
                             "every epoch); train at least one epoch, or resume the run")
    return found


def model_from_payload(payload: dict, config: dict) -> tuple[nn.Module, RunConfig, dict]:
    """(fake-quantized model in eval mode, config, model args) of a loaded checkpoint."""
    cfg = RunConfig.from_dict(payload.get("config") or config)
    args = model_args(cfg)
    model = build_quantized_model(cfg, args)
    model.load_state_dict(payload["model"])
    return model.eval(), cfg, args


def model_from_run_checkpoint(path: str | Path, config: dict,
                              notify: Optional[Callable[[str], None]] = None) -> tuple[nn.Module, RunConfig, dict, dict]:
    """(fake-quantized model in eval mode, config, model args, checkpoint payload) of a run folder
    (or of one checkpoint file)."""
    payload, _ = load_run_checkpoint(path, notify)
    return (*model_from_payload(payload, config), payload)


def _role(module: nn.Module, attr: str) -> str:
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return "batchnorm"
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
        return "norm"
    if attr == "act_alpha":
        return "activation clip (PACT)"
    if attr == "bias":
        return "bias"
    return "other"


@torch.no_grad()
def checkpoint_facts(path: Path, config: dict, notify: Optional[Callable[[str], None]] = None) -> dict:
    """What the report takes from a run folder's checkpoint (or one file): float parameters, per-layer
    scale/bits/act bits, whether scales were calibrated, timings and the train state's epoch/step/accuracies."""
    model, cfg, _, payload = model_from_run_checkpoint(path, config, notify)
    quantized = {id(layer.weight) for _, layer in quant_layers(model)}
    modules = dict(model.named_modules())
    floats = []
    for name, param in model.named_parameters():
        if id(param) in quantized:
            continue
        owner, _, attr = name.rpartition(".")
        floats.append({"name": name, "shape": list(param.shape), "numel": param.numel(),
                       "role": _role(modules.get(owner, model), attr)})
    layers = {name: {"scale": float(layer.scale), "bits": layer.bits, "fixed": layer.fixed,
                     "fixed_reason": layer.fixed_reason, "act_bits": layer.act_bits}
              for name, layer in quant_layers(model)}
    state = payload.get("state") or {}
    return {"float_parameters": floats, "float_params": float_param_count(model), "layers": layers,
            "scales_calibrated": bool((payload.get("method") or {}).get("scales_calibrated", True)),
            "timings": dict(payload.get("timings") or {}), "epoch": state.get("epoch"), "step": state.get("step"),
            "float_acc": state.get("float_acc"), "last_val_acc": state.get("last_val_acc")}
