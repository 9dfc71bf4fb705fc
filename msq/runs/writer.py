"""``RunWriter``: a run's metrics, buffered in memory and written in one short transaction at most
every ``flush_every`` seconds (and whenever the caller asks: phase/epoch end, run end).

A training step only appends tuples to lists, so the store costs the loop microseconds; the database
sees one write transaction per second per run, which is what lets several runs write while the
dashboard reads. The heartbeat rides on those commits. Rows use ``INSERT OR REPLACE`` on their
(run, key, step) keys, so writing a step twice can never duplicate it.
"""
from __future__ import annotations

import sqlite3
import sys
import time
from typing import Optional

from msq.runs.schema import checkpoint_wal
from msq.runs.series import pack_vector
from msq.runs.store import RunStore, to_json


class RunWriter:
    def __init__(self, store: RunStore, run_id: str, flush_every: float = 1.0, heartbeat_every: float = 2.0,
                 checkpoint_every: float = 30.0) -> None:
        self.store, self.run_id = store, store.require(run_id)
        self.flush_every, self.heartbeat_every, self.checkpoint_every = flush_every, heartbeat_every, checkpoint_every
        self._scalars: list[tuple] = []
        self._vectors: list[tuple] = []
        self._events: list[tuple] = []
        self._layer_bits: dict[str, int] = {}
        now = time.monotonic()
        self._last_flush = self._last_checkpoint = now
        self._last_heartbeat = -float("inf")
        self._warned = False

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
            self._scalars.append((self.run_id, prefix + key, step, epoch, number))

    def add_vectors(self, step: int, epoch: Optional[int], values: dict) -> None:
        for metric, vector in values.items():
            if vector is not None:
                self._vectors.append((self.run_id, metric, step, epoch, pack_vector(vector)))

    def add_event(self, step: Optional[int], epoch: Optional[int], kind: str, payload: dict) -> None:
        self._events.append((self.run_id, step, epoch, time.time(), kind, to_json(payload)))

    def set_layer_bits(self, fqn: str, bits: int) -> None:
        self._layer_bits[fqn] = int(bits)

    def due(self) -> bool:
        return time.monotonic() - self._last_flush >= self.flush_every

    # -- writing -------------------------------------------------------------------------------
    def flush(self, strict: bool = False) -> bool:
        """Write everything buffered in one transaction. A busy or failing database (after the 30 s
        busy timeout) keeps the rows for the next try unless ``strict``; training goes on."""
        now = time.monotonic()
        beat = now - self._last_heartbeat >= self.heartbeat_every
        if not (self._scalars or self._vectors or self._events or self._layer_bits or beat):
            self._last_flush = now
            return True
        try:
            with self.store.write() as conn:
                conn.executemany("INSERT OR REPLACE INTO scalars VALUES (?, ?, ?, ?, ?)", self._scalars)
                conn.executemany("INSERT OR REPLACE INTO layer_series (run_id, metric, step, epoch, vec) "
                                 "VALUES (?, ?, ?, ?, ?)", self._vectors)
                conn.executemany("INSERT INTO events (run_id, step, epoch, t, kind, payload) VALUES (?, ?, ?, ?, ?, ?)",
                                 self._events)
                conn.executemany("UPDATE layers SET bits = ? WHERE run_id = ? AND fqn = ?",
                                 [(b, self.run_id, fqn) for fqn, b in self._layer_bits.items()])
                if beat:
                    conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), self.run_id))
        except sqlite3.Error as exc:
            if strict:
                raise
            if not self._warned:
                print(f"warning: run store write failed ({exc}); keeping the rows and retrying", file=sys.stderr)
                self._warned = True
            self._last_flush = now
            return False
        self._scalars, self._vectors, self._events, self._layer_bits = [], [], [], {}
        self._last_flush = now
        if beat:
            self._last_heartbeat = now
        if now - self._last_checkpoint >= self.checkpoint_every:
            checkpoint_wal(self.store.conn)
            self._last_checkpoint = now
        return True

    def truncate_after(self, step: int, keep_events: int) -> None:
        """Forget what a previous attempt stored past a checkpoint: rows after ``step`` and trainer events
        after the first ``keep_events`` (those the checkpoint's state already holds; "resume" markers
        are the store's own and stay up to ``step``). A resumed run then re-writes those steps once, so
        its series has no gap and no duplicate."""
        with self.store.write() as conn:
            for table in ("scalars", "layer_series"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ? AND step > ?", (self.run_id, step))
            conn.execute("DELETE FROM events WHERE run_id = ?1 AND CASE WHEN kind = 'resume' THEN step > ?2 ELSE "
                         "id NOT IN (SELECT id FROM events WHERE run_id = ?1 AND kind != 'resume' ORDER BY id LIMIT ?3) "
                         "END", (self.run_id, step, keep_events))

    def finish(self, status: str, summary: Optional[dict], error: Optional[str]) -> None:
        """Flush, then record the end: status, summary, error, final widths of the layers."""
        for layer in (summary or {}).get("layers") or []:
            if "fqn" in layer and "bits" in layer:
                self.set_layer_bits(layer["fqn"], layer["bits"])
        self.flush(strict=True)
        self.store.update_run(self.run_id, status=status, ended=time.time(), heartbeat=time.time(),
                              summary=None if summary is None else to_json(summary), error=error)
        checkpoint_wal(self.store.conn)
