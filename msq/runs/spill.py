"""The spill file: rows a worker could not write to the run store, kept in its run folder until they land.

When a write fails (the database locked past the busy timeout, the disk full), ``RunWriter`` appends
the rows it holds to ``<run folder>/store-spill-a<attempt>-p<pid>.jsonl`` (one JSON line per row,
fsynced) before training goes on, and keeps them in memory for the next try; once they land, the
file is removed. A worker that dies or gives up leaves the file behind, and the next attempt's
``replay`` writes every row the store lacks -- idempotently: scalars and vectors replace their
(run, key, step) row, events are keyed by their uid -- then removes the files.
"""
from __future__ import annotations

import base64
import json
import os
from pathlib import Path

SPILL_GLOB = "store-spill-*.jsonl"

SCALAR_SQL = "INSERT OR REPLACE INTO scalars VALUES (?, ?, ?, ?, ?)"
VECTOR_SQL = "INSERT OR REPLACE INTO layer_series (run_id, metric, step, epoch, vec) VALUES (?, ?, ?, ?, ?)"
EVENT_SQL = "INSERT OR IGNORE INTO events (run_id, step, epoch, t, kind, payload, uid) VALUES (?, ?, ?, ?, ?, ?, ?)"
BITS_SQL = "UPDATE layers SET bits = ? WHERE run_id = ? AND fqn = ?"


def spill_path(run_dir: Path, attempt: int) -> Path:
    return Path(run_dir) / f"store-spill-a{attempt}-p{os.getpid()}.jsonl"


def append(path: Path, records: list[tuple[str, list]]) -> None:
    """Append (table, row) records: "scalar" and "vector" rows without their run id (a vector's bytes
    in base64), "event" rows likewise, "bits" as [fqn, bits]. Durable when this returns."""
    if not records:
        return
    path.parent.mkdir(parents=True, exist_ok=True)   # the folder may have been deleted under the worker
    lines = []
    for table, row in records:
        if table == "vector":
            row = [*row[:3], base64.b64encode(row[3]).decode("ascii")]
        lines.append(json.dumps({"table": table, "row": row}) + "\n")
    with open(path, "a") as fh:
        fh.write("".join(lines))
        fh.flush()
        os.fsync(fh.fileno())


def read(path: Path) -> list[tuple[str, list]]:
    """The records of one spill file; a last line cut short by a crash is skipped."""
    records = []
    with open(path) as fh:
        for line in fh:
            try:
                record = json.loads(line)
                table, row = record["table"], record["row"]
            except (ValueError, KeyError, TypeError):
                continue
            if table == "vector":
                row = [*row[:3], base64.b64decode(row[3])]
            records.append((table, row))
    return records


def write_records(conn, run_id: str, records: list[tuple[str, list]]) -> None:
    """Insert spill records in ``conn``'s transaction (idempotent, see the module docstring)."""
    sql = {"scalar": SCALAR_SQL, "vector": VECTOR_SQL, "event": EVENT_SQL}
    for table, row in records:
        if table == "bits":
            conn.execute(BITS_SQL, (row[1], run_id, row[0]))
        elif table in sql:
            conn.execute(sql[table], (run_id, *row))


def leftovers(run_dir: Path, keep: Path | None = None) -> list[Path]:
    """Spill files earlier attempts (or processes) left in ``run_dir``, oldest first; not ``keep``."""
    try:
        paths = sorted(Path(run_dir).glob(SPILL_GLOB), key=lambda p: p.stat().st_mtime)
    except OSError:
        return []
    return [p for p in paths if keep is None or p != keep]
