"""``RunWriter``: a run's metrics, buffered in memory and written in one short transaction at most
every ``flush_every`` seconds (and whenever the caller asks: phase/epoch end, run end).

A training step only appends tuples to lists, so the store costs the loop microseconds; the database
sees one write transaction per second per run, which is what lets several runs write while the
dashboard reads. The heartbeat rides on those commits. Rows use ``INSERT OR REPLACE`` on their
(run, key, step) keys and events carry a uid, so writing a row twice can never duplicate it.

Nothing buffered is dropped when a write fails: the rows go to the run's spill file (msq/runs/spill.py)
and stay in memory, and the next flush retries after a backoff. ``finish`` retries until the rows
and the run's end land together in one transaction (so the summary is written only after every row),
for up to ``retry_for`` seconds; past that the rows wait in the spill file for ``resume`` to replay.
Every write first checks that this writer's attempt still owns the run (msq/runs/ownership.py).
"""
from __future__ import annotations

import os
import sqlite3
import sys
import time
import uuid
from typing import Optional

from msq.errors import RunStoreError
from msq.runs import spill
from msq.runs.ownership import Attempt, RunOwnershipLost
from msq.runs.schema import checkpoint_wal
from msq.runs.series import pack_vector
from msq.runs.store import RunStore, to_json

RETRY_ENV = "MSQ_STORE_RETRY_S"
MAX_BACKOFF_S = 10.0


def default_retry_for() -> float:
    """How long ``finish`` keeps retrying a failing store: $MSQ_STORE_RETRY_S, else 10 minutes."""
    try:
        return max(float(os.environ.get(RETRY_ENV, "")), 0.0)
    except ValueError:
        return 600.0


