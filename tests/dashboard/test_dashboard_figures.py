"""The shared chart specs (msq.report.figures) and the dashboard's own charts, on known data: each
builder returns the figure expected, in the one bit colour scale, as valid plotly JSON."""
from __future__ import annotations

import json
import subprocess
import sys

import plotly.graph_objects as go
import pytest

from dashboard.components import charts
from msq.report import figures as F

LAYERS = [{"fqn": "conv1", "params": 72, "bits": 8, "fixed": True, "fixed_reason": "first layer"},
          {"fqn": "conv2", "params": 1152, "bits": 4},
          {"fqn": "fc", "params": 2560, "bits": 2}]


def valid(spec: dict) -> go.Figure:
    """Strict JSON (no NaN) and accepted by plotly's own validation."""
    json.dumps(spec, allow_nan=False)
    return go.Figure(spec)


def traces(spec: dict, kind: str) -> list[dict]:
    return [t for t in spec["data"] if t["type"] == kind]


def test_bit_colour_scale_is_fixed_ordered_and_shared_by_every_width():
    assert [F.bit_color(b) for b in range(1, 9)] == [F.BIT_COLORS[b] for b in range(1, 9)]
    assert F.bit_color(16) == F.bit_color(8) and F.bit_color(0) == F.bit_color(1)
    assert F.bit_color(None) == F.FLOAT_COLOR and F.bit_color(float("nan")) == F.FLOAT_COLOR
    assert len(set(F.BIT_COLORS.values())) == 8
    scale = F.bit_colorscale()
    for b in range(1, 9):   # z = b maps to the middle of its own step, which has exactly its colour
        position = (b - 0.5) / 8
        below = [c for p, c in scale if p <= position][-1]
        assert below == F.BIT_COLORS[b]
    assert F.bit_label([4]) == "4 bits" and F.bit_label([8, 16]) == "8+ bits" and F.bit_label([None]) == "float"


def test_bit_allocation_bars_group_layers_by_width_over_a_parameter_panel():
    spec = F.bit_allocation_bars(LAYERS)
    fig = valid(spec)
    bars = traces(spec, "bar")
    by_name = {t["name"]: t for t in bars}
    assert set(by_name) == {"2 bits", "4 bits", "8 bits", "weights"}
    assert by_name["2 bits"]["x"] == ["fc"] and by_name["2 bits"]["marker"]["color"] == F.BIT_COLORS[2]
    assert by_name["8 bits"]["marker"]["pattern"]["shape"] == ["/"]        # fixed layers are hatched
    assert by_name["weights"]["y"] == [72, 1152, 2560] and by_name["weights"]["yaxis"] == "y2"
    assert fig.layout.yaxis2.type == "log"
    assert list(fig.layout.xaxis.categoryarray) == ["conv1", "conv2", "fc"]   # network order, not trace order
    avg = (72 * 8 + 1152 * 4 + 2560 * 2) / 3784
    assert f"{avg:.2f} bits on average" in spec["layout"]["title"]["text"]
    assert f"{32 / avg:.1f}× smaller" in spec["layout"]["title"]["text"]


def test_bit_allocation_heatmap_uses_the_stepped_bit_scale_and_clips_wide_layers():
    spec = F.bit_allocation_heatmap(["a", "b"], [1, 2, 3], [[8, 6, 4], [16, 16, 2]],
                                    phases=[{"name": "search", "x": 1.5}])
    valid(spec)
    [heat] = spec["data"]
    assert heat["z"] == [[8, 6, 4], [8, 8, 2]] and heat["text"][1] == ["16", "16", "2"]
    assert (heat["zmin"], heat["zmax"]) == (0.5, 8.5) and heat["colorscale"] == F.bit_colorscale()
    assert heat["colorbar"]["ticktext"][-1] == "8+"
    assert spec["layout"]["yaxis"]["autorange"] == "reversed"        # input layer at the top
    assert spec["layout"]["shapes"][0]["x0"] == 1.5 and spec["layout"]["annotations"][0]["text"] == "search"


