"""Cross-run curves (the TensorBoard / W&B view): one chart per metric, every chosen run overlaid in
its own stable colour, an EMA-smoothed line over the raw curve drawn faint behind it, a linear or log
y axis, and x = step, epoch or training time. Pure: series in, ``plotly.graph_objects.Figure`` out.

    >>> smooth([1.0, 1.0, 1.0], 0.9).tolist()
    [1.0, 1.0, 1.0]
    >>> run_colors(["b", "a"]) == run_colors(["a", "b"])
    True
"""
from __future__ import annotations

import base64
import math
import zlib
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from msq.report.figures import MUTED, base_layout

# 12 run colours that read on white: Okabe-Ito's colour-blind-safe six (its yellow left out), four of Paul
# Tol's, grey and black
RUN_PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#882255", "#117733",
               "#332288", "#999933", "#6b7280", "#000000"]
# set values, not noisy measurements: drawn as steps and never smoothed (a smoothed λ would show a ramp
# that never happened)
EXACT_METRICS = frozenset({"lam", "lr", "bits", "avg_bits", "compression"})
DRAW_POINTS = 1500          # per trace: more than a chart's width in pixels
MIN_SMOOTHED_POINTS = 20    # per-epoch series (a handful of points) are drawn as measured, with markers
X_AXES = {"step": "training step", "epoch": "epoch", "time": "training time (s)"}
METRIC_TITLES = {"loss": "total loss", "task_loss": "task loss (cross-entropy)", "reg": "penalty λ·R",
                 "lam": "λ (penalty strength)", "lr": "learning rate", "val_acc": "validation accuracy (%)",
                 "train_acc": "training accuracy (%)", "val_loss": "validation loss", "train_loss": "training loss",
                 "avg_bits": "average bits per weight", "compression": "compression (× vs 32-bit float)",
                 "epoch_seconds": "seconds per epoch", "lsb_density": "LSB density", "bits": "bits"}


def run_colors(run_ids: Sequence[str]) -> dict[str, str]:
    """A colour per run that depends on the run, not on what else is chosen: its id's CRC picks a slot;
    a slot already taken by an older chosen run (ids sort by creation) moves to the next free one."""
    out, taken = {}, set()
    for run_id in sorted(set(run_ids)):
        slot = zlib.crc32(run_id.encode()) % len(RUN_PALETTE)
        for k in range(len(RUN_PALETTE)):
            if (slot + k) % len(RUN_PALETTE) not in taken or len(taken) >= len(RUN_PALETTE):
                slot = (slot + k) % len(RUN_PALETTE)
                break
        taken.add(slot)
        out[run_id] = RUN_PALETTE[slot]
    return out


def smooth(values: Sequence[Optional[float]], weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing): weight 0 = raw, 0.99 = very smooth.
    Gaps (None/NaN) stay gaps and do not feed the average; the first value is not pulled toward 0."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight = {weight!r} is invalid: allowed 0 <= weight < 1 (0 = raw curve)")
    y = np.array(values, dtype=float)   # None -> NaN
    if weight == 0.0 or y.size == 0:
        return y
    keep = np.flatnonzero(np.isfinite(y))
    out = np.full_like(y, np.nan)
    out[keep] = _ema(y[keep], weight)
    return out


def _ema(v: np.ndarray, w: float) -> np.ndarray:
    """acc_k = w·acc_(k−1) + (1−w)·v_k over a gap-free series, divided by its weight sum 1 − w^(k+1)
    (the debiasing), vectorised in blocks: within a block acc_k = w^(k+1)·acc_in + (1−w)·w^k·Σ_j v_j w^−j,
    with blocks short enough that w^−j stays below 1e100."""
    n = len(v)
    out = np.empty(n)
    block = max(1, int(100 / -math.log10(w)))
    acc = 0.0
    for start in range(0, n, block):
        chunk = v[start:start + block]
        powers = w ** np.arange(len(chunk))
        out[start:start + len(chunk)] = w * powers * acc + (1.0 - w) * powers * np.cumsum(chunk / powers)
        acc = out[start + len(chunk) - 1]
    return out / (1.0 - w ** np.arange(1, n + 1))


def training_time(steps: Sequence[int], epoch_ends: Sequence[tuple[int, float]]) -> np.ndarray:
    """Seconds of training at each step, from the per-epoch timings [(step at epoch end, seconds)]:
    linear within an epoch, the last epoch's pace past the last finished one. Time a run spent stopped
    or queued is not counted (it is not in any epoch's seconds)."""
    s = np.asarray(steps, dtype=float)
    if not epoch_ends:
        return np.full_like(s, np.nan)
    ends = np.asarray([0.0] + [e for e, _ in epoch_ends], dtype=float)
    times = np.concatenate([[0.0], np.cumsum([max(0.0, t or 0.0) for _, t in epoch_ends])])
    out = np.interp(s, ends, times)
    span = ends[-1] - ends[-2]
    if span > 0:
        pace = (times[-1] - times[-2]) / span
        past = s > ends[-1]
        out[past] = times[-1] + (s[past] - ends[-1]) * pace
    return out


