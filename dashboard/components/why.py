"""Why each layer got its bits: one row per layer with its width, the signals that decided it (LSB
density against α, Hessian sensitivity against the mean) and its prune history, in words. Pure.

The wording follows what the run's ``MethodSpec`` says of its method: widths it was given (``widths_key``:
uniform QAT's one width, multi-bit's several), LSB pruning (a phase with ``prune``: MSQ), or the method's own
``explain_layer`` sentence (BSQ's re-quantizations).
"""
from __future__ import annotations

from typing import Optional, Sequence

import pandas as pd

from dashboard.components.intervals import ratio_text, trace_text
from dashboard.components.methods import prunes_lsbs, spec_of, widths_of

COLUMNS = ["layer", "kind", "weights", "start bits", "bits", "LSB density", "sensitivity", "× mean",
           "prunes", "why"]


def layer_rows(layers: Sequence[dict], vectors: dict, events: Sequence[dict], config: Optional[dict]) -> list[dict]:
    """Per layer: fqn, kind, params, fixed, start/now bits, lsb_density, sensitivity (+ std error),
    sensitivity relative to the mean, prune history, and a sentence saying why."""
    config = config or {}
    prune_cfg = config.get("prune") or {}
    quant = config.get("quant") or {}
    alpha = prune_cfg.get("threshold")
    min_bits = prune_cfg.get("min_bits")
    method = config.get("method")
    given = widths_of(spec_of(method), config)   # the widths the user gave the method, if it takes them
    density = (vectors.get("lsb_density") or {}).get("values") or []
    sens = (vectors.get("sensitivity") or {}).get("values") or []
    sens_se = (vectors.get("sensitivity_se") or {}).get("values") or []
    hessians = [e for e in events if e["kind"] == "hessian"]
    mean = (hessians[-1]["payload"] or {}).get("mean_sensitivity") if hessians else None
    prunes = [{"step": e["step"], "epoch": e["epoch"], **(e["payload"] or {})} for e in events if e["kind"] == "prune"]
    rows = []
    for i, layer in enumerate(layers):
        name = layer["fqn"]
        history = [p for p in prunes if p.get("fqn") == name]
        bits = layer.get("bits")
        if history:
            start = history[0].get("old_bits")
        elif layer.get("fixed"):
            start = quant.get("fixed_bits", bits)
        elif len(given) == 1:   # every searched layer at the one width given
            start = given[0]
        else:
            start = quant.get("init_bits", bits)
        d = _at(density, i)
        s = _at(sens, i)
        rel = s / mean if (s is not None and mean and mean > 0) else None   # a mean ≤ 0 is noise: no ratio
        rows.append({
            "fqn": name, "kind": layer.get("kind"), "params": layer.get("params"), "fixed": bool(layer.get("fixed")),
            "start_bits": start, "bits": bits, "lsb_density": d, "sensitivity": s, "sensitivity_se": _at(sens_se, i),
            "sensitivity_vs_mean": rel, "sensitivity_mean": mean,
            "prunes": [{k: p.get(k) for k in ("epoch", "step", "old_bits", "new_bits", "k", "density", "sensitivity")}
                       for p in history],
            "why": explain(layer, bits, d, rel, history, alpha, min_bits, method, config,
                           rel_text=ratio_text(s, _at(sens_se, i), mean) if _at(sens_se, i) is not None else None),
        })
    return rows


def _at(values: Sequence, i: int) -> Optional[float]:
    if i < len(values) and values[i] is not None and values[i] == values[i]:
        return float(values[i])
    return None


def explain(layer: dict, bits, density: Optional[float], rel: Optional[float], history: list, alpha, min_bits,
            method: Optional[str], config: dict, rel_text: Optional[str] = None) -> str:
    """One sentence: the rule that gave this layer its width. ``rel_text``: the ratio to the mean as shown
    (with its ± std error), in place of the bare ratio."""
    if layer.get("fixed"):
        return f"fixed at {bits} bits ({layer.get('fixed_reason') or 'excluded from the search'}); not searched"
    reason = _method_reason(method, bits, history, config)
    if reason is not None:
        return reason
    return _pruning_reason(bits, density, rel, history, alpha, min_bits, rel_text)


