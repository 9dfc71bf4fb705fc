"""The multi-bit run page's charts: accuracy per width over epochs and at the end (unseen widths marked),
coreset sizes, overlap and EL2N score quantiles per width, and where the time went. Pure: data in,
``plotly.graph_objects.Figure`` out; every width in its colour of the one bit scale.
"""
from __future__ import annotations

from typing import Optional, Sequence

import plotly.graph_objects as go

from dashboard.components.charts import event_marks
from dashboard.components.multibit import by_width, scores_by_width
from msq.report.figures import INK, MUTED, base_layout, bit_color

SCORING_COLOR, TRAINING_COLOR = "#7c3aed", "#0f766e"   # coreset scoring vs training steps (not widths)
SCORE_KEYS = ("q10", "q50", "q90", "mean")


def _name(b: int, unseen: bool) -> str:
    return f"{b} bits" + (" (unseen)" if unseen else "")


def _phase_marks(events: Sequence[dict]) -> tuple[list, list]:
    return event_marks([e for e in events if e["kind"] == "phase"], "epoch")


def accuracy_per_width(scalars: dict, trained: Sequence[int], unseen: Sequence[int], events: Sequence[dict] = (),
                       float_acc: Optional[float] = None) -> go.Figure:
    """Validation accuracy of every width after each epoch: trained widths solid, unseen widths dashed."""
    shapes, notes = _phase_marks(events)
    if float_acc is not None:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": float_acc,
                       "y1": float_acc, "line": {"color": MUTED, "width": 1, "dash": "dot"}})
        notes.append({"xref": "paper", "x": 0, "xanchor": "left", "yref": "y", "y": float_acc, "yanchor": "bottom",
                      "showarrow": False, "font": {"size": 10, "color": MUTED}, "text": f"float {float_acc:.1f}%"})
    fig = go.Figure(layout=base_layout("Accuracy per width over epochs (dashed: never trained)", 360, "epoch",
                                       "validation accuracy (%)", shapes=shapes, annotations=notes))
    series = by_width(scalars, "acc")
    for b in sorted(set(trained) | set(unseen)):
        s = series.get(b)
        if not s or not s.get("epoch"):
            continue
        is_unseen = b in unseen and b not in trained
        fig.add_trace(go.Scatter(x=s["epoch"], y=s["value"], mode="lines+markers", name=_name(b, is_unseen),
                                 line={"color": bit_color(b), "width": 1.6 if is_unseen else 2.2,
                                       "dash": "dash" if is_unseen else "solid"},
                                 marker={"size": 6, "symbol": "circle-open" if is_unseen else "circle",
                                         "color": bit_color(b), "line": {"width": 1.5, "color": bit_color(b)}},
                                 hovertemplate=f"{_name(b, is_unseen)} · epoch %{{x}}: %{{y:.2f}}%<extra></extra>"))
    _epoch_axis(fig)
    return fig


def accuracy_vs_width(acc: dict[int, float], trained: Sequence[int], unseen: Sequence[int],
                      sizes: Optional[dict[int, dict]] = None) -> go.Figure:
    """Accuracy at every width after the last epoch; unseen widths as open markers, labelled."""
    sizes = sizes or {}
    widths = sorted(acc)
    layout = base_layout("Accuracy vs width at the end (open: unseen widths)", 360, "weight width (bits)",
                         "validation accuracy (%)")
    fig = go.Figure(layout=layout)
    if widths:
        fig.add_trace(go.Scatter(x=widths, y=[acc[b] for b in widths], mode="lines", showlegend=False,
                                 hoverinfo="skip", line={"color": "#cbd5e1", "width": 1.5}))
    for label, group, symbol in (("trained width", [b for b in widths if b not in unseen or b in trained], "circle"),
                                 ("unseen width (never trained)", [b for b in widths if b in unseen and b not in trained],
                                  "circle-open")):
        if not group:
            continue
        custom = [[sizes.get(b, {}).get("avg_bits"), sizes.get(b, {}).get("compression")] for b in group]
        has_size = all(c[0] is not None for c in custom)
        fig.add_trace(go.Scatter(
            x=group, y=[acc[b] for b in group], mode="markers+text", name=label,
            text=[f"{acc[b]:.1f}%" for b in group], textposition="top center",
            textfont={"size": 10, "color": MUTED},
            marker={"symbol": symbol, "size": 14, "color": [bit_color(b) for b in group],
                    "line": {"width": 2.5 if symbol == "circle-open" else 1,
                             "color": [bit_color(b) for b in group] if symbol == "circle-open" else INK}},
            customdata=custom,
            hovertemplate="%{x} bits" + (" (unseen)" if symbol == "circle-open" else "") + ": %{y:.2f}%"
                          + ("<br>%{customdata[0]:.2f} bits per weight on average · %{customdata[1]:.2f}×"
                             if has_size else "") + "<extra></extra>"))
    if widths:
        lo, hi = min(acc.values()), max(acc.values())
        pad = max(1.0, 0.15 * (hi - lo))
        fig.update_yaxes(range=[lo - pad, hi + 2 * pad])   # room above for the labels
    fig.update_xaxes(dtick=1, range=[min(widths, default=1) - 0.6, max(widths, default=8) + 0.6])
    return fig


