"""``RunStore``: the SQLite run store of one ``MSQ_HOME`` -- run rows, layers, controls, and (from
``reads.SeriesReads``) the series the charts draw.

    store = RunStore("runs")
    run_id = store.create_run({"model": "lenet5", ...}, name="λ=32")
    store.list_runs(status="running")

One connection per thread and process (sqlite3 connections must not cross either), opened lazily, so
one ``RunStore`` can be shared by a dashboard's script threads. Every method that takes a run id
validates it first and raises ``RunStoreError`` for a malformed or unknown id, touching nothing.
"""
from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Optional

from msq.errors import RunStoreError
from msq.jsonsafe import finite_or_none, number_or_text
from msq.runs.ids import new_run_id, validate_run_id
from msq.runs.reads import SeriesReads
from msq.runs.disk import disk_is_full
from msq.runs.schema import connect, connect_snapshot, migrate, write_transaction

STATUSES = ("queued", "running", "completed", "stopped", "failed")
FINAL_STATUSES = ("completed", "stopped", "failed")
_RUN_COLUMNS = {"name", "status", "started", "ended", "pid", "pid_start", "host", "device", "heartbeat",
                "error", "summary", "log_tail", "config", "method", "model", "dataset"}
DB_NAME = "msq.db"


def resolve_home(home: Optional[str | os.PathLike] = None) -> Path:
    """``home``, else ``$MSQ_HOME``, else ``./runs``."""
    return Path(home if home not in (None, "") else os.environ.get("MSQ_HOME") or "./runs")


def to_json(value) -> str:
    """JSON that SQLite's json functions can read: NaN/inf become null, unknown objects their float/str."""
    return json.dumps(finite_or_none(value, convert=number_or_text), allow_nan=False)


def active_seconds(row: dict, now: float) -> Optional[float]:
    """Seconds a run has spent running, over all its attempts (None if it never started): the time it
    sat stopped or queued between attempts is not counted. Rows of stores before version 3 have only
    ``started``: their duration runs from the first start."""
    if row["started"] is None:
        return None
    earlier = row.get("earlier_active_s") or 0.0
    begin = row.get("attempt_started") or (None if earlier else row["started"])
    if begin is None:        # re-queued and not running again yet
        return earlier
    return earlier + (row["ended"] or now) - begin


