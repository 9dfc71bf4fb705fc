"""Toolchain adapters checked against their consumers: HAWQ's bit_config imported as the Python module
HAWQ imports, with HAWQ's module names; NNCF's config through NNCF's own schema validation and compared
with the scopes NNCF's own quantizer setup writes; torchao's FqnToConfig applied by torchao."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from msq.config import QuantConfig
from msq.quant import quant_layers, quantize_
from msq.report import build_report, render_report
from sample_models import create_model
from test_report_helpers import completed_run, store_home

pytestmark = pytest.mark.xdist_group("report")
REPO = Path(__file__).resolve().parents[2]

# The 48 module names of HAWQ's ResNet-18 bit_config (Zhen-Dong/HAWQ, bit_config.py, "bit_config_resnet18_*").
HAWQ_RESNET18 = ["quant_input", "quant_init_block_convbn", "quant_act_int32"] + [
    f"stage{s}.unit{u}.{m}" for s in range(1, 5) for u in (1, 2)
    for m in ["quant_act", "quant_convbn1", "quant_act1", "quant_convbn2"]
    + (["quant_identity_convbn"] if u == 1 and s > 1 else []) + ["quant_act_int32"]] + ["quant_act_output", "quant_output"]


def _report_for(model_name, act_bits=None, seed=0):
    """The completed run's real report, re-labelled as a run of ``model_name`` with that model's layers."""
    report = json.loads(json.dumps(build_report(store_home(), completed_run())))
    model = create_model(model_name, num_classes=10, in_channels=3, image_size=32)
    quantize_(model, QuantConfig())
    template = next(iter(report["layers"].values()))
    gen = torch.Generator().manual_seed(seed)
    report["layers"] = {fqn: {**template, "bits": int(torch.randint(2, 9, (1,), generator=gen)),
                              "act_bits": None if index == 0 else act_bits}
                        for index, (fqn, _) in enumerate(quant_layers(model))}
    report["run"]["model"] = model_name
    report["config"] = {**report["config"], "model": model_name}
    return report


def _import_module(path: Path):
    spec = importlib.util.spec_from_file_location("bit_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hawq_bit_config_is_the_python_module_hawq_imports_with_its_resnet18_names(tmp_path):
    assert len(HAWQ_RESNET18) == 48
    report = _report_for("tv:resnet18", act_bits=4)
    path = tmp_path / "bit_config.py"
    path.write_text(render_report(report, "hawq"))
    (key, config), = _import_module(path).bit_config_dict.items()        # quant_train: from bit_config import *
    assert key == f"bit_config_resnet18_msq_{report['run']['id'].replace('-', '_')}"
    assert list(config) == HAWQ_RESNET18                                  # every HAWQ module named, none else
    layers = report["layers"]
    assert config["quant_init_block_convbn"] == layers["conv1"]["bits"] and config["quant_output"] == layers["fc"]["bits"]
    assert config["stage2.unit1.quant_convbn2"] == layers["layer2.0.conv2"]["bits"]
    assert config["stage3.unit1.quant_identity_convbn"] == layers["layer3.0.downsample.0"]["bits"]
    assert config["stage4.unit2.quant_act1"] == 4 and config["quant_input"] == 8 and config["quant_act_int32"] == 16


def test_hawq_resnet50_names_and_a_clear_error_for_models_hawq_lacks(tmp_path):
    report = _report_for("tv:resnet50")
    path = tmp_path / "bit_config.py"
    path.write_text(render_report(report, "hawq"))
    (key, config), = _import_module(path).bit_config_dict.items()
    assert key.startswith("bit_config_resnet50_msq_") and "quant_init_convbn" in config
    units = [(s, u) for s, n in zip(range(1, 5), (3, 4, 6, 3)) for u in range(1, n + 1)]
    assert len(config) == 3 + 7 * len(units) + 4 + 2                        # act, 3 convbn, 2 acts, int32 per unit
    assert config["stage3.unit6.quant_convbn3"] == report["layers"]["layer3.5.conv3"]["bits"]
    from msq.deploy.hawq import HAWQMappingError
    with pytest.raises(HAWQMappingError, match=r"run.model = 'tv:mobilenet_v2'.*tv:resnet18, tv:resnet50"):
        render_report(_report_for("tv:mobilenet_v2"), "hawq")


NNCF_CHECK = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
from nncf import NNCFConfig
from nncf.torch.model_creation import create_nncf_network
from nncf.torch.quantization.algo import QuantizationBuilder
from nncf.torch.quantization.precision_init.base_init import BasePrecisionInitializer
from msq.config import QuantConfig
from msq.deploy.nncf_scopes import nncf_config
from msq.quant import quant_layers, quantize_
from sample_models import create_model
out = {}
for name, channels, size in (("lenet5", 1, 28), ("resnet20", 3, 32), ("mobilenet_tiny", 1, 28), ("tv:resnet18", 3, 32)):
    quantized = create_model(name, num_classes=10, in_channels=channels, image_size=size)
    quantize_(quantized, QuantConfig())
    allocation = {fqn: 2 + i % 7 for i, (fqn, _) in enumerate(quant_layers(quantized))}
    ours = nncf_config(quantized, allocation, [1, channels, size, size], act_bits=4)
    config = NNCFConfig.from_dict(ours)                    # NNCF's own JSON-schema validation
    net = create_nncf_network(create_model(name, num_classes=10, in_channels=channels, image_size=size), config)
    setup = QuantizationBuilder(config, should_init=False)._get_single_config_quantizer_setup(net)
    theirs = [s for _, s in BasePrecisionInitializer.get_bitwidth_per_scope(setup) if s.endswith("|WEIGHT")]
    out[name] = {"ours": [s for _, s in ours["compression"]["initializer"]["precision"]["bitwidth_per_scope"]],
                 "theirs": theirs}
try:
    NNCFConfig.from_dict({**ours, "compression": {**ours["compression"], "initializer": {"precision": {
        "type": "manual", "bitwidth_per_scope": [["four", "x"]]}}}})
    out["schema_rejects"] = False
except Exception as exc:
    out["schema_rejects"] = type(exc).__name__
print(json.dumps(out))
"""