def packed(values) -> dict:
    """A float array as plotly's typed-array spec (float32, base64): a fifth of the JSON of a list of
    floats, decoded by plotly.js without parsing. 2-D arrays (customdata) keep their shape."""
    a = np.ascontiguousarray(values, dtype="<f4")
    out = {"dtype": "f4", "bdata": base64.b64encode(a.tobytes()).decode("ascii")}
    if a.ndim > 1:
        out["shape"] = ",".join(str(n) for n in a.shape)
    return out


def unpacked(spec) -> np.ndarray:
    """The inverse of ``packed`` (a plain list passes through): for tests and callers reading a figure."""
    if isinstance(spec, dict) and "bdata" in spec:
        a = np.frombuffer(base64.b64decode(spec["bdata"]), dtype="<" + spec["dtype"])
        return a.reshape([int(n) for n in spec["shape"].split(",")]) if spec.get("shape") else a
    return np.asarray(spec, dtype=float)


def thin(n: int, max_points: int = DRAW_POINTS) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spaced points out of ``n``, the first and last kept: a
    chart 700 pixels wide shows no more, and the browser redraws every chart at each live refresh."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))


def curve_figure(metric: str, runs: Sequence[dict], x: str = "step", smoothing: float = 0.0, log_y: bool = False,
                 title: Optional[str] = None, height: int = 320) -> go.Figure:
    """One metric over several runs. ``runs``: dicts with "id", "label", "color", "step", "epoch",
    "value" (lists) and, for ``x="time"``, "time" (seconds per point). With smoothing on, a noisy
    per-step series is smoothed over all its points and drawn over its faint raw curve; exact
    quantities (λ, bits) and short per-epoch series stay as measured. Each trace is drawn at most
    ``DRAW_POINTS`` points (arrays packed as float32). A log axis leaves out values <= 0 and says so."""
    if x not in X_AXES:
        raise ValueError(f"x = {x!r} is invalid: allowed {', '.join(X_AXES)}")
    name = title or METRIC_TITLES.get(metric, metric)
    layout = base_layout(name, height, X_AXES[x], name + (" (log)" if log_y else ""), hovermode="closest",
                         uirevision=f"curves-{metric}-{x}-{log_y}")
    layout["yaxis"]["type"] = "log" if log_y else "linear"
    layout["legend"]["itemclick"] = "toggle"
    data, hidden = [], 0
    exact = metric in EXACT_METRICS
    for run in runs:
        y = np.array(run["value"], dtype=float)   # None -> NaN
        xs = np.array(run.get(x) or [None] * len(y), dtype=float)
        if log_y:
            bad = ~(y > 0)
            hidden += int(np.count_nonzero(bad & np.isfinite(y)))
            y = np.where(bad, np.nan, y)
        short = len(y) < MIN_SMOOTHED_POINTS
        smoothed = smoothing > 0 and not exact and not short
        keep = thin(len(y))
        epochs = np.array(run["epoch"], dtype=float)
        custom = np.column_stack([np.asarray(run["step"], dtype=float)[keep], epochs[keep], y[keep]])
        hover = (f"<b>{run['label']}</b><br>{name}: %{{y:.4g}}" + (" (smoothed; raw %{customdata[2]:.4g})"
                                                                  if smoothed else "")
                 + "<br>step %{customdata[0]:.0f} · epoch %{customdata[1]:.0f}<extra></extra>")
        base = {"type": "scattergl", "x": packed(xs[keep]), "name": run["label"], "legendgroup": run["id"]}
        if smoothed:
            data.append({**base, "y": packed(y[keep]), "mode": "lines", "showlegend": False, "hoverinfo": "skip",
                         "opacity": 0.25, "line": {"color": run["color"], "width": 1}})
            y = smooth(y, smoothing)
        data.append({**base, "y": packed(y[keep]), "mode": "lines+markers" if short else "lines",
                     "customdata": packed(custom), "hovertemplate": hover,
                     "line": {"color": run["color"], "width": 1.8, **({"shape": "hv"} if exact else {})},
                     "marker": {"size": 6, "color": run["color"]}})
    shapes, notes = [], []
    for run in runs:   # a stop or resume in the run's own colour (a resume trains the steps after its checkpoint again)
        for mark in run.get("marks") or ():
            at = mark.get(x)
            if at is None or (isinstance(at, float) and math.isnan(at)):
                continue
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": at, "x1": at, "y0": 0, "y1": 1,
                           "line": {"color": run["color"], "width": 1.2, "dash": "dot"}})
            notes.append({"xref": "x", "yref": "paper", "x": at, "y": 1.0, "yanchor": "bottom", "showarrow": False,
                          "text": "resumed" if mark["kind"] == "resume" else "stopped",
                          "font": {"size": 10, "color": run["color"]}})
    layout["shapes"], layout["annotations"] = shapes, notes
    if hidden:
        layout["annotations"] = notes + [{"xref": "paper", "yref": "paper", "x": 1.0, "y": 1.0, "xanchor": "right",
                                  "yanchor": "bottom", "showarrow": False, "font": {"size": 10, "color": MUTED},
                                  "text": f"{hidden} value{'s' if hidden != 1 else ''} ≤ 0 left out of the log axis"}]
    return go.Figure({"data": data, "layout": layout}, _validate=False)
