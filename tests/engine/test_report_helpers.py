"""Runs the report and export tests share, trained for real once per test process (tinycnn on sklearn
digits, epochs 1,2,1, through the Trainer with the store callback, as the background worker does).

- ``completed_run``: tinycnn at width 96 (~200k weights, so the packed file's few KB of metadata are a
  small share of it) with a hostile run name, λ and α high enough that conv2 is pruned twice.
- ``killed_run``: a worker that died after its 3rd epoch without writing a summary or result.json (the
  store then marks it failed, as the reaper does).
- ``crashed_run``: an exception inside the loop: the trainer still stores a summary with status failed.
The report tests import these; pytest collects no tests from this module.
"""
import functools
import shutil
import tempfile
import atexit
import time
from pathlib import Path

from msq.config import RunConfig
from msq.runs import RunStore, new_run_id
from msq.training.callbacks import Callback
from msq.training.run_folder import RunFolderCallback
from msq.training.store_callback import StoreCallback
from msq.training.trainer import Trainer

HOSTILE_NAME = "λ=64 ../../etc/<script>alert('x')</script> | run"


def tiny_config(width: int = 8, name: str = "") -> RunConfig:
    return RunConfig.from_dict({
        "model": "tinycnn", "model_kwargs": {"width": width}, "data": {"name": "digits"}, "name": name,
        "train": {"pretrain_epochs": 1, "search_epochs": 2, "finetune_epochs": 1, "batch_size": 64, "threads": 1,
                  "log_every": 5},
        "reg": {"lam": 64.0}, "prune": {"threshold": 0.5}, "hessian": {"probes": 2, "batch_size": 64}})


@functools.lru_cache(maxsize=1)
def store_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="msq-report-tests-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    return home


def _train(cfg: RunConfig, extra=(), store_cb=StoreCallback, folder_cb=RunFolderCallback) -> str:
    store = RunStore(store_home())
    run_id = new_run_id()
    run_dir = store.run_dir(run_id)
    trainer = Trainer(cfg, callbacks=[store_cb(store, run_id), folder_cb(run_dir), *extra], run_dir=run_dir)
    try:
        trainer.fit()
    except _Boom:
        pass
    return run_id


class _Boom(RuntimeError):
    pass


class FailAfterEpoch(Callback):
    def __init__(self, epoch: int, message: str):
        self.epoch, self.message = epoch, message

    def on_epoch_end(self, trainer, scalars):
        if trainer.state.epoch == self.epoch:
            raise _Boom(self.message)


class DiesSilently(StoreCallback):
    """A store callback whose process is killed before the run's end is recorded."""
    def on_run_end(self, trainer, status, summary, error):
        self.writer.flush()


class NoResultFolder(RunFolderCallback):
    def on_run_end(self, trainer, status, summary, error):
        pass


@functools.lru_cache(maxsize=1)
def completed_run() -> str:
    return _train(tiny_config(width=96, name=HOSTILE_NAME))


@functools.lru_cache(maxsize=1)
def killed_run() -> str:
    run_id = _train(tiny_config(), extra=[FailAfterEpoch(3, "killed")], store_cb=DiesSilently,
                    folder_cb=NoResultFolder)
    RunStore(store_home()).update_run(run_id, status="failed", ended=time.time(),
                                      error="worker died: pid gone, heartbeat stale (killed by SIGKILL?)")
    return run_id


@functools.lru_cache(maxsize=1)
def crashed_run() -> str:
    return _train(tiny_config(), extra=[FailAfterEpoch(2, "OSError: disk full (simulated)")])
