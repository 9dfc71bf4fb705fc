"""The quantized checkpoint: bit packing round trips at every width, the file's size against the
report's prediction, and the rebuilt model's logits against the fake-quantized model's on real data."""
import zipfile

import pytest
import torch

from msq.cli import main
from msq.errors import ModelLoadError
from msq.functional import quantize_codes
from msq.report import build_report, export_quantized, load_quantized
from msq.report.checkpoint import FORMAT_VERSION, read_quantized, unpacked_state
from msq.report.packing import pack_codes, packed_nbytes, unpack_codes
from msq.report.paths import OutputExistsError
from msq.report.rebuild import model_from_run_checkpoint
from msq.runs import RunStore
from test_report_helpers import completed_run, killed_run, store_home

pytestmark = pytest.mark.xdist_group("report")


@pytest.mark.parametrize("bits", range(1, 17))
@pytest.mark.parametrize("count", [0, 1, 7, 8, 13, 1000])
def test_packing_round_trips_at_every_width(bits, count):
    gen = torch.Generator().manual_seed(bits * 31 + count)
    codes = torch.randint(-(2 ** (bits - 1)), 2 ** (bits - 1), (count,), generator=gen)
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == packed_nbytes(count, bits) == -(-count * bits // 8)
    assert torch.equal(unpack_codes(packed, bits, count), codes)
    unsigned = codes + 2 ** (bits - 1)
    assert torch.equal(unpack_codes(pack_codes(unsigned, bits, signed=False), bits, count, signed=False), unsigned)


def test_packing_layout_is_the_onnx_order_first_element_in_the_low_bits():
    # ONNX INT4: two's complement, element 0 in the low nibble; INT2: element 0 in bits 0-1
    assert pack_codes(torch.tensor([-8, 7]), 4).tolist() == [0x78]
    assert pack_codes(torch.tensor([3, -3]), 4).tolist() == [0xD3]
    assert pack_codes(torch.tensor([-2, -1, 0, 1]), 2).tolist() == [0b01001110]
    assert pack_codes(torch.tensor([-128, 127, -1]), 8).tolist() == [0x80, 0x7F, 0xFF]
    assert pack_codes(torch.tensor([-2, 1]), 16).tolist() == [0xFE, 0xFF, 0x01, 0x00]   # little-endian int16
    with pytest.raises(ValueError, match=r"codes must lie in \[-4, 3\] to be packed as signed 3-bit"):
        pack_codes(torch.tensor([4]), 3)


def test_packing_matches_onnx_own_int4_and_int2_packing():
    from onnx import TensorProto, helper
    for bits, dtype in ((4, TensorProto.INT4), (2, TensorProto.INT2)):
        codes = torch.arange(-(2 ** (bits - 1)), 2 ** (bits - 1)).repeat(3)[:11]   # odd count: padded byte
        theirs = helper.make_tensor("w", dtype, [codes.numel()], codes.tolist())
        packed = bytes(pack_codes(codes, bits).tolist())
        from onnx.numpy_helper import to_array
        ours = helper.make_tensor("w", dtype, [codes.numel()], packed, raw=True)
        assert to_array(ours).astype("int64").tolist() == to_array(theirs).astype("int64").tolist() == codes.tolist()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "model.msq.pt"
    return export_quantized(store_home(), completed_run(), path)


def test_packed_file_size_is_within_5_percent_of_the_report(exported):
    report = build_report(store_home(), completed_run())
    predicted = report["totals"]["model_size_bytes"]
    payload = read_quantized(exported)
    size = exported.stat().st_size
    print(f"\nreport predicts {predicted:,.0f} B, file is {size:,} B ({size / predicted - 1:+.2%}); "
          f"packed codes {payload['sizes']['codes_bytes']:,} B")
    assert abs(size - predicted) <= 0.05 * predicted
    assert payload["sizes"]["predicted_model_size_bytes"] == predicted
    layers = report["layers"]
    assert payload["codes"].numel() == sum(packed_nbytes(l["params"], l["bits"]) for l in layers.values())
    assert {l["fqn"]: l["bits"] for l in payload["layers"]} == {f: l["bits"] for f, l in layers.items()}
    assert {l["fqn"]: l["scale"] for l in payload["layers"]} == {f: l["scale"] for f, l in layers.items()}
    with zipfile.ZipFile(exported) as zf:    # a plain torch.save archive: one storage holds every code
        storages = [i.file_size for i in zf.infolist() if "/data/" in i.filename]
    assert payload["codes"].numel() in storages and len(storages) <= 4


def test_loaded_model_gives_the_fake_quantized_logits_on_real_data(exported):
    run_dir = RunStore(store_home()).run_dir(completed_run())
    reference, cfg, _, _ = model_from_run_checkpoint(run_dir / "checkpoint.pt", {})
    model = load_quantized(exported)
    from msq.data import load_dataset
    data = load_dataset(cfg.data)
    x = torch.stack([data.val[i][0] for i in range(256)])              # a real batch of held-out digits
    with torch.no_grad():
        expected, got = reference(x), model(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert (got.argmax(1) == expected.argmax(1)).all()
    for name, layer in model.named_modules():
        if hasattr(layer, "bits"):
            assert layer.mode == "frozen" and not layer.weight.requires_grad
            ref = reference.get_submodule(name)
            assert torch.equal(quantize_codes(layer.weight, layer.scale, layer.bits),
                               quantize_codes(ref.weight, ref.scale, ref.bits))


def test_only_msq_quantized_checkpoints_load(tmp_path, exported):
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.ones(2)}, plain)
    with pytest.raises(ModelLoadError, match="not an MSQ quantized checkpoint"):
        load_quantized(plain)
    payload = read_quantized(exported)
    payload["format_version"] = FORMAT_VERSION + 1
    newer = tmp_path / "newer.msq.pt"
    torch.save(payload, newer)
    with pytest.raises(ModelLoadError, match=r"format_version 3; this msq .* reads versions 1, 2"):
        load_quantized(newer)
    with pytest.raises(ModelLoadError, match="no quantized checkpoint"):
        load_quantized(tmp_path / "missing.msq.pt")


