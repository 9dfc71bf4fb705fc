"""BSQ baseline: bit-plane round trips, value-keeping re-quantization (carry, LSB/MSB drops, growth), the
group Lasso against a hand computation, parameter accounting, and runs through the Trainer (events,
summary, resume with changed plane shapes)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from msq.methods.bsq import (decode_planes, encode_planes, group_lasso_penalty, is_bsq_layer, plane_coefficients,
                               plane_sum, requantize_codes, to_bsq)
from msq.config import QuantConfig, RunConfig
from msq.quant import bit_allocation, quant_layers, quantize_, searched_layers
from msq.quant.inventory import float_param_count, trainable_param_count
from msq.training.callbacks import Callback
from msq.training.trainer import Trainer
from sample_models import create_model
from engine_helpers import CrashAfterEpoch


def bsq_linear(bits: int = 4, max_bits: int = 8, shape=(6, 5), seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(shape[1], shape[0]))
    quantize_(model, QuantConfig(keep_first_last=False))
    return to_bsq(model[0], bits, max_bits)


def set_codes(layer, codes: torch.Tensor) -> None:
    """Put exact integer codes into a layer's planes (its width must hold them)."""
    with torch.no_grad():
        layer.planes.copy_(encode_planes(codes, layer.bits))


# -- the representation ---------------------------------------------------------------------------
@pytest.mark.parametrize("bits", range(1, 9))
def test_bit_plane_round_trip_every_code_of_every_width(bits):
    codes = torch.arange(-(2 ** bits - 1), 2 ** bits)
    planes = encode_planes(codes, bits)
    assert planes.shape == (2, bits, codes.numel()) and set(planes.unique().tolist()) <= {0.0, 1.0}
    assert not (planes[0].bool() & planes[1].bool()).any()            # a weight is positive or negative
    assert torch.equal(decode_planes(planes), codes)
    assert torch.equal(plane_sum(planes, plane_coefficients(bits)), codes.float())   # exact, atol = 0


def test_forward_rebuilds_the_weight_from_the_planes_exactly():
    layer = bsq_linear(bits=3)
    codes = torch.tensor([[7, -7, 0, 3, -1]] * 6)
    set_codes(layer, codes)
    expected = codes.float() * (layer.scale / 7)                        # C · step, step = s / (2^n - 1)
    assert torch.equal(layer.quantized_weight().detach(), expected)
    assert torch.equal(layer.weight, expected)
    x = torch.randn(2, 5)
    assert torch.allclose(layer(x), x @ expected.t() + layer.bias, atol=1e-6)


def test_initial_planes_are_the_sign_magnitude_of_the_round_clamp_codes():
    model = nn.Sequential(nn.Linear(5, 6))
    quantize_(model, QuantConfig(keep_first_last=False))
    w = model[0].weight.detach().clone()
    layer = to_bsq(model[0], bits=8, max_bits=8)
    s = w.abs().max()
    assert torch.allclose(layer.scale, s, rtol=1e-6, atol=0)
    assert torch.equal(decode_planes(layer.planes.detach()), torch.round(w / s * 255).to(torch.int64))
    assert (layer.weight - w).abs().max() <= s / 255 / 2 + 1e-7