def coreset_sizes(scalars: dict, trained: Sequence[int], fraction: Optional[float] = None,
                  selections: Sequence[int] = ()) -> go.Figure:
    """Samples in each width's coreset per epoch; the full training set (size / fraction) dotted."""
    series = by_width(scalars, "coreset_size")
    shapes, notes = _selection_marks(selections)
    full = None
    if fraction and series:
        first = next(iter(series.values()))
        if first.get("value"):
            full = round(first["value"][-1] / fraction)
            shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": full, "y1": full,
                           "line": {"color": MUTED, "width": 1, "dash": "dot"}})
            notes.append({"xref": "paper", "x": 1, "xanchor": "right", "yref": "y", "y": full, "yanchor": "top",
                          "showarrow": False, "font": {"size": 10, "color": MUTED},
                          "text": f"full training set ≈ {full:,} samples"})
    last = {b: s["value"][-1] for b, s in series.items() if s.get("value")}
    same = len(set(last.values())) == 1 and all(len(set(s["value"])) == 1 for s in series.values())
    title = (f"Coreset size per width (every width: {next(iter(last.values())):,.0f} samples)" if same and last
             else "Coreset size per width")
    fig = go.Figure(layout=base_layout(title, 320, "epoch", "samples in the coreset", shapes=shapes,
                                       annotations=notes))
    for b, s in series.items():
        fig.add_trace(go.Scatter(x=s["epoch"], y=s["value"], mode="lines+markers", name=_name(b, False),
                                 line={"color": bit_color(b), "width": 2, "shape": "hv"}, marker={"size": 6},
                                 hovertemplate=f"{b} bits · epoch %{{x}}: %{{y:,.0f}} samples<extra></extra>"))
    fig.update_yaxes(rangemode="tozero")
    _epoch_axis(fig)
    return fig


