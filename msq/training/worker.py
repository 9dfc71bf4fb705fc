"""The background worker: ``python -m msq train --run-id ID --home HOME`` (started by msq.runs.runner).

It trains one stored run and records how it ended, whatever happens: the trainer's own end
(completed, stopped, failed on NaN), an exception anywhere (failed, one-line reason, traceback in
worker.log), a full disk (failed, "disk full: ..."; a reserve file in the run folder is deleted to
make room for that last row and log line: msq.runs.disk), or a signal (SIGTERM/SIGINT ask the
trainer to stop at its next step; a second signal, or one before the trainer exists, ends the run as
stopped at once). On exit it calls ``schedule`` so the next queued run starts even when no dashboard
is open.

It works for one attempt of the run ($MSQ_RUN_ATTEMPT, see msq/runs/ownership.py) and writes the
status only through it: once the run was re-queued, nothing this process still records changes it.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time
import traceback

from msq.errors import RunStoreError
from msq.runs import RunStore, schedule, validate_run_id
from msq.runs.checkpoint_files import existing, remove_temporaries, resume_candidates
from msq.runs.disk import DiskReserve, disk_full_reason, is_disk_full
from msq.runs.gates import wait_at
from msq.runs.ownership import Attempt, RunOwnershipLost
from msq.runs.procs import log_tail
from msq.training.ddp_launch import supervise
from msq.training.distributed import env_rank, env_world_size
from msq.training.store_callback import StoreCallback


class WorkerTerminated(BaseException):
    """A signal the trainer could not handle cooperatively (it did not exist yet, or was asked twice).
    A BaseException, so no ``except Exception`` in the training stack swallows it."""


def run_worker(home: str, run_id: str, attempt_number: int | None = None) -> int:
    """Train the stored run ``run_id`` as ``attempt_number`` (default: $MSQ_RUN_ATTEMPT, else the run's
    current attempt); 0 when it completed or stopped, 1 when it failed, 2 on bad input, 3 when the
    attempt is not (or no longer) the run's."""
    try:
        validate_run_id(run_id)
        store = RunStore(home, create=False)
        row = store.run(run_id)
        attempt = Attempt.of(store, run_id, attempt_number)
    except RunStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if row["status"] not in ("queued", "running"):
        print(f"error: run {run_id} is {row['status']}, not queued: `python -m msq resume {run_id}` "
              "continues a failed or stopped run", file=sys.stderr)
        return 2
    if row["attempt"] != attempt.number:
        print(f"--- run {run_id} is at attempt {row['attempt']}, not {attempt.number}: this worker exits", flush=True)
        return 3
    run_dir = store.run_dir(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    nproc = int(row["config"].get("train", {}).get("nproc", 1))
    if env_world_size() > 1 and env_rank() > 0:
        return _train_replica(row["config"], run_dir)
    if nproc > 1 and env_world_size() == 1:       # this process supervises the torchrun ranks
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} supervisor pid {os.getpid()} starts {nproc} ranks of "
              f"run {run_id}", flush=True)
        try:
            return supervise(store, run_id, nproc, progress=os.environ.get("MSQ_RANK0_PROGRESS") == "1",
                             attempt=attempt.number)
        finally:
            _schedule_next(store)
    reserve = DiskReserve(run_dir)
    reserve.keep()
    holder: dict = {}

    def on_signal(signum, frame):
        name, trainer = signal.Signals(signum).name, holder.get("trainer")
        if trainer is None or trainer.state.stop_requested:
            raise WorkerTerminated(f"stopped by {name}")
        print(f"--- {name}: stopping at the next step", flush=True)
        trainer.request_stop(f"stopped by {name}")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} worker pid {os.getpid()} starts run {run_id}", flush=True)
        if not attempt.mark_running(device=row["device"]):
            print(f"--- run {run_id} is no longer running as attempt {attempt.number}: this worker exits", flush=True)
            return 3
        return _train(store, run_id, attempt, row["config"], run_dir, holder)
    except RunOwnershipLost as exc:
        print(f"--- {exc}", flush=True)
        return 3
    except WorkerTerminated as exc:
        _record_end(attempt, "stopped", error=str(exc))
        return 0
    except BaseException as exc:   # noqa: B902 -- a worker must record every way it can end
        if is_disk_full(exc):
            return _record_full_disk(attempt, run_dir, exc, reserve)
        traceback.print_exc()
        sys.stderr.flush()
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        wait_at("record-failure", attempt.number)
        _record_end(attempt, "failed", error=reason, log_tail=log_tail(run_dir / "worker.log"))
        return 1
    finally:
        reserve.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.stdout.flush()
        if env_world_size() == 1:     # under torchrun the supervisor schedules, once all ranks are done
            _schedule_next(store)


