"""The what-if mixer's logic: which widths a layer may take, quick allocations (one width everywhere, or
another run's final per-layer bits), and the accuracy-vs-average-bits chart of the mixes tried. Pure
(no streamlit, no torch): the page evaluates a mix with ``msq.methods.multibit.load_multibit_run(...).evaluate``.

    >>> layers = [{"fqn": "conv1", "bits": 8, "fixed": True}, {"fqn": "conv2", "bits": 8, "fixed": False}]
    >>> uniform_mix(layers, 3)
    {'conv1': 8, 'conv2': 3}
    >>> mix_from_layers(layers, [{"fqn": "conv1", "bits": 4}, {"fqn": "conv2", "bits": 2}])[0]
    {'conv1': 8, 'conv2': 2}
"""
from __future__ import annotations

import html
from typing import Optional, Sequence

import plotly.graph_objects as go

from msq.methods import methods_where
from msq.report.figures import INK, MUTED, base_layout, bit_color

MAX_POINTS = 200            # evaluated mixes kept on the chart per run


def width_options(trained: Sequence[int], unseen: Sequence[int], lo: int = 2, hi: int = 8) -> list[int]:
    """Widths a layer may take in the mixer: lo..hi plus every trained and unseen width."""
    return sorted(set(range(lo, hi + 1)) | set(trained) | set(unseen))


def sample_options(n_val: int) -> list[int]:
    """Validation images per evaluation the mixer offers: 100, 250, 500, 1k, 2.5k, ... and all of them.

    >>> sample_options(1000)
    [100, 250, 500, 1000]
    """
    steps = [m * 10 ** e for e in range(2, 7) for m in (1, 2.5, 5)]
    return sorted({int(s) for s in steps if s < n_val} | {n_val})


def default_samples(n_val: int, full_seconds: float, budget_s: float = 0.35) -> int:
    """The most validation images one evaluation can use within ``budget_s``, from the measured time of
    one pass over all ``n_val`` (the mixer stays interactive on big models; the user can ask for all).

    >>> default_samples(1000, 0.02), default_samples(1000, 2.0)
    (1000, 100)
    """
    if full_seconds <= budget_s:
        return n_val
    fits = n_val * budget_s / max(full_seconds, 1e-9)
    return max([o for o in sample_options(n_val) if o <= fits] or [sample_options(n_val)[0]])


def nearest(options: Sequence[int], bits: int) -> int:
    """The option closest to ``bits`` (ties: the wider)."""
    return min(options, key=lambda o: (abs(o - bits), -o))


def uniform_mix(layers: Sequence[dict], bits: int, include_fixed: bool = False) -> dict[str, int]:
    """Every searched layer at ``bits``; fixed layers keep theirs unless ``include_fixed``."""
    return {l["fqn"]: int(bits) if include_fixed or not l.get("fixed") else int(l["bits"]) for l in layers}


def mix_from_layers(layers: Sequence[dict], source: Sequence[dict], include_fixed: bool = False,
                    options: Optional[Sequence[int]] = None) -> tuple[dict[str, int], list[str]]:
    """Another run's final widths (its layer table) applied to the mixer's layers, matched by name.

    Returns (mix, notes): layers the source lacks keep their width, fixed layers keep theirs unless
    ``include_fixed``, widths outside ``options`` snap to the nearest option; each case gets a note."""
    by_name = {l["fqn"]: l.get("bits") for l in source}
    mix, notes, missing, kept, snapped = {}, [], [], [], []
    for layer in layers:
        name, now = layer["fqn"], int(layer["bits"])
        bits = by_name.get(name)
        if bits is None:
            missing.append(name)
            mix[name] = now
        elif layer.get("fixed") and not include_fixed:
            mix[name] = now
            if int(bits) != now:
                kept.append(f"{name} ({int(bits)} there)")
        else:
            bits = int(bits)
            if options and bits not in options:
                snapped.append(f"{name} {bits}→{nearest(options, bits)}")
                bits = nearest(options, bits)
            mix[name] = bits
    if missing:
        notes.append(f"not in that run, left as they were: {', '.join(missing)}")
    if kept:
        notes.append(f"fixed here, kept at their width (unlock fixed layers to copy them): {', '.join(kept)}")
    if snapped:
        notes.append(f"outside the mixer's widths, snapped: {', '.join(snapped)}")
    return mix, notes


def source_methods() -> list[str]:
    """The methods whose runs end at one per-layer allocation (MSQ, uniform, BSQ, HAWQ-style: not multi-bit)."""
    return methods_where(lambda spec: spec.one_allocation)


