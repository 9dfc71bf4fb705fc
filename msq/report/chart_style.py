"""The look shared by every chart of the dashboard and the HTML report: the one BIT COLOUR SCALE,
the colour scales of the heatmaps, fonts, axes and the layout frame. Pure Python.

Few bits are warm (red, orange, gold), many bits cool (blues), ordered in lightness so the scale reads
in grey and under the common forms of colour blindness (a ColorBrewer RdYlBu-like ramp; no red/green
pair). Widths above 8 share the 8 colour ("8+").

    >>> bit_color(4)
    '#f1c232'
    >>> log_ticks(0.03, 3.0)
    [0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
"""
from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

from msq.jsonsafe import finite_or_none, round_finite

# -- the bit colour scale ---------------------------------------------------------------------
BIT_COLORS = {1: "#6a0d2a", 2: "#c0392b", 3: "#e67e22", 4: "#f1c232",
              5: "#86bfe0", 6: "#3d8fc6", 7: "#23609e", 8: "#1a3263"}   # 8 = "8+"
BIT_TEXT_COLORS = {1: "white", 2: "white", 3: "#1f2937", 4: "#1f2937",
                   5: "#1f2937", 6: "white", 7: "white", 8: "white"}
FLOAT_COLOR = "#9ca3af"     # float layers and unknown widths
MAX_BIT_COLOR = 8


def bit_key(bits: Optional[float]) -> Optional[int]:
    """The colour-scale entry of a width: rounded, clipped to 1..8 (8 means "8 or more")."""
    if bits is None or not math.isfinite(float(bits)):
        return None
    return min(max(int(round(float(bits))), 1), MAX_BIT_COLOR)


def bit_color(bits: Optional[float]) -> str:
    key = bit_key(bits)
    return FLOAT_COLOR if key is None else BIT_COLORS[key]


def bit_label(values: Sequence[Optional[float]]) -> str:
    """Legend name of a group of widths that share one colour: "4 bits", "8+ bits", "float"."""
    key = bit_key(values[0]) if values else None
    if key is None:
        return "float"
    wider = key == MAX_BIT_COLOR and any(v is not None and v > MAX_BIT_COLOR for v in values)
    return f"{key}+ bits" if wider else f"{key} bit" + ("s" if key > 1 else "")


def bit_colorscale() -> list:
    """A stepped colorscale for z in [0.5, 8.5]: each integer width gets exactly its BIT_COLORS entry."""
    scale = []
    for b in range(1, MAX_BIT_COLOR + 1):
        scale += [[(b - 1) / MAX_BIT_COLOR, BIT_COLORS[b]], [b / MAX_BIT_COLOR, BIT_COLORS[b]]]
    return scale


DENSITY_COLORSCALE = [[0.0, "#ffffff"], [0.1, "#efedf5"], [0.3, "#bcbddc"], [0.6, "#807dba"],
                      [0.85, "#54278f"], [1.0, "#3f007d"]]   # white = empty LSB plane -> deep purple
RELATIVE_COLORSCALE = [[0.0, "#2166ac"], [0.35, "#92c5de"], [0.5, "#f7f7f7"], [0.65, "#f4a582"],
                       [1.0, "#b2182b"]]                     # below mean (blue) | above mean (red)

# -- shared layout --------------------------------------------------------------------------------
FONT = {"family": "Inter, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif",
        "size": 12, "color": "#1f2937"}
GRID, AXIS_LINE, INK, MUTED = "#eceef2", "#cfd4dc", "#1f2937", "#6b7280"
# the same frame on a dark page (the dashboard in a browser that prefers dark): see-through, so the
# page's own dark background shows, light ink, dim grid; the data colours (bit scale, runs) stay
DARK_PAPER, DARK_GRID, DARK_AXIS_LINE, DARK_INK = "rgba(0,0,0,0)", "#30363f", "#4b5563", "#e5e7eb"


def axis(title: str, **extra) -> dict:
    return {"title": {"text": title, "standoff": 6}, "showgrid": True, "gridcolor": GRID, "zeroline": False,
            "showline": True, "linecolor": AXIS_LINE, "ticks": "outside", "tickcolor": AXIS_LINE,
            "automargin": True, **extra}


def base_layout(title: str, height: int, x_title: str, y_title: str, **extra) -> dict:
    """Title top left; the legend in one row under it, left-aligned, above the plot (never over data)."""
    layout = {"title": {"text": title, "x": 0.0, "xanchor": "left", "xref": "container", "y": 1.0,
                        "yanchor": "top", "yref": "container", "pad": {"t": 8, "l": 4},
                        "font": {"size": 14, "color": INK}},
              "height": int(height), "margin": {"l": 10, "r": 10, "t": 78, "b": 10},
              "paper_bgcolor": "white", "plot_bgcolor": "white", "font": FONT, "hovermode": "closest",
              "xaxis": axis(x_title), "yaxis": axis(y_title),
              "legend": {"orientation": "h", "x": 0.0, "xanchor": "left", "y": 1.02, "yanchor": "bottom",
                         "bgcolor": "rgba(255,255,255,0)", "font": {"size": 11}, "itemwidth": 30},
              "hoverlabel": {"font": {"family": FONT["family"], "size": 12}}}
    layout.update(extra)
    return layout


