"""The one way to rebuild a run's model from what it saved (torch; imported lazily by the report).

    loaded = load_run_model(run_dir)      # build, prepare for its method, restore the checkpoint
    loaded.model, loaded.cfg, loaded.args, loaded.payload, loaded.path

The model is created exactly as the trainer creates it (registry name, dataset shape, model_kwargs),
prepared by the run's method (``Method.prepare_model``: MSQ's quantized layers, BSQ's bit planes,
multi-bit's switchable widths), then ``Method.restore`` loads the method's state and the model's
(widths and fixed flags travel as each layer's extra state). Training's resume restores the same way.
The report, the exporters and the what-if mixer all start here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from msq.config import RunConfig
from msq.errors import ModelLoadError
from msq.methods import get_method, methods_where
from msq.quant import quant_layers
from msq.quant.inventory import float_param_count
from msq.runs.checkpoint_files import read_candidates


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


def example_input(args: dict, batch: int = 1) -> torch.Tensor:
    """A zero batch of the model's input shape [batch, C, H, W] (what the exporter traces with)."""
    return torch.zeros(batch, args["in_channels"], args["image_size"], args["image_size"])


def prepared_model(cfg: RunConfig, args: dict):
    """(a fresh model prepared by the run's method, that method): the trainer's set-up, weights not loaded."""
    from sample_models import create_model

    model = create_model(args["name"], num_classes=args["num_classes"], in_channels=args["in_channels"],
                         image_size=args["image_size"], **args.get("kwargs", {}))
    method = get_method(cfg.method).create(cfg)
    method.prepare_model(model, example_input(args, batch=2))
    return model, method


def check_exportable(cfg: RunConfig) -> None:
    """Quantized export and packing need one weight tensor per layer (``MethodSpec.exportable``)."""
    if not get_method(cfg.method).exportable:
        raise ModelLoadError(f"run.method = {cfg.method!r}: quantized export and load support the methods "
                             f"{', '.join(methods_where(lambda spec: spec.exportable))} (their layers hold one "
                             "weight tensor each)")


def build_quantized_model(cfg: RunConfig, args: dict) -> nn.Module:
    """A fresh model with the run's quantized layers (weights not yet loaded), for an exportable method."""
    check_exportable(cfg)
    return prepared_model(cfg, args)[0]


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


@dataclass
class RunModel:
    """A run's model rebuilt from a checkpoint: in eval mode, at the widths it was saved with."""
    model: nn.Module
    cfg: RunConfig
    args: dict           # create_model's arguments: name, num_classes, in_channels, image_size, kwargs
    payload: dict        # the checkpoint read
    path: Optional[Path] = None


def restore_run_model(payload: dict, config: Optional[dict] = None) -> RunModel:
    """Rebuild the model of a loaded checkpoint (its own config, else ``config``)."""
    cfg = RunConfig.from_dict(payload.get("config") or config or {})
    args = model_args(cfg)
    model, method = prepared_model(cfg, args)
    method.restore(model, payload)
    return RunModel(model.eval(), cfg, args, payload)


def load_run_model(path: str | Path, config: Optional[dict] = None,
                   notify: Optional[Callable[[str], None]] = None) -> RunModel:
    """The model of a run folder's newest readable checkpoint (or of one checkpoint file), any method."""
    payload, source = load_run_checkpoint(path, notify)
    loaded = restore_run_model(payload, config)
    loaded.path = source
    return loaded


def model_from_payload(payload: dict, config: dict) -> tuple[nn.Module, RunConfig, dict]:
    """(fake-quantized model in eval mode, config, model args) of a loaded checkpoint of an exportable run."""
    check_exportable(RunConfig.from_dict(payload.get("config") or config))
    loaded = restore_run_model(payload, config)
    return loaded.model, loaded.cfg, loaded.args


def model_from_run_checkpoint(path: str | Path, config: dict,
                              notify: Optional[Callable[[str], None]] = None) -> tuple[nn.Module, RunConfig, dict, dict]:
    """(fake-quantized model in eval mode, config, model args, checkpoint payload) of a run folder
    (or of one checkpoint file) of an exportable run."""
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