def test_lsb_density_heatmap_marks_alpha_and_prunes_in_the_new_widths_colour():
    nan = float("nan")
    spec = F.lsb_density_heatmap(["a", "b"], [10, 20], [[0.5, 0.02], [nan, 0.4]], threshold=0.05,
                                 prunes=[{"step": 20, "fqn": "a", "old_bits": 8, "new_bits": 6, "k": 2,
                                          "density": 0.02},
                                         {"step": 20, "fqn": "zzz", "new_bits": 2}])
    valid(spec)
    heat, marks = spec["data"]
    assert heat["z"][1][0] is None and (heat["zmin"], heat["zmax"]) == (0.0, 0.5)
    assert "α=0.05" in heat["colorbar"]["ticktext"] and 0.05 in heat["colorbar"]["tickvals"]
    assert marks["x"] == [20] and marks["y"] == ["a"]                # the unknown layer is dropped
    assert marks["marker"]["color"] == [F.BIT_COLORS[6]]


def test_sensitivity_bars_draw_the_mean_and_mark_layers_pruned_two_bits_at_once():
    spec = F.sensitivity_bars(["a", "b", "c"], [1e-3, 4e-3, 1e-2], mean=5e-3, std_errors=[1e-4, None, 2e-3],
                              bits=[6, 8, 4], double_pruned=["a"])
    fig = valid(spec)
    assert fig.layout.shapes[0].y0 == pytest.approx(5e-3) and fig.layout.yaxis.type == "linear"
    marks = [t for t in spec["data"] if t["name"] == "−2 LSBs at once"][0]
    assert marks["x"] == ["a"] and marks["y"] == [pytest.approx(1.1e-3)]
    colours = {t["name"]: t["marker"]["color"] for t in traces(spec, "bar")}
    assert colours == {"4 bits": F.BIT_COLORS[4], "6 bits": F.BIT_COLORS[6], "8 bits": F.BIT_COLORS[8]}
    wide = F.sensitivity_bars(["a", "b"], [1e-5, 1e-1], mean=1e-3)   # four decades apart: log axis
    assert wide["layout"]["yaxis"]["type"] == "log" and wide["layout"]["shapes"][0]["y0"] == pytest.approx(1e-3)
    valid(F.sensitivity_bars(["a", "b"], [-1e-4, 2e-3]))               # a negative (noisy) estimate is fine


def test_relative_sensitivity_heatmap_divides_each_estimate_by_its_mean():
    spec = F.relative_sensitivity_heatmap(["a", "b"], [5, 9], [[1.0, 3.0], [3.0, 1.0]])
    valid(spec)
    assert spec["data"][0]["z"] == [[0.5, 1.5], [1.5, 0.5]]


def test_pareto_front_keeps_exactly_the_undominated_points():
    points = [(4.0, 90.0), (6.0, 89.0), (5.0, 85.0), (8.0, 80.0), (8.0, 70.0), (3.0, 91.0)]
    assert F.pareto_front(points) == [5, 0, 1, 3]
    assert F.pareto_front([]) == []


def test_accuracy_vs_compression_shows_front_references_and_trajectory():
    runs = [{"id": "a", "label": "λ=8", "method": "msq", "compression": 5.0, "accuracy": 90.0, "avg_bits": 6.4},
            {"id": "b", "label": "λ=64", "method": "msq", "compression": 8.0, "accuracy": 88.0, "avg_bits": 4.0},
            {"id": "c", "label": "λ=2", "method": "msq", "compression": 4.5, "accuracy": 85.0, "avg_bits": 7.1},
            {"id": "u", "label": "uniform 4-bit", "method": "uniform", "compression": 8.0, "accuracy": 87.0,
             "avg_bits": 4.0},
            {"id": "x", "label": "not yet", "method": "msq", "compression": None, "accuracy": None}]
    spec = F.accuracy_vs_compression(runs, float_acc=91.0)
    valid(spec)
    named = {t["name"]: t for t in spec["data"] if t.get("showlegend") is not False}
    front = named["Pareto front"]
    assert (front["x"], front["y"]) == ([5.0, 8.0], [90.0, 88.0])          # the uniform point is a reference
    points = [t for t in spec["data"] if t["name"] == "msq" and t.get("showlegend") is False][0]
    assert points["marker"]["color"] == [F.bit_color(6.4), F.bit_color(4.0), F.bit_color(7.1)]
    refs = [t for t in spec["data"] if t["name"] == "uniform QAT (reference)" and t.get("showlegend") is False][0]
    assert refs["marker"]["symbol"] == "diamond" and refs["text"] == ["uniform 4-bit"]
    assert spec["layout"]["shapes"][0]["y0"] == 91.0
    trajectory = F.accuracy_vs_compression(trajectory=[{"epoch": 2, "compression": 4.0, "accuracy": 80.0},
                                                       {"epoch": 3, "compression": 5.5, "accuracy": 84.0}])
    line = trajectory["data"][0]
    assert line["x"] == [4.0, 5.5] and trajectory["layout"]["annotations"][0]["text"] == "epoch 3"


