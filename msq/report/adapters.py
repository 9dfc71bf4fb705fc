"""Per-layer bit maps for other tools, from a report, each in the form its consumer reads.

    bit_map(report)            {"conv1": 8, "conv2": 6, "fc": 8}   -> msq.set_bit_allocation_(model, ...)
    adapter_text(report, fmt)  "hawq":    HAWQ's bit_config.py (HAWQ module names; torchvision ResNets)
                               "nncf":    NNCF config JSON with manual bitwidth_per_scope (NNCF's scopes)
                               "torchao": torchao FqnToConfig of IntxWeightOnlyConfig, torchao's own JSON

The three toolchain adapters live in ``msq.deploy`` (``hawq``, ``nncf_scopes``, ``torchao_config``);
hawq needs only the report, nncf rebuilds the float model (torch) to read its module classes, torchao
imports torchao.
"""
from __future__ import annotations

import json

from msq.report.schema import validate_report

ADAPTER_FORMATS = ("hawq", "nncf", "torchao")


def bit_map(report: dict) -> dict[str, int]:
    """``{fqn: bits}`` of every quantized layer, in layer order."""
    validate_report(report)
    return {fqn: int(layer["bits"]) for fqn, layer in report["layers"].items()}


def adapter_text(report: dict, fmt: str) -> str:
    """The file a toolchain reads, for ``fmt`` in ``ADAPTER_FORMATS``."""
    validate_report(report)
    if fmt == "hawq":
        from msq.deploy.hawq import hawq_bit_config_module
        return hawq_bit_config_module(report)
    if fmt == "nncf":
        from msq.deploy.nncf_scopes import nncf_config_of_report
        return json.dumps(nncf_config_of_report(report), indent=2)
    if fmt == "torchao":
        from msq.deploy.torchao_config import torchao_config_json
        return torchao_config_json(report)
    raise ValueError(f"adapter format {fmt!r} is invalid: allowed {', '.join(ADAPTER_FORMATS)}")