def test_export_refuses_to_overwrite_and_the_cli_reports_sizes(exported, tmp_path, capsys):
    with pytest.raises(OutputExistsError):
        export_quantized(store_home(), completed_run(), exported)
    assert main(["export", killed_run(), "--home", str(store_home()), "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    path = out.strip()
    assert path.startswith(str(tmp_path.resolve())) and path.endswith(".msq.pt")
    assert "bytes on disk; the report predicts" in err
    assert load_quantized(path) is not None      # a failed run's last checkpoint exports too


def test_load_into_your_own_model_instance(exported):
    from sample_models import create_model
    mine = create_model("tinycnn", num_classes=10, in_channels=1, image_size=8, width=96)
    model = load_quantized(exported, model=mine)
    assert model is mine
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model(x), load_quantized(exported)(x), rtol=0, atol=0)
    with pytest.raises(ModelLoadError, match="does not fit the model"):
        load_quantized(exported, model=create_model("tinycnn", num_classes=10, in_channels=1, image_size=8, width=8))


def _write_version_1(payload: dict, path) -> None:
    """The version 1 layout, as the previous msq wrote it: unsigned q = c + 2^(n-1), MSB first."""
    import numpy as np
    chunks, offset = [], 0
    for layer in payload["layers"]:
        n, count = layer["bits"], torch.Size(layer["shape"]).numel()
        c = unpack_codes(payload["codes"][layer["offset"]: layer["offset"] + layer["nbytes"]], n, count)
        q = (c + 2 ** (n - 1)).numpy()
        planes = ((q[:, None] >> np.arange(n - 1, -1, -1)) & 1).astype(np.uint8)
        data = torch.from_numpy(np.packbits(planes.reshape(-1), bitorder="big"))
        layer.update(offset=offset, nbytes=data.numel())
        for key in ("grid", "step"):
            layer.pop(key)
        chunks.append(data)
        offset += data.numel()
    from msq.report.checkpoint import encode_index
    old = {k: v for k, v in payload.items() if k not in ("layers", "float_table", "other_table")}
    old.update(format_version=1, codes=torch.cat(chunks),
               index=encode_index({**payload, "layers": payload["layers"]}))
    torch.save(old, path)


def test_version_1_files_still_load_with_the_same_logits(exported, tmp_path):
    old = tmp_path / "v1.msq.pt"
    _write_version_1(read_quantized(exported), old)
    assert read_quantized(old)["format_version"] == 1
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(load_quantized(old)(x), load_quantized(exported)(x), rtol=0, atol=0)


def test_symmetric_grid_and_binary_layers_pack_exactly():
    from msq.config import QuantConfig
    from msq.quant import convert_, quantize_, set_bit_allocation_
    from msq.report.checkpoint import FORMAT, pack_state
    from sample_models import create_model
    torch.manual_seed(0)
    model = create_model("tinycnn", num_classes=10, in_channels=1, image_size=8, width=8)
    quantize_(model, QuantConfig(grid="symmetric", init_bits=4))
    names = [n for n, m in model.named_modules() if hasattr(m, "bits")]
    set_bit_allocation_(model, dict(zip(names, [1, 2, 3, 8][:len(names)])))
    packed = pack_state(model)
    assert [l["grid"] for l in packed["layers"]] == ["symmetric"] * len(names)
    state = unpacked_state({**packed, "format": FORMAT, "format_version": FORMAT_VERSION})
    fresh = create_model("tinycnn", num_classes=10, in_channels=1, image_size=8, width=8)
    quantize_(fresh, QuantConfig(grid="symmetric", init_bits=4))
    fresh.load_state_dict(state)
    for name in names:
        ours, theirs = fresh.get_submodule(name), model.get_submodule(name)
        assert ours.grid == "symmetric" and ours.bits == theirs.bits
        assert torch.equal(ours.quantized_weight(), theirs.quantized_weight())
    binary = model.get_submodule(names[0]).integer_weight()[0]
    assert set(binary.unique().tolist()) <= {-1, 1}
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    model.eval(), fresh.eval()
    with torch.no_grad():
        torch.testing.assert_close(convert_(fresh)(x), model(x), rtol=0, atol=0)


def test_load_never_imports_code_named_in_the_file_unless_asked(exported, tmp_path):
    marker = tmp_path / "imported.txt"
    evil = tmp_path / "evil_model.py"
    evil.write_text("import pathlib\n"
                    f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
                    "def make(num_classes=10, in_channels=1, image_size=8):\n"
                    "    from sample_models import create_model\n"
                    "    return create_model('tinycnn', num_classes=num_classes, in_channels=in_channels,\n"
                    "                        image_size=image_size, width=96)\n")
    payload = read_quantized(exported)
    spec = f"{evil}:make"
    payload["model"] = {**payload["model"], "name": spec, "kwargs": {}}
    payload["config"] = {**payload["config"], "model": spec, "model_kwargs": {}}
    crafted = tmp_path / "crafted.msq.pt"
    torch.save({k: v for k, v in payload.items() if k not in ("layers", "float_table", "other_table")}, crafted)
    with pytest.raises(ModelLoadError, match=r"does not run code named inside a checkpoint.*model=my_model.*trust_code=True"):
        load_quantized(crafted)
    assert not marker.exists()
    from sample_models import create_model
    mine = create_model("tinycnn", num_classes=10, in_channels=1, image_size=8, width=96)
    assert load_quantized(crafted, model=mine) is mine and not marker.exists()
    assert load_quantized(crafted, trust_code=True) is not None and marker.read_text() == "ran"