# -- re-quantization keeps every value --------------------------------------------------------------
def test_requantize_carries_real_valued_planes_and_keeps_every_value():
    layer = bsq_linear(bits=4)
    torch.manual_seed(1)
    with torch.no_grad():
        layer.planes.uniform_(0.0, 2.0)                                  # mid-training: carries everywhere
    before, codes = layer.weight.clone(), layer.codes()
    result = layer.requantize_()
    assert set(layer.planes.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(layer.weight, before, rtol=1e-6, atol=0)
    exact = result.codes * 2 ** result.dropped_lsb                     # integer check, no rounding at all
    assert torch.equal(exact, codes) and result.clamped == 0
    assert layer.bits == result.bits and layer.planes.shape[1] == layer.bits


def test_dropping_an_all_zero_lsb_plane_keeps_every_value_and_doubles_the_step():
    layer = bsq_linear(bits=4)
    torch.manual_seed(2)
    codes = 2 * torch.randint(-7, 8, (6, 5))                              # every LSB is zero
    codes[0, 0] = 14                                                      # and the MSB is in use
    set_codes(layer, codes)
    before, step = layer.weight.clone(), float(layer.scale) / 15
    result = layer.requantize_()
    assert (result.bits, result.dropped_lsb, result.dropped_msb) == (3, 1, 0)
    assert torch.allclose(layer.weight, before, rtol=1e-6, atol=0)
    assert float(layer.scale) / 7 == pytest.approx(2 * step, rel=1e-6)


def test_all_zero_msb_plane_is_dropped_with_the_same_step():
    r = requantize_codes(torch.tensor([3, -5, 1, 0]), bits=5, max_bits=8)
    assert (r.bits, r.dropped_msb, r.dropped_lsb) == (3, 2, 0)
    assert r.scale_factor == pytest.approx(7 / 31)                     # step s/(2^n - 1) unchanged


def test_growth_on_overflow_keeps_every_value():
    layer = bsq_linear(bits=3, max_bits=8)
    set_codes(layer, torch.randint(-7, 8, (6, 5)))
    with torch.no_grad():
        layer.planes[0, 0, 0, 0] = 2.0                                    # an MSB of 2: carry out of 3 bits
        layer.planes[1, :, 0, 0] = 0.0
    assert layer.codes().abs().max() > 7
    before = layer.weight.clone()
    result = layer.requantize_()
    assert result.grown == 1 and layer.bits == 4 and result.clamped == 0
    assert torch.allclose(layer.weight, before, rtol=1e-6, atol=0)


def test_frozen_width_clamps_instead_of_growing():
    r = requantize_codes(torch.tensor([9, -2]), bits=3, max_bits=8, adjust=False)
    assert r.bits == 3 and r.codes.tolist() == [7, -2] and r.clamped == 1


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 8), seed=st.integers(0, 10_000))
def test_requantized_codes_represent_the_same_integers(bits, seed):
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(-(2 ** (bits + 1) - 1), 2 ** (bits + 1), (40,), generator=g)
    r = requantize_codes(codes, bits, max_bits=9)
    assert torch.equal(r.codes * 2 ** r.dropped_lsb, codes)
    assert r.codes.abs().max() <= 2 ** r.bits - 1


# -- the regularizer --------------------------------------------------------------------------------
def test_group_lasso_matches_a_hand_computation():
    a, b = bsq_linear(bits=2, shape=(1, 3)), bsq_linear(bits=1, shape=(1, 1))
    with torch.no_grad():
        a.planes.copy_(torch.tensor([[[[1.0, 0.0, 2.0]], [[0.5, 0.0, 0.0]]],       # Wp: MSB, LSB
                                     [[[0.0, 2.0, 0.0]], [[0.0, 0.0, 0.0]]]]))     # Wn: MSB, LSB
        b.planes.copy_(torch.tensor([[[[0.0]]], [[[3.0]]]]))
    # layer a: N=3, n=2; bit 0 group (1,0,2 | 0,2,0) -> 3; bit 1 group (0.5,0,0 | 0,0,0) -> 0.5
    # layer b: N=1, n=1; bit 0 group (0 | 3) -> 3;  weights N n / (3 + 1)
    expected = (3 * 2 / 4) * (3.0 + 0.5) + (1 * 1 / 4) * 3.0
    assert group_lasso_penalty([a, b]).item() == pytest.approx(expected, rel=1e-6)


def test_group_lasso_gradient_is_finite_at_an_all_zero_plane():
    layer = bsq_linear(bits=3)
    with torch.no_grad():
        layer.planes[:, 2].zero_()
    group_lasso_penalty([layer]).backward()
    assert torch.isfinite(layer.planes.grad).all() and (layer.planes.grad[:, 2] == 0).all()


# -- accounting -------------------------------------------------------------------------------------
def test_planes_replace_the_float_weight_as_trainable_parameters():
    msq_model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    quantize_(msq_model, QuantConfig(init_bits=8))
    bsq_model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    quantize_(bsq_model, QuantConfig(init_bits=8))
    for name, layer in searched_layers(bsq_model):
        parent, _, child = name.rpartition(".")
        setattr(bsq_model.get_submodule(parent) if parent else bsq_model, child, to_bsq(layer, 8, 8))
    names = [n for n, _ in bsq_model.named_parameters()]
    assert not any(n.endswith("conv2.weight") or n.endswith("fc1.weight") for n in names)
    searched = sum(layer.weight.numel() for _, layer in searched_layers(bsq_model))
    extra = 2 * 8 * searched - searched + len(searched_layers(bsq_model))      # planes + scales - weights
    assert trainable_param_count(bsq_model) == trainable_param_count(msq_model) + extra
    assert trainable_param_count(bsq_model) / trainable_param_count(msq_model) >= 8
    assert float_param_count(bsq_model) == float_param_count(msq_model)      # planes are not "float params"
    assert bit_allocation(bsq_model) == bit_allocation(msq_model)


