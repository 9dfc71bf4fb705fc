"""quantize_ / restore_ / convert_ on small models defined here."""
import pytest
import torch
from torch import nn

from msq.config import QuantConfig
from msq.errors import ConfigError, NothingToQuantizeError
from msq.functional import fake_quantize
from msq.quant import (QuantConv2d, QuantLinear, bit_allocation, convert_, quantize_, restore_,
                       set_bit_allocation_, set_mode_)
from msq.quant.inventory import float_param_count, layer_inventory


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.fc1 = nn.Linear(4 * 8 * 8, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.relu(self.dw(x))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def test_prepare_swaps_layers_shares_parameters_and_pins_first_last():
    torch.manual_seed(0)
    model = Small()
    weight = model.fc1.weight
    names = quantize_(model, QuantConfig(init_bits=6, fixed_bits=8))
    assert names == ["conv", "dw", "fc1", "fc2"]
    assert isinstance(model.conv, QuantConv2d) and isinstance(model.fc1, QuantLinear)
    assert model.fc1.weight is weight                      # same Parameter: the optimizer keeps its state
    assert bit_allocation(model) == {"conv": 8, "dw": 6, "fc1": 6, "fc2": 8}
    assert model.conv.fixed_reason == "first layer" and model.fc2.fixed_reason == "last layer"
    assert float(model.fc1.scale) == pytest.approx(float(weight.detach().abs().max()))


def test_restore_is_lossless():
    torch.manual_seed(0)
    model = Small()
    x = torch.randn(2, 1, 8, 8)
    model.eval()
    before = model(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    quantize_(model, QuantConfig(init_bits=3))
    assert not torch.allclose(model(x), before)
    restore_(model)
    assert type(model.fc1) is nn.Linear and type(model.conv) is nn.Conv2d
    assert torch.equal(model(x), before)
    assert model.state_dict().keys() == state.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_convert_equals_fake_quantized_outputs_and_freezes():
    torch.manual_seed(0)
    model = Small()
    quantize_(model, QuantConfig(init_bits=4, act_bits=4))
    x = torch.randn(4, 1, 8, 8)
    model.eval()
    fake = model(x)
    convert_(model)
    assert torch.equal(model(x), fake)
    assert not model.fc1.weight.requires_grad
    assert torch.equal(model.fc1.weight, fake_quantize(model.fc1.weight, model.fc1.scale, 4))
    with pytest.raises(ConfigError, match="converted"):
        set_mode_(model, "quant")


def test_state_dict_round_trip_carries_bits_and_scale():
    torch.manual_seed(0)
    model = Small()
    quantize_(model, QuantConfig(init_bits=6))
    set_bit_allocation_(model, {"dw": 3, "fc1": 2})
    other = Small()
    quantize_(other, QuantConfig(init_bits=6))
    other.load_state_dict(model.state_dict())
    assert bit_allocation(other) == bit_allocation(model)
    assert torch.equal(other.fc1.scale, model.fc1.scale)


def test_float_mode_is_the_float_model():
    torch.manual_seed(0)
    model = Small().eval()
    x = torch.randn(2, 1, 8, 8)
    before = model(x)
    quantize_(model, QuantConfig(init_bits=2))
    set_mode_(model, "float")
    assert torch.equal(model(x), before)


def test_exclude_and_fixed_patterns():
    model = Small()
    names = quantize_(model, QuantConfig(exclude=["fc2"], fixed=["dw"], keep_first_last=False))
    assert names == ["conv", "dw", "fc1"] and type(model.fc2) is nn.Linear
    assert model.dw.fixed and "dw" in model.dw.fixed_reason and not model.fc1.fixed


def test_nothing_to_quantize_is_a_clear_error():
    model = nn.Sequential(nn.Flatten(), nn.ReLU())
    with pytest.raises(NothingToQuantizeError, match="no Conv2d or Linear layer"):
        quantize_(model)
    with pytest.raises(NothingToQuantizeError, match="quant.exclude"):
        quantize_(Small(), QuantConfig(exclude=["*"]))


def test_double_prepare_and_bad_allocations_are_refused():
    model = Small()
    quantize_(model)
    with pytest.raises(ConfigError, match="already quantized"):
        quantize_(model)
    with pytest.raises(ConfigError, match="unknown layer name.*fc9"):
        set_bit_allocation_(model, {"fc9": 3})
    with pytest.raises(ConfigError, match=r"bits of fc1 = 0"):
        set_bit_allocation_(model, {"fc1": 0})


def test_inventory_counts_params_and_macs():
    model = Small()
    quantize_(model)
    info = layer_inventory(model, torch.randn(1, 1, 8, 8))
    assert [i.kind for i in info] == ["conv2d", "dwconv2d", "linear", "linear"]
    assert info[0].params == 36 and info[0].macs == 8 * 8 * 4 * 9
    assert info[1].macs == 8 * 8 * 4 * 9 and info[2].macs == 256 * 16
    bn_and_bias = 4 + (4 + 4) + 4 + 16 + 3      # conv bias, BN weight+bias, dw, fc1, fc2 biases
    assert float_param_count(model) == bn_and_bias


def test_activation_quantization_uses_pact_clip_except_first_layer():
    model = Small()
    quantize_(model, QuantConfig(act_bits=3))
    assert model.conv.act_bits is None and model.fc1.act_bits == 3
    assert isinstance(model.fc1.act_alpha, nn.Parameter)
    out = model(torch.randn(2, 1, 8, 8))
    out.sum().backward()
    assert model.fc1.act_alpha.grad is not None
