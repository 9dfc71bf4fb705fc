"""The report's figures: its data handed to the chart builders shared with the dashboard
(``msq.report.figures``), as plotly-JSON dicts. Pure Python.

    specs = report_figures(report)     # {"allocation": {...}, "bit_heatmap": {...}, ...}
"""
from __future__ import annotations

from typing import Optional

from msq.report import figures

# figure name (also its file name) -> caption; the order is the order in the HTML page
FIGURES = {
    "allocation": "Bit allocation per layer (final widths; weights per layer below)",
    "bit_heatmap": "Bit allocation per layer over the epochs (column 0 = the start)",
    "lsb_heatmap": "LSB density per logged step (white = LSB plane empty, prunable); ▼ = LSBs pruned",
    "hessian": "Hessian sensitivity Tr(H)/N per layer at the last estimate, ± one standard error",
    "hessian_over_time": "Hessian sensitivity at every estimate, relative to the mean over layers",
    "accuracy_compression": "Validation accuracy vs compression, epoch by epoch (quantized phases)",
}


def bits_by_epoch(report: dict) -> tuple[list[int], list[list[Optional[int]]]]:
    """Each layer's width after every epoch (column 0 = before training), replayed from its final
    width and its prune history: ``(epochs, bits[layer][column])``."""
    layers = list(report["layers"].values())
    done = report["run"].get("epochs_done") or 0
    last_prune = max((h["epoch"] for l in layers for h in l["bit_history"] if h.get("epoch") is not None), default=-1)
    epochs = list(range(0, max(done, last_prune + 1) + 1))
    rows = []
    for layer in layers:
        history = sorted(layer["bit_history"], key=lambda h: (h.get("step") or 0))
        bits = history[0]["old_bits"] if history else layer["bits"]
        row = []
        for epoch in epochs:
            # a prune event's epoch is the 0-based epoch at whose end it happened: after epoch E (1-based)
            # every prune with event epoch <= E - 1 has been applied
            for h in history:
                if h.get("epoch") is not None and h["epoch"] == epoch - 1:
                    bits = h["new_bits"]
            row.append(bits)
        rows.append(row)
    return epochs, rows


def _phases(report: dict, unit: str) -> list[dict]:
    """Phase starts after the first: at a step, or between epoch columns (x = epoch + 0.5)."""
    marks = []
    for event in report.get("events") or []:
        if event.get("kind") != "phase" or not event.get("step"):
            continue
        x = event["step"] if unit == "step" else event["epoch"] + 0.5
        marks.append({"name": event.get("phase", ""), "x": x})
    return marks


def _trajectory(report: dict) -> list[dict]:
    """Per-epoch (compression, accuracy, avg bits) of the quantized phases."""
    series = report.get("series", {}).get("epochs", {})
    acc, comp, avg = (series.get(k) or {} for k in ("val_acc", "compression", "avg_bits"))
    by_epoch = {key: dict(zip(s.get("epoch", []), s.get("value", []))) for key, s in
                (("acc", acc), ("comp", comp), ("avg", avg))}
    starts = sorted((e["epoch"], e.get("phase", "")) for e in report.get("events") or [] if e.get("kind") == "phase")
    points = []
    for epoch in sorted(by_epoch["acc"]):
        phase = next((name for start, name in reversed(starts) if epoch > start), "")
        if phase == "pretrain" or epoch is None:
            continue
        points.append({"epoch": epoch, "accuracy": by_epoch["acc"][epoch], "compression": by_epoch["comp"].get(epoch),
                       "avg_bits": by_epoch["avg"].get(epoch), "phase": phase})
    return points


def _solid_hatching(spec: dict) -> dict:
    """plotly.js draws a pattern-filled bar with a transparent background unless ``fillmode`` is
    "overlay", so the hatched (fixed-width) bars vanish on white. Reported to the figures' owner;
    this is a no-op once figures.py sets it."""
    for trace in spec.get("data", []):
        pattern = (trace.get("marker") or {}).get("pattern")
        if isinstance(pattern, dict):
            pattern.setdefault("fillmode", "overlay")
    return spec


def report_figures(report: dict) -> dict[str, dict]:
    """Every figure the report has data for, keyed like ``FIGURES``."""
    return {name: _solid_hatching(spec) for name, spec in _build(report).items()}


def _build(report: dict) -> dict[str, dict]:
    layers = list(report["layers"].values())
    names = list(report["layers"])
    run, totals = report["run"], report["totals"]
    series = report.get("series", {}).get("layers", {})
    specs = {"allocation": figures.bit_allocation_bars([{"fqn": n, **l} for n, l in zip(names, layers)])}
    epochs, bits = bits_by_epoch(report)
    specs["bit_heatmap"] = figures.bit_allocation_heatmap(names, epochs, bits, x_title="epoch",
                                                          phases=_phases(report, "epoch"))
    density = series.get("lsb_density")
    if density and density["step"]:
        prunes = [e for e in report.get("events") or [] if e.get("kind") == "prune"]
        threshold = (report.get("config", {}).get("prune") or {}).get("threshold")
        specs["lsb_heatmap"] = figures.lsb_density_heatmap(names, density["step"], density["values"], threshold=threshold,
                                                           prunes=prunes, phases=_phases(report, "step"))
    if any(l.get("sensitivity") is not None for l in layers):
        sens = series.get("sensitivity") or {}
        specs["hessian"] = figures.sensitivity_bars(
            names, [l.get("sensitivity") for l in layers], std_errors=[l.get("sensitivity_se") for l in layers],
            bits=[l["bits"] for l in layers], fixed=[l["fixed"] for l in layers],
            double_pruned=[n for n, l in zip(names, layers) if any(h.get("k") == 2 for h in l["bit_history"])],
            step=(sens.get("step") or [None])[-1])
        if len(sens.get("step") or []) > 1:
            specs["hessian_over_time"] = figures.relative_sensitivity_heatmap(names, sens["step"], sens["values"])
    trajectory = _trajectory(report)
    # plotly reads <b>, <a href=...> and friends in text as markup: a run name is shown, never interpreted
    label = (run.get("name") or run["id"]).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    final = {"label": label, "id": run["id"], "method": run.get("method"),
             "compression": totals.get("compression"), "accuracy": totals.get("final_acc"),
             "avg_bits": totals.get("average_bits"), "lam": totals.get("lam")}
    if trajectory or final["accuracy"] is not None:
        specs["accuracy_compression"] = figures.accuracy_vs_compression(
            [final] if final["accuracy"] is not None else [], trajectory=trajectory, float_acc=totals.get("float_acc"))
    return specs
