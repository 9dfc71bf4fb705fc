"""The reads charts need, fast on long runs: downsampled scalar series, a layer x step matrix of one
metric, the latest vector, one layer's series, events. Standard library only; results are plain
lists and ``array('f')`` buffers that a dashboard turns into a DataFrame or an ndarray without copying
(``frombuffer(matrix.values, float32).reshape(matrix.n_steps, matrix.n_layers)``).

A mixin of ``RunStore``: it needs ``self.conn`` and ``self.require(run_id)``.
"""
from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field
from typing import Iterable, Optional

from msq.errors import RunStoreError
from msq.runs.series import NAN32, evenly_spaced, unpack_into, unpack_vector

# skip-scan for the distinct keys of one run: one index seek per key instead of a scan of every row
_DISTINCT = """WITH RECURSIVE k(x) AS (
    SELECT (SELECT min({col}) FROM {table} WHERE run_id = ?1)
    UNION ALL SELECT (SELECT min({col}) FROM {table} WHERE run_id = ?1 AND {col} > k.x) FROM k WHERE k.x IS NOT NULL)
    SELECT x FROM k WHERE x IS NOT NULL"""


@dataclass
class LayerMatrix:
    """One per-layer metric over steps: ``values`` is float32, row-major, one row per kept step."""
    metric: str
    steps: list[int]
    epochs: list[Optional[int]]
    layers: list[str]                       # layer names (fqn) in vector order
    values: array = field(default_factory=lambda: array("f"))

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def n_layers(self) -> int:
        return len(self.values) // len(self.steps) if self.steps else len(self.layers)

    def to_lists(self) -> list[list[float]]:
        """layer x step, as nested lists (for callers without an array library)."""
        n = self.n_layers
        return [self.values[i::n].tolist() for i in range(n)]


