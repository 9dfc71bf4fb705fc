"""LSB pruning decisions (METHODS §3), including the Hessian-aware k = 2."""
import torch
from torch import nn

from msq.config import PruneConfig, QuantConfig
from msq.functional import fake_quantize
from msq.quant import quant_layers, quantize_
from msq.methods.msq.pruning import LayerState, decide_prunes


def states(bits, densities, fixed=None, params=None):
    fixed = fixed or [False] * len(bits)
    params = params or [100] * len(bits)
    return [LayerState(i, f"l{i}", p, b, fx, d) for i, (b, d, fx, p) in enumerate(zip(bits, densities, fixed, params))]


def test_prunes_only_searched_layers_at_or_below_threshold_and_above_min_bits():
    layers = states([8, 8, 8, 2, 8], [0.05, 0.2, 0.1, 0.0, 0.0], fixed=[False, False, False, False, True])
    decisions = decide_prunes(layers, PruneConfig(threshold=0.1, min_bits=2))
    assert [(d.fqn, d.old_bits, d.new_bits) for d in decisions] == [("l0", 8, 7), ("l2", 8, 7)]


def test_hessian_aware_drops_two_bits_exactly_below_mean_sensitivity():
    layers = states([8, 8, 8, 8, 3], [0.0] * 5)
    sens = {0: 1.0, 1: 5.0, 2: 0.5, 3: 9.0, 4: 0.1}      # mean = 3.12
    decisions = {d.fqn: d.k for d in decide_prunes(layers, PruneConfig(threshold=0.1, min_bits=2), sens)}
    assert decisions == {"l0": 2, "l1": 1, "l2": 2, "l3": 1, "l4": 1}  # l4 is insensitive but 3 - 2 < 2


def test_mean_sensitivity_is_over_searched_layers_only():
    layers = states([8, 8, 8], [0.0, 0.0, 0.0], fixed=[True, False, False])
    decisions = decide_prunes(layers, PruneConfig(threshold=0.1), {0: 100.0, 1: 1.0, 2: 2.0})
    assert {d.fqn: d.k for d in decisions} == {"l1": 2, "l2": 1}
    assert decisions[0].mean_sensitivity == 1.5


def test_target_average_bits_stops_pruning():
    layers = states([4, 4], [0.0, 0.01], params=[100, 100])
    assert [d.fqn for d in decide_prunes(layers, PruneConfig(threshold=0.1, target_avg_bits=3.5))] == ["l0"]
    assert decide_prunes(states([3, 3], [0.0, 0.0]), PruneConfig(threshold=0.1, target_avg_bits=3.0)) == []


def test_pruning_a_zero_lsb_layer_keeps_every_weight_value():
    """On nested grids, when every code of a layer has LSB 0, dropping it changes no output."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    quantize_(model, QuantConfig(init_bits=6, keep_first_last=False))
    layer = model[0]
    with torch.no_grad():  # snap the master weights onto the 5-bit grid: all 6-bit LSBs are 0
        layer.weight.copy_(fake_quantize(layer.weight, layer.scale, 5))
    x = torch.randn(16, 8)
    before = model(x)
    layer.bits = 5
    assert torch.equal(model(x), before)
    assert [l.bits for _, l in quant_layers(model)] == [5, 6]
