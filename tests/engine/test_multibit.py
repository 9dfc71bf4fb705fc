"""Multi-bit training (METHODS §8): bias correction, EL2N coresets, width switching, per-width
BatchNorm, evaluation at mixed allocations, and a tiny run through the Trainer with exact resume."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from msq.config import RunConfig
from msq.functional import fake_quantize
from msq.methods.multibit import (SwitchableBatchNorm, allocation, bias_correct, el2n, el2n_scores, evaluate_allocation,
                          load_multibit_run, mean_pairwise_jaccard, prepare_multibit_, select_coreset, set_width_)
from msq.methods.multibit.calibrate import best_weight_scale
from msq.methods.multibit.evaluate import accuracy
from msq.quant import bit_allocation, quant_layers, set_bit_allocation_, set_mode_
from msq.training.callbacks import Callback
from msq.training.trainer import Trainer


class SmallBNNet(nn.Module):
    """conv-BN-ReLU x3 -> global pool -> fc, for 8x8 digits: BatchNorm matters for the correction."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(in_channels, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.conv3, self.bn3 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.bn3(self.conv3(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def small_bn_net(num_classes=10, in_channels=1):
    return SmallBNNet(num_classes, in_channels)


MODEL = f"{Path(__file__).resolve()}:small_bn_net"


def tiny_cfg(**changes) -> RunConfig:
    cfg = RunConfig.from_dict({
        "method": "multibit", "model": MODEL, "data": {"name": "digits"},
        "train": {"pretrain_epochs": 2, "search_epochs": 3, "finetune_epochs": 0, "batch_size": 64, "lr": 0.1,
                  "search_lr": 0.02, "threads": 1, "log_every": 5},
        "multibit": {"bits": [2, 4, 8], "eval_bits": [5, 6], "coreset_fraction": 0.3, "reselect_every": 2}})
    return cfg.replace(**changes) if changes else cfg


class Recorder(Callback):
    def __init__(self):
        self.events, self.epochs = [], []

    def on_event(self, trainer, kind, payload):
        self.events.append((trainer.state.phase_epoch, kind, payload))

    def on_epoch_end(self, trainer, scalars):
        self.epochs.append(dict(scalars, phase=trainer.state.phase))