class SeriesReads:
    def scalar_keys(self, run_id: str) -> list[str]:
        self.require(run_id)
        return [r[0] for r in self.conn.execute(_DISTINCT.format(col="key", table="scalars"), (run_id,))]

    def scalar_series(self, run_id: str, keys: Optional[str | Iterable[str]] = None,
                      max_points: Optional[int] = 2000) -> dict[str, dict[str, list]]:
        """{key: {"step": [...], "epoch": [...], "value": [...]}}, each at most ``max_points`` evenly
        spaced rows, first and latest kept. ``keys`` None = every key."""
        self.require(run_id)
        keys = self.scalar_keys(run_id) if keys is None else [keys] if isinstance(keys, str) else list(keys)
        out = {}
        for key in keys:
            rows = self.conn.execute("SELECT step, epoch, value FROM scalars WHERE run_id = ? AND key = ? "
                                     "ORDER BY step", (run_id, key)).fetchall()
            rows = [rows[i] for i in evenly_spaced(len(rows), max_points)]
            out[key] = {"step": [r[0] for r in rows], "epoch": [r[1] for r in rows], "value": [r[2] for r in rows]}
        return out

    def latest_scalars(self, run_id: str) -> dict[str, dict]:
        """{key: {"step", "epoch", "value"}} of each key's latest row."""
        return {key: self._latest_scalar(run_id, key) for key in self.scalar_keys(run_id)}

    def latest_scalar(self, run_id: str, key: str) -> Optional[dict]:
        """{"step", "epoch", "value"} of ``key``'s latest row, None if it has none (one indexed read)."""
        self.require(run_id)
        return self._latest_scalar(run_id, key)

    def _latest_scalar(self, run_id: str, key: str) -> Optional[dict]:
        row = self.conn.execute("SELECT step, epoch, value FROM scalars WHERE run_id = ? AND key = ? "
                                "ORDER BY step DESC LIMIT 1", (run_id, key)).fetchone()
        return None if row is None else dict(zip(("step", "epoch", "value"), row))

    def vector_metrics(self, run_id: str) -> list[str]:
        self.require(run_id)
        return [r[0] for r in self.conn.execute(_DISTINCT.format(col="metric", table="layer_series"), (run_id,))]

    def layer_matrix(self, run_id: str, metric: str, max_steps: Optional[int] = 500) -> LayerMatrix:
        """The heatmap of ``metric``: at most ``max_steps`` evenly spaced logged steps (first and latest
        kept) x every layer. Only the kept rows' BLOBs are read."""
        self.require(run_id)
        layers = [r[0] for r in self.conn.execute("SELECT fqn FROM layers WHERE run_id = ? ORDER BY idx", (run_id,))]
        steps = [r[0] for r in self.conn.execute(
            "SELECT step FROM layer_series WHERE run_id = ? AND metric = ? ORDER BY step", (run_id, metric))]
        keep = evenly_spaced(len(steps), max_steps)
        # bounded by the last step seen: a writer appending meanwhile must not push the count past max_steps
        sql = "SELECT step, epoch, vec FROM layer_series WHERE run_id = ? AND metric = ? AND step <= ?"
        args: list = [run_id, metric, steps[-1] if steps else -1]
        if len(keep) < len(steps):
            sql += " AND step IN (SELECT value FROM json_each(?))"
            args.append(json.dumps([steps[i] for i in keep]))
        rows = self.conn.execute(sql + " ORDER BY step", args).fetchall()
        matrix = LayerMatrix(metric, [r[0] for r in rows], [r[1] for r in rows], layers)
        width = max((len(r[2]) for r in rows), default=0)
        for _, _, blob in rows:   # a short vector (should not happen) is padded with NaN to keep rows aligned
            unpack_into(matrix.values, blob if len(blob) == width else blob + NAN32 * ((width - len(blob)) // 4))
        return matrix

    def latest_vector(self, run_id: str, metric: str) -> Optional[dict]:
        """{"step", "epoch", "values": floats in layer order} of the latest logged row, or None."""
        self.require(run_id)
        row = self.conn.execute("SELECT step, epoch, vec FROM layer_series WHERE run_id = ? AND metric = ? "
                                "ORDER BY step DESC LIMIT 1", (run_id, metric)).fetchone()
        return None if row is None else {"step": row[0], "epoch": row[1], "values": unpack_vector(row[2])}

    def layer_series(self, run_id: str, metric: str, layer: int | str,
                     max_points: Optional[int] = None) -> dict[str, list]:
        """One layer's ``metric`` over steps: {"step", "epoch", "value"}. ``layer`` is its index or name.
        SQLite cuts the layer's 4 bytes out of each BLOB, so the read does not grow with the layer count."""
        index = self._layer_index(run_id, layer)
        rows = self.conn.execute(
            "SELECT step, epoch, CASE WHEN length(vec) >= ?3 THEN substr(vec, ?3 - 3, 4) ELSE ?4 END "
            "FROM layer_series WHERE run_id = ?1 AND metric = ?2 ORDER BY step",
            (run_id, metric, 4 * index + 4, NAN32)).fetchall()
        rows = [rows[i] for i in evenly_spaced(len(rows), max_points)]
        values = array("f")
        unpack_into(values, b"".join(r[2] for r in rows))
        return {"step": [r[0] for r in rows], "epoch": [r[1] for r in rows], "value": values.tolist()}

    def _layer_index(self, run_id: str, layer: int | str) -> int:
        self.require(run_id)
        names = [r[0] for r in self.conn.execute("SELECT fqn FROM layers WHERE run_id = ? ORDER BY idx", (run_id,))]
        if isinstance(layer, str):
            if layer not in names:
                raise RunStoreError(f"run {run_id} has no layer {layer!r}: its layers are {names}")
            return names.index(layer)
        if not isinstance(layer, int) or layer < 0 or (names and layer >= len(names)):
            raise RunStoreError(f"layer index {layer!r} is invalid for run {run_id}: allowed 0..{len(names) - 1}")
        return layer

    def events(self, run_id: str, kinds: Optional[str | Iterable[str]] = None, after_id: int = 0,
               limit: Optional[int] = None) -> list[dict]:
        """Events oldest first: {"id", "step", "epoch", "t", "kind", "payload"}. ``after_id`` lets a
        live view fetch only what is new since the last id it saw."""
        self.require(run_id)
        sql, args = "SELECT id, step, epoch, t, kind, payload FROM events WHERE run_id = ? AND id > ?", [run_id, after_id]
        if kinds is not None:
            kinds = [kinds] if isinstance(kinds, str) else list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args += kinds
        sql += " ORDER BY id" + (f" LIMIT {int(limit)}" if limit is not None else "")
        return [{"id": i, "step": s, "epoch": e, "t": t, "kind": k, "payload": json.loads(p)}
                for i, s, e, t, k, p in self.conn.execute(sql, args).fetchall()]
