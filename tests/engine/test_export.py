"""The quantized checkpoint: bit packing round trips at every width, the file's size against the
report's prediction, and the rebuilt model's logits against the fake-quantized model's on real data."""
import zipfile

import pytest
import torch

from msq.cli import main
from msq.errors import ModelLoadError
from msq.functional import quantize_codes
from msq.report import build_report, export_quantized, load_quantized
from msq.report.checkpoint import FORMAT_VERSION, read_quantized
from msq.report.packing import pack_codes, packed_nbytes, unpack_codes
from msq.report.paths import OutputExistsError
from msq.report.rebuild import model_from_run_checkpoint
from msq.runs import RunStore
from test_report_helpers import completed_run, killed_run, store_home

pytestmark = pytest.mark.xdist_group("report")


@pytest.mark.parametrize("bits", range(1, 17))
@pytest.mark.parametrize("count", [0, 1, 7, 8, 13, 1000])
def test_packing_round_trips_at_every_width(bits, count):
    codes = torch.randint(0, 2 ** bits, (count,), generator=torch.Generator().manual_seed(bits * 31 + count))
    packed = pack_codes(codes, bits)
    assert packed.dtype == torch.uint8 and packed.numel() == packed_nbytes(count, bits) == -(-count * bits // 8)
    assert torch.equal(unpack_codes(packed, bits, count), codes)


def test_packing_layout_is_a_big_endian_bit_stream():
    assert pack_codes(torch.tensor([5, 2, 7]), 3).tolist() == [0b10101011, 0b10000000]   # 101 010 111 0000000
    assert pack_codes(torch.tensor([0xA, 0x3]), 4).tolist() == [0xA3]                     # first code, high nibble
    with pytest.raises(ValueError, match=r"codes must lie in \[0, 7\]"):
        pack_codes(torch.tensor([8]), 3)


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
    with pytest.raises(ModelLoadError, match="format_version 2"):
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
