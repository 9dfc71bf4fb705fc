"""Check an exported ONNX model against the torch model it came from, in onnxruntime.

    result = compare_with_onnxruntime(model, proto, images)
    result["max_abs_diff"], result["argmax_agreement"], result["tie_flips"], result["clean_max_abs_diff"]

Weights are exact (DequantizeLinear reproduces Δ c bit for bit), so a weight-only model agrees to float
rounding. With quantized activations, onnxruntime's convolutions sum in another order than torch's,
so an activation that lies within float rounding of a rounding tie (exactly between two levels) can
land on the other level: one step of one activation, which then moves the logits by more than float
rounding. ``compare_with_onnxruntime`` therefore also reads every QuantizeLinear's codes and checks,
per sample, that the first layer where the codes differ differs only at such ties (|frac - 1/2| <=
``tie_tolerance`` = 1% of a step: a long dot product with cancellation is off by ~1e-3 steps); ``clean_max_abs_diff`` is the logit difference over the
samples with no such flip. A difference anywhere else is a real export error and fails ``ok``.
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

from msq.quant import quant_layers

TIE_TOLERANCE = 0.01


def _session(proto: onnx.ModelProto, extra_outputs: list[str]):
    import onnxruntime as ort
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    for name in extra_outputs:
        probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.UINT8, None))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _quantizer_outputs(proto: onnx.ModelProto, fqns) -> dict[str, str]:
    """{layer fqn: output of the QuantizeLinear in front of it}, found from the node that reads the
    layer's weight ``<fqn>.weight`` (Conv, Gemm, or Transpose then MatMul) back through DequantizeLinear
    (and the Sub of a signed quantizer)."""
    producer = {out: node for node in proto.graph.node for out in node.output}
    readers: dict[str, list] = {}
    for node in proto.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    found = {}
    for fqn in fqns:
        users = readers.get(f"{fqn}.weight", [])
        while users and users[0].op_type == "Transpose":
            users = readers.get(users[0].output[0], [])
        if not users:
            continue
        data = next((i for i in users[0].input if i != f"{fqn}.weight" and i in producer), None)
        node = producer.get(data)
        for _ in range(3):
            if node is None or node.op_type == "QuantizeLinear":
                break
            node = producer.get(node.input[0]) if node.op_type in ("DequantizeLinear", "Sub") else None
        if node is not None and node.op_type == "QuantizeLinear":
            found[fqn] = node.output[0]
    return found


@torch.no_grad()
def _torch_codes(model: nn.Module, images: torch.Tensor) -> tuple[np.ndarray, dict[str, tuple]]:
    """(logits, {fqn: (codes, |frac(v) - 1/2| of each pre-rounding value v: 0 at a tie)})."""
    seen, hooks = {}, []
    for name, layer in quant_layers(model):
        if getattr(layer, "act_bits", None) is None:
            continue

        def hook(module, inputs, name=name):
            x, alpha = inputs[0], module.act_alpha.detach()
            steps = 2 ** module.act_bits - 1
            if bool(module.act_signed_flag):
                v = (torch.clamp(x, -alpha, alpha) + alpha) / (2 * alpha / steps)
            else:
                v = torch.clamp(x, torch.zeros_like(alpha), alpha) / (alpha / steps)
            seen[name] = (torch.round(v).to(torch.int64).numpy(), (v - torch.floor(v) - 0.5).abs().numpy())
        hooks.append(layer.register_forward_pre_hook(hook))
    try:
        logits = model(images).numpy()
    finally:
        for h in hooks:
            h.remove()
    return logits, seen


def compare_with_onnxruntime(model: nn.Module, proto: onnx.ModelProto, images: torch.Tensor,
                             tie_tolerance: float = TIE_TOLERANCE) -> dict:
    """Run ``images`` through torch (``model`` in eval mode) and onnxruntime; see the module docstring."""
    model.eval()
    expected, torch_codes = _torch_codes(model, images)
    quantizers = _quantizer_outputs(proto, torch_codes)
    position = {out: i for i, node in enumerate(proto.graph.node) for out in node.output}
    order = sorted(quantizers, key=lambda f: position[quantizers[f]])
    outputs = _session(proto, [quantizers[f] for f in order]).run(None, {proto.graph.input[0].name: images.numpy()})
    got, codes = outputs[0], dict(zip(order, outputs[1:]))
    flipped = np.zeros(len(images), dtype=bool)
    bad_flips, tie_flips, activations = 0, 0, 0
    for fqn in order:       # graph order = execution order
        ours, distance = torch_codes[fqn]
        differ = (codes[fqn].astype(np.int64) != ours).reshape(len(images), -1)
        first = differ & ~flipped[:, None]
        at_tie = distance.reshape(len(images), -1) <= tie_tolerance
        bad_flips += int((first & ~at_tie).sum())
        tie_flips += int((first & at_tie).sum())
        flipped |= differ.any(1)
        activations += differ.size
    diff = np.abs(got - expected).max(1)
    clean = diff[~flipped]
    agree = got.argmax(1) == expected.argmax(1)
    return {"max_abs_diff": float(diff.max()), "argmax_agreement": float(agree.mean()),
            "clean_argmax_agreement": float(agree[~flipped].mean()) if clean.size else 1.0,
            "tie_flips": tie_flips, "other_flips": bad_flips, "samples_with_flips": int(flipped.sum()),
            "clean_max_abs_diff": float(clean.max()) if clean.size else 0.0, "samples": len(images),
            "quantizers_checked": len(order), "flip_rate": tie_flips / max(activations, 1), "ok": bad_flips == 0}
