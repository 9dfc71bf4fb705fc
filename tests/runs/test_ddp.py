"""One run across two gloo processes (torchrun on CPU): a consistent stored series, identical pruning
decisions on every rank, the same allocation as one process on the same global batches, and a
killed rank -> failed -> resume."""
import os
import signal
import subprocess
import sys
import time

import pytest

from msq.config import RunConfig
from msq.runs import RunStore, runner
from msq.training.trainer import Trainer

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("processes")]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ddp_config(hessian: bool = True, **train) -> dict:
    # lenet5 has no BatchNorm, so two half batches with averaged gradients equal one global batch
    return RunConfig.from_dict({
        "model": "lenet5", "data": {"name": "digits"}, "reg": {"lam": 32.0}, "prune": {"threshold": 0.3},
        "hessian": {"probes": 2, "batch_size": 64, "enabled": hessian},
        "train": {"pretrain_epochs": 2, "search_epochs": 3, "finetune_epochs": 1, "batch_size": 64,
                  "threads": 1, "nproc": 2, **train}}).to_dict()


def cli(*args, home):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", "msq", *args, "--home", str(home)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=600)


def test_two_process_run_matches_one_process(tmp_path):
    """Without the Hessian (whose estimate uses each rank's own batches: 2x the data by design), the
    two-process run follows the one-process run: same allocation, accuracy within 2 points."""
    home = tmp_path / "home"
    config = ddp_config(hessian=False)
    with open(tmp_path / "run.json", "w") as fh:
        fh.write(RunConfig.from_dict(config).to_json())
    done = cli("train", "--config", str(tmp_path / "run.json"), "--quiet", home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = done.stdout.split()[0]
    store = RunStore(home)
    row = store.run(run_id)
    assert row["status"] == "completed"
    steps = store.scalar_series(run_id, "loss", max_points=None)["loss"]["step"]
    assert steps == list(range(1, len(steps) + 1))                # one series, no gap, no duplicate
    prunes = store.events(run_id, "prune")
    assert prunes and all(e["payload"]["ranks_agree"] for e in prunes)
    single = Trainer(RunConfig.from_dict({**config, "train": {**config["train"], "nproc": 1}})).fit()
    ddp_bits = [layer["bits"] for layer in row["summary"]["layers"]]
    assert ddp_bits == [layer["bits"] for layer in single["layers"]]
    assert abs(row["summary"]["final_acc"] - single["final_acc"]) <= 2.0   # float reduction order differs
    assert row["summary"]["steps_done"] == single["steps_done"]


def test_killing_one_rank_fails_the_run_and_resume_completes_it(tmp_path):
    home = tmp_path / "home"
    run_id = runner.launch(home, ddp_config(pretrain_epochs=3, search_epochs=6, finetune_epochs=2))
    store = RunStore(home)
    deadline = time.time() + 120
    while not store.scalar_series(run_id, "loss").get("loss", {}).get("step") and time.time() < deadline:
        time.sleep(0.2)
    ranks = subprocess.run(["pgrep", "-f", f"msq train --run-id {run_id}"], capture_output=True, text=True).stdout.split()
    rank_pids = [int(p) for p in ranks if int(p) != store.run(run_id)["pid"]]
    victim = [p for p in rank_pids if "RANK=1" in open(f"/proc/{p}/environ").read().replace("\0", " ") + " "]
    assert victim, f"rank 1 not found among {rank_pids}"
    os.kill(victim[0], signal.SIGKILL)
    deadline = time.time() + 60
    while store.run(run_id)["status"] == "running" and time.time() < deadline:
        runner.reap(home)
        time.sleep(0.2)
    row = store.run(run_id)
    assert row["status"] == "failed" and row["error"]
    runner.resume(home, run_id)
    deadline = time.time() + 300
    while store.run(run_id)["status"] in ("queued", "running") and time.time() < deadline:
        time.sleep(0.5)
    row = store.run(run_id)
    assert row["status"] == "completed", row["error"]
    steps = store.scalar_series(run_id, "loss", max_points=None)["loss"]["step"]
    assert steps == list(range(1, len(steps) + 1))


def test_a_users_own_torchrun_records_one_run(tmp_path):
    """`torchrun ... -m msq train --config run.json` (how several nodes are used): rank 0 records the run."""
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "msq", "train", "--model", "lenet5", "--dataset", "digits", "--epochs", "1,1,1",
                           "--threads", "1", "--home", str(home)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = RunStore(home).list_runs()
    assert len(runs) == 1 and runs[0]["status"] == "completed"
    row = RunStore(home).run(runs[0]["id"])
    assert row["config"]["train"]["nproc"] == 2 and row["summary"]["steps_done"] > 0