def _method_reason(method: Optional[str], bits, history: list, config: dict) -> Optional[str]:
    """The sentence of a method that does not prune LSBs by their density (None for one that does: MSQ)."""
    spec = spec_of(method)
    if spec is None:
        return f"{bits} bits, chosen by the {method} method"
    if spec.explain_layer is not None:
        return spec.explain_layer(bits, history, config)
    given = widths_of(spec, config)
    if given and not spec.one_allocation:
        return (f"{spec.title_in_text}: trained at {', '.join(map(str, given))} bits, one set of weights"
                + (f" (shown at {bits} bits)" if bits is not None else ""))
    if given:
        return f"{spec.title_in_text}: every searched layer trains at {', '.join(map(str, given))} bits"
    return None if prunes_lsbs(spec) else f"{bits} bits, chosen by the {spec.title} method"


def _pruning_reason(bits, density: Optional[float], rel: Optional[float], history: list, alpha, min_bits,
                    rel_text: Optional[str]) -> str:
    """LSB pruning: the prunes that took the layer to its width, what stops it, and its sensitivity."""
    parts = []
    if history:
        chain = "→".join([str(history[0].get("old_bits"))] + [str(p.get("new_bits")) for p in history])
        doubles = sum(1 for p in history if p.get("k") == 2)
        steps = f"{len(history)} prune" + ("s" if len(history) > 1 else "")
        parts.append(f"{chain} bits in {steps}, each when its LSB plane was (almost) empty"
                     + (f" (density ≤ α = {alpha:g})" if alpha is not None else ""))
        if doubles:
            parts.append(("twice" if doubles == 2 else f"{doubles}×" if doubles > 2 else "once")
                         + " two LSBs at once: its sensitivity was below the mean")
    if min_bits is not None and bits is not None and bits <= min_bits:
        parts.append(f"stops at the minimum width ({min_bits} bits)")
    elif density is not None and alpha is not None:
        if density > alpha:
            verb = "stops at" if history else "keeps"
            parts.append(f"{verb} {bits} bits: its LSBs carry information (density {density:.2f} > α = {alpha:g})")
        else:
            parts.append(f"LSB plane nearly empty now (density {density:.2f} ≤ α): may lose a bit at the next check")
    if rel is not None and not history:
        shown = rel_text or (f"{rel:.1f}" if rel >= 1 else f"{rel:.2f}")
        parts.append(f"sensitive ({shown}× the mean): would drop one LSB at a time" if rel >= 1
                     else f"insensitive ({shown}× the mean): would drop two LSBs at once")
    return "; ".join(parts) if parts else f"{bits} bits"


def why_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """The rows as the table the run page shows (formatted history, readable column names)."""
    data = [{"layer": r["fqn"], "kind": r["kind"], "weights": r["params"], "start bits": r["start_bits"],
             "bits": r["bits"], "LSB density": r["lsb_density"], "sensitivity": r["sensitivity"],
             "× mean": r["sensitivity_vs_mean"],
             "prunes": " · ".join(f"ep {p['epoch']}: {p['old_bits']}→{p['new_bits']}" for p in r["prunes"]) or "—",
             "why": r["why"]} for r in rows]
    return pd.DataFrame(data, columns=COLUMNS)


def why_display(rows: Sequence[dict]) -> pd.DataFrame:
    """The same rows as strings for a wrapped, static table (layer names as the index)."""
    def num(value, fmt):
        return "—" if value is None else format(value, fmt)
    frame = why_frame(rows)
    out = pd.DataFrame({
        "bits": [f"{s} → {b}" if s is not None and s != b else f"{b}"
                 for s, b in zip(frame["start bits"], frame["bits"])],
        "weights": [num(v, ",") for v in frame["weights"]],
        "LSB density": [num(v, ".3f") for v in frame["LSB density"]],
        "Tr(H)/N": [trace_text(r["sensitivity"], r.get("sensitivity_se")) for r in rows],
        "× mean": [ratio_text(r["sensitivity"], r.get("sensitivity_se"), r.get("sensitivity_mean")) for r in rows],
        "why": frame["why"].tolist()}, index=pd.Index(frame["layer"].tolist(), name="layer"))
    return out
