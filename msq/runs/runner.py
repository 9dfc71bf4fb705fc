"""Background runs: launch, queue per device, stop, resume, live λ, and finding dead workers.

    run_id = launch("runs", {"model": "lenet5", "reg": {"lam": 32.0}}, device="cpu")
    set_lam("runs", run_id, 64.0)      # picked up by the worker within one step
    stop("runs", run_id)               # control row -> SIGTERM -> SIGKILL

A run is a worker process ``python -m msq train --run-id ID --home HOME`` in its own session, so it
outlives the dashboard or shell that launched it. There is no daemon: ``schedule`` starts queued runs
while their device has a free slot, and every actor calls it -- launch, stop, resume, the dashboard,
the CLI, and each worker as it exits, so the queue drains with nobody watching.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Optional

from msq.errors import ConfigError, RunStoreError
from msq.runs.checkpoint_files import resume_problems, unreadable_message
from msq.runs.controls import LAM, STOP, check_lam
from msq.runs.disk import full_disk_cause
from msq.runs.gpus import assign, parse_assignment
from msq.runs.ids import validate_run_id
from msq.runs.ownership import (ATTEMPT_ENV, Attempt, claim, fail_dead_worker, queued_runs, requeue, running_devices,
                                running_workers)
from msq.runs.procs import HOST, is_alive, log_tail, process_start_time
from msq.runs.store import RunStore, to_json

STALE_AFTER_S = 10.0        # a heartbeat older than this, where the pid cannot be checked, means dead
LIMIT_ENV = {"cpu": "MSQ_MAX_CPU_RUNS", "gpu": "MSQ_MAX_GPU_RUNS"}
PROJECT_ROOT = Path(__file__).resolve().parents[2]
_children: list[subprocess.Popen] = []   # workers this process started, polled so none lingers as a zombie


def _store(home, create: bool = True) -> RunStore:
    return home if isinstance(home, RunStore) else RunStore(home, create=create)


def _write_config(run_dir: Path, data: dict) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / ".config.json.tmp"
    tmp.write_text(to_json(data))
    os.replace(tmp, run_dir / "config.json")


def device_key(device: str) -> str:
    """The queue a device belongs to: "cuda" and "cuda:0" share one."""
    return "cuda:0" if device == "cuda" else device


def device_limit(device: str, max_runs: Optional[dict] = None) -> int:
    """Runs allowed at once on ``device``: ``max_runs[device]``, else ``max_runs["cpu"|"gpu"]``, else
    $MSQ_MAX_CPU_RUNS / $MSQ_MAX_GPU_RUNS, else 1."""
    group = "cpu" if device == "cpu" else "gpu"
    max_runs = max_runs or {}
    value = max_runs.get(device_key(device), max_runs.get(group, os.environ.get(LIMIT_ENV[group], 1)))
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if limit < 1:
        raise ConfigError(f"the {group} run limit ({LIMIT_ENV[group]} or max_runs) = {value!r} is invalid: "
                          "allowed an integer >= 1")
    return limit


def launch(home, config: dict, device: Optional[str] = None, name: str = "",
           max_runs: Optional[dict] = None) -> str:
    """Validate ``config`` (a RunConfig dict), store the run as "queued" with its folder and
    config.json, and start it if its device has a free slot. ``device`` None = the config's."""
    from msq.config import RunConfig   # pure Python (no torch): bad input fails here, before anything is stored
    data = RunConfig.from_dict(config).to_dict()
    if device is not None:
        data["train"]["device"] = device
    cfg = RunConfig.from_dict(data)
    device_limit(cfg.train.device, max_runs)    # a bad limit fails now, not after the run is stored
    store = _store(home)
    run_id = store.create_run(data, name=name or cfg.name, device=cfg.train.device)
    _write_config(store.run_dir(run_id), data)
    schedule(store, max_runs)
    return run_id


def schedule(home=None, max_runs: Optional[dict] = None) -> list[str]:
    """Mark dead workers failed, then start queued runs (oldest first) while their device has a slot.
    Returns the ids started. Safe to call from several processes at once: each start is an atomic
    claim of the run's queued attempt (``ownership.claim``), so no run starts twice and no device overfills."""
    store = _store(home)
    _children[:] = [proc for proc in _children if proc.poll() is None]
    reap(store)
    started = []
    while (claimed := claim_next(store, max_runs)) is not None:
        run_id, attempt = claimed
        try:
            proc = _spawn(store.home, run_id, attempt, max_runs)
        except OSError as exc:
            Attempt(store, run_id, attempt).end("failed", only_if_running=True,
                                                error=f"could not start the worker process: {exc}")
            continue
        _children.append(proc)
        Attempt(store, run_id, attempt).record_worker(proc.pid, process_start_time(proc.pid))
        started.append(run_id)
    return started


