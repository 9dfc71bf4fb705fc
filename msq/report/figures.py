"""The five charts the dashboard and the HTML report share, as plain plotly-JSON dicts.

Pure Python (no plotly, no numpy): ``{"data": [...], "layout": {...}}`` that plotly.js draws as is
(the report) and ``plotly.graph_objects.Figure(spec)`` wraps (the dashboard). Every colour and font is
spelled out in the layout -- no named template -- so both show the same chart with the same colours.

One discrete BIT COLOUR SCALE (``msq.report.chart_style``) is used everywhere a width is drawn.

    >>> bit_color(4)
    '#f1c232'
    >>> pareto_front([(4.0, 90.0), (8.0, 85.0), (6.0, 80.0)])
    [0, 1]
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

from msq.accounting import average_bits, compression_ratio
from msq.methods.registry import MethodSpec, find_method
from msq.report.chart_style import (  # noqa: F401  (re-exported: the scale is part of this API)
    BIT_COLORS, BIT_TEXT_COLORS, FLOAT_COLOR, MAX_BIT_COLOR, bit_key, bit_color, bit_label, bit_colorscale,
    DENSITY_COLORSCALE, RELATIVE_COLORSCALE, FONT, GRID, AXIS_LINE, INK, MUTED, axis, base_layout, log_ticks,
    layer_axis_height, clean_values, phase_marks, phase_label, category_axis)


# -- (1) current bit allocation -------------------------------------------------------------------
def bit_allocation_bars(layers: Sequence[dict], title: Optional[str] = None) -> dict:
    """Bars of each layer's width (colour = bits) over a log panel of its parameter count.
    ``layers``: dicts with "fqn", "bits", "params" and optionally "storage_bits", "fixed", "fixed_reason", "kind"."""
    names = [l["fqn"] for l in layers]
    params = [int(l.get("params") or 0) for l in layers]
    bits = [l.get("bits") for l in layers]
    # the title counts what storing a weight takes (BSQ's sign bit too: "storage_bits"), like every total
    stored = [l.get("storage_bits") if l.get("storage_bits") is not None else b for l, b in zip(layers, bits)]
    known = [(n, b) for n, b in zip(params, stored) if b is not None]
    total = sum(params) or 1
    avg = average_bits([n for n, _ in known], [b for _, b in known]) if known else None
    ratio = compression_ratio([n for n, _ in known], [b for _, b in known]) if known else None
    if title is None:
        title = "Bit allocation now" + (f" — {avg:.2f} bits on average, {ratio:.1f}× smaller weights"
                                        if avg else "")
    data = []
    for key in sorted({bit_key(b) for b in bits}, key=lambda k: -1 if k is None else k):
        idx = [i for i, b in enumerate(bits) if bit_key(b) == key]
        fixed = [bool(layers[i].get("fixed")) for i in idx]
        data.append({
            "type": "bar", "name": bit_label([bits[i] for i in idx]), "legendgroup": f"b{key}",
            "x": [names[i] for i in idx], "y": [bits[i] if bits[i] is not None else 0 for i in idx],
            "xaxis": "x", "yaxis": "y",
            "marker": {"color": bit_color(key), "line": {"color": "white", "width": 0.5},
                       "pattern": {"shape": ["/" if f else "" for f in fixed], "fgcolor": "rgba(255,255,255,0.6)",
                                   "fillmode": "overlay",
                                   "size": 6}},
            "text": [f"{bits[i]:g}" if bits[i] is not None else "" for i in idx], "textposition": "inside",
            "insidetextanchor": "end", "textfont": {"color": BIT_TEXT_COLORS.get(key, INK), "size": 11},
            "customdata": [[params[i], 100.0 * params[i] / total,
                            ("fixed: " + (layers[i].get("fixed_reason") or "not searched")) if layers[i].get("fixed")
                            else "searched"] for i in idx],
            "hovertemplate": "<b>%{x}</b><br>%{y} bits · %{customdata[0]:,} weights "
                             "(%{customdata[1]:.1f}% of all)<br>%{customdata[2]}<extra></extra>"})
    data.append({"type": "bar", "name": "weights", "showlegend": False, "x": names, "y": params,
                 "xaxis": "x", "yaxis": "y2", "marker": {"color": "#c7ccd4"},
                 "hovertemplate": "<b>%{x}</b><br>%{y:,} weights<extra></extra>"})
    top = max([b for b in bits if b is not None] + [8])
    layout = base_layout(title, 420, "layer (input → output)", "bits per weight", barmode="overlay", bargap=0.15)
    layout["xaxis"] = {**category_axis(names, "layer (input → output)"), "anchor": "y2",
                       "tickangle": -45 if len(names) > 8 else 0}
    layout["yaxis"] = axis("bits per weight", domain=[0.36, 1.0], range=[0, top + 0.6], dtick=1, anchor="x")
    counts = [p for p in params if p > 0]
    decades = [10 ** e for e in range(0, 13)]
    ticks = [d for d in decades if counts and min(counts) / 10 < d <= max(counts) * 10] if counts else []
    layout["yaxis2"] = axis("weights (log)", domain=[0.0, 0.26], type="log", anchor="x", tickformat="~s",
                            showgrid=True, tickvals=ticks or None)
    if any(l.get("fixed") for l in layers):
        layout["annotations"] = [{"xref": "paper", "yref": "paper", "x": 1.0, "y": 1.0, "yanchor": "bottom",
                                  "xanchor": "right", "showarrow": False, "font": {"size": 10, "color": MUTED},
                                  "text": "hatched = fixed width (not searched)"}]
    return {"data": data, "layout": layout}


# -- (2) bit allocation over epochs ---------------------------------------------------------------
def bit_allocation_heatmap(layer_names: Sequence[str], x: Sequence, bits: Sequence[Sequence[Optional[float]]],
                           x_title: str = "epoch", phases: Optional[Sequence[dict]] = None,
                           title: str = "Bit allocation per layer over training") -> dict:
    """Layers (rows, input at the top) × epochs (columns), colour = width on the bit colour scale.
    ``bits[layer][column]``; ``phases`` = [{"name", "x"}] draws a dotted line at each phase start."""
    z = [[None if v is None or not math.isfinite(v) else min(float(v), MAX_BIT_COLOR) for v in row] for row in bits]
    text = [["" if v is None or not math.isfinite(v) else f"{v:g}" for v in row] for row in bits]
    trace = {"type": "heatmap", "x": list(x), "y": list(layer_names), "z": z, "text": text,
             "colorscale": bit_colorscale(), "zmin": 0.5, "zmax": MAX_BIT_COLOR + 0.5, "xgap": 1, "ygap": 1,
             "colorbar": {"title": {"text": "bits"}, "tickvals": list(range(1, MAX_BIT_COLOR + 1)),
                          "ticktext": [str(b) for b in range(1, MAX_BIT_COLOR)] + [f"{MAX_BIT_COLOR}+"],
                          "len": 0.9, "thickness": 14, "outlinewidth": 0},
             "hovertemplate": f"<b>%{{y}}</b><br>{x_title} %{{x}}: %{{text}} bits<extra></extra>"}
    if len(x) <= 24 and len(layer_names) <= 40:   # numbers inside the cells only while they are readable
        trace.update(texttemplate="%{text}", textfont={"size": 10})
    span = (min(x) - 0.5, max(x) + 0.5) if len(x) and all(isinstance(v, (int, float)) for v in x) else None
    shapes, notes = phase_marks(phases, outside=True, span=span)
    layout = base_layout(title, layer_axis_height(len(layer_names)), x_title, "layer", shapes=shapes,
                         annotations=notes)
    layout["yaxis"] = category_axis(layer_names, "layer", reversed_=True)
    layout["xaxis"] = axis(x_title, showgrid=False, dtick=1 if len(x) <= 30 else None)
    return {"data": [trace], "layout": layout}


# -- (3) LSB sparsity over steps ------------------------------------------------------------------
def lsb_density_heatmap(layer_names: Sequence[str], steps: Sequence[int], density: Sequence[Sequence[float]],
                        threshold: Optional[float] = None, prunes: Optional[Sequence[dict]] = None,
                        phases: Optional[Sequence[dict]] = None,
                        title: str = "LSB density per layer (white = LSB plane empty, prunable)") -> dict:
    """Layers × logged steps, colour = LSB density d_l (fraction of odd codes; 0 = every LSB is zero).
    ``prunes``: prune events {"step", "fqn", "old_bits", "new_bits", "k", "density"} drawn as markers
    in the colour of the new width. ``threshold`` α is marked on the colour bar."""
    zmax = 0.5
    ticks = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    labels = [f"{t:g}" for t in ticks]
    if threshold is not None and 0 < threshold < zmax:   # α on the colour bar, replacing a tick too close to it
        keep = [(t, l) for t, l in zip(ticks, labels) if abs(t - threshold) >= 0.04]
        keep.append((threshold, f"α={threshold:g}"))
        ticks, labels = map(list, zip(*sorted(keep)))
    data = [{"type": "heatmap", "x": list(steps), "y": list(layer_names), "z": [clean_values(r, 4) for r in density],
             "colorscale": DENSITY_COLORSCALE, "zmin": 0.0, "zmax": zmax, "name": "LSB density",
             "colorbar": {"title": {"text": "LSB density<br>(odd codes)"}, "tickvals": ticks, "ticktext": labels,
                          "len": 0.9, "thickness": 14, "outlinewidth": 0},
             "hovertemplate": "<b>%{y}</b><br>step %{x}<br>LSB density %{z:.3f}<extra></extra>"}]
    prunes = [p for p in prunes or () if p.get("fqn") in set(layer_names) and p.get("step") is not None]
    if prunes:
        data.append({"type": "scatter", "mode": "markers", "name": "LSBs pruned",
                     "x": [p["step"] for p in prunes], "y": [p["fqn"] for p in prunes],
                     "marker": {"symbol": "triangle-down", "size": 11,
                                "color": [bit_color(p.get("new_bits")) for p in prunes],
                                "line": {"color": "white", "width": 1.5}},
                     "customdata": [[p.get("old_bits"), p.get("new_bits"), p.get("k"), p.get("density")]
                                    for p in prunes],
                     "hovertemplate": "<b>%{y}</b> pruned at step %{x}<br>%{customdata[0]} → %{customdata[1]} bits "
                                      "(k=%{customdata[2]}), density %{customdata[3]:.3f}<extra></extra>"})
    shapes, notes = phase_marks(phases, outside=True, span=(min(steps), max(steps)) if len(steps) else None)
    layout = base_layout(title, layer_axis_height(len(layer_names)), "training step", "layer",
                         shapes=shapes, annotations=notes)
    layout["yaxis"] = category_axis(layer_names, "layer", reversed_=True)
    layout["xaxis"] = axis("training step", showgrid=False)
    return {"data": data, "layout": layout}


# -- (4) Hessian sensitivity ----------------------------------------------------------------------
def sensitivity_bars(layer_names: Sequence[str], sensitivities: Sequence[Optional[float]],
                     mean: Optional[float] = None, std_errors: Optional[Sequence[Optional[float]]] = None,
                     bits: Optional[Sequence[Optional[float]]] = None, double_pruned: Iterable[str] = (),
                     fixed: Optional[Sequence[bool]] = None, step: Optional[int] = None) -> dict:
    """Each layer's Hutchinson sensitivity Tr(H_l)/N_l as a bar in its width's colour, ± one standard
    error, the mean as a dashed line, and a ▼ on layers that were pruned two LSBs at once."""
    n = len(layer_names)
    sens = clean_values(sensitivities)
    bits = list(bits) if bits is not None else [None] * n
    fixed = list(fixed) if fixed is not None else [False] * n
    se = clean_values(std_errors) if std_errors is not None else [None] * n
    if mean is None:
        searched = [s for s, f in zip(sens, fixed) if s is not None and not f]
        mean = sum(searched) / len(searched) if searched else None
    finite = [s for s in sens if s is not None]
    log = bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 50
    # error bars never reach zero on a log axis (that would stretch it over many empty decades)
    minus = [min(e or 0.0, 0.9 * v) if (log and v is not None) else (e or 0.0) for v, e in zip(sens, se)]
    data = []
    for key in sorted({bit_key(b) for b in bits}, key=lambda k: -1 if k is None else k):
        idx = [i for i in range(n) if bit_key(bits[i]) == key]
        data.append({"type": "bar", "name": bit_label([bits[i] for i in idx]) if key else "width unknown",
                     "x": [layer_names[i] for i in idx], "y": [sens[i] for i in idx],
                     "error_y": {"type": "data", "array": [se[i] or 0 for i in idx],
                                 "arrayminus": [minus[i] for i in idx], "visible": any(se),
                                 "color": MUTED, "thickness": 1, "width": 3},
                     "marker": {"color": bit_color(key), "line": {"color": "white", "width": 0.5},
                                "pattern": {"shape": ["/" if fixed[i] else "" for i in idx],
                                            "fgcolor": "rgba(255,255,255,0.6)", "fillmode": "overlay", "size": 6}},
                     "customdata": [[bits[i], (sens[i] / mean) if (mean and mean > 0 and sens[i] is not None)
                                     else None, se[i]] for i in idx],
                     "hovertemplate": "<b>%{x}</b><br>Tr(H)/N = %{y:.3e}" + (" ± %{customdata[2]:.1e}" if any(se)
                                                                             else "")
                                      + "<br>%{customdata[1]:.2f}× the mean · %{customdata[0]} bits<extra></extra>"})
    double = set(double_pruned)
    marked = [i for i in range(n) if layer_names[i] in double and sens[i] is not None]
    if marked:
        data.append({"type": "scatter", "mode": "markers+text" if n <= 12 else "markers", "name": "−2 LSBs at once",
                     "x": [layer_names[i] for i in marked],
                     "y": [max(sens[i] + (se[i] or 0), sens[i]) for i in marked],
                     "text": ["−2"] * len(marked), "textposition": "top center",
                     "textfont": {"size": 10, "color": INK},
                     "marker": {"symbol": "triangle-down", "size": 10, "color": INK},
                     "hovertemplate": "<b>%{x}</b>: below the mean → dropped 2 LSBs at once<extra></extra>"})
    title = "Hessian sensitivity per layer" + (f" (step {step})" if step is not None else "")
    layout = base_layout(title, 400, "layer (input → output)", "average trace / weight  Tr(H)/N",
                         barmode="overlay", bargap=0.2)
    layout["xaxis"] = {**category_axis(layer_names, "layer (input → output)"), "tickangle": -45 if n > 8 else 0}
    layout["yaxis"] = axis("average trace / weight  Tr(H)/N" + (" (log)" if log else ""),
                           type="log" if log else "linear", exponentformat="e")
    if log:
        top = max(v + (e or 0.0) for v, e in zip(sens, se) if v is not None)
        lo, hi = min(finite) / 2.5, top * 2.5
        ticks = [t for t in log_ticks(lo, hi) if lo <= t <= hi]
        layout["yaxis"].update(range=[math.log10(lo), math.log10(hi)], tickvals=ticks,
                               ticktext=[f"{t:.0e}" if (t < 1e-2 or t >= 1e3) else f"{t:g}" for t in ticks])
    if mean is not None and (mean > 0 or not log):
        y = mean   # shapes take data values on log axes too (annotations would need log10)
        layout["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": y, "y1": y,
                             "line": {"color": INK, "width": 1.5, "dash": "dash"}}]
        data.append({"type": "scatter", "mode": "lines", "x": [None], "y": [None], "hoverinfo": "skip",
                     "name": f"mean {mean:.2e}",
                     "line": {"color": INK, "width": 1.5, "dash": "dash"}})
    return {"data": data, "layout": layout}


def relative_sensitivity_heatmap(layer_names: Sequence[str], steps: Sequence[int],
                                 values: Sequence[Sequence[Optional[float]]],
                                 means: Optional[Sequence[Optional[float]]] = None) -> dict:
    """Sensitivity over time, each estimate divided by that step's mean over layers (1 = the mean;
    blue cells were below it, i.e. eligible to drop two LSBs at once). ``values[layer][column]``."""
    cols = len(steps)
    if means is None:
        means = []
        for c in range(cols):
            col = [r[c] for r in values if r[c] is not None and math.isfinite(r[c])]
            means.append(sum(col) / len(col) if col else None)
    z = [[(v / means[c]) if (v is not None and math.isfinite(v) and means[c] and means[c] > 0) else None
          for c, v in enumerate(row)] for row in values]
    trace = {"type": "heatmap", "x": list(steps), "y": list(layer_names), "z": z,
             "customdata": [clean_values(r) for r in values], "colorscale": RELATIVE_COLORSCALE,
             "zmin": 0.0, "zmax": 2.0, "xgap": 1, "ygap": 1,
             "colorbar": {"title": {"text": "× mean"}, "tickvals": [0, 0.5, 1, 1.5, 2],
                          "ticktext": ["0", "0.5", "1 = mean", "1.5", "≥2"], "len": 0.9, "thickness": 14,
                          "outlinewidth": 0},
             "hovertemplate": "<b>%{y}</b><br>step %{x}<br>%{z:.2f}× the mean (Tr(H)/N = %{customdata:.3e})"
                              "<extra></extra>"}
    layout = base_layout("Hessian sensitivity over time, relative to the layer mean",
                         layer_axis_height(len(layer_names)),
                         "training step (Hessian estimates)", "layer")
    layout["yaxis"] = category_axis(layer_names, "layer", reversed_=True)
    layout["xaxis"] = axis("training step (Hessian estimates)", type="category", showgrid=False)
    # a mean at or below 0 (noise around a flat loss) makes every ratio of that step meaningless: say so
    layout["annotations"] = [{"x": steps[c], "xref": "x", "y": 0.5, "yref": "paper", "showarrow": False,
                              "textangle": -90, "font": {"size": 10, "color": MUTED},
                              "text": f"mean {means[c]:.1e} ≤ 0: no ratio"}
                             for c in range(cols) if means[c] is not None and means[c] <= 0]
    return {"data": [trace], "layout": layout}


# -- (5) accuracy vs compression ------------------------------------------------------------------
UNKNOWN_SYMBOL = "circle-open"   # the marker of a method this installation does not know (an old run's)


def method_symbol(method: Optional[str]) -> str:
    """The marker of a method's runs: its registered ``MethodSpec.symbol``."""
    spec = find_method(method)
    return spec.symbol if spec else UNKNOWN_SYMBOL


