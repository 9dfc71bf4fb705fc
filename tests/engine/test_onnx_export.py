"""ONNX export checked in onnxruntime: integer weight initializers in the right containers with the
right bytes, onnx.checker, and outputs against the torch fake-quantized model on real validation
images (mnist5k), for lenet5, resnet20 and mobilenet_tiny, with and without activation quantization,
on both grids, and for BSQ and multi-bit layers."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, numpy_helper

from msq.config import DataConfig, QuantConfig, RunConfig
from msq.deploy.integer import integer_layer
from msq.deploy.onnx_export import export_onnx, to_onnx
from msq.deploy.verify import compare_with_onnxruntime
from msq.quant import quant_layers, quantize_, set_bit_allocation_
from sample_models import create_model

pytestmark = pytest.mark.xdist_group("onnx")
CONTAINER = {1: TensorProto.INT2, 2: TensorProto.INT2, 3: TensorProto.INT4, 4: TensorProto.INT4,
             5: TensorProto.INT8, 8: TensorProto.INT8}


@pytest.fixture(scope="module")
def images():
    from msq.data import load_dataset
    data = load_dataset(DataConfig(name="mnist5k"))
    return torch.stack([data.val[i][0] for i in range(128)])


def _model(name, act_bits=None, grid="affine", widths=(2, 3, 4, 5, 8)):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=1, image_size=28)
    quantize_(model, QuantConfig(init_bits=4, act_bits=act_bits, grid=grid))
    names = [n for n, _ in quant_layers(model)]
    set_bit_allocation_(model, {n: widths[i % len(widths)] for i, n in enumerate(names)})
    return model.eval()


def _check_weights(proto, model):
    inits = {i.name: i for i in proto.graph.initializer}
    for fqn, layer in quant_layers(model):
        q = inits[f"{fqn}.weight_quantized"]
        storage = integer_layer(layer).storage_bits
        assert q.data_type == CONTAINER[storage], fqn
        container = {TensorProto.INT2: 2, TensorProto.INT4: 4, TensorProto.INT8: 8}[q.data_type]
        assert len(q.raw_data) == -(-layer.weight.numel() * container // 8)        # packed: ceil(N k / 8) bytes
        assert np.array_equal(numpy_helper.to_array(q).astype(np.int64), integer_layer(layer).codes.numpy())
        assert f"{fqn}.weight" not in inits                                         # no float copy left
    assert not [i for i in proto.graph.initializer if i.name.endswith(".weight") and i.name.rpartition(".")[0]
                in dict(quant_layers(model))]


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "mobilenet_tiny"])
@pytest.mark.parametrize("act_bits", [None, 4])
def test_onnxruntime_matches_the_fake_quantized_model(name, act_bits, images):
    model = _model(name, act_bits)
    with torch.no_grad():
        model(images[:2])                  # the activation quantizers see data once (sign calibration)
    proto, rows = to_onnx(model, images[:1])
    onnx.checker.check_model(proto, full_check=True)
    _check_weights(proto, model)
    assert proto.opset_import[0].version == 25 and {r["container"] for r in rows} == {"INT2", "INT4", "INT8"}
    result = compare_with_onnxruntime(model, proto, images)
    print(f"\n{name} act_bits={act_bits}: {result}")
    assert result["ok"], result                        # every code difference is a rounding tie
    assert result["clean_max_abs_diff"] <= 1e-4 and result["clean_argmax_agreement"] == 1.0
    if act_bits is None:                               # weights alone are exact: no ties to flip
        assert result["max_abs_diff"] <= 1e-4 and result["argmax_agreement"] == 1.0
    else:
        assert result["quantizers_checked"] == len(quant_layers(model)) - 1     # every input but the first
        assert result["flip_rate"] < 1e-3 and result["argmax_agreement"] >= 0.98


def test_symmetric_grid_binary_and_ternary_layers_export_exactly(images, tmp_path):
    model = _model("lenet5", grid="symmetric", widths=(1, 2, 3, 4, 8))
    info = export_onnx(model, images[:1], tmp_path / "sym.onnx")
    proto = onnx.load(info["path"])
    _check_weights(proto, model)
    codes = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer if i.name.endswith("_quantized")}
    assert model.conv1.bits == 1 and set(np.unique(codes["conv1.weight_quantized"]).tolist()) == {-1, 1}   # binary
    assert model.conv2.bits == 2 and set(np.unique(codes["conv2.weight_quantized"]).tolist()) <= {-1, 0, 1}  # ternary
    result = compare_with_onnxruntime(model, proto, images)
    assert result["max_abs_diff"] <= 1e-4 and result["argmax_agreement"] == 1.0
    assert info["file_bytes"] == (tmp_path / "sym.onnx").stat().st_size and info["opset"] == 25


def test_int4_only_models_use_opset_21(images):
    proto, rows = to_onnx(_model("lenet5", widths=(3, 4, 6)), images[:1])
    assert proto.opset_import[0].version == 21 and "INT2" not in {r["container"] for r in rows}
    ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def test_bsq_layers_export_their_bit_plane_codes(images):
    from msq.methods.bsq.layers import to_bsq
    model = _model("lenet5", act_bits=4, widths=(4,))
    with torch.no_grad():
        model(images[:2])
    for name, layer in quant_layers(model):
        if not layer.fixed:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, to_bsq(layer, 3, 8))
    for _, layer in quant_layers(model):
        if hasattr(layer, "requantize_"):
            layer.requantize_(adjust=False)
            assert integer_layer(layer).storage_bits == layer.bits + 1      # magnitude bits plus the sign
    proto, _ = to_onnx(model.eval(), images[:1])
    result = compare_with_onnxruntime(model, proto, images)
    assert result["ok"] and result["clean_max_abs_diff"] <= 1e-4 and result["clean_argmax_agreement"] == 1.0


@pytest.mark.parametrize("mix", [3, {"conv2": 2, "fc1": 5, "fc2": 3}])
def test_multibit_model_exports_at_a_width_or_a_mix_with_its_bias_correction(images, mix):
    from msq.methods.multibit import allocation, prepare_multibit_
    cfg = RunConfig(model="lenet5", method="multibit", multibit={"bits": [2, 3, 4, 8], "act_bits": "same"})
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    prepare_multibit_(model, cfg, images[:2])
    model.eval()
    with torch.no_grad():
        model(images[:2])
    with allocation(model, mix):
        proto, rows = to_onnx(model, images[:1])
        assert all(r["corrected"] for r in rows)          # gain/offset per channel after DequantizeLinear
        result = compare_with_onnxruntime(model, proto, images)
    print(f"\nmulti-bit {mix}: {result}")
    assert result["ok"] and result["clean_max_abs_diff"] <= 1e-4 and result["clean_argmax_agreement"] == 1.0