def source_methods_text() -> str:
    """``source_methods`` in words: "msq / uniform / bsq / hawq"."""
    return " / ".join(source_methods())


def allocation_sources(rows: Sequence[dict], model: Optional[str], dataset: Optional[str]) -> list[dict]:
    """Completed runs of the same model and dataset whose method ends at one per-layer allocation
    (``source_methods``), as list_runs rows, newest first."""
    sources = set(source_methods())
    return [r for r in rows if r.get("status") == "completed" and r.get("method") in sources
            and r.get("model") == model and r.get("dataset") == dataset]


def uniform_width(mix: dict[str, int], layers: Sequence[dict]) -> Optional[int]:
    """The width every searched layer has in ``mix``, with fixed layers at their own; else None."""
    searched = {mix[l["fqn"]] for l in layers if not l.get("fixed")}
    fixed_ok = all(mix[l["fqn"]] == int(l["bits"]) for l in layers if l.get("fixed"))
    return searched.pop() if len(searched) == 1 and fixed_ok else None


def describe(mix: dict[str, int], layers: Sequence[dict], base: Optional[dict[str, int]] = None) -> str:
    """A short name for a mix: "uniform 4 bits", or the layers that differ from ``base``."""
    b = uniform_width(mix, layers)
    if b is not None:
        return f"uniform {b} bits"
    base = base or {}
    changed = [f"{name} {bits}" for name, bits in mix.items() if base.get(name) != bits]
    text = " · ".join(changed[:4]) + (f" · +{len(changed) - 4} more" if len(changed) > 4 else "")
    return text or "mix"


def add_point(points: list[dict], point: dict, limit: int = MAX_POINTS) -> list[dict]:
    """``points`` with ``point`` appended (a mix already tried moves to the end), at most ``limit``."""
    key = tuple(sorted(point["mix"].items()))
    kept = [p for p in points if tuple(sorted(p["mix"].items())) != key]
    return (kept + [point])[-limit:]


def tradeoff_figure(uniform: dict[int, dict], points: Sequence[dict], trained: Sequence[int] = (),
                    unseen: Sequence[int] = ()) -> go.Figure:
    """Accuracy vs average bits: the run's uniform widths (line; open markers = unseen) and every mix
    evaluated (colour = its average bits on the bit scale), the latest one as a large star."""
    layout = base_layout("What-if mixes vs the uniform widths of this run", 420, "average bits per weight",
                         "validation accuracy (%)")
    fig = go.Figure(layout=layout)
    widths = sorted(uniform)
    if widths:
        fig.add_trace(go.Scatter(
            x=[uniform[b]["avg_bits"] for b in widths], y=[uniform[b]["acc"] for b in widths], mode="lines+markers+text",
            name="uniform widths", text=[f"{b}b" for b in widths], textposition="bottom right",
            textfont={"size": 10, "color": MUTED}, line={"color": "#cbd5e1", "width": 1.5},
            marker={"size": 11, "color": [bit_color(b) for b in widths],
                    "symbol": ["circle-open" if b in unseen and b not in trained else "circle" for b in widths],
                    "line": {"width": [2.5 if b in unseen and b not in trained else 1 for b in widths],
                             "color": [bit_color(b) if b in unseen and b not in trained else INK for b in widths]}},
            customdata=[[b, uniform[b].get("compression"), " (unseen)" if b in unseen and b not in trained else ""]
                        for b in widths],
            hovertemplate="uniform %{customdata[0]} bits%{customdata[2]}: %{y:.2f}%<br>%{x:.2f} bits/weight · "
                          "%{customdata[1]:.2f}×<extra></extra>"))
    earlier, latest = list(points[:-1]), points[-1:] if points else []
    for group, name, symbol, size in ((earlier, "mixes tried", "circle", 9), (latest, "this mix", "star", 20)):
        if not group:
            continue
        fig.add_trace(go.Scatter(
            x=[p["avg_bits"] for p in group], y=[p["acc"] for p in group], mode="markers", name=name,
            marker={"symbol": symbol, "size": size, "color": [bit_color(p["avg_bits"]) for p in group],
                    "line": {"color": INK, "width": 1}},
            customdata=[[html.escape(p.get("label") or "", quote=False), p.get("compression")] for p in group],
            hovertemplate="%{customdata[0]}<br>%{y:.2f}% · %{x:.2f} bits/weight · %{customdata[1]:.2f}×"
                          "<extra>" + name + "</extra>"))
    return fig
