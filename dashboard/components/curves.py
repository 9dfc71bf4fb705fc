"""Cross-run curves (the TensorBoard / W&B view): one chart per metric, every chosen run overlaid in
its own stable colour, an EMA-smoothed line over the raw curve drawn faint behind it, a linear or log
y axis, and x = step, epoch or training time. Pure: series in, ``plotly.graph_objects.Figure`` out.

    >>> smooth([1.0, 1.0, 1.0], 0.9).tolist()
    [1.0, 1.0, 1.0]
    >>> run_colors(["b", "a"]) == run_colors(["a", "b"])
    True
"""
from __future__ import annotations

import zlib
from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

from msq.report.figures import MUTED, base_layout

# Okabe-Ito's colour-blind-safe set plus four darker companions: 12 run colours that all read on white
RUN_PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#882255", "#117733",
               "#332288", "#999933", "#6b7280", "#000000"]
# set values, not noisy measurements: drawn as steps and never smoothed (a smoothed λ would show a ramp
# that never happened)
EXACT_METRICS = frozenset({"lam", "lr", "bits", "avg_bits", "compression"})
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
    y = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if weight == 0.0 or y.size == 0:
        return y
    keep = np.flatnonzero(np.isfinite(y))
    smoothed, acc, norm, rest = [], 0.0, 0.0, 1.0 - weight
    for v in y[keep].tolist():   # plain floats: 5,000 points in about a millisecond
        acc = weight * acc + rest * v
        norm = weight * norm + rest
        smoothed.append(acc / norm)
    out = np.full_like(y, np.nan)
    out[keep] = smoothed
    return out


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


def curve_figure(metric: str, runs: Sequence[dict], x: str = "step", smoothing: float = 0.0, log_y: bool = False,
                 title: Optional[str] = None, height: int = 320) -> go.Figure:
    """One metric over several runs. ``runs``: dicts with "id", "label", "color", "step", "epoch",
    "value" (lists) and, for ``x="time"``, "time" (seconds per point). With smoothing on, a noisy
    per-step series is drawn smoothed over its faint raw curve; exact quantities (λ, bits) and short
    per-epoch series stay as measured. A log axis leaves out values <= 0 (and says how many)."""
    if x not in X_AXES:
        raise ValueError(f"x = {x!r} is invalid: allowed {', '.join(X_AXES)}")
    name = title or METRIC_TITLES.get(metric, metric)
    layout = base_layout(name, height, X_AXES[x], name + (" (log)" if log_y else ""), hovermode="closest",
                         uirevision=f"curves-{metric}-{x}-{log_y}")
    layout["yaxis"]["type"] = "log" if log_y else "linear"
    layout["legend"]["itemclick"] = "toggle"
    fig = go.Figure(layout=layout)
    hidden = 0
    for run in runs:
        y = np.asarray([np.nan if v is None else v for v in run["value"]], dtype=float)
        xs = np.asarray([np.nan if v is None else v for v in run.get(x) or [None] * len(y)], dtype=float)
        if log_y:
            bad = ~(y > 0)
            hidden += int(np.count_nonzero(bad & np.isfinite(y)))
            y = np.where(bad, np.nan, y)
        custom = np.column_stack([np.asarray(run["step"], dtype=float),
                                  np.asarray([np.nan if e is None else e for e in run["epoch"]], dtype=float), y])
        hover = (f"<b>{run['label']}</b><br>{name}: %{{y:.4g}}" + (" (smoothed; raw %{customdata[2]:.4g})"
                                                                  if smoothing > 0 else "")
                 + "<br>step %{customdata[0]:.0f} · epoch %{customdata[1]:.0f}<extra></extra>")
        group = run["id"]
        exact = metric in EXACT_METRICS
        short = len(y) < MIN_SMOOTHED_POINTS
        line = {"color": run["color"], "width": 1.8, **({"shape": "hv"} if exact else {})}
        if smoothing > 0 and not exact and not short:
            fig.add_trace(go.Scattergl(x=xs, y=y, mode="lines", name=run["label"], legendgroup=group,
                                       showlegend=False, hoverinfo="skip", opacity=0.25,
                                       line={"color": run["color"], "width": 1}))
            y = smooth(y, smoothing)
        else:
            hover = hover.replace(" (smoothed; raw %{customdata[2]:.4g})", "")
        fig.add_trace(go.Scattergl(x=xs, y=y, mode="lines+markers" if short else "lines", name=run["label"],
                                   legendgroup=group, customdata=custom, hovertemplate=hover, line=line,
                                   marker={"size": 6, "color": run["color"]}))
    if hidden:
        fig.add_annotation(xref="paper", yref="paper", x=1.0, y=1.0, xanchor="right", yanchor="bottom",
                           showarrow=False, font={"size": 10, "color": MUTED},
                           text=f"{hidden} value{'s' if hidden != 1 else ''} ≤ 0 left out of the log axis")
    return fig
