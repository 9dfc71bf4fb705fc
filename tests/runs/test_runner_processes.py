"""The runner with real worker processes training tinycnn on digits, against a real database:
concurrent runs and the queue, SIGKILL + resume, stop and live λ, a crashing worker, SIGTERM."""
import os
import re
import signal
import time

import pytest

from msq.runs import RunStore, launch, reap, resume, set_lam, stop
from runs_helpers import tiny_config, wait_for

# one xdist worker runs these in turn: on 2 cores, two batches of training processes at once would
# only measure the machine
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("runs-processes")]
FINAL = ("completed", "stopped", "failed")


def loss_steps(store: RunStore, run_id: str) -> list:
    return store.scalar_series(run_id, "loss", max_points=None)["loss"]["step"]


def wait_until_final(store: RunStore, run_id: str, timeout: float = 240.0) -> dict:
    return wait_for(lambda: (r := store.run(run_id))["status"] in FINAL and r, timeout, f"run {run_id} to end")


def test_three_runs_train_at_once_and_the_queue_drains_while_a_reader_polls(tmp_path):
    store = RunStore(tmp_path)
    run_ids = [launch(tmp_path, tiny_config(search=1), name=f"r{i}", max_runs={"cpu": 3}) for i in range(4)]
    statuses = [store.run(r)["status"] for r in run_ids]
    assert statuses == ["running"] * 3 + ["queued"]           # at most 3 on the CPU; the 4th waits
    most_at_once, seen_steps = 0, {}
    while any(store.run(r)["status"] not in FINAL for r in run_ids):   # no schedule() here: workers drain it
        rows = store.list_runs()
        most_at_once = max(most_at_once, sum(row["status"] == "running" for row in rows))
        for run_id in run_ids:
            steps = loss_steps(store, run_id)
            assert steps == list(range(1, len(steps) + 1))     # never a gap, even mid-run
            seen_steps[run_id] = len(steps)
            store.layer_matrix(run_id, "lsb_density", max_steps=100)
        time.sleep(0.05)
    assert most_at_once == 3 and max(seen_steps.values()) > 0
    for run_id in run_ids:
        run = store.run(run_id)
        assert run["status"] == "completed", run["error"]
        total = run["summary"]["steps_done"]
        assert total == 3 * 23 and loss_steps(store, run_id) == list(range(1, total + 1))
        assert store.layer_matrix(run_id, "lsb_density", max_steps=None).steps == list(range(5, total + 1, 5))
        assert [e["payload"]["phase"] for e in store.events(run_id, "phase")] == ["pretrain", "search", "finetune"]
        assert [l["fqn"] for l in store.layers(run_id)] == ["conv1", "conv2", "fc"]
        log = (tmp_path / run_id / "worker.log").read_text()
        assert "locked" not in log and "warning" not in log, log