def coreset_overlap(scalars: dict, trained: Sequence[int], fraction: Optional[float] = None,
                    selections: Sequence[int] = ()) -> go.Figure:
    """How much the widths' subsets overlap (mean pairwise Jaccard) and how much of each width's subset a
    re-selection kept, with the overlap two random subsets of that fraction would have, f / (2 − f)."""
    shapes, notes = _selection_marks(selections)
    if fraction and 0 < fraction < 1:
        chance = fraction / (2 - fraction)
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": chance, "y1": chance,
                       "line": {"color": MUTED, "width": 1, "dash": "dot"}})
        notes.append({"xref": "paper", "x": 1, "xanchor": "right", "yref": "y", "y": chance, "yanchor": "bottom",
                      "showarrow": False, "font": {"size": 10, "color": MUTED},
                      "text": f"random subsets: {chance:.2f}"})
    fig = go.Figure(layout=base_layout("Coreset overlap (Jaccard |A∩B| / |A∪B|)", 320, "epoch",
                                       "Jaccard similarity (0–1)", shapes=shapes, annotations=notes))
    overlap = scalars.get("coreset_overlap") or {}
    if overlap.get("epoch"):
        fig.add_trace(go.Scatter(x=overlap["epoch"], y=overlap["value"], mode="lines+markers",
                                 name="between widths", line={"color": INK, "width": 2, "shape": "hv"},
                                 marker={"size": 6},
                                 hovertemplate="epoch %{x}: widths' subsets overlap %{y:.2f}<extra></extra>"))
    kept = [(b, e, v) for b, s in by_width(scalars, "coreset_kept").items() for e, v in zip(s["epoch"], s["value"])]
    if kept:   # one legend entry; each width's point in its colour, side by side at its epoch
        widths = sorted({b for b, _, _ in kept})
        offset = {b: 0.06 * (i - (len(widths) - 1) / 2) for i, b in enumerate(widths)}
        fig.add_trace(go.Scatter(x=[e + offset[b] for b, e, _ in kept], y=[v for _, _, v in kept], mode="markers",
                                 name="each width: kept vs its previous subset",
                                 marker={"size": 10, "symbol": "diamond", "color": [bit_color(b) for b, _, _ in kept],
                                         "line": {"color": INK, "width": 0.8}},
                                 customdata=[[b, e] for b, e, _ in kept],
                                 hovertemplate="%{customdata[0]} bits · re-selection logged at epoch %{customdata[1]}: "
                                               "Jaccard %{y:.2f} with the previous subset<extra></extra>"))
    fig.update_yaxes(range=[0, 1.05])
    _epoch_axis(fig)
    return fig


def score_quantiles(scalars: dict, trained: Sequence[int], selections: Sequence[int] = ()) -> go.Figure:
    """EL2N score distribution per width at the latest selection: a bar from the 10% to the 90% quantile
    in the width's colour, a tick at the median and a diamond at the mean."""
    scores = scores_by_width(scalars)
    widths = [b for b in sorted(scores) if set(SCORE_KEYS) <= set(scores[b])]
    epochs = sorted({e for b in widths for e in scores[b]["q50"]["epoch"]})
    fresh = [e for e in epochs if e in set(selections)] or epochs
    epoch = fresh[-1] if fresh else None
    title = "EL2N importance ‖softmax − one-hot‖₂ per width" + (f" (epoch {epoch})" if epoch else "")
    fig = go.Figure(layout=base_layout(title, 320, "weight width (bits)", "EL2N score"))
    stats = {b: {k: _at_epoch(scores[b][k], epoch) for k in SCORE_KEYS} for b in widths}
    xs = [str(b) for b in widths if None not in stats[b].values()]
    if not xs:
        return fig
    rows = [stats[int(x)] for x in xs]
    fig.add_trace(go.Bar(x=xs, y=[r["q90"] - r["q10"] for r in rows], base=[r["q10"] for r in rows], width=0.5,
                         name="10%–90% of the samples", marker={"color": [bit_color(int(x)) for x in xs],
                                                                "line": {"color": INK, "width": 0.6}},
                         customdata=[[r["q10"], r["q50"], r["q90"], r["mean"]] for r in rows],
                         hovertemplate="%{x} bits: q10 %{customdata[0]:.3f} · median %{customdata[1]:.3f} · "
                                       "q90 %{customdata[2]:.3f} · mean %{customdata[3]:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=xs, y=[r["q50"] for r in rows], mode="markers", name="median",
                             marker={"symbol": "line-ew", "size": 34, "line": {"color": INK, "width": 2.5}},
                             hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=xs, y=[r["mean"] for r in rows], mode="markers", name="mean",
                             marker={"symbol": "diamond", "size": 9, "color": "white", "line": {"color": INK, "width": 1.5}},
                             hoverinfo="skip"))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=xs)
    return fig


def _at_epoch(series: Optional[dict], epoch: int) -> Optional[float]:
    if not series:
        return None
    for e, v in zip(series.get("epoch", []), series.get("value", [])):
        if e == epoch:
            return v
    return None


def _epoch_axis(fig: go.Figure, max_ticks: int = 20) -> None:
    """A tick at every epoch while they fit; plotly's own spacing beyond."""
    xs = [x for t in fig.data if t.x is not None for x in t.x if x is not None]
    if xs and max(xs) - min(xs) <= max_ticks:
        fig.update_xaxes(dtick=1)


