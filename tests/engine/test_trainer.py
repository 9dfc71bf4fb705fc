"""The training loop end to end on tiny real data (sklearn digits, tinycnn): phases, pruning, events,
determinism, stop, live λ, NaN, and exact resume from a checkpoint."""
import pytest
import torch

from msq.config import RunConfig
from msq.training.callbacks import Callback
from msq.training.trainer import Trainer
from engine_helpers import CrashAfterEpoch


def tiny_cfg(**changes) -> RunConfig:
    base = {"model": "tinycnn", "data": {"name": "digits"},
            "train": {"pretrain_epochs": 2, "search_epochs": 3, "finetune_epochs": 1, "batch_size": 64,
                      "threads": 1, "log_every": 5},
            "reg": {"lam": 64.0}, "prune": {"threshold": 0.2}, "hessian": {"probes": 2, "batch_size": 64}}
    cfg = RunConfig.from_dict(base)
    return cfg.replace(**changes) if changes else cfg


class Recorder(Callback):
    def __init__(self):
        self.calls, self.events, self.steps, self.logs, self.epochs = [], [], [], [], []

    def on_run_start(self, trainer):
        self.calls.append("run_start")

    def on_phase_start(self, trainer, phase):
        self.calls.append(f"phase:{phase}")

    def on_step_end(self, trainer, scalars):
        self.steps.append((trainer.state.step, scalars))

    def on_log(self, trainer, metrics):
        self.logs.append((trainer.state.step, metrics))

    def on_epoch_end(self, trainer, scalars):
        self.epochs.append(scalars)

    def on_event(self, trainer, kind, payload):
        self.events.append((kind, payload))

    def on_run_end(self, trainer, status, summary, error):
        self.calls.append(f"run_end:{status}")


def test_msq_run_goes_through_the_phases_and_prunes():
    rec = Recorder()
    summary = Trainer(tiny_cfg(), callbacks=[rec]).fit()
    assert rec.calls == ["run_start", "phase:pretrain", "phase:search", "phase:finetune", "run_end:completed"]
    assert [s for s, _ in rec.steps] == list(range(1, len(rec.steps) + 1))        # every step, in order
    assert set(rec.steps[0][1]) == {"loss", "task_loss", "reg", "lam", "lr"}
    assert {"bits", "lsb_density", "lsb_l1", "quant_error"} <= set(rec.logs[0][1])
    prunes = [p for kind, p in rec.events if kind == "prune"]
    assert prunes, "λ = 64 on tinycnn should prune at least one LSB"
    assert all(p["new_bits"] == p["old_bits"] - p["k"] and p["k"] in (1, 2) for p in prunes)
    assert any(kind == "hessian" for kind, _ in rec.events)
    assert summary["status"] == "completed" and summary["average_bits"] < 8
    assert summary["float_acc"] > 50 and summary["final_acc"] > 50
    assert len(summary["layers"]) == 3 and summary["layers"][0]["fixed"]
    assert summary["compression"] == pytest.approx(32 * sum(l["params"] for l in summary["layers"]) /
                                                   sum(l["params"] * l["bits"] for l in summary["layers"]))
    bits_by_epoch = [h["bits"] for h in summary["bit_history"]]
    assert all(all(b <= a for a, b in zip(prev, cur)) for prev, cur in zip(bits_by_epoch, bits_by_epoch[1:]))


def test_runs_are_deterministic_on_cpu():
    a = Trainer(tiny_cfg()).fit()
    b = Trainer(tiny_cfg()).fit()
    assert [l["bits"] for l in a["layers"]] == [l["bits"] for l in b["layers"]]
    assert a["final_acc"] == b["final_acc"] and a["final_val_loss"] == b["final_val_loss"]


def test_uniform_method_keeps_its_bits():
    rec = Recorder()
    summary = Trainer(tiny_cfg(method="uniform", uniform_bits=3), callbacks=[rec]).fit()
    assert [l["bits"] for l in summary["layers"]] == [8, 3, 8]
    assert rec.calls[1:3] == ["phase:pretrain", "phase:qat"]
    assert not any(kind == "prune" for kind, _ in rec.events)


class StopAt(Callback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer, scalars):
        if trainer.state.step == self.step:
            trainer.request_stop("test asked")


def test_stop_request_ends_the_run_within_one_step():
    rec = Recorder()
    summary = Trainer(tiny_cfg(), callbacks=[StopAt(7), rec]).fit()
    assert summary["status"] == "stopped" and summary["steps_done"] == 7
    assert ("stop", {"reason": "test asked"}) in rec.events


class ChangeLam(Callback):
    def on_phase_start(self, trainer, phase):
        if phase == "search":
            trainer.set_lam(5.0, source="test")


def test_live_lambda_change_is_used_and_logged():
    rec = Recorder()
    Trainer(tiny_cfg(), callbacks=[ChangeLam(), rec]).fit()
    assert ("lam_change", {"old": 64.0, "new": 5.0, "source": "test"}) in rec.events
    search_lams = {s["lam"] for _, s in rec.steps if s["reg"] > 0}
    assert search_lams == {5.0}


NAN_MODEL = """
import torch
from torch import nn

class Exploding(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * float("inf")

def make():
    return Exploding()
"""


def test_nan_loss_stops_the_run_with_a_clear_reason(tmp_path):
    (tmp_path / "exploding.py").write_text(NAN_MODEL)
    rec = Recorder()
    summary = Trainer(tiny_cfg(model=f"{tmp_path}/exploding.py:make", **{"quant.keep_first_last": False}),
                      callbacks=[rec]).fit()
    assert summary["status"] == "failed" and summary["steps_done"] == 0
    assert "the loss became nan at step 0 (pretrain phase" in summary["error"]
    assert "lower train.lr" in summary["error"]
    assert rec.calls[-1] == "run_end:failed" and rec.events[-1][0] == "nan"


def test_resume_from_checkpoint_reproduces_the_uninterrupted_run(tmp_path):
    full = Trainer(tiny_cfg(), run_dir=tmp_path / "full").fit()
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(tiny_cfg(), callbacks=[CrashAfterEpoch(3)], run_dir=tmp_path / "cut").fit()
    resumed = Trainer(tiny_cfg(), run_dir=tmp_path / "cut", resume=True)
    assert resumed.resumed and resumed.state.epoch == 3
    summary = resumed.fit()
    assert summary["status"] == "completed" and summary["steps_done"] == full["steps_done"]
    assert [l["bits"] for l in summary["layers"]] == [l["bits"] for l in full["layers"]]
    assert summary["final_acc"] == full["final_acc"]
    assert torch.isclose(torch.tensor(summary["final_val_loss"]), torch.tensor(full["final_val_loss"]), rtol=1e-5)
