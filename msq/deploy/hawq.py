"""HAWQ's ``bit_config``: a Python module HAWQ's ``quant_train.py`` imports (``from bit_config import *``).

HAWQ (Zhen-Dong/HAWQ) picks ``bit_config_dict["bit_config_" + arch + "_" + quant_scheme]`` and walks its
own quantized model's ``named_modules()``: a name found in the dict gets that width, a name not found
keeps HAWQ's default. So the names must be HAWQ's module names, which differ from torchvision's:

    torchvision (ours)              HAWQ ResNet-18 / ResNet-50
    conv1 (+ bn1)                   quant_init_block_convbn      / quant_init_convbn
    layerS.U.convK                  stageS.unit(U+1).quant_convbnK
    layerS.U.downsample.0           stageS.unit(U+1).quant_identity_convbn
    fc                              quant_output
    input of conv1 / convK / fc     quant_input / stageS.unit(U+1).quant_act, quant_act1, quant_act2 / quant_act_output
    (residual sums)                 quant_act_int32 (HAWQ keeps these 32-bit accumulators at 16 in its configs)

HAWQ has no float activations: where the run kept an input in float, the entry is 8 (HAWQ's default).
Supported: torchvision ResNet-18/34 (basic blocks) and ResNet-50/101/152 (bottlenecks), ``tv:resnetNN``,
for which HAWQ has models (``resnet18``, ``resnet50``, ``resnet101``); others raise ``HAWQMappingError``.
"""
from __future__ import annotations

import re
import time

from msq.errors import MSQError
from msq.report.schema import validate_report

HAWQ_ARCHS = {"tv:resnet18": ("resnet18", 2), "tv:resnet50": ("resnet50", 3), "tv:resnet101": ("resnet101", 3)}
ACCUMULATOR_BITS, FLOAT_ACT_BITS = 16, 8


class HAWQMappingError(MSQError, ValueError):
    """The run's model has no HAWQ counterpart (or its layers do not follow torchvision's ResNet)."""


def _unsupported(model: str, why: str) -> HAWQMappingError:
    return HAWQMappingError(
        f"run.model = {model!r}: HAWQ's bit_config names HAWQ's own modules, which exist only for "
        f"{', '.join(HAWQ_ARCHS)} here ({why}); use the plain bit map (--format bits) or the NNCF/torchao "
        "configs for this model")


def hawq_names(report: dict) -> tuple[str, dict[str, int]]:
    """(HAWQ arch, {HAWQ module name: bits}) for a torchvision ResNet run, in HAWQ's module order."""
    validate_report(report)
    model = str(report["run"].get("model") or "")
    if model not in HAWQ_ARCHS:
        raise _unsupported(model, "not one of them")
    arch, convs = HAWQ_ARCHS[model]
    layers = report["layers"]
    act = lambda fqn: int(layers[fqn].get("act_bits") or FLOAT_ACT_BITS)   # noqa: E731
    first = "quant_init_block_convbn" if arch == "resnet18" else "quant_init_convbn"
    out = {"quant_input": act("conv1"), first: int(layers["conv1"]["bits"]), "quant_act_int32": ACCUMULATOR_BITS}
    units = sorted({tuple(map(int, m.groups())) for f in layers if (m := re.match(r"layer(\d+)\.(\d+)\.", f))})
    used = {"conv1", "fc"}
    for stage, unit in units:
        src, dst = f"layer{stage}.{unit}", f"stage{stage}.unit{unit + 1}"
        for k in range(1, convs + 1):
            conv = f"{src}.conv{k}"
            if conv not in layers:
                raise _unsupported(model, f"layer {conv} is missing from the run")
            out[f"{dst}.quant_act" + ("" if k == 1 else str(k - 1))] = act(conv)
            out[f"{dst}.quant_convbn{k}"] = int(layers[conv]["bits"])
            used.add(conv)
        if f"{src}.downsample.0" in layers:
            out[f"{dst}.quant_identity_convbn"] = int(layers[f"{src}.downsample.0"]["bits"])
            used.add(f"{src}.downsample.0")
        out[f"{dst}.quant_act_int32"] = ACCUMULATOR_BITS
    out["quant_act_output"], out["quant_output"] = act("fc"), int(layers["fc"]["bits"])
    extra = sorted(set(layers) - used)
    if extra:
        raise _unsupported(model, f"layers {', '.join(extra[:3])} have no HAWQ module")
    return arch, out


def hawq_scheme(report: dict) -> str:
    """The ``--quant-scheme`` to pass HAWQ: ``msq_<run id>`` with anything but letters/digits as ``_``."""
    return "msq_" + re.sub(r"\W", "_", str(report["run"]["id"]), flags=re.ASCII)


def hawq_bit_config_module(report: dict) -> str:
    """The text of HAWQ's ``bit_config.py`` holding this run's allocation (see the module docstring)."""
    arch, names = hawq_names(report)
    key = f"bit_config_{arch}_{hawq_scheme(report)}"
    lines = [f"# HAWQ bit_config of MSQ Studio run {report['run']['id']} ({report['run'].get('model')}), "
             f"written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
             "# Save as bit_config.py in HAWQ's folder (or merge this entry into HAWQ's own dict) and train with",
             f"#   python quant_train.py -a {arch} --quant-scheme {hawq_scheme(report)} ...",
             "# Widths are HAWQ's weight_bit / activation_bit per module; quant_act_int32 entries are HAWQ's",
             f"# residual accumulators ({ACCUMULATOR_BITS}, as in HAWQ's own configs); inputs the run kept in float "
             f"are {FLOAT_ACT_BITS}.",
             "bit_config_dict = {", f"    {key!r}: {{"]
    lines += [f"        {name!r}: {bits}," for name, bits in names.items()]
    lines += ["    },", "}", ""]
    return "\n".join(lines)