# -- through the Trainer ----------------------------------------------------------------------------
def tiny_cfg(**changes) -> RunConfig:
    base = {"method": "bsq", "model": "tinycnn", "data": {"name": "digits"},
            "train": {"pretrain_epochs": 2, "search_epochs": 3, "finetune_epochs": 1, "batch_size": 64,
                      "threads": 1, "log_every": 5},
            "bsq": {"decay": 0.05, "requant_every": 1}}
    cfg = RunConfig.from_dict(base)
    return cfg.replace(**changes) if changes else cfg


class Recorder(Callback):
    def __init__(self):
        self.phases, self.events, self.logs = [], [], []

    def on_phase_start(self, trainer, phase):
        self.phases.append(phase)

    def on_log(self, trainer, metrics):
        self.logs.append(metrics)

    def on_event(self, trainer, kind, payload):
        self.events.append((kind, payload))


def test_bsq_run_goes_through_the_phases_with_events_and_a_summary():
    rec = Recorder()
    trainer = Trainer(tiny_cfg(), callbacks=[rec])
    summary = trainer.fit()
    assert summary["status"] == "completed" and summary["method"] == "bsq"
    assert rec.phases == ["pretrain", "search", "finetune"]
    assert {"bits", "lsb_density", "lsb_l1", "quant_error", "msb_density"} <= set(rec.logs[-1])
    prunes = [p for kind, p in rec.events if kind == "prune"]
    assert prunes and all(p["new_bits"] == p["old_bits"] - p["k"] and p["sensitivity"] is None for p in prunes)
    assert {"index", "fqn", "old_bits", "new_bits", "k", "density", "mean_sensitivity"} <= set(prunes[0])
    requants = [p for kind, p in rec.events if kind == "requantize"]
    assert len(requants) == 4 and requants[-1]["adjust"] is False                  # 3 search + 1 final
    layers = quant_layers(trainer.model)
    assert [is_bsq_layer(layer) for _, layer in layers] == [False, True, False]   # first/last kept fixed
    assert [entry["bits"] for entry in summary["layers"]] == [layer.bits for _, layer in layers]
    assert summary["layers"][1]["bits"] < 8 and summary["layers"][1]["bit_history"]
    assert summary["final_acc"] > 50 and summary["trainable_params"] == trainable_param_count(trainer.model)
    # the sign is counted like every other method's (bits = magnitude planes, storage = bits + 1)
    assert summary["bsq"]["average_bits_with_sign"] == pytest.approx(summary["average_bits"])
    assert [entry["storage_bits"] for entry in summary["layers"]] == [8, layers[1][1].bits + 1, 8]
    assert set(trainer.model.conv2.planes.unique().tolist()) <= {0.0, 1.0}        # binary at the end


def test_resume_loads_planes_whose_shapes_changed(tmp_path):
    full = Trainer(tiny_cfg(), run_dir=tmp_path / "full").fit()
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(tiny_cfg(), callbacks=[CrashAfterEpoch(4)], run_dir=tmp_path / "cut").fit()
    resumed = Trainer(tiny_cfg(), run_dir=tmp_path / "cut", resume=True)
    assert resumed.resumed and resumed.state.epoch == 4
    assert resumed.model.conv2.planes.shape[1] == resumed.model.conv2.bits < 8      # re-shaped on load
    summary = resumed.fit()
    assert summary["status"] == "completed" and summary["steps_done"] == full["steps_done"]
    assert [l["bits"] for l in summary["layers"]] == [l["bits"] for l in full["layers"]]
    assert summary["final_acc"] == full["final_acc"]
    assert math.isclose(summary["final_val_loss"], full["final_val_loss"], rel_tol=1e-5)
