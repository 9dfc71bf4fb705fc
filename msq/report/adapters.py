"""Per-layer bit maps for other tools, from a report.

    bit_map(report)          {"conv1": 8, "conv2": 6, "fc": 8}       -> msq.set_bit_allocation_(model, ...)
    hawq_bit_config(report)  {"bit_config_tinycnn_<run id>": {"conv1": 8, "conv2": 6, "conv2.quant_act": 4, ...}}

The HAWQ-style ``bit_config`` follows HAWQ-V3's ``bit_config.py``: a named dict of flat
``{quantizer name: bits}`` entries, one per weight quantizer (here: the layer's fully qualified name)
and one per activation quantizer (``<fqn>.quant_act``, the width of that layer's input, only when
activations are quantized). Layers kept at a fixed width are included with that width.
"""
from __future__ import annotations

from msq.report.paths import safe_filename
from msq.report.schema import validate_report

ACT_SUFFIX = ".quant_act"


def bit_map(report: dict) -> dict[str, int]:
    """``{fqn: bits}`` of every quantized layer, in layer order."""
    validate_report(report)
    return {fqn: int(layer["bits"]) for fqn, layer in report["layers"].items()}


def hawq_config_name(report: dict) -> str:
    run = report["run"]
    return f"bit_config_{safe_filename(run.get('model') or 'model', fallback='model')}_{run['id']}"


def hawq_bit_config(report: dict) -> dict[str, dict[str, int]]:
    """``{name: {quantizer: bits}}`` in HAWQ-V3's bit_config style (see the module docstring)."""
    config: dict[str, int] = {}
    for fqn, bits in bit_map(report).items():
        act = report["layers"][fqn].get("act_bits")
        if act is not None:
            config[fqn + ACT_SUFFIX] = int(act)
        config[fqn] = bits
    return {hawq_config_name(report): config}
