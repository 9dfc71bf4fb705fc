"""What the Curves view reads from the run store: each chosen run's scalar series and one layer's
per-layer series, downsampled by the store (never a whole run loaded), with the run's colour, label
and training time per point. No streamlit: a bench or a test calls it on a real store.

    series = read_curves(store, ["20260101-...", ...], ["loss", "val_acc"])
    series["loss"][0]   # {"id", "label", "color", "step", "epoch", "value", "time"}
"""
from __future__ import annotations

from typing import Optional, Sequence

from dashboard.components.curves import run_colors, training_time
from msq.runs import RunStore

MAX_POINTS = 5000            # per run and metric: a 5,000-step run is drawn in full, longer ones evenly thinned
FIRST_METRICS = ("loss", "val_acc", "avg_bits", "lam", "task_loss", "reg", "compression", "train_acc", "val_loss")
MARKED_EVENTS = ("stop", "resume")   # drawn on every chart in the run's colour: where its curve broke off
LAYER_METRICS = {"lsb_density": "LSB density", "bits": "bits"}


def metric_choices(store: RunStore, run_ids: Sequence[str]) -> list[str]:
    """Scalar keys any chosen run logged, the usual ones first (one index seek per key and run)."""
    keys = set()
    for run_id in run_ids:
        keys.update(store.scalar_keys(run_id))
    first = [k for k in FIRST_METRICS if k in keys]
    return first + sorted(keys - set(first))


def layer_choices(store: RunStore, run_ids: Sequence[str]) -> list[str]:
    """Layer names of the chosen runs, in the first run's order, then any others' extra layers."""
    names: dict[str, None] = {}
    for run_id in run_ids:
        names.update({l["fqn"]: None for l in store.layers(run_id)})
    return list(names)


def legend_label(row: dict) -> str:
    """"name · 1c3fa5": the run's name and its id's random tail (names repeat; the full id is long)."""
    name = row.get("name") or row.get("model") or "run"
    return f"{name} · {row['id'][-6:]}"


def _epoch_ends(store: RunStore, run_id: str) -> list[tuple[int, float]]:
    s = store.scalar_series(run_id, "epoch_seconds", max_points=None)["epoch_seconds"]
    return list(zip(s["step"], s["value"]))


def read_run_curves(store: RunStore, run_id: str, metrics: Sequence[str], layer: Optional[str] = None,
                    layer_metrics: Sequence[str] = (), max_points: int = MAX_POINTS) -> dict:
    """One run's series: {"marks": [stop/resume], "series": {metric: {"step", "epoch", "value", "time"}}},
    per-layer metrics keyed "lsb_density@layer"; metrics it did not log are left out. A finished run's
    result never changes, so a page may cache it by (run id, end time)."""
    ends = _epoch_ends(store, run_id)
    marks = [{"kind": e["kind"], "step": e["step"], "epoch": e["epoch"],
              "time": float(training_time([e["step"] or 0], ends)[0])}
             for e in store.events(run_id, kinds=MARKED_EVENTS)]
    series = {}
    for metric, s in store.scalar_series(run_id, list(metrics), max_points=max_points).items():
        if s["step"]:
            series[metric] = {**s, "time": training_time(s["step"], ends).tolist()}
    if layer and layer in {l["fqn"] for l in store.layers(run_id)}:
        for metric in layer_metrics:
            s = store.layer_series(run_id, metric, layer, max_points=max_points)
            if s["step"]:
                series[f"{metric}@{layer}"] = {**s, "time": training_time(s["step"], ends).tolist()}
    return {"marks": marks, "series": series}


def read_curves(store: RunStore, run_ids: Sequence[str], metrics: Sequence[str], layer: Optional[str] = None,
                layer_metrics: Sequence[str] = (), max_points: int = MAX_POINTS, rows: Optional[dict] = None,
                read_run=None) -> dict[str, list[dict]]:
    """{metric: [one dict per run that logged it: "id", "label", "color", "marks", "step", "epoch", "value",
    "time"]}. ``rows`` ({id: list_runs row}) saves a query for the labels; ``read_run(run_id)`` replaces
    ``read_run_curves`` (a page passes a cached one)."""
    colors = run_colors(run_ids)
    rows = rows or {r["id"]: r for r in store.list_runs() if r["id"] in set(run_ids)}
    keys = list(metrics) + ([f"{m}@{layer}" for m in layer_metrics] if layer else [])
    out: dict[str, list[dict]] = {k: [] for k in keys}
    for run_id in run_ids:
        got = read_run(run_id) if read_run else read_run_curves(store, run_id, metrics, layer, layer_metrics,
                                                                max_points)
        base = {"id": run_id, "label": legend_label(rows.get(run_id) or {"id": run_id}), "color": colors[run_id],
                "marks": got["marks"]}
        for key in keys:
            if key in got["series"]:
                out[key].append({**base, **got["series"][key]})
    return out
