"""NNCF's manual mixed precision: a quantization config whose ``bitwidth_per_scope`` names each weight
quantizer the way NNCF names it, so NNCF (the legacy PyTorch API, ``create_compressed_model``) sets
every layer's width from the run.

NNCF traces the model and names an operation by its module path, each step written
``ClassName[attribute]`` from the model's class down, the wrapped layer as ``NNCFConv2d``/``NNCFLinear``
and the call as ``conv2d_0``/``linear_0``; a weight quantizer is that name plus ``|WEIGHT``:

    ResNet/Sequential[layer1]/BasicBlock[0]/NNCFConv2d[conv1]/conv2d_0|WEIGHT

(each quantized layer is assumed to run once per forward, as in every model here). Activations take one
width model-wide (``activations.bits``), since NNCF places activation quantizers at its own points.
``target_device`` is ``TRIAL``: NNCF's CPU/GPU hardware configs accept 8-bit quantizers only, and
refuse the 2-6-bit widths a search produces.

    cfg = nncf_config(model, {"conv1": 8, "layer1.0.conv1": 3}, input_shape=[1, 3, 32, 32], act_bits=4)
"""
from __future__ import annotations

from typing import Optional

from torch import nn

from msq.errors import MSQError

WRAPPED = {"Conv2d": ("NNCFConv2d", "conv2d"), "Linear": ("NNCFLinear", "linear")}


def _float_class(module: nn.Module) -> str:
    return getattr(module, "_float_class", type(module)).__name__


def nncf_scope(model: nn.Module, fqn: str) -> str:
    """NNCF's name of the weight quantizer of layer ``fqn`` (see the module docstring)."""
    parts = [type(model).__name__]
    module = model
    for attr in fqn.split("."):
        module = getattr(module, attr) if not attr.isdigit() else module[int(attr)]
        parts.append(f"{_float_class(module)}[{attr}]")
    kind = _float_class(module)
    if kind not in WRAPPED:
        raise MSQError(f"layer {fqn!r} is a {kind}; NNCF weight scopes are written for Conv2d and Linear layers")
    wrapper, op = WRAPPED[kind]
    parts[-1] = f"{wrapper}[{fqn.split('.')[-1]}]"
    return "/".join(parts) + f"/{op}_0|WEIGHT"


def nncf_config(model: nn.Module, allocation: dict[str, int], input_shape: list[int],
                act_bits: Optional[int] = None) -> dict:
    """An NNCF config dict (``NNCFConfig.from_dict`` takes it) with the manual per-layer widths."""
    compression = {"algorithm": "quantization",
                   "initializer": {"precision": {"type": "manual", "bitwidth_per_scope": [
                       [int(bits), nncf_scope(model, fqn)] for fqn, bits in allocation.items()]}}}
    if act_bits is not None:
        compression["activations"] = {"bits": int(act_bits)}
    return {"input_info": {"sample_size": [int(d) for d in input_shape]}, "target_device": "TRIAL",
            "compression": compression}


def nncf_config_of_report(report: dict) -> dict:
    """``nncf_config`` of a report's run: the float model is rebuilt from the run's config (torch)."""
    from msq.config import RunConfig
    from msq.report.rebuild import model_args
    from sample_models import create_model

    cfg = RunConfig.from_dict(report["config"])
    args = model_args(cfg)
    model = create_model(args["name"], num_classes=args["num_classes"], in_channels=args["in_channels"],
                         image_size=args["image_size"], **args.get("kwargs", {}))
    acts = {l.get("act_bits") for l in report["layers"].values()} - {None}
    allocation = {fqn: int(l["bits"]) for fqn, l in report["layers"].items()}
    return nncf_config(model, allocation, [1, args["in_channels"], args["image_size"], args["image_size"]],
                       max(acts) if acts else None)
