"""Every figure of the run page from one ``RunSnapshot``: pure, so the bench can time exactly what the
page builds. Each figure carries a ``uirevision`` tied to the run, so zoom survives live refreshes.
"""
from __future__ import annotations

from typing import Optional, Sequence

import plotly.graph_objects as go

from dashboard.components import charts, multibit, multibit_charts
from dashboard.components.methods import spec_of
from dashboard.components.snapshot import (RunSnapshot, bits_by_epoch, double_pruned_layers, events_of,
                                           phase_starts, trajectory)
from msq.report import figures


def current_layers(snap: RunSnapshot) -> list[dict]:
    """The layer table with the latest widths (the table follows prunes; the bits vector is the fallback)."""
    bits = (snap.vectors.get("bits") or {}).get("values")
    final = {l.get("fqn"): l for l in (snap.run.get("summary") or {}).get("layers") or [] if isinstance(l, dict)}
    out = []
    for i, layer in enumerate(snap.layers):
        b = layer.get("bits")
        if b is None and bits and i < len(bits):
            b = bits[i]
        # a finished run says what each weight takes to store (BSQ: its planes and a sign bit)
        out.append({**layer, "bits": b, "storage_bits": (final.get(layer.get("fqn")) or {}).get("storage_bits")})
    return out


def float_accuracy(snap: RunSnapshot) -> Optional[float]:
    summary = snap.run.get("summary") or {}
    if summary.get("float_acc") is not None:
        return summary["float_acc"]
    acc = snap.scalars.get("val_acc") or {}
    for phase in events_of(snap.events, "phase"):
        if phase.get("phase") == "pretrain":   # the accuracy at the end of float pretraining
            end = (phase["epoch"] or 0) + int(phase.get("epochs") or 0)
            values = [v for e, v in zip(acc.get("epoch", []), acc.get("value", [])) if e == end]
            return values[-1] if values else None
    return None


def sensitivity_inputs(snap: RunSnapshot) -> Optional[dict]:
    """The latest Hessian estimate: values, std errors, its mean (from the hessian event) and step."""
    latest = snap.vectors.get("sensitivity")
    if not latest:
        return None
    hessians = events_of(snap.events, "hessian")
    mean = hessians[-1].get("mean_sensitivity") if hessians else None
    se = (snap.vectors.get("sensitivity_se") or {}).get("values")
    return {"values": latest["values"], "se": se, "mean": mean, "step": latest["step"]}


def build_figures(snap: RunSnapshot, chosen: Sequence[str] = (), chosen_series: Optional[dict] = None) -> dict:
    """{"bits_heatmap", "bits_bars", "density_heatmap", "layer_lines", "sensitivity_bars",
    "sensitivity_heatmap", "loss", "accuracy", "lam" (a method with a live strength), "trajectory", and for a
    method with the "widths" panel (multi-bit) "acc_widths", "loss_widths"} -> Figure (absent when there is no
    data)."""
    rev = snap.run.get("id", "run")
    names = snap.layer_names
    prunes = events_of(snap.events, "prune")
    layers = current_layers(snap)
    out: dict[str, go.Figure] = {}
    if names:
        epochs, bits = bits_by_epoch(snap.bits, layers)
        if epochs:
            out["bits_heatmap"] = charts.to_figure(figures.bit_allocation_heatmap(
                names, epochs, bits, "epoch", phases=phase_starts(snap.events, "epoch")), f"{rev}-bits")
        out["bits_bars"] = charts.to_figure(figures.bit_allocation_bars(layers), f"{rev}-bars")
    if snap.density is not None and snap.density.n_steps:
        out["density_heatmap"] = charts.to_figure(figures.lsb_density_heatmap(
            names, snap.density.steps, snap.density.to_lists(), threshold=snap.threshold, prunes=prunes,
            phases=phase_starts(snap.events, "step")), f"{rev}-density")
        if chosen:
            series = chosen_series if chosen_series is not None else _columns(snap, chosen)
            out["layer_lines"] = charts.layer_lines(series, snap.threshold, prunes)
            out["layer_lines"].update_layout(uirevision=f"{rev}-lines")
    sens = sensitivity_inputs(snap)
    if sens and names:
        out["sensitivity_bars"] = charts.to_figure(figures.sensitivity_bars(
            names, sens["values"], mean=sens["mean"], std_errors=sens["se"], bits=[l["bits"] for l in layers],
            double_pruned=double_pruned_layers(snap.events), fixed=[l.get("fixed") for l in layers],
            step=sens["step"]), f"{rev}-sens")
        if snap.sensitivity is not None and snap.sensitivity.n_steps > 1:
            out["sensitivity_heatmap"] = charts.to_figure(figures.relative_sensitivity_heatmap(
                names, snap.sensitivity.steps, snap.sensitivity.to_lists()), f"{rev}-sensmap")
    spec = spec_of(snap.run.get("method"))
    if snap.scalars:
        out["loss"] = charts.loss_curves(snap.scalars, snap.events, prunes, snap.run.get("method")) \
            .update_layout(uirevision=f"{rev}-loss")
        out["accuracy"] = charts.accuracy_curves(snap.scalars, snap.events, float_accuracy(snap)) \
            .update_layout(uirevision=f"{rev}-acc")
        if spec is not None and spec.knob is not None:   # its strength rides on the "lam" scalar
            out["lam"] = charts.lam_curve(snap.scalars, snap.events, spec.knob.label) \
                .update_layout(uirevision=f"{rev}-lam")
        if spec is not None and "widths" in spec.panels:
            trained, unseen = multibit.widths_of(snap.config, snap.run.get("summary"), snap.scalars)
            if multibit.by_width(snap.scalars, "acc"):
                out["acc_widths"] = multibit_charts.accuracy_per_width(
                    snap.scalars, trained, unseen, snap.events, float_accuracy(snap)).update_layout(uirevision=f"{rev}-mbacc")
            if multibit.by_width(snap.scalars, "loss"):
                out["loss_widths"] = multibit_charts.loss_per_width(snap.scalars, trained, snap.events) \
                    .update_layout(uirevision=f"{rev}-mbloss")
        points = [p for p in trajectory(snap.scalars, snap.events) if p.get("phase") != "(pretrain)"]
        if points:
            out["trajectory"] = charts.to_figure(figures.accuracy_vs_compression(
                trajectory=points, float_acc=float_accuracy(snap)), f"{rev}-traj")
    return out


def _columns(snap: RunSnapshot, chosen: Sequence[str]) -> dict:
    """Chosen layers' density over the (downsampled) heatmap steps, cut from the matrix already read."""
    names, matrix = snap.layer_names, snap.density
    n = matrix.n_layers
    return {name: {"step": matrix.steps, "value": matrix.values[names.index(name)::n].tolist()}
            for name in chosen if name in names}