def claim_next(store: RunStore, max_runs: Optional[dict]) -> Optional[tuple[str, int]]:
    """Claim the oldest queued run whose device has free slots, recording the GPUs it gets: (run id,
    attempt), or None. The claim is a compare-and-set on (status, attempt) checked by its rowcount."""
    with store.write() as conn:
        busy = Counter(slot for d in running_devices(conn) for slot in parse_assignment(d or "cpu"))
        for run_id, config, attempt in queued_runs(conn):
            train = config.get("train", {})
            device = assign(train.get("device", "cpu"), int(train.get("nproc", 1)), busy,
                            lambda slot: device_limit(slot, max_runs))
            if device is not None and claim(conn, run_id, attempt, device, HOST):
                return run_id, attempt
    return None


def _spawn(home: Path, run_id: str, attempt: int, max_runs: Optional[dict]) -> subprocess.Popen:
    run_dir = home / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MSQ_HOME": str(home), "PYTHONUNBUFFERED": "1", ATTEMPT_ENV: str(attempt),
           "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)}
    device = RunStore(home).run(run_id)["device"] or "cpu"
    if device.startswith("cuda:"):   # the worker sees just its GPUs, as cuda:0 (cuda:0..N-1 for N ranks)
        env["CUDA_VISIBLE_DEVICES"] = device[5:]
        env["MSQ_ASSIGNED_DEVICE"] = "cuda"
        env["MSQ_RUN_DEVICE"] = device
    for group, var in LIMIT_ENV.items():   # so the worker's own schedule() on exit keeps the same limits
        if max_runs and group in max_runs:
            env[var] = str(max_runs[group])
    with open(run_dir / "worker.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "msq", "train", "--run-id", run_id, "--home", str(home)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)


def reap(home=None, stale_after: float = STALE_AFTER_S) -> list[str]:
    """Mark "running" runs whose worker is gone as failed, with the tail of worker.log. On this host
    the pid decides at once (gone, zombie, or reused by another process); elsewhere, a heartbeat older
    than ``stale_after`` seconds. Returns the ids marked failed."""
    store = _store(home)
    failed, now = [], time.time()
    for worker in running_workers(store.conn):
        run_id, pid, host, heartbeat = worker["id"], worker["pid"], worker["host"], worker["heartbeat"]
        if pid and host == HOST:
            if is_alive(pid, worker["pid_start"]):
                continue
            tail = log_tail(store.run_dir(run_id) / "worker.log")
            reason = (f"the worker (pid {pid}) died without recording an end: "
                      + (full_disk_cause(tail, store.home) or "killed, crashed or out of memory"))
        elif heartbeat is not None and now - heartbeat <= stale_after:
            continue
        else:
            tail = log_tail(store.run_dir(run_id) / "worker.log")
            reason = (f"no heartbeat from the worker on {host} for more than {stale_after:g} s" if pid else
                      f"the worker did not start within {stale_after:g} s")
        error = reason + (f"; last lines of worker.log:\n{tail}" if tail else " (worker.log is empty)")
        with store.write() as conn:   # compare-and-set: a worker that just finished keeps its own status
            if fail_dead_worker(conn, worker, error, tail):
                failed.append(run_id)
    return failed


def stop(home, run_id: str, timeout: float = 10.0, kill_after: float = 5.0, reason: str = "stopped by user") -> str:
    """Stop a run: a queued one at once; a running one by a control row (the worker stops at its next
    step), then SIGTERM after ``timeout`` s, then SIGKILL after ``kill_after`` more. Returns the final status."""
    for label, seconds in (("--timeout", timeout), ("kill_after", kill_after)):
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0):
            raise ConfigError(f"stop {label} = {seconds!r} is invalid: allowed a finite number of seconds >= 0, "
                              "e.g. --timeout 10")
    validate_run_id(run_id)
    store = _store(home, create=False)
    reap(store)                        # a worker that already died is failed, not stopped
    row = store.run(run_id)
    status, attempt = row["status"], Attempt(store, run_id, row["attempt"])
    if status == "queued":
        store.update_run(run_id, expect_status=("queued",), status="stopped", ended=time.time())
    elif status == "running":
        store.add_control(run_id, STOP, reason)
        if not _wait_for_end(store, run_id, timeout):
            _signal_worker(store, run_id, signal.SIGTERM)
            if not _wait_for_end(store, run_id, kill_after):
                _signal_worker(store, run_id, signal.SIGKILL)
                _wait_for_end(store, run_id, 2.0)
        attempt.end("stopped", only_if_running=True,
                    error=f"{reason}; the worker did not stop within {timeout + kill_after:g} s and was killed")
        schedule(store)
    return store.run(run_id)["status"]


