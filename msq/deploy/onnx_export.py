"""``export_onnx(model, example_input, path)``: a quantized model as an ONNX file that onnxruntime runs.

    info = export_onnx(model, torch.zeros(1, 1, 28, 28), "model.onnx")
    info["layers"]      [{fqn, bits, container, nbytes, ...}]    info["opset"]   21 or 25

How: ``onnx_modules.export_copy`` swaps every quantized layer for a plain layer (weight = its quantized
values, input through its activation quantizer as QuantizeLinear/DequantizeLinear); the TorchScript
exporter (``dynamo=False``, opset 20, the highest it writes; constant folding off and training mode
"preserve" so no initializer is renamed and BatchNorm is not folded into a weight) traces it; then
``onnx_graph`` puts each weight back as integer codes + DequantizeLinear, raises the opset to what the
containers need, and ``onnx.checker`` validates the result. The batch axis is dynamic.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from msq.deploy.onnx_graph import quantize_weights, required_opset, set_opset
from msq.deploy.onnx_modules import export_copy
from msq.errors import NothingToQuantizeError

TRACE_OPSET = 20
INPUT, OUTPUT = "input", "logits"


def to_onnx(model: nn.Module, example_input: torch.Tensor) -> tuple[onnx.ModelProto, list[dict]]:
    """(the ONNX model, one row per quantized layer) of a model with quantized layers."""
    twin, integers = export_copy(model)
    if not integers:
        raise NothingToQuantizeError("export_onnx: the model has no quantized layer; quantize it with "
                                     "msq.quantize_ (or export a run with `python -m msq export RUN --format onnx`)")
    return trace(twin, example_input, integers)


def trace(twin: nn.Module, example_input: torch.Tensor, integers: dict) -> tuple[onnx.ModelProto, list[dict]]:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(twin, (example_input,), buffer, dynamo=False, opset_version=TRACE_OPSET,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    rows = quantize_weights(proto, integers) if integers else []
    set_opset(proto, required_opset(rows))
    onnx.checker.check_model(proto, full_check=True)
    return proto, rows


def float_onnx(model: nn.Module, example_input: torch.Tensor) -> onnx.ModelProto:
    """The same graph with float weights and no activation quantizers (the reference a bench compares to)."""
    from msq.quant import quant_layers
    twin, _ = export_copy(model)
    for name, _ in quant_layers(model):
        twin.get_submodule(name).act_qdq.bits = None
    return trace(twin, example_input, {})[0]


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike) -> dict:
    """Write the ONNX model of ``model`` to ``path``; returns {path, opset, layers, weight_bytes, file_bytes}."""
    proto, rows = to_onnx(model, example_input)
    path = Path(path)
    onnx.save_model(proto, path)
    return summarize(proto, rows, path)


def summarize(proto: onnx.ModelProto, rows: list[dict], path: Path | None = None) -> dict:
    opset = next(e.version for e in proto.opset_import if e.domain in ("", "ai.onnx"))
    out = {"opset": opset, "layers": rows, "weight_bytes": sum(r["nbytes"] for r in rows),
           "packed_bytes": sum((r["numel"] * r["bits"] + 7) // 8 for r in rows)}
    if path is not None:
        out.update(path=path, file_bytes=path.stat().st_size)
    return out
