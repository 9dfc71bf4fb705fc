"""Helpers of the fault tests: tiny real runs, gates that hold a worker at a named point (msq/runs/gates.py),
and polling with generous deadlines -- nothing here depends on how fast a busy machine is."""
import json
from pathlib import Path

from msq.runs import RunStore, gates
from msq.runs.procs import is_alive
from recovery_helpers import wait_for as poll_until

FINAL = ("completed", "stopped", "failed")
STEPS_PER_EPOCH = 23        # tinycnn on digits, batch 64
WAIT_S = 180.0


def tiny_config(pretrain: int = 1, search: int = 2, finetune: int = 1) -> dict:
    return {"method": "msq", "model": "tinycnn", "data": {"name": "digits"}, "reg": {"lam": 8.0},
            "train": {"pretrain_epochs": pretrain, "search_epochs": search, "finetune_epochs": finetune,
                      "batch_size": 64, "threads": 1, "log_every": 5}}


def wait_for(predicate, what: str, timeout: float = WAIT_S, interval: float = 0.05):
    return poll_until(predicate, timeout, what, interval)


class Gates:
    """The test's side of the gates (msq/runs/gates.py): arm before launching, wait until reached, open."""

    def __init__(self, folder: Path, monkeypatch, *names: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(gates.GATES_ENV, str(self.folder))   # the runner passes its environment to workers
        for name in names:
            gates.armed_path(self.folder, name).touch()

    def wait_reached(self, name: str, attempt: int = 1) -> None:
        wait_for(lambda: gates.reached_path(self.folder, name, attempt).exists(), f"a worker at gate {name}@{attempt}")

    def open(self, name: str, attempt=None) -> None:
        gates.open_path(self.folder, name, attempt).touch()


def wait_final(store: RunStore, run_id: str) -> dict:
    return wait_for(lambda: (r := store.run(run_id))["status"] in FINAL and r, f"run {run_id} to end")


def wait_exited(pid: int, pid_start) -> None:
    wait_for(lambda: not is_alive(pid, pid_start), f"the worker pid {pid} to exit")


def loss_steps(store: RunStore, run_id: str) -> list:
    return store.scalar_series(run_id, "loss", max_points=None).get("loss", {}).get("step", [])


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def trainer_events(store: RunStore, run_id: str) -> list[tuple]:
    """The store's events of the trainer (not the store's own "resume" markers) as (kind, step)."""
    return [(e["kind"], e["step"]) for e in store.events(run_id) if e["kind"] != "resume"]