@pytest.mark.slow
def test_nncf_manual_precision_scopes_are_the_ones_nncf_writes():
    env = {**os.environ, "PYTHONPATH": str(REPO), "NNCF_TORCH_LEGACY_TRACING": "1"}
    done = subprocess.run([sys.executable, "-c", NNCF_CHECK], capture_output=True, text=True, cwd=REPO,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("lenet5", "resnet20", "mobilenet_tiny", "tv:resnet18"):
        assert sorted(result[name]["ours"]) == sorted(result[name]["theirs"]), name
        assert len(result[name]["ours"]) > 0
    assert result["schema_rejects"] == "ValidationError"


def test_torchao_fqn_config_applies_each_width_to_the_model():
    from torchao.core.config import config_from_dict
    from torchao.quantization import quantize_ as torchao_quantize_
    report = json.loads(json.dumps(build_report(store_home(), completed_run())))
    from msq.deploy.torchao_config import torchao_skipped
    skipped = torchao_skipped(report)
    assert all("one input channel" in why for why in skipped.values())           # tinycnn: conv1 (one input channel)
    allocation = {fqn: l["bits"] for fqn, l in report["layers"].items() if fqn not in skipped}
    assert len(allocation) >= 2
    config = config_from_dict(json.loads(render_report(report, "torchao")))      # torchao's own JSON
    assert sorted(config.fqn_to_config) == sorted(allocation)
    model = create_model("tinycnn", num_classes=10, in_channels=1, image_size=8, width=96)
    x = torch.randn(2, 1, 8, 8)
    torchao_quantize_(model, config, filter_fn=None)
    for fqn, bits in allocation.items():
        weight = model.get_submodule(fqn).weight
        assert weight.target_dtype == getattr(torch, f"int{bits}"), fqn
        assert int(weight.qdata.min()) >= -(2 ** (bits - 1)) and int(weight.qdata.max()) <= 2 ** (bits - 1) - 1
    assert torch.isfinite(model(x)).all()
