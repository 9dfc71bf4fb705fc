"""Who may write a run's status: the processes of its current attempt, and nobody else.

Every run row carries ``attempt``, its generation. Starting a queued run is an atomic claim of the
attempt it was queued as (``claim``: exactly one actor wins, the others see rowcount 0); a re-queue
(``requeue``, what resume does) starts the next attempt. A worker, a torchrun supervisor or the
runner that started them hold an ``Attempt`` and write the status only through it: a compare-and-set
on (id, attempt) in SQL. So a process of an old attempt -- a rank 0 still recording its failure, a
supervisor exiting late, a worker that was given up for dead -- can never overwrite the status of a
re-queued or restarted run: its write changes no row, and it learns that it lost the run.

The attempt travels to a worker in ``$MSQ_RUN_ATTEMPT`` (torchrun passes it on to every rank).

The runner's other reads and writes of run rows live here too (``queued_runs``, ``running_devices``,
``running_workers``, ``fail_dead_worker``, ``Attempt.record_worker``): with ``store.py``, ``reads.py``
and ``schema.py`` this module is the run store's implementation, and no SQL is written outside them.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Optional

from msq.errors import RunStoreError
from msq.runs.procs import HOST, process_start_time

ATTEMPT_ENV = "MSQ_RUN_ATTEMPT"


class RunOwnershipLost(RunStoreError):
    """This process's attempt of a run is no longer the run's current one (it was re-queued)."""


def env_attempt() -> Optional[int]:
    """The attempt the runner started this process for ($MSQ_RUN_ATTEMPT), None outside the runner."""
    value = os.environ.get(ATTEMPT_ENV)
    return int(value) if value and value.isdigit() else None


def current_attempt(conn: sqlite3.Connection, run_id: str) -> Optional[int]:
    row = conn.execute("SELECT attempt FROM runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else row[0]


def claim(conn: sqlite3.Connection, run_id: str, attempt: int, device: str, host: str) -> bool:
    """queued -> running for ``attempt``, only if the run is still queued as that attempt. True for
    exactly one of any number of actors racing to start it."""
    now = time.time()
    return conn.execute("UPDATE runs SET status = 'running', device = ?, pid = NULL, pid_start = NULL, host = ?, "
                        "heartbeat = ?, ended = NULL, error = NULL, attempt_started = ? "
                        "WHERE id = ? AND status = 'queued' AND attempt = ?",
                        (device, host, now, now, run_id, attempt)).rowcount == 1


def requeue(conn: sqlite3.Connection, run_id: str, from_statuses=("failed", "stopped")) -> Optional[int]:
    """A failed or stopped run -> queued as the next attempt (the old one loses the run). Returns the
    new attempt, None if the run was not in one of ``from_statuses``."""
    marks = ",".join("?" * len(from_statuses))
    # the attempt's running time joins the earlier ones' (right-hand sides read the row before the update)
    changed = conn.execute(f"UPDATE runs SET status = 'queued', attempt = attempt + 1, ended = NULL, error = NULL, "
                           f"pid = NULL, pid_start = NULL, attempt_started = NULL, earlier_active_s = "
                           f"earlier_active_s + COALESCE(ended - COALESCE(attempt_started, started), 0) "
                           f"WHERE id = ? AND status IN ({marks})",
                           (run_id, *from_statuses)).rowcount
    return current_attempt(conn, run_id) if changed else None


def running_devices(conn: sqlite3.Connection) -> list[Optional[str]]:
    """The device assignment of every running run ("cpu", "cuda:0", "cuda:0,1"; None if unrecorded)."""
    return [d for (d,) in conn.execute("SELECT device FROM runs WHERE status = 'running'")]


def queued_runs(conn: sqlite3.Connection) -> list[tuple[str, dict, int]]:
    """(run id, config, attempt) of every queued run, oldest first: the order they start in."""
    rows = conn.execute("SELECT id, config, attempt FROM runs WHERE status = 'queued' ORDER BY created, id").fetchall()
    return [(run_id, json.loads(config), attempt) for run_id, config, attempt in rows]


def running_workers(conn: sqlite3.Connection) -> list[dict]:
    """{"id", "pid", "pid_start", "host", "heartbeat", "attempt"} of every running run (what the reaper checks)."""
    cur = conn.execute("SELECT id, pid, pid_start, host, heartbeat, attempt FROM runs WHERE status = 'running'")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def fail_dead_worker(conn: sqlite3.Connection, worker: dict, error: str, tail: str) -> bool:
    """A running run whose worker (``worker``: a ``running_workers`` row) is gone -> failed, with
    ``error`` and the log ``tail``; its pending controls expire. A compare-and-set on (status, pid,
    attempt): False, writing nothing, if the worker recorded its own end or the run moved on meanwhile."""
    if not conn.execute("UPDATE runs SET status = 'failed', ended = ?, error = ?, log_tail = ? WHERE id = ? "
                        "AND status = 'running' AND pid IS ? AND attempt = ?",
                        (time.time(), error, tail, worker["id"], worker["pid"], worker["attempt"])).rowcount:
        return False
    expire_controls(conn, worker["id"], "the worker died before it read this control")
    return True


def expire_controls(conn: sqlite3.Connection, run_id: str, why: str) -> int:
    """Controls no worker took before the attempt ended: recorded as not applied (never silently lost);
    ``consumed`` stays NULL (nobody took them)."""
    return conn.execute("UPDATE controls SET outcome = 'not_applied', note = ? WHERE run_id = ? AND consumed IS NULL "
                        "AND outcome IS NULL", (why, run_id)).rowcount


@dataclass(frozen=True)
class Attempt:
    """One attempt of one run, as held by the processes working on it."""
    store: object          # RunStore (not imported: the store imports nothing of this module's users)
    run_id: str
    number: int

    @classmethod
    def of(cls, store, run_id: str, number: Optional[int] = None) -> "Attempt":
        """The attempt ``number``, else $MSQ_RUN_ATTEMPT, else the run's current attempt (a foreground
        run, or a worker started by hand, owns the attempt it finds)."""
        number = number if number is not None else env_attempt()
        if number is None:
            number = current_attempt(store.conn, store.require(run_id))
        return cls(store, run_id, int(number))

    def owns(self, conn: Optional[sqlite3.Connection] = None) -> bool:
        conn = conn or self.store.conn
        return current_attempt(conn, self.run_id) == self.number

    def check(self, conn: sqlite3.Connection) -> None:
        """Inside a write transaction: raise RunOwnershipLost unless this attempt still owns the run."""
        if not self.owns(conn):
            raise RunOwnershipLost(f"run {self.run_id} was re-queued (now attempt {current_attempt(conn, self.run_id)}); "
                                   f"attempt {self.number} no longer owns it and writes nothing more")

    def mark_running(self, device: str) -> bool:
        """Record this process as the attempt's worker: status running, pid, its start time, host, device,
        heartbeat (the run's start time is kept from its first attempt). A run still queued as this
        attempt is claimed by this (a worker started by hand, or training in-process); False, writing
        nothing, if the attempt lost the run or the run ended (e.g. stopped while it started)."""
        now = time.time()
        with self.store.write() as conn:
            return conn.execute("UPDATE runs SET status = 'running', pid = ?, pid_start = ?, host = ?, device = ?, "
                                "heartbeat = ?, ended = NULL, error = NULL, started = COALESCE(started, ?), "
                                "attempt_started = COALESCE(attempt_started, ?) "
                                "WHERE id = ? AND attempt = ? AND status IN ('queued', 'running')",
                                (os.getpid(), process_start_time(os.getpid()), HOST, device, now, now, now,
                                 self.run_id, self.number)).rowcount == 1

    def end(self, status: str, conn: Optional[sqlite3.Connection] = None, only_if_running: bool = False,
            **fields) -> bool:
        """Record how this attempt ended (status, ended, and ``fields``: error, summary, log_tail, ...)
        and expire the controls nobody took. False, writing nothing, if the attempt no longer owns the
        run (or, with ``only_if_running``, the run already recorded an end). In ``conn``'s transaction if given."""
        if conn is None:
            with self.store.write() as own:
                return self.end(status, own, only_if_running, **fields)
        values = {"status": status, "ended": time.time(), **fields}
        sql = (f"UPDATE runs SET {', '.join(f'{k} = ?' for k in values)} WHERE id = ? AND attempt = ?"
               + (" AND status = 'running'" if only_if_running else ""))
        if conn.execute(sql, (*values.values(), self.run_id, self.number)).rowcount != 1:
            return False
        expire_controls(conn, self.run_id, f"the run ended ({status}) before its worker read this control")
        return True

    def record_worker(self, pid: int, pid_start: Optional[float]) -> bool:
        """Record the process the runner started for this attempt (once: a worker that already recorded
        itself keeps its own pid). False if the attempt lost the run or the pid was set."""
        with self.store.write() as conn:
            return conn.execute("UPDATE runs SET pid = ?, pid_start = ? WHERE id = ? AND attempt = ? AND pid IS NULL",
                                (pid, pid_start, self.run_id, self.number)).rowcount == 1

    def annotate_failure(self, **fields) -> bool:
        """Add details (error, log_tail) to the failure this attempt already recorded; nothing else."""
        with self.store.write() as conn:
            return conn.execute(f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ? AND "
                                "attempt = ? AND status = 'failed'",
                                (*fields.values(), self.run_id, self.number)).rowcount == 1
