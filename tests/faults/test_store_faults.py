"""Faults of the store, the disk and the run folder, with real worker processes and a real SQLite file:
a database locked (``BEGIN EXCLUSIVE`` from another connection) across a run's end loses no row,
whether the worker outlasts the lock or gives up and ``resume`` replays its spill file; resume repeats
no line of the run folder; a folder deleted under a live worker does not fail the run."""
import shutil
import sqlite3

import pytest

from gated_runs import (STEPS_PER_EPOCH, Gates, jsonl, loss_steps, tiny_config, trainer_events, wait_exited,
                        wait_final, wait_for)
from msq.runs import RunStore, RunWriter, launch, reap, resume
from msq.runs import schema, spill
from msq.runs.ownership import requeue
from msq.runs.store import DB_NAME

EPOCHS = 4                                      # tiny_config(): 1 pretrain + 2 search + 1 finetune
STEPS = EPOCHS * STEPS_PER_EPOCH                # 92
LOCK_AT = STEPS - 3                             # the lock covers the last steps, the last epoch and the end


def lock_store(store: RunStore) -> sqlite3.Connection:
    """Another process's view: a connection that holds the write lock until ``.rollback()``."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def spill_files(store: RunStore, run_id: str) -> list:
    return sorted(store.run_dir(run_id).glob(spill.SPILL_GLOB))


def assert_complete_record(store: RunStore, run_id: str) -> dict:
    """Steps expected == steps in the store, each once; every epoch's accuracy; the summary; no spill left."""
    run = store.run(run_id)
    assert run["status"] == "completed", run["error"]
    assert loss_steps(store, run_id) == list(range(1, STEPS + 1))
    val = store.scalar_series(run_id, "val_acc", max_points=None)["val_acc"]
    assert val["epoch"] == list(range(1, EPOCHS + 1)) and val["step"][-1] == STEPS
    assert run["summary"]["steps_done"] == STEPS and run["summary"]["final_acc"] == val["value"][-1]
    assert spill_files(store, run_id) == []
    return run


@pytest.fixture
def locked_env(monkeypatch):
    monkeypatch.setenv("MSQ_BUSY_TIMEOUT_MS", "300")      # the workers' wait for a lock: short, so they retry often


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_a_store_locked_across_the_runs_end_keeps_every_row_and_the_summary(tmp_path, monkeypatch, locked_env):
    gates = Gates(tmp_path / "gates", monkeypatch, f"step-{LOCK_AT}", "run-end")
    store = RunStore(tmp_path / "home")
    run_id = launch(store, tiny_config())
    gates.wait_reached(f"step-{LOCK_AT}")
    lock = lock_store(store)
    try:
        gates.open(f"step-{LOCK_AT}")
        gates.wait_reached("run-end")                 # the last steps and the last epoch ran under the lock
        assert spill_files(store, run_id), "the failed writes kept their rows in a spill file"
        assert loss_steps(store, run_id)[-1] < STEPS
        gates.open("run-end")
        log = store.run_dir(run_id) / "worker.log"
        wait_for(lambda: "could not record the end" in log.read_text(), "the end to be retried under the lock")
        assert store.run(run_id)["status"] == "running"    # not failed: the worker keeps retrying
    finally:
        lock.rollback()
        lock.close()
    wait_final(store, run_id)
    assert_complete_record(store, run_id)


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_a_worker_that_gives_up_leaves_its_rows_for_resume_to_replay(tmp_path, monkeypatch, locked_env):
    monkeypatch.setenv("MSQ_STORE_RETRY_S", "1")
    gates = Gates(tmp_path / "gates", monkeypatch, f"step-{LOCK_AT}", "run-end")
    store = RunStore(tmp_path / "home")
    run_id = launch(store, tiny_config())
    gates.wait_reached(f"step-{LOCK_AT}")
    worker = store.run(run_id)
    lock = lock_store(store)
    try:
        gates.open(f"step-{LOCK_AT}")
        gates.open("run-end")
        wait_exited(worker["pid"], worker["pid_start"])      # gave up: its end could not be written either
        assert store.run(run_id)["status"] == "running"
    finally:
        lock.rollback()
        lock.close()
    assert spill_files(store, run_id) and loss_steps(store, run_id)[-1] < STEPS
    assert reap(store) == [run_id]
    resume(store, run_id)
    wait_final(store, run_id)
    run = assert_complete_record(store, run_id)
    assert run["attempt"] == 2
    folder_events = [(e["kind"], e["step"]) for e in jsonl(store.run_dir(run_id) / "events.jsonl")]
    assert trainer_events(store, run_id) == folder_events == [(e["kind"], e["step"]) for e in run["summary"]["events"]]
    assert [e["epoch"] for e in jsonl(store.run_dir(run_id) / "epochs.jsonl")] == list(range(1, EPOCHS + 1))


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_resume_after_a_stop_mid_epoch_repeats_no_line_of_the_run_folder(tmp_path, monkeypatch):
    stop_at = STEPS_PER_EPOCH + 7                     # after the first checkpoint, inside epoch 2
    gates = Gates(tmp_path / "gates", monkeypatch, f"step-{stop_at}")
    store = RunStore(tmp_path / "home")
    run_id = launch(store, tiny_config())
    gates.wait_reached(f"step-{stop_at}")
    store.add_control(run_id, "stop", "stopped by the test")
    gates.open(f"step-{stop_at}")
    assert wait_final(store, run_id)["status"] == "stopped"
    run_dir = store.run_dir(run_id)
    assert [e["epoch"] for e in jsonl(run_dir / "epochs.jsonl")] == [1]
    assert any(e["kind"] == "stop" for e in jsonl(run_dir / "events.jsonl"))
    resume(store, run_id)
    run = wait_final(store, run_id)
    assert_complete_record(store, run_id)
    assert [e["epoch"] for e in jsonl(run_dir / "epochs.jsonl")] == list(range(1, EPOCHS + 1))
    folder_events = [(e["kind"], e["step"]) for e in jsonl(run_dir / "events.jsonl")]
    assert ("stop", stop_at) not in folder_events                  # the stopped attempt's lines past the checkpoint
    assert folder_events == trainer_events(store, run_id) == [(e["kind"], e["step"]) for e in run["summary"]["events"]]


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_deleting_the_run_folder_under_a_live_worker_keeps_the_run_completed(tmp_path, monkeypatch):
    gates = Gates(tmp_path / "gates", monkeypatch, "step-5")
    store = RunStore(tmp_path / "home")
    run_id = launch(store, tiny_config(pretrain=1, search=1, finetune=0))
    gates.wait_reached("step-5")
    worker = store.run(run_id)
    shutil.rmtree(store.run_dir(run_id))
    gates.open("step-5")
    wait_exited(worker["pid"], worker["pid_start"])
    run = store.run(run_id)
    assert run["status"] == "completed", run["error"]
    assert loss_steps(store, run_id) == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    (missing,) = store.events(run_id, "run_folder_missing")
    assert missing["payload"]["recreated"] is True
    assert (store.run_dir(run_id) / "result.json").exists()           # the folder came back with the rest