def _wait_for_end(store: RunStore, run_id: str, timeout: float) -> bool:
    """Wait until the run left "running" (True) or its worker died or the time ran out (False)."""
    deadline = time.monotonic() + timeout
    while True:
        row = store.run(run_id)
        if row["status"] != "running":
            return True
        dead = row["pid"] and row["host"] == HOST and not is_alive(row["pid"], row["pid_start"])
        if dead or time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _signal_worker(store: RunStore, run_id: str, sig: int) -> None:
    row = store.run(run_id)
    pid = row["pid"]
    if not pid or row["host"] != HOST or not is_alive(pid, row["pid_start"]):
        return
    try:   # the runner starts each worker as a session leader: signal its whole group (data loaders too)
        os.killpg(pid, sig) if os.getpgid(pid) == pid else os.kill(pid, sig)
    except ProcessLookupError:
        pass


def resume(home, run_id: str, max_runs: Optional[dict] = None) -> str:
    """Queue a failed or stopped run again; its worker continues from the last readable checkpoint
    (refused, naming the files, when it has checkpoints and none is intact)."""
    validate_run_id(run_id)
    store = _store(home, create=False)
    reap(store)
    status = store.run(run_id)["status"]
    if status in ("running", "queued", "completed"):
        raise RunStoreError(f"run {run_id} is {status}: only a failed or stopped run can be resumed"
                            + (" (launch a new run to train again)" if status == "completed" else ""))
    problems = resume_problems(store.run_dir(run_id))
    if problems:     # refused now, in one line, rather than by a worker that fails on it later
        raise RunStoreError(unreadable_message(problems, f"run {run_id} cannot resume"))
    with store.write() as conn:   # the next attempt: whatever the old one's processes still write is refused
        requeue(conn, run_id)
    schedule(store, max_runs)
    return store.run(run_id)["status"]


def set_lam(home, run_id: str, value: float, wait: Optional[float] = None) -> str:
    """Change λ of a queued run (in its config: "configured") or a running one (a control row its
    worker applies at its next step and logs as a "lam_change" event: "sent"). With ``wait`` (seconds),
    wait for the worker's answer: "applied", else a RunStoreError saying why it was not (the run ended
    first, the worker ignored it, or no answer in time). Never reports a change that was lost."""
    validate_run_id(run_id)
    value = check_lam(value)
    store = _store(home, create=False)
    row = store.run(run_id)
    if row["status"] == "running":
        control_id = store.add_control(run_id, LAM, value, only_if_running=True)
        if control_id is not None:
            return "sent" if wait is None else _wait_for_control(store, run_id, control_id, wait)
        row = store.run(run_id)     # it ended (or was re-queued) between the read and the insert
    if row["status"] == "queued":
        config = row["config"]
        config.setdefault("reg", {})["lam"] = value
        if store.update_run(run_id, expect_status=("queued",), config=config):
            _write_config(store.run_dir(run_id), config)
            return "configured"
        row = store.run(run_id)
    raise RunStoreError(f"run {run_id} is {row['status']}: λ can change only while a run is queued or running")


def _wait_for_control(store: RunStore, run_id: str, control_id: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        control = next(c for c in store.controls(run_id) if c["id"] == control_id)
        if control["outcome"] == "applied":
            return "applied"
        if control["outcome"] is not None:
            raise RunStoreError(f"the λ change to {control['value']:g} was not applied: {control['note']}")
        if time.monotonic() >= deadline:
            raise RunStoreError(f"the worker of run {run_id} did not answer the λ change within {timeout:g} s; "
                                "it is still pending (see `show` for its outcome later)")
        time.sleep(0.05)