def reference_of(method: Optional[str]) -> Optional[MethodSpec]:
    """The spec of ``method`` when its runs are reference points (uniform QAT), else None."""
    spec = find_method(method)
    return spec if spec is not None and spec.reference else None


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher compression and higher
    accuracy), ordered by compression."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def accuracy_vs_compression(runs: Sequence[dict] = (), trajectory: Optional[Sequence[dict]] = None,
                            float_acc: Optional[float] = None, title: Optional[str] = None) -> dict:
    """Runs as points (colour = their average width on the bit scale, shown as a colour bar; symbol =
    the method's registered marker), the Pareto front over every finished point (the runs of reference
    methods -- uniform QAT -- drawn as labelled points, included), and optionally one run's
    per-epoch ``trajectory`` [{"epoch", "compression", "accuracy", "avg_bits"?}].
    ``runs``: dicts with "label", "method", "compression", "accuracy", "avg_bits", optional "lam", "id"."""
    ok = [r for r in runs if r.get("compression") is not None and r.get("accuracy") is not None]
    data = []
    refs = [r for r in ok if reference_of(r.get("method"))]
    searched = [r for r in ok if not reference_of(r.get("method"))]
    # the front runs over every finished point drawn, references included: a searched run that a uniform
    # reference beats on both axes is not on it; a run still training ("final": False) is not a result yet
    final = [r for r in ok if r.get("final", True)]
    if final:
        front = pareto_front([(r["compression"], r["accuracy"]) for r in final])
        if len(front) > 1:
            data.append({"type": "scatter", "mode": "lines", "name": "Pareto front", "hoverinfo": "skip",
                         "x": [final[i]["compression"] for i in front],
                         "y": [final[i]["accuracy"] for i in front],
                         "line": {"color": INK, "width": 1.5, "dash": "dash", "shape": "hv"}})
    for method in sorted({r.get("method") or "?" for r in searched}):
        rows = [r for r in searched if (r.get("method") or "?") == method]
        data += _run_points(rows, method, method_symbol(method), show_text=len(ok) <= 12)
    for method in dict.fromkeys(r["method"] for r in refs):   # each reference method, labelled, in order seen
        spec = reference_of(method)
        data += _run_points([r for r in refs if r["method"] == method], f"{spec.title_in_text} (reference)",
                            spec.symbol, show_text=True)
    if ok:   # the key to "colour = average bits": the stepped bit scale as a colour bar (one invisible point)
        data.append({"type": "scatter", "mode": "markers", "name": "average bits (colour bar)", "x": [None],
                     "y": [None], "showlegend": False, "hoverinfo": "skip", "marker": {"color": [1], "colorscale": bit_colorscale(), "cmin": 0.5,
                                                     "cmax": MAX_BIT_COLOR + 0.5, "showscale": True,
                                                     "colorbar": {"title": {"text": "avg bits", "side": "right"},
                                                                  "tickvals": list(range(1, MAX_BIT_COLOR + 1)),
                                                                  "ticktext": [str(b) for b in range(1, MAX_BIT_COLOR)]
                                                                  + [f"{MAX_BIT_COLOR}+"],
                                                                  "thickness": 12, "len": 0.8, "outlinewidth": 0}}})
    if trajectory:
        pts = [p for p in trajectory if p.get("compression") is not None and p.get("accuracy") is not None]
        if pts:
            data.append({"type": "scatter", "mode": "lines+markers", "name": "this run, per epoch",
                         "x": [p["compression"] for p in pts], "y": [p["accuracy"] for p in pts],
                         "line": {"color": "#6b7280", "width": 1.5},
                         "marker": {"size": 8, "color": [bit_color(p.get("avg_bits")) for p in pts],
                                    "line": {"color": INK, "width": 0.8}},
                         "customdata": [[p.get("epoch"), p.get("avg_bits"), p.get("phase") or ""] for p in pts],
                         "hovertemplate": "epoch %{customdata[0]} %{customdata[2]}<br>%{y:.2f}% at %{x:.2f}× "
                                          "(%{customdata[1]:.2f} bits avg)<extra></extra>"})
            last = pts[-1]
            annotations = [{"x": last["compression"], "y": last["accuracy"], "text": f"epoch {last.get('epoch')}",
                            "showarrow": True, "arrowhead": 2, "ax": 30, "ay": -30, "font": {"size": 11}}]
        else:
            annotations = []
    else:
        annotations = []
    shapes = []
    if float_acc is not None:
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": float_acc,
                       "y1": float_acc, "line": {"color": MUTED, "width": 1, "dash": "dot"}})
        annotations.append({"xref": "paper", "x": 0, "xanchor": "left", "yref": "y", "y": float_acc,
                            "yanchor": "bottom", "showarrow": False, "font": {"size": 10, "color": MUTED},
                            "text": f"float model {float_acc:.2f}%"})
    title = title or ("Accuracy vs compression" + (" — this run's trajectory" if trajectory else ""))
    layout = base_layout(title, 420, "compression (× smaller weights than 32-bit float)",
                         "validation accuracy (%)", shapes=shapes, annotations=annotations)
    return {"data": data, "layout": layout}


