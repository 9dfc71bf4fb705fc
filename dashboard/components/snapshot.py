"""One run's data as the live page draws it, read from the store in one go (no streamlit here).

``read_snapshot`` does every store read the run page needs -- downsampled by the store itself, so a
run of 100 layers × 10k steps costs the same as a short one -- and the small derivations below turn
events and vectors into what the chart builders take (phase starts, prune markers, bits per epoch,
the accuracy-vs-compression trajectory).
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Optional

from dashboard.components.methods import prunes_lsbs, spec_of
from msq.config import RunConfig
from msq.errors import MSQError
from msq.runs import LayerMatrix, RunStore

MAX_HEATMAP_STEPS = 400      # heatmap columns read for the LSB density / sensitivity charts
MAX_BITS_STEPS = 2000        # rows of the bits matrix (grouped into epochs, so every epoch keeps a row)
MAX_CURVE_POINTS = 1500      # points per scalar curve
VECTOR_METRICS = ("lsb_density", "bits", "sensitivity", "sensitivity_se", "quant_error")


@dataclass
class RunSnapshot:
    run: dict                                  # the run row (config and summary parsed when readable)
    config: Optional[dict] = None              # the stored config, if it parses as a RunConfig
    config_error: Optional[str] = None         # why it does not, in words
    layers: list = field(default_factory=list)
    scalars: dict = field(default_factory=dict)      # key -> {"step", "epoch", "value"} (downsampled)
    latest: dict = field(default_factory=dict)       # key -> {"step", "epoch", "value"}
    density: Optional[LayerMatrix] = None
    bits: Optional[LayerMatrix] = None
    sensitivity: Optional[LayerMatrix] = None
    vectors: dict = field(default_factory=dict)      # metric -> latest {"step", "epoch", "values"}
    events: list = field(default_factory=list)
    read_seconds: float = 0.0

    @property
    def layer_names(self) -> list[str]:
        return [l["fqn"] for l in self.layers]

    @property
    def status(self) -> str:
        return self.run.get("status") or "unknown"

    @property
    def threshold(self) -> Optional[float]:
        """The prune threshold α of a method that prunes LSBs by their density (MSQ); None for the others."""
        if not prunes_lsbs(spec_of((self.config or {}).get("method"))):
            return None
        return (self.config or {}).get("prune", {}).get("threshold")


def read_run_row(store: RunStore, run_id: str) -> tuple[dict, Optional[str]]:
    """The run row and, if its stored config/summary is not readable JSON, a message saying so (the
    row then comes from the light listing, so the page still shows the run and its metrics)."""
    try:
        return store.run(run_id), None
    except (json.JSONDecodeError, sqlite3.OperationalError) as exc:
        rows = [r for r in store.list_runs(search=run_id) if r["id"] == run_id]
        if not rows:
            raise
        row = {**rows[0], "config": None, "summary": None, "log_tail": None}
        return row, f"the stored config or summary of run {run_id} is not valid JSON ({exc})"


def parse_config(row: dict) -> tuple[Optional[dict], Optional[str]]:
    config = row.get("config")
    if not isinstance(config, dict):
        return None, "this run has no readable config"
    try:
        return RunConfig.from_dict(config).to_dict(), None
    except MSQError as exc:
        return None, f"the stored config is invalid: {exc}"


def read_snapshot(store: RunStore, run_id: str, max_steps: int = MAX_HEATMAP_STEPS,
                  max_points: int = MAX_CURVE_POINTS) -> RunSnapshot:
    """Every read the run page needs. Raises RunStoreError for an unknown or malformed id."""
    started = time.perf_counter()
    row, row_error = read_run_row(store, run_id)
    config, config_error = parse_config(row)
    snap = RunSnapshot(run=row, config=config, config_error=row_error or config_error)
    snap.layers = store.layers(run_id)
    snap.scalars = store.scalar_series(run_id, max_points=max_points)
    snap.latest = {k: {"step": v["step"][-1], "epoch": v["epoch"][-1], "value": v["value"][-1]}
                   for k, v in snap.scalars.items() if v["step"]}
    metrics = set(store.vector_metrics(run_id))
    if "lsb_density" in metrics:
        snap.density = store.layer_matrix(run_id, "lsb_density", max_steps=max_steps)
    if "bits" in metrics:
        snap.bits = store.layer_matrix(run_id, "bits", max_steps=MAX_BITS_STEPS)
    if "sensitivity" in metrics:
        snap.sensitivity = store.layer_matrix(run_id, "sensitivity", max_steps=max_steps)
    for metric in VECTOR_METRICS:
        if metric in metrics:
            snap.vectors[metric] = store.latest_vector(run_id, metric)
    snap.events = store.events(run_id)
    snap.read_seconds = time.perf_counter() - started
    return snap


# -- derivations (pure) ---------------------------------------------------------------------------
def events_of(events: list, kind: str) -> list[dict]:
    """Events of one kind, flattened: {"step", "epoch", **payload}."""
    return [{"step": e["step"], "epoch": e["epoch"], **(e["payload"] or {})} for e in events if e["kind"] == kind]


def phase_starts(events: list, unit: str = "step") -> list[dict]:
    """[{"name", "x"}] at each phase start; in epochs the line sits between columns (x = epoch + 0.5,
    columns being numbered from 1)."""
    out = []
    for e in events_of(events, "phase"):
        value = e["step"] if unit == "step" else (e["epoch"] or 0) + 0.5
        if value is not None:
            out.append({"name": e.get("phase", "phase"), "x": value})
    return out


def double_pruned_layers(events: list) -> list[str]:
    """Layers that dropped two LSBs at once (Hessian-aware pruning) at least once."""
    return sorted({e["fqn"] for e in events_of(events, "prune") if e.get("k") == 2 and e.get("fqn")})


def bits_by_epoch(matrix: Optional[LayerMatrix], layers: list) -> tuple[list[int], list[list[float]]]:
    """(epochs numbered from 1, bits[layer][epoch]): the last logged widths of each epoch, and the
    current widths from the layer table as a last column when the run moved on since."""
    columns: dict[int, list[float]] = {}
    if matrix is not None and matrix.n_steps:
        n = matrix.n_layers
        for row, epoch in enumerate(matrix.epochs):
            columns[(epoch or 0) + 1] = matrix.values[row * n:(row + 1) * n].tolist()
    epochs = sorted(columns)
    current = [float(l["bits"]) if l.get("bits") is not None else None for l in layers]
    if epochs and any(c is not None for c in current) and current != columns[epochs[-1]][:len(current)]:
        columns[epochs[-1] + 1] = current
        epochs.append(epochs[-1] + 1)
    if not epochs and any(c is not None for c in current):
        columns, epochs = {1: current}, [1]
    n_layers = len(layers)
    return epochs, [[columns[e][i] if i < len(columns[e]) else None for e in epochs] for i in range(n_layers)]


def trajectory(scalars: dict, events: list) -> list[dict]:
    """The run's accuracy vs compression after each epoch: [{"epoch", "compression", "accuracy",
    "avg_bits", "phase"}]."""
    acc, comp, bits = (scalars.get(k) or {"epoch": [], "value": []} for k in ("val_acc", "compression", "avg_bits"))
    by_epoch = {e: {"epoch": e, "accuracy": v} for e, v in zip(acc["epoch"], acc["value"])}
    for e, v in zip(comp["epoch"], comp["value"]):
        by_epoch.setdefault(e, {"epoch": e})["compression"] = v
    for e, v in zip(bits["epoch"], bits["value"]):
        by_epoch.setdefault(e, {"epoch": e})["avg_bits"] = v
    starts = sorted(((p["epoch"] or 0), p.get("phase", "")) for p in events_of(events, "phase"))
    for e, point in by_epoch.items():
        names = [name for start, name in starts if start < e]
        point["phase"] = f"({names[-1]})" if names else ""
    return [by_epoch[e] for e in sorted(by_epoch)]