def dark_frame(layout: dict) -> dict:
    """``layout`` (a plotly layout dict) redrawn on the dark frame: background, ink, grid and axis lines,
    for every axis it has (xaxis, yaxis2, ...); data colours are untouched."""
    out = dict(layout)
    out.update(paper_bgcolor=DARK_PAPER, plot_bgcolor=DARK_PAPER,
               font={**layout.get("font", FONT), "color": DARK_INK})
    title = layout.get("title")
    if isinstance(title, dict):
        out["title"] = {**title, "font": {**title.get("font", {}), "color": DARK_INK}}
    legend = layout.get("legend")
    if isinstance(legend, dict):
        out["legend"] = {**legend, "bgcolor": "rgba(0,0,0,0)", "font": {**legend.get("font", {}), "color": DARK_INK}}
    for key, value in layout.items():
        if (key.startswith("xaxis") or key.startswith("yaxis")) and isinstance(value, dict):
            out[key] = {**value, "gridcolor": DARK_GRID, "linecolor": DARK_AXIS_LINE, "tickcolor": DARK_AXIS_LINE,
                        "zerolinecolor": DARK_GRID}
    if layout.get("annotations"):
        out["annotations"] = [{**a, "font": {**a.get("font", {}), "color": DARK_INK}} for a in layout["annotations"]]
    return out


def log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks covering [lo, hi] (both > 0) for log axes, whose default minor labels ("2", "5") read
    ambiguously: 1-2-5 within two decades, powers of ten beyond."""
    steps = (1, 2, 5) if math.log10(hi / lo) <= 2.5 else (1,)
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        out += [m * 10.0 ** e for m in steps if lo / 1.5 <= m * 10.0 ** e <= hi * 1.5]
    return out


def layer_axis_height(n_layers: int, per_layer: int = 16, base: int = 150, cap: int = 900) -> int:
    return max(300, min(cap, base + per_layer * n_layers))


def clean_values(values: Iterable, digits: Optional[int] = None) -> list:
    """NaN/inf -> None, so the spec is valid JSON for the report as well; ``digits`` rounds (float32
    values otherwise print as 0.4999000132083893 and triple the size of a heatmap's JSON)."""
    if digits is None:
        return [finite_or_none(v) for v in values]
    return [round_finite(v, digits) for v in values]


def phase_marks(phases: Optional[Sequence[dict]], outside: bool = False,
                 span: Optional[tuple[float, float]] = None) -> tuple[list, list]:
    """Vertical dotted lines with a label at each phase start: ``phases`` = [{"name", "x"}]. ``outside``
    puts the labels above the plot (heatmaps, whose top row they would hide); labels closer than 8% of
    ``span`` (the x range) to the previous one are lifted a line, so short phases stay readable."""
    shapes, notes = [], []
    last, lift = None, 0
    for phase in phases or ():
        if not (span and phase["x"] <= span[0]):   # the first phase starts at the edge: a label is enough
            shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": phase["x"], "x1": phase["x"], "y0": 0,
                           "y1": 1.04 if outside else 1, "line": {"color": MUTED, "width": 1, "dash": "dot"}})
        note = phase_label(phase["x"], phase["name"], MUTED)
        if outside:
            note.update(y=1.0, yanchor="bottom", bgcolor="rgba(255,255,255,0)")
        width = (span[1] - span[0]) if span and span[1] > span[0] else None
        crowded = width is not None and last is not None and (phase["x"] - last) / width < 0.08
        lift = lift + 1 if crowded else 0
        if lift:
            note["yshift"] = 13 * lift if outside else -13 * lift
        last = phase["x"]
        notes.append(note)
    return shapes, notes


def phase_label(x, text: str, color: str) -> dict:
    """A small label inside the top of the plot, right of a vertical line at ``x``."""
    return {"xref": "x", "yref": "paper", "x": x, "y": 1.0, "yanchor": "top", "xanchor": "left", "text": text,
            "showarrow": False, "font": {"size": 10, "color": color}, "bgcolor": "rgba(255,255,255,0.8)",
            "borderpad": 1}


def category_axis(names: Sequence[str], title: str, reversed_: bool = False) -> dict:
    extra = {"type": "category", "categoryorder": "array", "categoryarray": list(names), "showgrid": False}
    if reversed_:
        extra["autorange"] = "reversed"
    return axis(title, **extra)
