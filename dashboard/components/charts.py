"""Dashboard-only charts (loss/accuracy curves, λ over steps, chosen layers' LSB density, λ sweeps),
built with plotly in the same style as the shared specs of ``msq.report.figures``. Pure: data in,
``plotly.graph_objects.Figure`` out, no streamlit.
"""
from __future__ import annotations

from typing import Optional, Sequence

import plotly.graph_objects as go

from dashboard.components.methods import knob_of, steers_lam
from msq.report.figures import INK, MUTED, axis, base_layout, bit_color, log_ticks, phase_label

LINE_COLORS = {"loss": INK, "task_loss": "#0f766e", "reg": "#7c3aed", "val_acc": "#0f766e",
               "train_acc": "#94a3b8", "avg_bits": "#92400e", "lam": "#7c3aed"}
LAYER_PALETTE = ["#332288", "#44aa99", "#882255", "#117733", "#aa4499", "#999933", "#88ccee", "#cc6677",
                 "#661100", "#6699cc"]   # Paul Tol's muted palette: layers, not widths


def to_figure(spec: dict, uirevision: Optional[str] = None) -> go.Figure:
    """A shared plotly-JSON spec as a Figure; ``uirevision`` keeps zoom/pan across live refreshes.
    Not re-validated here (a third of a refresh's time on big heatmaps): the builders' tests validate
    every spec through plotly."""
    fig = go.Figure(spec, _validate=False)
    if uirevision is not None:
        fig.update_layout(uirevision=uirevision)
    return fig


def _series(scalars: dict, key: str) -> tuple[list, list, list]:
    s = scalars.get(key) or {}
    return s.get("step", []), s.get("epoch", []), s.get("value", [])


def merge_lam_changes(events: Sequence[dict], seconds: float = 5.0) -> list[dict]:
    """Consecutive λ changes less than ``seconds`` apart (wall time) become one (first old → last new), so
    a slider moved through several values reads as one change."""
    out: list[dict] = []
    for e in events:
        prev = out[-1] if out else None
        if (e["kind"] == "lam_change" and prev is not None and prev["kind"] == "lam_change"
                and e.get("t") is not None and prev.get("t") is not None and e["t"] - prev["t"] <= seconds):
            out[-1] = {**e, "payload": {**e["payload"], "old": prev["payload"].get("old")}}
        else:
            out.append(e)
    return out


def event_marks(events: Sequence[dict], unit: str = "step") -> tuple[list, list]:
    """Shapes and annotations for phase starts (dotted), λ changes (dashed, labelled), stops and resumes."""
    shapes, notes = [], []
    for e in merge_lam_changes(events):
        x = e["step"] if unit == "step" else (e["epoch"] or 0) + (0.5 if e["kind"] == "phase" else 0)
        if x is None:
            continue
        p = e.get("payload") or {}
        if e["kind"] == "phase":
            style, text = {"color": MUTED, "width": 1, "dash": "dot"}, p.get("phase", "phase")
        elif e["kind"] == "lam_change":
            style, text = {"color": LINE_COLORS["lam"], "width": 1.2, "dash": "dash"}, \
                f"λ {p.get('old', 0):g}→{p.get('new', 0):g}"
        elif e["kind"] in ("stop", "nan"):
            style, text = {"color": "#b91c1c", "width": 1.5}, "stopped" if e["kind"] == "stop" else "NaN loss"
        elif e["kind"] == "resume":   # the steps after the checkpoint were dropped and trained again from here
            style, text = {"color": "#15803d", "width": 1.5, "dash": "dot"}, f"resumed at step {e['step']}"
        else:
            continue
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                       "line": style})
        notes.append(phase_label(x, text, style["color"]))
    return shapes, notes


def _prune_rug(prunes: Sequence[dict], unit: str = "step") -> Optional[go.Scatter]:
    """Prune events as ▼ along the bottom of a chart (on a hidden 0..1 axis), coloured by the new width."""
    prunes = [p for p in prunes if p.get(unit) is not None]
    if not prunes:
        return None
    return go.Scatter(x=[p[unit] for p in prunes], y=[0.03] * len(prunes), yaxis="y3", mode="markers",
                      name="LSB prune", marker={"symbol": "triangle-up", "size": 9,
                                                 "color": [bit_color(p.get("new_bits")) for p in prunes],
                                                 "line": {"color": INK, "width": 0.6}},
                      customdata=[[p.get("fqn"), p.get("old_bits"), p.get("new_bits")] for p in prunes],
                      hovertemplate="%{customdata[0]}: %{customdata[1]} → %{customdata[2]} bits at "
                                    + unit + " %{x}<extra></extra>")


