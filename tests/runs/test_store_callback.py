"""StoreCallback inside a real Trainer in this process: a foreground run registers itself, every step
and log lands once, layers come from LayerInfo or dicts, and controls act at the next step."""
from types import SimpleNamespace

import pytest

from msq.config import RunConfig
from msq.runs import RunStore, new_run_id
from msq.training.callbacks import Callback
from msq.training.store_callback import StoreCallback, layer_row
from msq.training.trainer import Trainer
from runs_helpers import tiny_config


def test_layer_rows_from_objects_and_dicts_agree():
    fields = {"fqn": "conv1", "kind": "conv2d", "shape": (8, 1, 3, 3), "params": 72, "macs": 4608, "bits": 8,
              "fixed": True, "fixed_reason": "first layer"}
    expected = {**fields, "shape": [8, 1, 3, 3], "idx": 0}
    assert layer_row(SimpleNamespace(index=0, **fields), 5) == expected
    assert layer_row({"index": 0, **fields}, 5) == expected
    assert layer_row({k: v for k, v in fields.items()}, 5)["idx"] == 5      # no index: its position


def test_a_foreground_run_stores_every_step_layer_and_epoch(tmp_path):
    store, run_id = RunStore(tmp_path), new_run_id()
    summary = Trainer(RunConfig.from_dict(tiny_config(search=1)), callbacks=[StoreCallback(store, run_id)]).fit()
    run = store.run(run_id)
    assert run["status"] == "completed" and run["summary"]["steps_done"] == summary["steps_done"] == 69
    assert run["config"]["model"] == "tinycnn" and run["started"] <= run["ended"]
    series = store.scalar_series(run_id, max_points=None)
    for key in ("loss", "task_loss", "reg", "lam", "lr"):
        assert series[key]["step"] == list(range(1, 70))
    assert series["val_acc"]["step"] == [23, 46, 69] and series["val_acc"]["epoch"] == [1, 2, 3]
    assert series["epoch_lam"]["step"] == [23, 46, 69]        # the epoch's λ does not overwrite the step's
    assert set(store.vector_metrics(run_id)) >= {"bits", "lsb_density", "lsb_l1", "quant_error"}
    assert store.layer_matrix(run_id, "bits", max_steps=None).steps == list(range(5, 70, 5))
    assert [(l["fqn"], l["bits"], l["fixed"]) for l in store.layers(run_id)] == [
        (layer["fqn"], layer["bits"], layer["fixed"]) for layer in summary["layers"]]


class AskAt(Callback):
    """Plays the dashboard: at one step it writes a control row into the store."""

    def __init__(self, store, run_id, step, key, value):
        self.store, self.run_id, self.step, self.key, self.value = store, run_id, step, key, value

    def on_step_end(self, trainer, scalars):
        if trainer.state.step == self.step:
            self.store.add_control(self.run_id, self.key, self.value)


@pytest.mark.parametrize("poll_every", [0.0, 0.2])
def test_controls_act_at_the_next_polled_step(tmp_path, poll_every):
    store, run_id = RunStore(tmp_path), new_run_id()
    cfg = RunConfig.from_dict(tiny_config(pretrain=0, search=3, finetune=0))
    callbacks = [StoreCallback(store, run_id, poll_every=poll_every), AskAt(store, run_id, 10, "lam", 50.0),
                 AskAt(store, run_id, 30, "stop", "enough")]
    summary = Trainer(cfg, callbacks=callbacks).fit()
    controls = {c["key"]: c for c in store.controls(run_id)}
    assert summary["status"] == "stopped" and store.run(run_id)["status"] == "stopped"
    assert summary["steps_done"] == controls["stop"]["step"]      # taken after a step: no further step
    if poll_every == 0.0:
        assert controls["lam"]["step"] == 11 and controls["stop"]["step"] == 31
    (event,) = store.events(run_id, "lam_change")
    assert event["payload"] == {"old": 8.0, "new": 50.0, "source": "control"}
    lam = store.scalar_series(run_id, "lam", max_points=None)["lam"]
    assert {v for s, v in zip(lam["step"], lam["value"]) if s > event["step"]} == {50.0}
    assert store.events(run_id, "stop")[0]["payload"] == {"reason": "enough"}


def test_several_lam_changes_before_one_poll_act_once_with_the_last_value(tmp_path):
    """A slider moved by arrow keys sends one control per key press; the run logs one change."""
    store, run_id = RunStore(tmp_path), new_run_id()
    cfg = RunConfig.from_dict(tiny_config(pretrain=0, search=2, finetune=0))
    presses = [AskAt(store, run_id, 10, "lam", value) for value in (9.0, 10.0, 11.0)]
    summary = Trainer(cfg, callbacks=[*presses, StoreCallback(store, run_id, poll_every=0.0)]).fit()
    assert summary["status"] == "completed"
    (event,) = store.events(run_id, "lam_change")
    assert event["payload"] == {"old": 8.0, "new": 11.0, "source": "control"} and event["step"] == 10
    outcomes = [(c["value"], c["outcome"]) for c in store.controls(run_id)]
    assert outcomes == [(9.0, "superseded"), (10.0, "superseded"), (11.0, "applied")]