def _record_end(attempt: Attempt, status: str, **fields) -> None:
    """The end of this attempt, unless the trainer recorded it already or the run was re-queued."""
    try:
        if attempt.end(status, only_if_running=True, **fields):
            return
        if not (status == "failed" and attempt.annotate_failure(**fields)):   # the trainer's record + the traceback
            print(f"--- not recorded as {status}: the run already ended, or attempt {attempt.number} lost it",
                  flush=True)
    except sqlite3.Error as exc:   # the reaper marks the run failed once this process is gone
        _say(f"error: could not record the end of run {attempt.run_id} ({exc})")


def _record_full_disk(attempt: Attempt, run_dir, exc: BaseException, reserve: DiskReserve) -> int:
    """Free the reserve, say "disk full" on stderr at once, remove temporaries, record the run failed
    (if the disk filled again, reap() finds the stderr line in worker.log)."""
    reason = disk_full_reason(exc, attempt.store.home)    # the free space before the reserve gives its own back
    reserve.release()
    remove_temporaries(run_dir)
    _say(f"error: {reason}")
    _record_end(attempt, "failed", error=reason, log_tail=log_tail(run_dir / "worker.log"))
    return 1


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def _schedule_next(store: RunStore) -> None:
    try:
        schedule(store)
    except Exception as exc:  # the queue is retried by the next schedule() anyway
        print(f"warning: could not start queued runs: {exc}", file=sys.stderr)


def _train_replica(config: dict, run_dir) -> int:
    """A rank other than 0: trains its shard in lockstep, writes nothing (rank 0 records the run)."""
    from msq.config import RunConfig
    from msq.training.trainer import Trainer

    cfg = RunConfig.from_dict(config)
    if os.environ.get("MSQ_ASSIGNED_DEVICE"):
        cfg = cfg.replace(**{"train.device": os.environ["MSQ_ASSIGNED_DEVICE"]})
    trainer = Trainer(cfg, run_dir=run_dir, resume=bool(existing(resume_candidates(run_dir))))
    signal.signal(signal.SIGTERM, lambda signum, frame: trainer.request_stop("SIGTERM"))
    summary = trainer.fit()
    return 0 if summary["status"] in ("completed", "stopped") else 1


def _train(store: RunStore, run_id: str, attempt: Attempt, config: dict, run_dir, holder: dict) -> int:
    from msq.config import RunConfig
    from msq.training.run_folder import RunFolderCallback
    from msq.training.trainer import Trainer

    cfg = RunConfig.from_dict(config)
    if os.environ.get("MSQ_ASSIGNED_DEVICE"):   # the runner gave this run its own GPU(s) (CUDA_VISIBLE_DEVICES)
        cfg = cfg.replace(**{"train.device": os.environ["MSQ_ASSIGNED_DEVICE"]})
    callbacks = [StoreCallback(store, run_id, attempt=attempt.number), RunFolderCallback(run_dir)]
    if os.environ.get("MSQ_RANK0_PROGRESS") == "1":   # a foreground multi-process run: show progress here
        from msq.training.console import ConsoleProgress
        callbacks.append(ConsoleProgress(bar=False))
    trainer = Trainer(cfg, callbacks=callbacks, run_dir=run_dir, resume=bool(existing(resume_candidates(run_dir))))
    holder["trainer"] = trainer
    if trainer.resumed:
        print(f"--- resuming from {trainer.resumed_from} at step {trainer.state.step} (epoch {trainer.state.epoch})", flush=True)
    summary = trainer.fit()
    print(f"--- run {run_id} {summary['status']}" + (f": {summary['error']}" if summary.get("error") else ""),
          flush=True)
    return 0 if summary["status"] in ("completed", "stopped") else 1
