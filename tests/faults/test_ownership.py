"""Only the current attempt of a run writes its status: claims are atomic (two schedulers never start
one run twice), and an old attempt that writes after a re-queue is refused -- in the store, and with
real worker processes, where the old worker's end arrives after the restarted run began."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gated_runs import STEPS_PER_EPOCH, Gates, loss_steps, tiny_config, wait_exited, wait_final, wait_for
from msq.runs import RunStore, RunWriter, launch, reap, resume
from msq.runs.ownership import Attempt, RunOwnershipLost, claim, requeue
from msq.runs.procs import HOST, process_start_time

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



FAILING_MODEL = """
from pathlib import Path

import torch.nn as nn


class FailsOnDemand(nn.Module):
    \"\"\"A small CNN for 8x8 digits whose forward raises while the file FLAG exists (a disk that went away).\"\"\"

    def __init__(self, num_classes=10, in_channels=1):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(4 * 8 * 8, num_classes))

    def forward(self, x):
        if Path(FLAG).exists():
            raise RuntimeError("the data disk went away")
        return self.body(x)


def make_model(num_classes=10, in_channels=1):
    return FailsOnDemand(num_classes, in_channels)
"""


@pytest.mark.slow
@pytest.mark.xdist_group("runs-processes")
def test_a_failing_worker_recording_its_failure_late_cannot_fail_the_resumed_run(tmp_path, monkeypatch):
    """Issue 14, item 9 at its cause: the trainer records "failed", the test resumes the run, and only
    then the old worker writes its failure a second time (with its traceback), as rank 0 did."""
    flag = tmp_path / "fail-now"
    model = tmp_path / "fails_on_demand.py"
    model.write_text(f"FLAG = {str(flag)!r}\n" + FAILING_MODEL)
    gates = Gates(tmp_path / "gates", monkeypatch, "step-2", "record-failure", "run-end")
    gates.open("run-end", attempt=1)                       # only the resumed attempt holds at its end
    store = RunStore(tmp_path / "home")
    run_id = launch(store, {**tiny_config(pretrain=1, search=1, finetune=0), "model": f"{model}:make_model"})
    gates.wait_reached("step-2")
    flag.touch()                                           # step 3 raises
    gates.open("step-2")
    gates.wait_reached("record-failure", attempt=1)        # the trainer recorded "failed"; the worker holds
    old = store.run(run_id)
    assert old["status"] == "failed" and "the data disk went away" in old["error"]
    flag.unlink()
    resume(store, run_id)
    gates.wait_reached("run-end", attempt=2)               # the resumed attempt trained to its end
    gates.open("record-failure", attempt=1)
    wait_exited(old["pid"], old["pid_start"])
    run = store.run(run_id)
    assert (run["status"], run["attempt"], run["error"]) == ("running", 2, None)   # the late write was refused
    gates.open("run-end", attempt=2)
    run = wait_final(store, run_id)
    assert (run["status"], run["attempt"]) == ("completed", 2), run["error"]
    assert loss_steps(store, run_id) == list(range(1, 2 * STEPS_PER_EPOCH + 1))


def run_processes(run_id: str) -> dict[int, dict]:
    """The processes of a run ("msq train --run-id ID": the supervisor, torchrun, the ranks) -> their
    environment, plus "CMDLINE"."""
    found = subprocess.run(["pgrep", "-f", f"msq train --run-id {run_id}"], capture_output=True, text=True).stdout
    procs = {}
    for pid in map(int, found.split()):
        try:
            items = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
        except OSError:
            continue
        procs[pid] = {**dict(item.split("=", 1) for item in items if "=" in item), "CMDLINE": cmdline}
    return procs


@pytest.mark.slow
@pytest.mark.xdist_group("processes")
def test_the_supervisor_of_a_killed_ddp_attempt_cannot_fail_its_resumed_run(tmp_path, monkeypatch):
    """Issue 14, item 9 at its cause: the killed attempt's supervisor records its end after the resume."""
    gates = Gates(tmp_path / "gates", monkeypatch, "step-3", "supervisor-end")
    store = RunStore(tmp_path / "home")
    config = {"model": "lenet5", "data": {"name": "digits"}, "reg": {"lam": 32.0}, "hessian": {"enabled": False},
              "train": {"pretrain_epochs": 1, "search_epochs": 1, "finetune_epochs": 1, "batch_size": 64,
                        "threads": 1, "nproc": 2}}
    run_id = launch(store, config)
    gates.wait_reached("step-3")                            # rank 0 holds; rank 1 waits for it in the all-reduce
    procs = run_processes(run_id)
    (rank1,) = [pid for pid, env in procs.items() if env.get("RANK") == "1"]
    (supervisor,) = [pid for pid, env in procs.items() if "RANK" not in env and "torch.distributed.run" not in env["CMDLINE"]]
    supervisor_start = process_start_time(supervisor)
    os.kill(rank1, signal.SIGKILL)
    gates.open("step-3")
    wait_for(lambda: reap(store) or store.run(run_id)["status"] == "failed", "the killed attempt to be failed")
    gates.wait_reached("supervisor-end", attempt=1)         # its torchrun is done; the supervisor is about to record
    resume(store, run_id)
    gates.open("supervisor-end", attempt=1)
    wait_exited(supervisor, supervisor_start)
    gates.wait_reached("supervisor-end", attempt=2)         # the resumed attempt's torchrun is done too
    run = store.run(run_id)
    assert (run["attempt"], run["status"]) == (2, "completed"), run["error"]   # the old supervisor wrote nothing
    gates.open("supervisor-end", attempt=2)
    steps = loss_steps(store, run_id)
    assert steps == list(range(1, len(steps) + 1)) and run["summary"]["steps_done"] == steps[-1]