def loss_curves(scalars: dict, events: Sequence[dict], prunes: Sequence[dict] = (),
                method: Optional[str] = None) -> go.Figure:
    """Loss per step: total, task (cross-entropy) and the method's penalty (its knob's legend: MSQ's λ·R,
    BSQ's α·R; "penalty" for a method without one; none drawn when it stayed 0), with phase/λ/prune marks.
    ``method`` None: the default method's (an old run without one)."""
    shapes, notes = event_marks(events, "step")
    knob = knob_of(method)
    penalty = knob.penalty if knob else "penalty"
    names = {"loss": "total loss", "task_loss": "task loss (cross-entropy)", "reg": penalty}
    if not any(v for v in _series(scalars, "reg")[2]):
        names.pop("reg")
    y_title = "loss (cross-entropy + " + penalty.split(" ")[0] + ")" if "reg" in names else "loss (cross-entropy)"
    fig = go.Figure(layout=base_layout("Training loss per step", 340, "training step", y_title,
                                       shapes=shapes, annotations=notes))
    positive = [v for key in names for v in _series(scalars, key)[2] if v is not None and v > 0]
    if positive and max(positive) / min(positive) > 30:   # λ·R can dwarf the task loss: log keeps both readable
        ticks = log_ticks(min(positive), max(positive))
        fig.update_yaxes(type="log", title_text="loss (log scale)", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    for key, name in names.items():
        steps, _, values = _series(scalars, key)
        if steps:
            fig.add_trace(go.Scattergl(x=steps, y=values, mode="lines", name=name,
                                       line={"color": LINE_COLORS[key], "width": 1.4 if key == "loss" else 1.1}))
    rug = _prune_rug(prunes)
    if rug is not None:
        fig.add_trace(rug)
        fig.update_layout(yaxis3={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True})
    return fig


def accuracy_curves(scalars: dict, events: Sequence[dict], float_acc: Optional[float] = None) -> go.Figure:
    """Validation and training accuracy per epoch, with the average width on the right axis."""
    shapes, notes = event_marks([e for e in events if e["kind"] == "phase"], "epoch")
    if float_acc is not None:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": float_acc,
                       "y1": float_acc, "line": {"color": MUTED, "width": 1, "dash": "dot"}})
    layout = base_layout("Accuracy and average bits per epoch", 340, "epoch", "accuracy (%)",
                         shapes=shapes, annotations=notes)
    _, _, bits_now = _series(scalars, "avg_bits")
    layout["yaxis2"] = axis("average bits / weight", overlaying="y", side="right", showgrid=False, dtick=1,
                            range=[0, max([8.0] + [b for b in bits_now if b is not None]) + 0.5])
    fig = go.Figure(layout=layout)
    for key, name in (("val_acc", "validation accuracy"), ("train_acc", "training accuracy")):
        _, epochs, values = _series(scalars, key)
        if epochs:
            fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=name,
                                     line={"color": LINE_COLORS[key], "width": 2 if key == "val_acc" else 1.2},
                                     marker={"size": 5},
                                     hovertemplate="epoch %{x}: %{y:.2f}%<extra>" + name + "</extra>"))
    _, epochs, bits = _series(scalars, "avg_bits")
    if epochs:
        fig.add_trace(go.Scatter(x=epochs, y=bits, mode="lines", name="average bits", yaxis="y2",
                                 line={"color": LINE_COLORS["avg_bits"], "width": 1.5, "dash": "dash", "shape": "hv"},
                                 hovertemplate="epoch %{x}: %{y:.2f} bits<extra>average bits</extra>"))
    return fig


