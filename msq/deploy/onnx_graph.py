"""Integer weights into an exported ONNX graph: each quantized layer's float weight initializer becomes
an integer initializer in the smallest ONNX container that holds its codes, read through
``DequantizeLinear`` (scale Δ, zero point 0), so the graph computes exactly Δ c.

    container   INT2 (2-bit codes: ternary, binary, 1-2 bit affine), INT4 (3-4 bits), INT8 (5-8), INT16 (9-16)
    opset       21 (INT4 and INT16 in DequantizeLinear), 25 when some layer uses INT2 (onnxruntime >= 1.23)

Packed data is written as ``raw_data`` in ONNX's own order (``msq.report.packing``: two's complement,
first element in the low bits), so a layer of N weights in a k-bit container takes ceil(N k / 8) bytes.
A bias-corrected multi-bit layer adds ``Mul`` by its per-channel gain and ``Add`` of its offset.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from msq.deploy.integer import IntegerLayer
from msq.errors import MSQError
from msq.report.packing import pack_codes, packed_nbytes

CONTAINERS = ((2, TensorProto.INT2, "INT2"), (4, TensorProto.INT4, "INT4"), (8, TensorProto.INT8, "INT8"),
              (16, TensorProto.INT16, "INT16"))
OPSET_INT4, OPSET_INT2 = 21, 25


def container(storage_bits: int) -> tuple[int, int, str]:
    """(container bits, ONNX element type, its name) of the smallest signed type holding the codes."""
    for bits, dtype, name in CONTAINERS:
        if storage_bits <= bits:
            return bits, dtype, name
    raise MSQError(f"codes of {storage_bits} bits have no ONNX integer container (allowed at most 16)")


def _int_tensor(name: str, dtype: int, bits: int, codes) -> TensorProto:
    packed = bytes(pack_codes(codes, bits).numpy().tobytes())
    return helper.make_tensor(name, dtype, list(codes.shape), packed, raw=True)


def _take_weight(graph: onnx.GraphProto, name: str) -> None:
    """Remove the float initializer ``name`` (or the Identity the exporter left for a deduplicated one)."""
    for i, init in enumerate(graph.initializer):
        if init.name == name:
            del graph.initializer[i]
            return
    for i, node in enumerate(graph.node):
        if node.op_type == "Identity" and list(node.output) == [name]:
            del graph.node[i]
            return
    raise MSQError(f"the exported graph has no weight initializer {name!r}; the exporter renamed it "
                   "(export with do_constant_folding=False keeps the names)")


def quantize_weights(proto: onnx.ModelProto, integers: dict[str, IntegerLayer]) -> list[dict]:
    """Rewrite ``proto`` in place; returns one row per layer (fqn, bits, container, bytes)."""
    graph, nodes, rows = proto.graph, [], []
    for fqn, layer in integers.items():
        weight = f"{fqn}.weight"
        _take_weight(graph, weight)
        bits, dtype, kind = container(layer.storage_bits)
        q, scale, zero = f"{weight}_quantized", f"{weight}_scale", f"{weight}_zero_point"
        graph.initializer.extend([
            _int_tensor(q, dtype, bits, layer.codes),
            numpy_helper.from_array(np.asarray(layer.step.numpy(), dtype=np.float32).reshape(()), scale),
            helper.make_tensor(zero, dtype, [], [0])])
        out = weight if layer.gain is None else f"{weight}_dequantized"
        nodes.append(helper.make_node("DequantizeLinear", [q, scale, zero], [out], name=f"{weight}_DequantizeLinear"))
        if layer.gain is not None:
            gain, offset = f"{weight}_gain", f"{weight}_offset"
            graph.initializer.extend([numpy_helper.from_array(layer.gain.numpy().astype(np.float32), gain),
                                      numpy_helper.from_array(layer.offset.numpy().astype(np.float32), offset)])
            nodes += [helper.make_node("Mul", [out, gain], [f"{weight}_scaled"], name=f"{weight}_Mul"),
                      helper.make_node("Add", [f"{weight}_scaled", offset], [weight], name=f"{weight}_Add")]
        rows.append({"fqn": fqn, "bits": layer.bits, "storage_bits": layer.storage_bits, "container": kind,
                     "container_bits": bits, "numel": int(layer.codes.numel()),
                     "nbytes": packed_nbytes(layer.codes.numel(), bits),
                     "corrected": layer.gain is not None})
    for node in reversed(nodes):          # they read initializers only: first in topological order
        graph.node.insert(0, node)
    return rows


def required_opset(rows: list[dict]) -> int:
    return OPSET_INT2 if any(r["container_bits"] == 2 for r in rows) else OPSET_INT4


def set_opset(proto: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """Raise the default-domain opset (the exporter writes 20; the ops it uses are unchanged up to 25
    except for new types) and the IR version that opset needs."""
    for entry in proto.opset_import:
        if entry.domain in ("", "ai.onnx"):
            entry.version = opset
    proto.ir_version = max(proto.ir_version, helper.find_min_ir_version_for(list(proto.opset_import)))
    return proto