def _run_points(rows: Sequence[dict], name: str, symbol: str, show_text: bool, size: int = 12) -> list:
    """The points (each in its own width's colour, so no legend entry) and a grey legend key for the symbol."""
    # optional per point: "final" (False: drawn faded, labelled "not final"), "note" (its budget, progress)
    points = {"type": "scatter", "mode": "markers+text" if show_text else "markers", "name": name, "showlegend": False,
              "legendgroup": name, "x": [r["compression"] for r in rows], "y": [r["accuracy"] for r in rows],
              "text": [(r.get("label") or "") + ("" if r.get("final", True) else " (not final)") for r in rows],
              "textposition": "top center", "textfont": {"size": 10, "color": MUTED},
              "marker": {"symbol": symbol, "size": size, "color": [bit_color(r.get("avg_bits")) for r in rows],
                         "opacity": [1.0 if r.get("final", True) else 0.35 for r in rows],
                         "line": {"color": INK, "width": 1}},
              "customdata": [[r.get("label") or r.get("id") or "", r.get("avg_bits"), r.get("lam"), r.get("id") or "",
                              r.get("note") or ""] for r in rows],
              "hovertemplate": "<b>%{customdata[0]}</b><br>%{y:.2f}% at %{x:.2f}×<br>%{customdata[1]:.2f} bits avg · "
                               "λ=%{customdata[2]}<br>%{customdata[4]}<extra>" + name + "</extra>"}
    key = {"type": "scatter", "mode": "markers", "name": name, "legendgroup": name, "x": [None], "y": [None],
           "hoverinfo": "skip", "marker": {"symbol": symbol, "size": 10, "color": "#d1d5db",
                                           "line": {"color": INK, "width": 1}}}
    return [points, key]