def lam_curve(scalars: dict, events: Sequence[dict], label: str = "λ (LSB-penalty strength)") -> go.Figure:
    """λ in effect at each step (0 outside the search phase), with live changes marked. ``label`` names
    the strength (BSQ's decay α rides on the same scalar)."""
    shapes, notes = event_marks([e for e in events if e["kind"] in ("lam_change", "phase")], "step")
    steps, _, values = _series(scalars, "lam")
    positive = [v for v in values if v and v > 0]
    log = bool(positive) and max(positive) / min(positive) > 20
    symbol = label.split(" (")[0]
    layout = base_layout(f"{label} per step", 260, "training step", symbol + (" (log)" if log else ""),
                         shapes=shapes, annotations=notes)
    layout["yaxis"]["type"] = "log" if log else "linear"
    fig = go.Figure(layout=layout)
    if steps:
        fig.add_trace(go.Scattergl(x=steps, y=values, mode="lines", name=symbol, line={"color": LINE_COLORS["lam"],
                                                                                   "shape": "hv"}))
    return fig


def layer_lines(series: dict, threshold: Optional[float] = None, prunes: Sequence[dict] = ()) -> go.Figure:
    """LSB density over steps for the chosen layers (``series``: name -> {"step", "value"}), with α."""
    shapes, notes = [], []
    if threshold is not None:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": threshold,
                       "y1": threshold, "line": {"color": "#b91c1c", "width": 1, "dash": "dash"}})
        notes.append({"xref": "paper", "x": 1, "xanchor": "right", "yref": "y", "y": threshold, "yanchor": "bottom",
                      "showarrow": False, "text": f"α = {threshold:g}: at or below, the LSB is pruned",
                      "font": {"size": 10, "color": "#b91c1c"}})
    fig = go.Figure(layout=base_layout("LSB density of chosen layers", 340, "training step",
                                       "LSB density (fraction of odd codes)", shapes=shapes, annotations=notes))
    for i, (name, s) in enumerate(series.items()):
        color = LAYER_PALETTE[i % len(LAYER_PALETTE)]
        fig.add_trace(go.Scattergl(x=s["step"], y=s["value"], mode="lines", name=name,
                                   line={"color": color, "width": 1.4}))
        marks = [p for p in prunes if p.get("fqn") == name and p.get("step") is not None]
        if marks:
            fig.add_trace(go.Scatter(x=[p["step"] for p in marks], y=[p.get("density") for p in marks], mode="markers",
                                     showlegend=False, marker={"symbol": "triangle-down", "size": 10,
                                                               "color": [bit_color(p.get("new_bits")) for p in marks],
                                                               "line": {"color": color, "width": 1.5}},
                                     customdata=[[p.get("old_bits"), p.get("new_bits")] for p in marks],
                                     hovertemplate=name + ": %{customdata[0]} → %{customdata[1]} bits"
                                                          "<extra></extra>"))
    fig.update_yaxes(rangemode="tozero")
    return fig


def lam_sweep(runs: Sequence[dict], metric: str) -> go.Figure:
    """λ vs ``metric`` ("compression" or "accuracy") over the runs of methods steered by λ (reg.lam), log λ,
    points in their width's colour."""
    rows = [r for r in runs if r.get("lam") and r["lam"] > 0 and r.get(metric) is not None
            and steers_lam(r.get("method"))]   # the others' reg.lam is unused (BSQ's α is not a λ)
    rows.sort(key=lambda r: r["lam"])
    title, y_title = {"compression": ("λ vs compression", "compression (× vs 32-bit float)"),
                      "accuracy": ("λ vs accuracy", "validation accuracy (%)")}[metric]
    layout = base_layout(title, 340, "λ (log scale)", y_title)
    layout["xaxis"]["type"] = "log"
    if rows:
        ticks = log_ticks(rows[0]["lam"], rows[-1]["lam"])
        layout["xaxis"].update(tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
    fig = go.Figure(layout=layout)
    for method in sorted({r.get("method") or "?" for r in rows}):
        pts = [r for r in rows if (r.get("method") or "?") == method]
        fig.add_trace(go.Scatter(x=[r["lam"] for r in pts], y=[r[metric] for r in pts], mode="lines+markers",
                                 name=method,
                                 line={"color": "#9ca3af", "width": 1},
                                 marker={"size": 11, "color": [bit_color(r.get("avg_bits")) for r in pts],
                                         "line": {"color": INK, "width": 1}},
                                 text=[r.get("label") or "" for r in pts],
                                 hovertemplate="<b>%{text}</b><br>λ=%{x:g}: %{y:.2f}<extra></extra>"))
    return fig