def test_a_failed_flush_keeps_its_rows_until_they_land_once(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config(), status="running")
    writer = RunWriter(store, run_id, retry_for=0.0)
    store.conn.execute("PRAGMA busy_timeout = 50")
    writer.add_scalars(1, 0, {"loss": 0.5})
    writer.add_event(1, 0, "prune", {"fqn": "conv1"})
    lock = lock_store(store)
    assert writer.flush() is False and writer.pending == 2
    assert [table for table, _ in spill.read(writer.spill_path)] == ["scalar", "event"]
    writer.add_scalars(2, 0, {"loss": 0.4})
    assert writer.flush() is False                                   # only the new row is appended
    assert [table for table, _ in spill.read(writer.spill_path)] == ["scalar", "event", "scalar"]
    lock.rollback()
    assert writer.flush() is True and writer.pending == 0 and not writer.spill_path.exists()
    assert loss_steps(store, run_id) == [1, 2] and len(store.events(run_id, "prune")) == 1


def test_replaying_a_spill_file_twice_inserts_nothing_twice(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config(), status="running")
    dead = RunWriter(store, run_id, retry_for=0.0)
    store.conn.execute("PRAGMA busy_timeout = 50")
    dead.add_scalars(7, 0, {"loss": 0.5})
    dead.add_vectors(7, 0, {"bits": [8.0, 4.0]})
    dead.add_event(7, 0, "prune", {"fqn": "conv1"})
    lock = lock_store(store)
    with pytest.raises(Exception, match="could not record the end"):
        dead.finish("completed", {"steps_done": 7}, None)            # gives up at once: retry_for=0
    lock.rollback()
    left = dead.spill_path.rename(dead.spill_path.with_name("store-spill-a1-p4000000.jsonl"))  # another process's
    copy = left.read_bytes()
    store.conn.execute(f"PRAGMA busy_timeout = {schema.BUSY_TIMEOUT_MS}")
    for _ in range(2):                                               # e.g. a crash after the replay, before the unlink
        left.write_bytes(copy)
        assert RunWriter(store, run_id).replay_spills() == 3
    assert loss_steps(store, run_id) == [7] and len(store.events(run_id, "prune")) == 1
    assert store.layer_matrix(run_id, "bits", max_steps=None).steps == [7]
    assert spill_files(store, run_id) == [] and store.run(run_id)["status"] == "running"


def test_an_old_store_opens_and_gains_the_new_columns(tmp_path):
    conn = sqlite3.connect(tmp_path / DB_NAME)       # a store written before the ownership migration
    for sql in schema.MIGRATIONS[0]:
        conn.execute(sql)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO runs (id, status, config, created) VALUES ('20250101-000000-abcdef', 'failed', '{}', 1)")
    conn.execute("INSERT INTO events (run_id, t, kind) VALUES ('20250101-000000-abcdef', 1, 'phase')")
    conn.execute("INSERT INTO controls (run_id, key, value, t) VALUES ('20250101-000000-abcdef', 'lam', '2.0', 1)")
    conn.commit()
    conn.close()
    store = RunStore(tmp_path, create=False)
    run_id = "20250101-000000-abcdef"
    assert store.run(run_id)["attempt"] == 1 and store.run(run_id)["status"] == "failed"
    assert [c["outcome"] for c in store.controls(run_id)] == [None]
    assert [e["kind"] for e in store.events(run_id)] == ["phase"]
    with store.write() as conn:
        assert requeue(conn, run_id) == 2
    assert store.run(run_id)["status"] == "queued"