class RunWriter:
    def __init__(self, store: RunStore, run_id: str, flush_every: float = 1.0, heartbeat_every: float = 2.0,
                 checkpoint_every: float = 30.0, attempt: Optional[int] = None,
                 retry_for: Optional[float] = None) -> None:
        self.store, self.run_id = store, store.require(run_id)
        self.attempt = Attempt.of(store, run_id, attempt)
        self.flush_every, self.heartbeat_every, self.checkpoint_every = flush_every, heartbeat_every, checkpoint_every
        self.retry_for = default_retry_for() if retry_for is None else retry_for
        self.spill_path = spill.spill_path(store.run_dir(run_id), self.attempt.number)
        self._rows: list[tuple[str, list]] = []     # ("scalar" | "vector" | "event", row without the run id)
        self._spilled = 0                           # how many of _rows (from the front) are in the spill file
        self._layer_bits: dict[str, int] = {}
        now = time.monotonic()
        self._last_flush = self._last_checkpoint = now
        self._last_heartbeat = -float("inf")
        self._retry_at, self._backoff = 0.0, 0.0

    # -- buffering (the hot path: no I/O) ------------------------------------------------------
    def add_scalars(self, step: int, epoch: Optional[int], values: dict, prefix: str = "") -> None:
        """Numbers only (numpy/torch scalars too); None, flags, text and lists are not scalars."""
        for key, value in values.items():
            if value is None or isinstance(value, (bool, str, bytes, dict, list, tuple)):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            self._rows.append(("scalar", [prefix + key, step, epoch, number]))

    def add_vectors(self, step: int, epoch: Optional[int], values: dict) -> None:
        for metric, vector in values.items():
            if vector is not None:
                self._rows.append(("vector", [metric, step, epoch, pack_vector(vector)]))

    def add_event(self, step: Optional[int], epoch: Optional[int], kind: str, payload: dict) -> None:
        self._rows.append(("event", [step, epoch, time.time(), kind, to_json(payload), uuid.uuid4().hex]))

    def set_layer_bits(self, fqn: str, bits: int) -> None:
        self._layer_bits[fqn] = int(bits)

    def due(self) -> bool:
        now = time.monotonic()
        return now - self._last_flush >= self.flush_every and now >= self._retry_at

    @property
    def pending(self) -> int:
        """Rows buffered and not yet in the store."""
        return len(self._rows) + len(self._layer_bits)

    # -- writing -------------------------------------------------------------------------------
    def flush(self, strict: bool = False) -> bool:
        """Write everything buffered in one transaction. A busy or failing database keeps the rows (in
        memory and in the spill file) for the next try, after a backoff, unless ``strict``; training goes
        on. Raises RunOwnershipLost if the run was re-queued: this attempt writes nothing more."""
        now = time.monotonic()
        beat = now - self._last_heartbeat >= self.heartbeat_every
        if not (self._rows or self._layer_bits or beat):
            self._last_flush = now
            return True
        try:
            with self.store.write() as conn:
                self._write(conn)
        except RunOwnershipLost:
            self._spill()
            raise
        except sqlite3.Error as exc:
            self._spill()
            self._backoff = min(max(self._backoff * 2, 0.5), MAX_BACKOFF_S)
            self._retry_at, self._last_flush = time.monotonic() + self._backoff, now
            print(f"warning: run store write failed ({exc}); {self.pending} rows kept in {self.spill_path.name}, "
                  f"retrying in {self._backoff:g} s", file=sys.stderr, flush=True)
            if strict:
                raise
            return False
        self._landed(now)
        return True

    def _write(self, conn: sqlite3.Connection) -> None:
        """The ownership check (it is the heartbeat, too), then every buffered row."""
        if conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ? AND attempt = ?",
                        (time.time(), self.run_id, self.attempt.number)).rowcount != 1:
            self.attempt.check(conn)
        tables = {"scalar": (spill.SCALAR_SQL, []), "vector": (spill.VECTOR_SQL, []), "event": (spill.EVENT_SQL, [])}
        for table, row in self._rows:
            tables[table][1].append((self.run_id, *row))
        for sql, rows in tables.values():
            conn.executemany(sql, rows)
        conn.executemany(spill.BITS_SQL, [(b, self.run_id, fqn) for fqn, b in self._layer_bits.items()])

    def _spill(self) -> None:
        """Append the rows not yet in the spill file; a failing disk is reported, the rows stay in memory."""
        records = self._rows[self._spilled:] + [("bits", [fqn, b]) for fqn, b in self._layer_bits.items()]
        try:
            spill.append(self.spill_path, records)
        except OSError as exc:
            print(f"warning: could not keep {len(records)} rows in {self.spill_path} ({exc}); they stay in memory",
                  file=sys.stderr, flush=True)
            return
        self._spilled = len(self._rows)

    def _landed(self, now: float) -> None:
        if self._spilled:
            self.spill_path.unlink(missing_ok=True)     # all of it was in the transaction that just landed
        self._rows, self._spilled, self._layer_bits = [], 0, {}
        self._last_flush = self._last_heartbeat = now
        self._retry_at, self._backoff = 0.0, 0.0
        if now - self._last_checkpoint >= self.checkpoint_every:
            checkpoint_wal(self.store.conn)
            self._last_checkpoint = now

    def replay_spills(self) -> int:
        """Write the rows earlier attempts left in spill files (idempotent), then remove the files.
        Returns the number of rows replayed."""
        paths = spill.leftovers(self.store.run_dir(self.run_id), keep=self.spill_path)
        records = [record for path in paths for record in spill.read(path)]
        if paths:
            with self.store.write() as conn:
                self.attempt.check(conn)
                spill.write_records(conn, self.run_id, records)
            for path in paths:
                path.unlink(missing_ok=True)
        return len(records)

    def truncate_after(self, step: int, keep_events: int) -> None:
        """Forget what a previous attempt stored past a checkpoint: rows after ``step`` and trainer events
        after the first ``keep_events`` (those the checkpoint's state already holds; "resume" markers
        are the store's own and stay up to ``step``). A resumed run then re-writes those steps once, so
        its series has no gap and no duplicate."""
        with self.store.write() as conn:
            self.attempt.check(conn)
            for table in ("scalars", "layer_series"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ? AND step > ?", (self.run_id, step))
            conn.execute("DELETE FROM events WHERE run_id = ?1 AND CASE WHEN kind = 'resume' THEN step > ?2 ELSE "
                         "id NOT IN (SELECT id FROM events WHERE run_id = ?1 AND kind != 'resume' ORDER BY id LIMIT ?3) "
                         "END", (self.run_id, step, keep_events))

    def finish(self, status: str, summary: Optional[dict], error: Optional[str]) -> bool:
        """Record the end: the remaining rows, final widths of the layers, then status, summary and error,
        in one transaction, retried with backoff for up to ``retry_for`` s while the store fails. False if
        this attempt lost the run (nothing written); a RunStoreError if the store stayed unwritable
        (the rows are in the spill file, and ``resume`` replays them)."""
        for layer in (summary or {}).get("layers") or []:
            if "fqn" in layer and "bits" in layer:
                self.set_layer_bits(layer["fqn"], layer["bits"])
        deadline, tries, delay = time.monotonic() + self.retry_for, 0, 0.2
        while True:
            try:
                with self.store.write() as conn:
                    self._write(conn)
                    self.attempt.end(status, conn, heartbeat=time.time(), error=error,
                                     summary=None if summary is None else to_json(summary))
                break
            except RunOwnershipLost as exc:
                self._spill()
                print(f"warning: {exc}", file=sys.stderr, flush=True)
                return False
            except sqlite3.Error as exc:
                self._spill()
                tries += 1
                if time.monotonic() + delay > deadline:
                    raise RunStoreError(f"could not record the end of run {self.run_id} in {tries} tries over "
                                        f"{self.retry_for:g} s ({exc}); {self.pending} rows are kept in "
                                        f"{self.spill_path}: `resume` replays them") from exc
                print(f"warning: could not record the end of run {self.run_id} ({exc}); {self.pending} rows kept in "
                      f"{self.spill_path.name}; retry {tries} in {delay:g} s", file=sys.stderr, flush=True)
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
        self._landed(time.monotonic())
        checkpoint_wal(self.store.conn)
        return True
