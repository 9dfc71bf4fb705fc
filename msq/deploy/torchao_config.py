"""torchao's per-layer config: ``FqnToConfig`` with one ``IntxWeightOnlyConfig`` per quantized layer at
the run's width (``torch.int1`` ... ``torch.int8``, ``PerAxis(0)``, symmetric), which
``torchao.quantization.quantize_(model, config, filter_fn=None)`` applies.

    config = torchao_config({"conv2": 3, "fc1": 2})          # a torchao FqnToConfig object
    text = torchao_config_json(report)                        # torchao's own JSON (config_to_dict)
    config = torchao.core.config.config_from_dict(json.loads(text))

torchao computes its own scales from the float weights you give it; this carries the widths (the
search's result), not MSQ's per-layer scale. Left out, so torchao keeps them float: layers wider than 8
bits (torchao's intx types stop at int8) and convolutions with one input channel per group (depthwise,
or a 1-channel first layer): torchao 0.18's IntxWeightOnlyConfig fails on those weights (it blocks
PerAxis(0) over dimension 1 only; measured on [96, 1, 3, 3] and [6, 1, 5, 5]). ``torchao_skipped``
lists them with the reason.
"""
from __future__ import annotations

import json

import torch

from msq.errors import MSQError

MAX_BITS = 8


def torchao_config(allocation: dict[str, int]):
    """``FqnToConfig({fqn: IntxWeightOnlyConfig(weight_dtype=torch.int<bits>, granularity=PerAxis(0))})``."""
    try:
        from torchao.quantization import FqnToConfig, IntxWeightOnlyConfig
        from torchao.quantization.granularity import PerAxis
    except ImportError as exc:
        raise MSQError(f"the torchao config needs torchao ({exc}); pip install -r requirements.txt") from None
    return FqnToConfig({fqn: IntxWeightOnlyConfig(weight_dtype=getattr(torch, f"int{int(bits)}"),
                                                  granularity=PerAxis(0))
                        for fqn, bits in allocation.items() if int(bits) <= MAX_BITS})


def torchao_skipped(report: dict) -> dict[str, str]:
    """{fqn: why} for the report's layers torchao cannot take (see the module docstring)."""
    out = {}
    for fqn, layer in report["layers"].items():
        shape = layer.get("shape") or []
        if int(layer["bits"]) > MAX_BITS:
            out[fqn] = f"{layer['bits']} bits: torchao's intx types stop at int{MAX_BITS}"
        elif len(shape) == 4 and shape[1] == 1:
            out[fqn] = "convolution with one input channel per group: torchao's IntxWeightOnlyConfig fails on it"
    return out


def torchao_config_json(report: dict) -> str:
    """torchao's JSON form of the run's config (``torchao.core.config.config_to_dict``)."""
    from torchao.core.config import config_to_dict

    skipped = torchao_skipped(report)
    allocation = {fqn: int(l["bits"]) for fqn, l in report["layers"].items() if fqn not in skipped}
    return json.dumps(config_to_dict(torchao_config(allocation)), indent=2)