def _selection_marks(selections: Sequence[int], limit: int = 30) -> tuple[list, list]:
    """Faint vertical lines at the epoch rows where a coreset was (re)selected (not when there are so many
    that they would hide the data: re-selected every epoch of a long run)."""
    if len(selections) > limit:
        return [], []
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": e, "x1": e, "y0": 0, "y1": 1,
               "line": {"color": "#c4b5fd", "width": 1, "dash": "dot"}} for e in selections]
    return shapes, []


def epoch_times(scalars: dict) -> go.Figure:
    """Wall seconds per multi-bit epoch: coreset scoring (selection) stacked under the training steps."""
    layout = base_layout("Time per epoch: coreset scoring vs training", 320, "epoch", "seconds (wall clock)")
    layout["barmode"] = "stack"
    fig = go.Figure(layout=layout)
    for key, name, color in (("scoring_seconds", "coreset scoring (EL2N, every width)", SCORING_COLOR),
                             ("training_seconds", "training steps (every width)", TRAINING_COLOR)):
        s = scalars.get(key) or {}
        if s.get("epoch"):
            fig.add_trace(go.Bar(x=s["epoch"], y=s["value"], name=name, marker={"color": color},
                                 hovertemplate="epoch %{x}: %{y:.2f} s<extra>" + name + "</extra>"))
    _epoch_axis(fig)
    return fig


def time_comparison(saving: dict) -> go.Figure:
    """This coreset run's time beside full-data training: measured, or an estimate drawn hatched."""
    this, full = saving["this"], saving["full"]
    rows = [f"this run (coreset {saving['fraction']:.0%})", full["label"]]
    layout = base_layout(f"Multi-bit training time: {saving['speedup']:.2f}× "
                         + ("faster" if saving["speedup"] >= 1 else "slower")
                         + (" (estimate)" if full["estimated"] else ""), 240,
                         "seconds (wall clock, multi-bit phase)", "", barmode="stack")
    layout["yaxis"].update(type="category", categoryorder="array", categoryarray=rows[::-1], showgrid=False)
    layout["margin"] = {**layout["margin"], "l": 10}
    fig = go.Figure(layout=layout)
    pattern = {"shape": "/", "fgcolor": "white", "solidity": 0.3}
    fig.add_trace(go.Bar(y=rows, x=[this["scoring"], full["scoring"]], orientation="h", name="coreset scoring",
                         marker={"color": SCORING_COLOR},
                         hovertemplate="%{y}: %{x:.2f} s scoring<extra></extra>"))
    fig.add_trace(go.Bar(y=rows, x=[this["training"], full["training"]], orientation="h", name="training steps",
                         marker={"color": TRAINING_COLOR,
                                 "pattern": {**pattern, "shape": ["", "/" if full["estimated"] else ""]}},
                         hovertemplate="%{y}: %{x:.2f} s training<extra></extra>"))
    fig.add_trace(go.Scatter(y=rows, x=[this["total"], full["total"]], mode="text", showlegend=False,
                             text=[f"  {this['total']:.1f} s", f"  {full['total']:.1f} s"
                                   + (" (estimated)" if full["estimated"] else "")],
                             textposition="middle right", textfont={"size": 11, "color": INK}, hoverinfo="skip"))
    fig.update_xaxes(range=[0, max(this["total"], full["total"]) * 1.3])
    return fig


def loss_per_width(scalars: dict, trained: Sequence[int], events: Sequence[dict] = ()) -> go.Figure:
    """Training loss of each trained width per step (each on its own batch, or its coreset's)."""
    shapes, notes = event_marks([e for e in events if e["kind"] == "phase"], "step")
    fig = go.Figure(layout=base_layout("Training loss per width per step", 360, "training step",
                                       "loss (cross-entropy)", shapes=shapes, annotations=notes))
    for b, s in by_width(scalars, "loss").items():
        if b in trained and s.get("step"):
            fig.add_trace(go.Scattergl(x=s["step"], y=s["value"], mode="lines", name=_name(b, False),
                                       line={"color": bit_color(b), "width": 1.3}))
    return fig