def test_figures_module_is_pure_python_without_plotly():
    code = "import sys, msq.report.figures; assert 'plotly' not in sys.modules and 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dashboard_curves_mark_phases_lambda_changes_and_prunes():
    scalars = {"loss": {"step": [1, 2, 3], "epoch": [0, 0, 1], "value": [2.0, 1.0, 0.5]},
               "task_loss": {"step": [1, 2, 3], "epoch": [0, 0, 1], "value": [2.0, 1.0, 0.5]},
               "lam": {"step": [1, 2, 3], "epoch": [0, 0, 1], "value": [0.0, 8.0, 16.0]},
               "val_acc": {"step": [2, 3], "epoch": [1, 2], "value": [50.0, 60.0]},
               "avg_bits": {"step": [2, 3], "epoch": [1, 2], "value": [8.0, 7.5]}}
    events = [{"kind": "phase", "step": 0, "epoch": 0, "t": 0.0, "payload": {"phase": "search"}},
              {"kind": "lam_change", "step": 2, "epoch": 1, "t": 10.0, "payload": {"old": 8.0, "new": 12.0}},
              {"kind": "lam_change", "step": 3, "epoch": 1, "t": 11.0, "payload": {"old": 12.0, "new": 16.0}}]
    prunes = [{"step": 3, "fqn": "fc", "old_bits": 8, "new_bits": 7}]
    loss = charts.loss_curves(scalars, events, prunes)
    assert [t.name for t in loss.data] == ["total loss", "task loss (cross-entropy)", "LSB prune"]
    assert [a.text for a in loss.layout.annotations] == ["search", "λ 8→16"]
    assert loss.data[-1].marker.color == (F.bit_color(7),)
    acc = charts.accuracy_curves(scalars, events, float_acc=70.0)
    assert [t.name for t in acc.data] == ["validation accuracy", "average bits"] and acc.data[1].yaxis == "y2"
    sweep = charts.lam_sweep([{"lam": 8.0, "compression": 5.0, "method": "msq", "avg_bits": 6.0},
                              {"lam": 80.0, "compression": 9.0, "method": "msq", "avg_bits": 3.6},
                              {"lam": 0.0, "compression": 8.0, "method": "uniform"}], "compression")
    assert list(sweep.data[0].x) == [8.0, 80.0] and sweep.layout.xaxis.type == "log"
    assert F.log_ticks(0.03, 3.0) == [0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]


def test_the_dark_frame_recolours_background_ink_and_every_axis_but_not_the_data():
    from msq.report.chart_style import DARK_GRID, DARK_INK, DARK_PAPER, base_layout, dark_frame
    layout = {**base_layout("t", 300, "x", "y"), "yaxis2": {"gridcolor": "#eee"},
              "annotations": [{"text": "note", "font": {"size": 9}}]}
    dark = dark_frame(layout)
    assert dark["paper_bgcolor"] == dark["plot_bgcolor"] == DARK_PAPER
    assert dark["font"]["color"] == dark["title"]["font"]["color"] == DARK_INK
    assert dark["xaxis"]["gridcolor"] == dark["yaxis"]["gridcolor"] == dark["yaxis2"]["gridcolor"] == DARK_GRID
    assert dark["annotations"][0]["font"] == {"size": 9, "color": DARK_INK}
    assert dark["xaxis"]["title"] == layout["xaxis"]["title"] and layout["paper_bgcolor"] == "white"   # a copy
