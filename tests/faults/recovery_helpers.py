"""Helpers of the disk-full, file-name and checkpoint tests: tiny real runs (tinycnn on sklearn digits,
23 steps per epoch), trained in this process through the same callbacks the worker uses, the real CLI
in a subprocess, and polling with a deadline. pytest collects no tests from this module."""
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

from msq.config import RunConfig
from msq.runs import RunStore, new_run_id
from msq.runs.procs import is_alive
from msq.training.callbacks import Callback
from msq.training.run_folder import RunFolderCallback
from msq.training.store_callback import StoreCallback
from msq.training.trainer import Trainer
from runs_helpers import wait_for  # noqa: F401  (tests/runs is on pytest's pythonpath)

REPO = Path(__file__).resolve().parents[2]
STEPS_PER_EPOCH = 23
FINAL = ("completed", "stopped", "failed")


def tiny_config(pretrain: int = 1, search: int = 2, finetune: int = 1, name: str = "", **train) -> dict:
    return {"method": "msq", "model": "tinycnn", "data": {"name": "digits"}, "reg": {"lam": 8.0}, "name": name,
            "train": {"pretrain_epochs": pretrain, "search_epochs": search, "finetune_epochs": finetune,
                      "batch_size": 64, "threads": 1, "log_every": 5, **train}}


class CrashAtStep(Callback):
    """Raises once the run reaches ``step`` (the store has recorded it): a worker that crashed there."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, scalars):
        if trainer.state.step == self.step:
            raise RuntimeError(f"simulated crash at step {self.step}")


class StopAtStep(Callback):
    """Asks the trainer to stop at ``step``, as a stop control row or SIGTERM does in a worker."""

    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, scalars):
        if trainer.state.step == self.step:
            trainer.request_stop("stopped by the test")


def train_here(home: Path, config: dict, *extra: Callback) -> str:
    """A run recorded in ``home``'s store and folder, trained in this process; its id. An exception
    a callback raises ends it as failed (the store holds its summary), as in a worker."""
    store = RunStore(home)
    run_id = new_run_id()
    run_dir = store.run_dir(run_id)
    cfg = RunConfig.from_dict(config)
    trainer = Trainer(cfg, callbacks=[StoreCallback(store, run_id), RunFolderCallback(run_dir), *extra],
                      run_dir=run_dir)
    try:
        trainer.fit()
    except RuntimeError as exc:
        assert "simulated crash" in str(exc)
    return run_id


def msq_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m msq ARGS`` in a real process, as a person runs it."""
    return subprocess.run([sys.executable, "-m", "msq", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def kill_workers(home: Path) -> None:
    """End (SIGKILL) every worker of ``home`` still running: a failed test leaves no training behind."""
    if not (home / "msq.db").is_file():
        return
    for run in RunStore(home).list_runs(status="running"):
        if run["pid"] and run["pid"] != os.getpid():   # workers lead their own process group
            try:
                os.killpg(run["pid"], signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def wait_until_final(store: RunStore, run_id: str, timeout: float = 240.0) -> dict:
    """The run's row once it ended and its worker process is gone: after the store says the run ended the
    worker still writes result.json, frees its disk reserve and removes temporaries."""
    run = wait_for(lambda: (r := store.run(run_id))["status"] in FINAL and r, timeout, f"run {run_id} to end")
    if run["pid"] and run["pid"] != os.getpid():     # a background worker, not a run trained in this process
        wait_for(lambda: not is_alive(run["pid"], run["pid_start"]), timeout, f"the worker of run {run_id} to exit")
    return store.run(run_id)


def loss_steps(store: RunStore, run_id: str) -> list:
    return store.scalar_series(run_id, "loss", max_points=None)["loss"]["step"]


def resumed_at(run_dir: Path) -> Optional[int]:
    """The step the last "--- resuming from ... at step N" line of worker.log names."""
    lines = [l for l in (run_dir / "worker.log").read_text().splitlines() if l.startswith("--- resuming from")]
    return int(lines[-1].split(" at step ")[1].split()[0]) if lines else None