class RunStore(SeriesReads):
    def __init__(self, home: Optional[str | os.PathLike] = None, create: bool = True) -> None:
        """``create=False`` for commands about existing runs: a mistyped --home then says so instead of
        leaving an empty store behind."""
        self.home = resolve_home(home).resolve()
        self.path = self.home / DB_NAME
        self._local = threading.local()
        self.snapshot = False     # True once a full disk left only a read-only snapshot to open
        if not create and not self.path.is_file():
            raise RunStoreError(f"no run store at {self.path}: pass the --home (or set MSQ_HOME) that your runs "
                                "were launched with, or launch a run first")
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            migrate(self.conn)
        except (OSError, sqlite3.Error) as exc:   # a file, /proc, a read-only or forbidden folder
            self.close()
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise RunStoreError(f"--home {str(home or self.home)!r} cannot hold a run store ({reason} at "
                                f"{getattr(exc, 'filename', None) or self.path}): pass a folder you can write, "
                                "e.g. --home ./runs") from None

    @property
    def conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():   # new thread, or a forked child
            local.conn, local.pid = self._open(), os.getpid()
        return local.conn

    def _open(self) -> sqlite3.Connection:
        """A connection; on a disk too full to create the WAL's shared-memory file, a read-only snapshot
        (``self.snapshot``), so readers still show what is stored."""
        try:
            return connect(self.path)
        except sqlite3.OperationalError:
            if not (self.path.is_file() and disk_is_full(self.home)):
                raise
            self.snapshot = True
            return connect_snapshot(self.path)

    def write(self):
        """A short write transaction: ``with store.write() as conn: ...``."""
        conn = self.conn              # opened first: that is when a full disk leaves only a snapshot
        if self.snapshot:
            raise OSError(errno.ENOSPC, "No space left on device (the run store is open read-only)", str(self.path))
        return write_transaction(conn)

    def close(self) -> None:
        if getattr(self._local, "pid", None) == os.getpid():
            self._local.conn.close()
        self._local = threading.local()

    def run_dir(self, run_id: str) -> Path:
        return self.home / validate_run_id(run_id)

    def has_run(self, run_id: object) -> bool:
        """Whether the store holds a run ``run_id`` (a RunStoreError if the id is malformed)."""
        validate_run_id(run_id)
        return self.conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None

    def require(self, run_id: object) -> str:
        """The id, if it is well formed and names a stored run; else a RunStoreError that says so."""
        if not self.has_run(run_id):
            raise RunStoreError(f"no run {run_id!r} in {self.path}: see `python -m msq runs --home {self.home}` "
                                "for the ids of existing runs")
        return run_id

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, config: dict, name: str = "", device: str = "cpu", status: str = "queued",
                   run_id: Optional[str] = None) -> str:
        """Insert a run row (config as JSON); ``run_id`` is generated unless given (a foreground run)."""
        run_id = validate_run_id(run_id) if run_id is not None else new_run_id()
        if status not in STATUSES:
            raise RunStoreError(f"status {status!r} is invalid: allowed {', '.join(STATUSES)}")
        data = config.get("data") if isinstance(config.get("data"), dict) else {}
        with self.write() as conn:
            conn.execute("INSERT INTO runs (id, name, method, model, dataset, status, config, created, device) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (run_id, name or config.get("name") or "", config.get("method"), config.get("model"),
                          data.get("name"), status, to_json(config), time.time(), device))
        return run_id

    def run(self, run_id: str) -> dict:
        """Every column of one run, with ``config`` and ``summary`` parsed from JSON."""
        self.require(run_id)
        row = self._query_runs("r.id = ?", [run_id], full=True)[0]
        for key in ("config", "summary"):
            row[key] = json.loads(row[key]) if row[key] else None
        return row

    def list_runs(self, status: Optional[str | Iterable[str]] = None, method: Optional[str] = None,
                  model: Optional[str] = None, dataset: Optional[str] = None, search: Optional[str] = None,
                  limit: Optional[int] = None) -> list[dict]:
        """Runs, newest first, with their headline numbers (λ now, val acc, compression, avg bits,
        last step, duration): from the summary once a run ended, else from its latest scalars."""
        where, args = [], []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"r.status IN ({','.join('?' * len(statuses))})")
            args += statuses
        for column, value in (("method", method), ("model", model), ("dataset", dataset)):
            if value is not None:
                where.append(f"r.{column} = ?")
                args.append(value)
        if search:
            where.append("(r.name LIKE ? OR r.id LIKE ?)")
            args += [f"%{search}%"] * 2
        return self._query_runs(" AND ".join(where), args, full=False, limit=limit)

    def _query_runs(self, where: str, args: list, full: bool, limit: Optional[int] = None) -> list[dict]:
        latest = "(SELECT value FROM scalars s WHERE s.run_id = r.id AND s.key = '{}' ORDER BY s.step DESC LIMIT 1)"
        # json_valid guards: one damaged config/summary must not make json_extract fail the whole listing
        config, summary = ("CASE WHEN json_valid(r.{0}) THEN r.{0} END".format(c) for c in ("config", "summary"))
        heavy = ", r.config, r.summary, r.log_tail" if full else ""
        sql = f"""SELECT r.id, r.name, r.method, r.model, r.dataset, r.status, r.device, r.created, r.started,
                  r.ended, r.pid, r.pid_start, r.host, r.heartbeat, r.error, r.attempt, r.attempt_started,
                  r.earlier_active_s{heavy},
                  COALESCE((SELECT json_extract(e.payload, '$.new') FROM events e WHERE e.run_id = r.id
                            AND e.kind = 'lam_change' ORDER BY e.id DESC LIMIT 1),
                           json_extract({config}, '$.reg.lam')) AS lam,
                  COALESCE(json_extract({summary}, '$.final_acc'), {latest.format('val_acc')}) AS val_acc,
                  COALESCE(json_extract({summary}, '$.compression'), {latest.format('compression')}) AS compression,
                  COALESCE(json_extract({summary}, '$.average_bits'), {latest.format('avg_bits')}) AS avg_bits,
                  (SELECT max(step) FROM scalars s WHERE s.run_id = r.id AND s.key = 'loss') AS step
                  FROM runs r WHERE r.id IN (SELECT r.id FROM runs r {"WHERE " + where if where else ""}
                        ORDER BY r.created DESC, r.id DESC {"" if limit is None else f"LIMIT {int(limit)}"})
                  ORDER BY r.created DESC, r.id DESC"""   # headlines only for the rows kept by LIMIT
        cur = self.conn.execute(sql, args)
        names = [d[0] for d in cur.description]
        now = time.time()
        rows = []
        for values in cur.fetchall():
            row = dict(zip(names, values))
            row["duration"] = active_seconds(row, now)
            rows.append(row)
        return rows

    def update_run(self, run_id: str, expect_status: Optional[Iterable[str]] = None, **fields) -> bool:
        """Set columns of a run; with ``expect_status``, only if its status is one of those (a
        compare-and-set: two processes racing to end a run cannot overwrite each other). Returns
        whether the row changed."""
        self.require(run_id)
        unknown = set(fields) - _RUN_COLUMNS
        if unknown:
            raise RunStoreError(f"unknown run column(s) {sorted(unknown)}: allowed {sorted(_RUN_COLUMNS)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise RunStoreError(f"status {fields['status']!r} is invalid: allowed {', '.join(STATUSES)}")
        values = [to_json(v) if k in ("config", "summary") and not isinstance(v, str) else v for k, v in fields.items()]
        sql = f"UPDATE runs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?"
        args = [*values, run_id]
        if expect_status is not None:
            expected = list(expect_status)
            sql += f" AND status IN ({','.join('?' * len(expected))})"
            args += expected
        with self.write() as conn:
            return conn.execute(sql, args).rowcount == 1

    def delete_run(self, run_id: str) -> None:
        """Remove a run's rows (not its folder). Refused while it runs: stop it first."""
        if self.run(run_id)["status"] == "running":
            raise RunStoreError(f"run {run_id} is running: stop it first (`python -m msq stop {run_id}`)")
        with self.write() as conn:
            for table in ("scalars", "layer_series", "events", "controls", "layers"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    # -- layers --------------------------------------------------------------------------------
    def set_layers(self, run_id: str, layers: list[dict]) -> None:
        """Replace a run's layer table: dicts with idx, fqn, kind, shape, params, macs, bits, fixed."""
        self.require(run_id)
        rows = [(run_id, int(l["idx"]), l["fqn"], l.get("kind"), to_json(l.get("shape")), l.get("params"),
                 l.get("macs"), l.get("bits"), int(bool(l.get("fixed"))), l.get("fixed_reason")) for l in layers]
        with self.write() as conn:
            conn.execute("DELETE FROM layers WHERE run_id = ?", (run_id,))
            conn.executemany("INSERT INTO layers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def layers(self, run_id: str) -> list[dict]:
        self.require(run_id)
        cur = self.conn.execute("SELECT idx, fqn, kind, shape, params, macs, bits, fixed, fixed_reason FROM layers "
                                "WHERE run_id = ? ORDER BY idx", (run_id,))
        names = [d[0] for d in cur.description]
        out = [dict(zip(names, r)) for r in cur.fetchall()]
        for row in out:
            row["shape"], row["fixed"] = json.loads(row["shape"] or "null"), bool(row["fixed"])
        return out

    # -- controls (requests to a running worker) -----------------------------------------------
    def add_control(self, run_id: str, key: str, value=None, only_if_running: bool = False) -> Optional[int]:
        """Insert a control row; with ``only_if_running``, only while the run is running (checked in the
        same transaction as the insert, so a run that ends meanwhile cannot leave it pending: None)."""
        self.require(run_id)
        with self.write() as conn:
            if only_if_running and conn.execute("SELECT 1 FROM runs WHERE id = ? AND status = 'running'",
                                                (run_id,)).fetchone() is None:
                return None
            return conn.execute("INSERT INTO controls (run_id, key, value, t) VALUES (?, ?, ?, ?)",
                                (run_id, key, to_json(value), time.time())).lastrowid

    def take_controls(self, run_id: str, step: Optional[int] = None) -> list[tuple[str, object]]:
        """Pending controls as (key, value), oldest first, marked consumed (see ``take_pending_controls``)."""
        return [(c["key"], c["value"]) for c in self.take_pending_controls(run_id, step)]

    def take_pending_controls(self, run_id: str, step: Optional[int] = None) -> list[dict]:
        """Pending controls ({id, key, value}), oldest first, marked consumed at ``step`` with outcome
        "applied" (``set_control_outcome`` corrects that for one the worker ignores). The common case
        (none) is one indexed read."""
        self.require(run_id)
        pending = self.conn.execute("SELECT id, key, value FROM controls WHERE run_id = ? AND consumed IS NULL "
                                    "AND outcome IS NULL ORDER BY id", (run_id,)).fetchall()
        if not pending:
            return []
        taken = []
        with self.write() as conn:
            for control_id, key, value in pending:
                if conn.execute("UPDATE controls SET consumed = ?, step = ?, outcome = 'applied' WHERE id = ? "
                                "AND consumed IS NULL AND outcome IS NULL", (time.time(), step, control_id)).rowcount:
                    taken.append({"id": control_id, "key": key, "value": json.loads(value) if value else None})
        return taken

    def set_control_outcome(self, control_id: int, outcome: str, note: str = "") -> None:
        with self.write() as conn:
            conn.execute("UPDATE controls SET outcome = ?, note = ? WHERE id = ?", (outcome, note, control_id))

    def controls(self, run_id: str) -> list[dict]:
        """Every control of a run, oldest first: consumed (when a worker took it, at ``step``) and outcome
        ("applied", "ignored", "superseded" by a later λ change, "not_applied"; None while pending) with its ``note``."""
        self.require(run_id)
        cur = self.conn.execute("SELECT id, key, value, t, consumed, step, outcome, note FROM controls "
                                "WHERE run_id = ? ORDER BY id", (run_id,))
        return [{"id": i, "key": k, "value": json.loads(v) if v else None, "t": t, "consumed": c, "step": s,
                 "outcome": o, "note": n} for i, k, v, t, c, s, o, n in cur.fetchall()]