class CrashAfterEpoch(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, scalars):
        trainer._crash = trainer.state.epoch == self.epoch

    def on_step_end(self, trainer, scalars):
        if getattr(trainer, "_crash", False):
            raise RuntimeError("simulated crash")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny coreset run (pretrain 2 + multibit 3 epochs) with a run folder; reused by several tests."""
    run_dir = tmp_path_factory.mktemp("mb") / "run"
    rec = Recorder()
    trainer = Trainer(tiny_cfg(), callbacks=[rec], run_dir=run_dir)
    summary = trainer.fit()
    return trainer, summary, rec, run_dir


# -- bias correction ----------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(bits=st.integers(2, 8), seed=st.integers(0, 10_000), shape=st.sampled_from([(6, 3, 3, 3), (10, 17), (4, 1, 5, 5)]))
def test_corrected_weights_have_the_float_per_channel_mean_and_std(bits, seed, shape):
    w = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q = fake_quantize(w, w.abs().max() * 0.6, bits)     # a scale that clips: moments really move
    c = bias_correct(q, w).reshape(shape[0], -1)
    w2 = w.reshape(shape[0], -1)
    assert torch.allclose(c.mean(1), w2.mean(1), atol=1e-12)
    live = q.reshape(shape[0], -1).std(1) > 0                       # channels that did not collapse
    assert torch.allclose(c.std(1, unbiased=False)[live], w2.std(1, unbiased=False)[live], rtol=1e-6)


def test_a_channel_that_quantizes_to_a_constant_becomes_its_float_mean():
    w = torch.tensor([[0.01, -0.02, 0.015], [0.9, -0.8, 0.1]])
    q = fake_quantize(w, torch.tensor(1.0), 2)           # row 0 -> all zeros at 2 bits
    c = bias_correct(q, w)
    assert torch.all(torch.isfinite(c)) and torch.allclose(c[0], w[0].mean().expand(3))


def test_correction_is_in_the_forward_and_gradients_reach_the_weights():
    model = small_bn_net()
    prepare_multibit_(model, tiny_cfg(), torch.randn(2, 1, 8, 8))
    set_mode_(model, "quant")
    layer = dict(quant_layers(model))["conv2"]
    set_width_(model, 2)
    expected = bias_correct(fake_quantize(layer.weight, layer.scale, 2, layer.grid), layer.weight)
    assert torch.equal(layer.quantized_weight(), expected)
    model(torch.randn(4, 1, 8, 8)).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_mse_calibration_picks_a_tighter_scale_than_max_for_low_widths():
    w = torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    s = best_weight_scale(w, [2, 3, 4, 8], correct=True)
    assert 0.1 * w.abs().max() <= s < w.abs().max()


# -- widths, activations, per-width BatchNorm ----------------------------------------------------
def test_width_switching_keeps_first_and_last_fixed_and_activations_follow():
    model = small_bn_net()
    prepare_multibit_(model, tiny_cfg(), torch.randn(2, 1, 8, 8))
    set_width_(model, 3)
    assert bit_allocation(model) == {"conv1": 8, "conv2": 3, "conv3": 3, "fc": 8}
    layers = dict(quant_layers(model))
    assert layers["conv2"].act_bits == 3 and layers["conv1"].act_bits is None   # first layer sees pixels
    with allocation(model, {"conv3": 6}):
        assert layers["conv3"].bits == 6 and layers["conv3"].act_bits == 6 and layers["conv2"].bits == 3
    assert bit_allocation(model) == {"conv1": 8, "conv2": 3, "conv3": 3, "fc": 8}


def test_per_width_batchnorm_follows_the_width_of_the_layer_feeding_it():
    model = small_bn_net()
    prepare_multibit_(model, tiny_cfg(**{"multibit.shared_bn": False}), torch.randn(2, 1, 8, 8))
    set_mode_(model, "quant")
    bn2, bn3 = model.bn2, model.bn3
    assert isinstance(bn2, SwitchableBatchNorm) and bn2.source is model.conv2 and bn3.source is model.conv3
    set_bit_allocation_(model, {"conv2": 2, "conv3": 4})
    assert (bn2.active_width(), bn3.active_width()) == (2, 4)
    set_width_(model, 6)                                  # unseen: nearest trained width, ties to the wider
    assert bn2.active_width() == 8 and model.bn1.active_width() == 8   # conv1 is fixed at 8 bits
    set_width_(model, 3)
    assert bn2.active_width() == 4


# -- coresets -----------------------------------------------------------------------------------
def test_el2n_matches_a_hand_computation():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 2])
    p0 = torch.exp(torch.tensor([2.0, 0.0, -1.0])) / torch.exp(torch.tensor([2.0, 0.0, -1.0])).sum()
    by_hand = [((p0[0] - 1) ** 2 + p0[1] ** 2 + p0[2] ** 2).sqrt(), torch.tensor(((1 / 3) ** 2 * 2 + (2 / 3) ** 2) ** 0.5)]
    assert torch.allclose(el2n(logits, labels), torch.stack(by_hand))
    linear = nn.Linear(4, 3)
    x, y = torch.randn(7, 4), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    scores = el2n_scores(linear, torch.utils.data.TensorDataset(x, y), batch_size=3)
    assert torch.allclose(scores, (F.softmax(linear(x), 1) - F.one_hot(y, 3)).norm(dim=1))


@pytest.mark.parametrize("selection", ["topk", "weighted"])
def test_selection_is_deterministic_under_a_seed_and_has_the_requested_size(selection):
    scores = torch.rand(1000, generator=torch.Generator().manual_seed(1))
    pick = lambda seed: select_coreset(scores, 0.2, selection, torch.Generator().manual_seed(seed))  # noqa: E731
    a, b = pick(5), pick(5)
    assert torch.equal(a, b) and a.numel() == 200 and a.unique().numel() == 200
    if selection == "topk":
        assert torch.equal(a, torch.sort(torch.argsort(scores, descending=True)[:200]).values)
    else:
        assert not torch.equal(a, pick(6)) and scores[a].mean() > scores.mean()   # favours high scores


def test_jaccard_overlap():
    a, b = torch.tensor([0, 1, 2, 3]), torch.tensor([2, 3, 4, 5])
    assert mean_pairwise_jaccard([a, b]) == pytest.approx(2 / 6)
    assert mean_pairwise_jaccard([a, a, b]) == pytest.approx((1 + 2 / 6 + 2 / 6) / 3)


# -- a tiny run through the Trainer ---------------------------------------------------------------
def test_tiny_coreset_run_logs_widths_and_reselects_on_schedule(trained):
    trainer, summary, rec, _ = trained
    assert summary["status"] == "completed"
    selections = [(ep, p) for ep, kind, p in rec.events if kind == "coreset"]
    assert [ep for ep, _ in selections] == [0, 2]                     # phase epochs 0 and 2 of 3
    n_train = len(trainer.data.train)
    assert all(set(p["sizes"].values()) == {round(0.3 * n_train)} for _, p in selections)
    last = [e for e in rec.epochs if e["phase"] == "multibit"][-1]
    for key in ("acc_b2", "acc_b4", "acc_b8", "acc_b5", "acc_b6", "coreset_size_b2", "coreset_overlap",
                "score_b2_q50", "scoring_seconds", "training_seconds"):
        assert key in last, key
    mb = summary["multibit"]
    assert set(mb["acc_by_width"]) == {"2", "4", "8", "5", "6"} and mb["timings"]["scoring_seconds"] > 0
    assert summary["final_acc"] == pytest.approx(mb["trained_mean_acc"])


def test_shared_bn_with_correction_works_at_unseen_widths(trained):
    _, summary, _, _ = trained
    acc = summary["multibit"]["acc_by_width"]
    assert all(acc[b] > 60 for b in ("5", "6"))                      # chance is 10%
    assert all(torch.isfinite(torch.tensor(summary["multibit"]["loss_by_width"][b])) for b in ("5", "6"))


def test_mixed_allocation_matches_setting_the_bits_by_hand(trained):
    trainer = trained[0]
    model, mix = trainer.model, {"conv2": 2, "conv3": 5}
    before = bit_allocation(model)
    result = evaluate_allocation(model, mix, trainer.data)
    assert bit_allocation(model) == before                          # the model is left as it was
    set_bit_allocation_(model, mix)
    by_hand = accuracy(model, trainer.data)
    set_bit_allocation_(model, before)
    assert result["acc"] == by_hand["acc"] and result["loss"] == pytest.approx(by_hand["loss"], rel=1e-6)
    assert result["avg_bits"] < 8 and result["compression"] > 4 and result["size_bytes"] > 0


def test_a_run_folder_loads_and_answers_what_if_questions_fast(trained):
    trainer, summary, _, run_dir = trained
    run = load_multibit_run(run_dir)
    assert run.widths == {"trained": [2, 4, 8], "unseen": [5, 6]}
    out = run.evaluate(2)
    assert out["acc"] == pytest.approx(summary["multibit"]["acc_by_width"]["2"])
    assert run.evaluate({"conv2": 3})["seconds"] < 1.0


def test_resume_reproduces_the_uninterrupted_run(trained, tmp_path):
    _, full, _, _ = trained
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(tiny_cfg(), callbacks=[CrashAfterEpoch(3)], run_dir=tmp_path / "cut").fit()
    resumed = Trainer(tiny_cfg(), run_dir=tmp_path / "cut", resume=True)
    assert resumed.resumed and resumed.state.epoch == 3 and resumed.method.coresets
    summary = resumed.fit()
    assert summary["steps_done"] == full["steps_done"]
    assert summary["multibit"]["acc_by_width"] == full["multibit"]["acc_by_width"]
    assert summary["multibit"]["coreset"]["selections"] == full["multibit"]["coreset"]["selections"]


@pytest.mark.parametrize("changes", [{"multibit.shared_bn": False, "multibit.bias_correction": False},
                                     {"multibit.coreset_fraction": 1.0, "multibit.act_bits": None}])
def test_baselines_run(changes):
    cfg = tiny_cfg(**{"train.pretrain_epochs": 1, "train.search_epochs": 1, **changes})
    summary = Trainer(cfg).fit()
    assert summary["status"] == "completed" and summary["multibit"]["acc_by_width"]["8"] > 30