def test_killed_worker_is_marked_failed_with_its_log_and_resume_continues_the_series(tmp_path):
    store = RunStore(tmp_path)
    run_id = launch(tmp_path, tiny_config(pretrain=1, search=2, finetune=1, batch_size=1))  # epochs of seconds
    run_dir = tmp_path / run_id
    # kill it just after a mid-epoch flush: the store then holds steps past the last checkpoint, which the
    # resumed worker trains again -- they must replace, not duplicate, the stored ones. Batch 1 makes an
    # epoch last several one-second flushes even on a fast machine, and three epochs after the first
    # checkpoint give the poll three chances.
    per_epoch = wait_for(lambda: store.scalar_series(run_id, "val_acc")["val_acc"]["step"], 180, "one epoch")[0]
    wait_for(lambda: (run_dir / "checkpoint.pt").exists() and 1 <= len(loss_steps(store, run_id)) % per_epoch
             <= per_epoch - 40, 180, "a checkpoint and a mid-epoch flush", interval=0.02)
    os.kill(store.run(run_id)["pid"], signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: reap(tmp_path) or store.run(run_id)["status"] == "failed", 10, "the dead worker to be reaped")
    assert time.monotonic() - killed < 10
    run = store.run(run_id)
    assert run["status"] == "failed" and "died without recording an end" in run["error"]
    assert f"starts run {run_id}" in run["error"] and f"starts run {run_id}" in run["log_tail"]
    before = loss_steps(store, run_id)                           # what it stored stays readable
    assert before == list(range(1, len(before) + 1)) and store.latest_vector(run_id, "bits") is not None

    assert resume(tmp_path, run_id) == "running"
    run = wait_until_final(store, run_id)
    assert run["status"] == "completed", run["error"]
    resumed_at = int(re.search(r"--- resuming from .* at step (\d+)", (run_dir / "worker.log").read_text())[1])
    assert resumed_at < len(before)
    total = run["summary"]["steps_done"]
    assert total == 4 * per_epoch and loss_steps(store, run_id) == list(range(1, total + 1))   # no gap, no duplicate
    assert [e["payload"]["phase"] for e in store.events(run_id, "phase")] == ["pretrain", "search", "finetune"]
    assert [e["step"] for e in store.events(run_id, "resume")] == [resumed_at]
    assert store.scalar_series(run_id, "val_acc", max_points=None)["val_acc"]["step"] == list(range(per_epoch, total + 1, per_epoch))


def test_live_lam_change_is_applied_and_logged_then_stop_ends_the_run_at_the_next_step(tmp_path):
    store = RunStore(tmp_path)
    run_id = launch(tmp_path, tiny_config(pretrain=1, search=40, finetune=0))
    wait_for(lambda: len(store.events(run_id, "phase")) == 2 and len(loss_steps(store, run_id)) > 30, 180,
             "the search phase")
    set_lam(tmp_path, run_id, 123.0)
    event = wait_for(lambda: store.events(run_id, "lam_change"), 10, "the lam_change event")[0]
    assert event["payload"] == {"old": 8.0, "new": 123.0, "source": "control"}
    wait_for(lambda: loss_steps(store, run_id)[-1] > event["step"] + 3, 10, "steps after the λ change")
    lam = store.scalar_series(run_id, "lam", max_points=None)["lam"]
    after = [v for s, v in zip(lam["step"], lam["value"]) if s > event["step"]]
    assert after and set(after) == {123.0}
    assert store.list_runs()[0]["lam"] == 123.0

    started = time.monotonic()
    assert stop(tmp_path, run_id) == "stopped"
    assert time.monotonic() - started < 5
    run = store.run(run_id)
    taken = [c for c in store.controls(run_id) if c["key"] == "stop"][0]
    assert taken["consumed"] is not None and run["error"] is None
    assert run["summary"]["steps_done"] == taken["step"]                    # not one step more
    assert loss_steps(store, run_id)[-1] == run["summary"]["steps_done"]
    assert store.events(run_id, "stop")[0]["payload"] == {"reason": "stopped by user"}
    assert run["summary"]["epochs_done"] < 41


def test_a_crashing_worker_records_a_one_line_reason_and_its_traceback(tmp_path):
    store = RunStore(tmp_path)
    run_id = launch(tmp_path, {**tiny_config(), "model": "no_such_model"})
    run = wait_until_final(store, run_id)
    assert run["status"] == "failed"
    assert "\n" not in run["error"] and "no_such_model" in run["error"]
    assert "Traceback" in run["log_tail"]


def test_sigterm_asks_the_trainer_to_stop_cooperatively(tmp_path):
    store = RunStore(tmp_path)
    run_id = launch(tmp_path, tiny_config(pretrain=40))
    wait_for(lambda: len(loss_steps(store, run_id)) > 10, 60, "training to start")
    os.kill(store.run(run_id)["pid"], signal.SIGTERM)            # what `stop` sends when a control is ignored
    run = wait_until_final(store, run_id, timeout=10)
    assert run["status"] == "stopped" and run["error"] is None
    assert store.events(run_id, "stop")[0]["payload"]["reason"] == "stopped by SIGTERM"
