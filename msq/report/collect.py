"""What a report is built from, read once: the run row and its summary (store, else result.json), the
layer table, events, the latest per-layer vectors, the series the figures draw, and -- only when the
summary lacks something -- the run's last checkpoint.

Standard library only, except ``inspect_checkpoint`` which imports torch lazily (``msq.report`` must
import without torch: the dashboard imports it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from msq.jsonsafe import significant_finite
from msq.runs import RunStore
from msq.runs.checkpoint_files import existing, read_candidates

LAYER_METRICS = ("bits", "lsb_density", "quant_error", "sensitivity", "sensitivity_se")
SERIES_METRICS = ("bits", "lsb_density", "sensitivity", "sensitivity_se")
STEP_KEYS = ("loss", "task_loss", "reg", "lam", "lr")     # logged every step; everything else per epoch
MAX_SERIES_STEPS = 200                                       # heatmap columns kept in a report
MAX_EPOCH_POINTS = 1000


@dataclass
class Sources:
    run: dict                                   # the store's run row (config, summary parsed)
    run_dir: Path
    summary: Optional[dict] = None              # store summary, else result.json, else None
    summary_source: Optional[str] = None        # "store" | "result.json" | None
    layers: list = field(default_factory=list)  # store layer table rows
    events: list = field(default_factory=list)
    latest: dict = field(default_factory=dict)  # metric -> {"step", "epoch", "values"}
    last_step: Optional[int] = None             # latest step / epoch any scalar was stored at
    last_epoch: Optional[int] = None
    series: dict = field(default_factory=dict)  # {"epochs": {...}, "layers": {...}}
    checkpoint: Optional[dict] = None           # from inspect_checkpoint
    notes: list = field(default_factory=list)


def read_result_json(run_dir: Path) -> Optional[dict]:
    path = run_dir / "result.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def gather(store: RunStore, run_id: str, read_checkpoint: bool = True) -> Sources:
    """Read everything the report needs from the store and the run folder."""
    run = store.run(run_id)
    src = Sources(run=run, run_dir=store.run_dir(run_id))
    if run.get("summary"):
        src.summary, src.summary_source = run["summary"], "store"
    else:
        result = read_result_json(src.run_dir)
        if result is not None:
            src.summary, src.summary_source = result, "result.json"
    src.layers = store.layers(run_id)
    src.events = [{"step": e["step"], "epoch": e["epoch"], "t": e["t"], "kind": e["kind"], **e["payload"]}
                  for e in store.events(run_id)]
    for metric in LAYER_METRICS:
        vector = store.latest_vector(run_id, metric)
        if vector is not None:
            src.latest[metric] = vector
    scalars = store.latest_scalars(run_id).values()
    src.last_step = max((v["step"] for v in scalars if v["step"] is not None), default=None)
    src.last_epoch = max((v["epoch"] for v in scalars if v["epoch"] is not None), default=None)
    src.series = read_series(store, run_id)
    # the float-parameter table comes from the checkpoint; a summary-less run also takes its scales,
    # float-parameter count and timings from there
    if read_checkpoint and existing(read_candidates(src.run_dir)):
        src.checkpoint = inspect_checkpoint(src.run_dir, run.get("config") or {}, src.notes)
    return src


def read_series(store: RunStore, run_id: str) -> dict:
    """Per-epoch scalars (val_acc, compression, avg_bits, ...) and per-layer matrices (layer x step)."""
    keys = [k for k in store.scalar_keys(run_id) if k not in STEP_KEYS]
    epochs = {key: {k: [significant_finite(v) if k == "value" else v for v in values] for k, values in series.items()}
              for key, series in store.scalar_series(run_id, keys, max_points=MAX_EPOCH_POINTS).items()}
    layers = {}
    for metric in SERIES_METRICS:
        matrix = store.layer_matrix(run_id, metric, max_steps=MAX_SERIES_STEPS)
        if not matrix.steps:
            continue
        layers[metric] = {"step": list(matrix.steps), "epoch": list(matrix.epochs),
                          "values": [[significant_finite(float(v)) for v in row] for row in matrix.to_lists()]}
    return {"epochs": epochs, "layers": layers}


def inspect_checkpoint(run_dir: Path, config: dict, notes: list) -> Optional[dict]:
    """Rebuild the run's quantized model from its config and load its last checkpoint: exact float
    parameters (name, shape, role), scales, widths, act bits and timings. None (with a note) when that
    is not possible here."""
    try:
        from msq.report.rebuild import checkpoint_facts
        return checkpoint_facts(run_dir, config, notify=notes.append)   # a skipped damaged file: a note
    except Exception as exc:   # a report must still come out: say what is missing and why
        notes.append(f"could not read the checkpoint ({type(exc).__name__}: {exc}); float parameters are "
                     "not listed and summary-less totals may be incomplete")
        return None
