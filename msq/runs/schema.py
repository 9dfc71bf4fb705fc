"""The run store's tables, their migrations, and how a connection is opened.

One SQLite database per ``MSQ_HOME`` in WAL mode: one writer per run (its worker) and many readers
(dashboard, CLI) at once. Readers never block writers in WAL; writers take the write lock with
``BEGIN IMMEDIATE`` so a busy database makes them wait (``busy_timeout``) instead of failing with
"database is locked" half-way through a transaction.

Per-layer metrics are one float32 vector BLOB per (run, metric, step), never one row per layer:
~50x faster to write and ~60x faster to read at 100 layers x 10k steps (DESIGN.md, "Run store").
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

BUSY_TIMEOUT_ENV = "MSQ_BUSY_TIMEOUT_MS"    # tests shorten the wait of a locked store


def busy_timeout_ms() -> int:
    """How long a statement waits for a locked database: $MSQ_BUSY_TIMEOUT_MS, else 30 s."""
    try:
        return max(int(os.environ.get(BUSY_TIMEOUT_ENV, "")), 1)
    except ValueError:
        return 30_000


BUSY_TIMEOUT_MS = busy_timeout_ms()

# Each entry upgrades the schema by one version; ``PRAGMA user_version`` records how far a database is.
# Append new versions; never edit a released one (databases in the field already ran it).
MIGRATIONS: list[list[str]] = [
    [  # version 1
        """CREATE TABLE IF NOT EXISTS runs (
            id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', method TEXT, model TEXT, dataset TEXT,
            status TEXT NOT NULL, config TEXT NOT NULL, created REAL NOT NULL, started REAL, ended REAL,
            pid INTEGER, pid_start INTEGER, host TEXT, device TEXT NOT NULL DEFAULT 'cpu',
            heartbeat REAL, error TEXT, summary TEXT, log_tail TEXT)""",
        "CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, device)",
        "CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created, id)",   # newest-first lists stop at LIMIT
        """CREATE TABLE IF NOT EXISTS layers (
            run_id TEXT NOT NULL, idx INTEGER NOT NULL, fqn TEXT NOT NULL, kind TEXT, shape TEXT,
            params INTEGER, macs INTEGER, bits INTEGER, fixed INTEGER NOT NULL DEFAULT 0, fixed_reason TEXT,
            PRIMARY KEY (run_id, idx)) WITHOUT ROWID""",
        # scalars: small rows, read as one key's series -> clustered on (run, key, step)
        """CREATE TABLE IF NOT EXISTS scalars (
            run_id TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL, epoch INTEGER, value REAL,
            PRIMARY KEY (run_id, key, step)) WITHOUT ROWID""",
        # layer_series: rows of 4 bytes x layers (too big for WITHOUT ROWID at 1000 layers)
        """CREATE TABLE IF NOT EXISTS layer_series (
            run_id TEXT NOT NULL, metric TEXT NOT NULL, step INTEGER NOT NULL, epoch INTEGER,
            vec BLOB NOT NULL)""",
        "CREATE UNIQUE INDEX IF NOT EXISTS layer_series_key ON layer_series(run_id, metric, step)",
        """CREATE TABLE IF NOT EXISTS events (
            id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, step INTEGER, epoch INTEGER, t REAL NOT NULL,
            kind TEXT NOT NULL, payload TEXT NOT NULL DEFAULT '{}')""",
        "CREATE INDEX IF NOT EXISTS events_by_run ON events(run_id, kind)",
        # controls: requests to a running worker; consumed = time it was taken (NULL while pending)
        """CREATE TABLE IF NOT EXISTS controls (
            id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT, t REAL NOT NULL,
            consumed REAL, step INTEGER)""",
        "CREATE INDEX IF NOT EXISTS controls_pending ON controls(run_id, consumed)",
    ],
    [  # version 2: ownership of a run by one attempt, idempotent event replay, control outcomes
        # attempt: the generation of the run; a re-queue (resume) starts the next one, and only the
        # processes of the current attempt may write the run's status (msq/runs/ownership.py)
        "ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1",
        # uid: the writer's key of an event, so replaying a spill file never inserts one twice
        "ALTER TABLE events ADD COLUMN uid TEXT",
        "CREATE UNIQUE INDEX IF NOT EXISTS events_by_uid ON events(run_id, uid)",
        # outcome: "applied", "ignored" (invalid), "superseded" (a later λ change came in the same poll) or
        # "not_applied" (the attempt ended first); note: why
        "ALTER TABLE controls ADD COLUMN outcome TEXT",
        "ALTER TABLE controls ADD COLUMN note TEXT",
    ],
    [  # version 3: a run's duration counts the time it ran, not the time it sat stopped between attempts
        # attempt_started: when the current attempt started running; earlier_active_s: seconds the
        # earlier attempts ran (added by each re-queue)
        "ALTER TABLE runs ADD COLUMN attempt_started REAL",
        "ALTER TABLE runs ADD COLUMN earlier_active_s REAL NOT NULL DEFAULT 0",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit: see ``write_transaction``)."""
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")      # persistent: set once per database file
    conn.execute("PRAGMA synchronous = NORMAL")        # WAL + NORMAL: durable across crashes of a process
    return conn


def connect_snapshot(path: str | Path) -> sqlite3.Connection:
    """A read-only connection that creates no -wal or -shm file (``immutable=1``): what a reader can
    still open on a full disk. It reads the database file alone, which holds everything once the last
    writer closed (its WAL then checkpointed and removed: the case where -shm is missing)."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?immutable=1", uri=True, isolation_level=None)


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection):
    """``BEGIN IMMEDIATE`` takes the write lock up front (waiting up to busy_timeout), so a transaction
    never has to upgrade a read lock later -- the upgrade is what fails with "database is locked"."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database up to ``SCHEMA_VERSION``; safe to call from several processes at once."""
    if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
        return SCHEMA_VERSION
    with write_transaction(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # re-read under the write lock
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            for sql in statements:
                conn.execute(sql)
            conn.execute(f"PRAGMA user_version = {number}")
    return SCHEMA_VERSION


def checkpoint_wal(conn: sqlite3.Connection, wait_ms: int = 100) -> bool:
    """``wal_checkpoint(TRUNCATE)`` with a short wait: TRUNCATE waits for readers through the busy
    handler, and a training step must not stall for 30 s behind a dashboard that keeps reading.
    Returns True when the WAL file was reset; a busy database just tries again next time."""
    conn.execute(f"PRAGMA busy_timeout = {wait_ms}")
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0
    except sqlite3.OperationalError:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
