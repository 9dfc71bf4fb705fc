"""Only the current attempt of a run writes its status: claims are atomic (two schedulers never start
one run twice), and an old attempt that writes after a re-queue is refused -- in the store, and with
real worker processes, where the old worker's end arrives after the restarted run began."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gated_runs import STEPS_PER_EPOCH, Gates, loss_steps, tiny_config, wait_exited, wait_final
from msq.runs import RunStore, RunWriter, launch, resume
from msq.runs.ownership import Attempt, RunOwnershipLost, claim, requeue
from msq.runs.procs import HOST

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def race(home: Path, mode: str, racers: int) -> list:
    """``racers`` processes released at once (a start file), each claiming or scheduling; their results."""
    start = home / "start"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, str(HERE / "race_schedulers.py"), str(home), str(start), mode],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(racers)]
    start.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.splitlines()[-1]))
    return results


def test_an_old_attempt_cannot_write_status_after_a_requeue(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run(tiny_config())
    with store.write() as conn:
        assert claim(conn, run_id, 1, "cpu", HOST) and not claim(conn, run_id, 1, "cpu", HOST)
    old = Attempt(store, run_id, 1)
    writer = RunWriter(store, run_id, attempt=1)
    assert old.mark_running("cpu") and old.end("failed", error="its worker looked dead")
    with store.write() as conn:
        assert requeue(conn, run_id) == 2
    assert not old.end("completed") and not old.end("failed", error="late") and not old.mark_running("cpu")
    writer.add_scalars(1, 0, {"loss": 0.5})
    with pytest.raises(RunOwnershipLost, match="no longer owns it"):
        writer.flush()
    assert writer.finish("completed", {"steps_done": 1}, None) is False
    run = store.run(run_id)
    assert (run["status"], run["attempt"], run["error"], run["summary"]) == ("queued", 2, None, None)
    assert loss_steps(store, run_id) == []                    # the old attempt's rows did not land either
    with store.write() as conn:                               # the new attempt is claimed as itself, once
        assert not claim(conn, run_id, 1, "cpu", HOST) and claim(conn, run_id, 2, "cpu", HOST)
    assert Attempt(store, run_id, 2).end("completed") and store.run(run_id)["status"] == "completed"


def test_concurrent_claimers_share_the_queue_without_a_double_start(tmp_path):
    store = RunStore(tmp_path)
    run_ids = [store.create_run(tiny_config()) for _ in range(40)]
    claimed = [run_id for result in race(tmp_path, "claim", racers=4) for run_id, attempt in result]
    assert sorted(claimed) == sorted(run_ids)                 # every run once, none twice
    assert {store.run(r)["status"] for r in run_ids} == {"running"}


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_two_concurrent_schedulers_never_start_one_run_twice(tmp_path):
    store = RunStore(tmp_path)
    run_id = store.create_run({**tiny_config(), "model": "no_such_model"})   # its worker fails fast
    started = race(tmp_path, "schedule", racers=2)
    assert sorted(started) == [[], [run_id]]
    run = wait_final(store, run_id)
    assert run["status"] == "failed" and "no_such_model" in run["error"]
    assert (store.run_dir(run_id) / "worker.log").read_text().count(f"starts run {run_id}") == 1


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_an_exiting_old_attempt_cannot_overwrite_the_restarted_run(tmp_path, monkeypatch):
    gates = Gates(tmp_path / "gates", monkeypatch, "run-end")
    store = RunStore(tmp_path / "home")
    run_id = launch(store, tiny_config(pretrain=1, search=1, finetune=0))
    gates.wait_reached("run-end", attempt=1)               # trained to the end, about to record it
    old = store.run(run_id)
    # the run is given up for dead (as the reaper does for a worker whose heartbeat went stale) and resumed
    assert store.update_run(run_id, expect_status=("running",), status="failed", error="heartbeat stale")
    resume(store, run_id)
    gates.wait_reached("run-end", attempt=2)               # the new attempt resumed from the last checkpoint
    gates.open("run-end", attempt=1)
    wait_exited(old["pid"], old["pid_start"])
    run = store.run(run_id)
    assert (run["status"], run["attempt"], run["summary"]) == ("running", 2, None)   # the old end was refused
    log = (store.run_dir(run_id) / "worker.log").read_text()
    assert "attempt 1 no longer owns it" in log
    gates.open("run-end", attempt=2)
    run = wait_final(store, run_id)
    assert (run["status"], run["attempt"]) == ("completed", 2), run["error"]
    assert run["summary"]["steps_done"] == 2 * STEPS_PER_EPOCH
    assert loss_steps(store, run_id) == list(range(1, 2 * STEPS_PER_EPOCH + 1))
