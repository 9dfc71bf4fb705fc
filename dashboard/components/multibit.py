"""A multi-bit run's numbers as its page draws them: widths, per-width series, coreset selections, the
time it took and what that saves against full-data training. Pure (no streamlit, no torch).

The worker logs per epoch ``acc_b{b}``, ``loss_b{b}`` (trained and unseen widths), ``coreset_size_b{b}``,
``coreset_kept_b{b}``, ``coreset_overlap``, ``score_b{b}_{mean,q10,q50,q90}``, ``scoring_seconds`` and
``training_seconds``; a finished run adds the ``multibit`` section of result.json (msq/methods/multibit/
summary.py). Its settings are the run's method's own config section (``MethodSpec.config_key``).

    >>> by_width({"acc_b2": {"epoch": [2], "value": [90.0]}, "acc_b8": {"epoch": [2], "value": [95.0]}}, "acc")
    {2: {'epoch': [2], 'value': [90.0]}, 8: {'epoch': [2], 'value': [95.0]}}
    >>> estimated_full_seconds(10.0, 0.25)
    40.0
"""
from __future__ import annotations

import html
import re
from typing import Optional, Sequence

from dashboard.components.methods import own_section

RESULT_SECTION = "multibit"   # the key of the result.json section the multi-bit method writes (its
#                               Method.summary, msq/methods/multibit/method.py): a data key, not a method look-up


def _result(summary: Optional[dict]) -> dict:
    """The multi-bit section of a run's result ({} before the run ended)."""
    return (summary or {}).get(RESULT_SECTION) or {}


def by_width(scalars: dict, prefix: str) -> dict[int, dict]:
    """``{b: series}`` of the scalar keys ``{prefix}_b{b}``, widths in increasing order."""
    pattern = re.compile(rf"^{re.escape(prefix)}_b(\d+)$")
    found = {int(m.group(1)): series for key, series in scalars.items() if (m := pattern.match(key))}
    return {b: found[b] for b in sorted(found)}


def scores_by_width(scalars: dict) -> dict[int, dict[str, dict]]:
    """``{b: {"q10": series, "q50": ..., "q90": ..., "mean": ...}}`` of the EL2N score summaries."""
    out: dict[int, dict] = {}
    for key, series in scalars.items():
        m = re.match(r"^score_b(\d+)_(q10|q50|q90|mean)$", key)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2)] = series
    return {b: out[b] for b in sorted(out)}


def widths_of(config: Optional[dict], summary: Optional[dict], scalars: dict) -> tuple[list[int], list[int]]:
    """(trained, unseen) widths: from the result's ``multibit`` section, else the config, else the logs."""
    mb = _result(summary)
    if mb.get("bits"):
        return sorted(mb["bits"]), sorted(mb.get("unseen_bits") or [])
    cfg = own_section(config)
    if cfg.get("bits"):
        trained = sorted(cfg["bits"])
        return trained, sorted(b for b in cfg.get("eval_bits") or [] if b not in trained)
    logged = list(by_width(scalars, "acc"))
    trained = sorted(by_width(scalars, "coreset_size")) or logged
    return trained, [b for b in logged if b not in trained]


def final_accuracy(summary: Optional[dict], scalars: dict) -> dict[int, float]:
    """Accuracy per width after the last epoch: the result's, else the latest logged ``acc_b{b}``."""
    stored = _result(summary).get("acc_by_width") or {}
    if stored:
        return {int(b): float(v) for b, v in sorted(stored.items(), key=lambda kv: int(kv[0])) if v is not None}
    return {b: s["value"][-1] for b, s in by_width(scalars, "acc").items() if s.get("value")}


def sizes_by_width(summary: Optional[dict]) -> dict[int, dict]:
    """``{b: {"avg_bits", "compression", "size_bytes"}}`` at each uniform width (finished runs only)."""
    stored = _result(summary).get("size_by_width") or {}
    return {int(b): v for b, v in sorted(stored.items(), key=lambda kv: int(kv[0]))}


def selection_epochs(events: Sequence[dict]) -> list[int]:
    """The epoch rows whose coreset statistics are fresh: a selection at the start of epoch e (0-based,
    as the event records it) is logged with the row of epoch e + 1 (rows count epochs done)."""
    return sorted({(e.get("epoch") or 0) + 1 for e in events if e.get("kind") == "coreset"})


def coreset_fraction(config: Optional[dict], summary: Optional[dict]) -> Optional[float]:
    mb = _result(summary)
    if (mb.get("coreset") or {}).get("fraction") is not None:
        return float(mb["coreset"]["fraction"])
    value = own_section(config).get("coreset_fraction")
    return None if value is None else float(value)


def multibit_epochs(config: Optional[dict]) -> int:
    """Epochs of the multi-bit phase (search + finetune epochs of the config)."""
    train = (config or {}).get("train") or {}
    return int(train.get("search_epochs") or 0) + int(train.get("finetune_epochs") or 0)


def time_totals(scalars: dict, summary: Optional[dict] = None) -> dict:
    """Wall seconds spent scoring (coreset selection) and training the multi-bit phase, and its epochs
    done: the result's totals once the run ended, else the sum of the per-epoch logs so far."""
    scoring = [v for v in (scalars.get("scoring_seconds") or {}).get("value", []) if v is not None]
    training = [v for v in (scalars.get("training_seconds") or {}).get("value", []) if v is not None]
    timings = _result(summary).get("timings") or {}
    out = {"scoring": float(timings.get("scoring_seconds", sum(scoring))),
           "training": float(timings.get("training_seconds", sum(training))),
           "epochs": max(len(training), len(scoring))}
    out["total"] = out["scoring"] + out["training"]
    return out


def estimated_full_seconds(training_seconds: float, fraction: float) -> float:
    """Full-data multi-bit training time, estimated from a coreset run's: each width's steps per epoch
    scale with the samples it sees, so the steps take 1/fraction as long on all the data."""
    return training_seconds / fraction if fraction > 0 else float("nan")


def full_data_baselines(run: dict, candidates: Sequence[dict]) -> list[dict]:
    """Completed full-data (coreset_fraction = 1) runs of the same method, model and dataset, best match
    first (same widths, same epochs, then newest). ``candidates``: full run rows (config and summary)."""
    config = run.get("config") or {}

    def key(row: dict) -> tuple:
        c = row.get("config") or {}
        same_bits = sorted(own_section(c).get("bits") or []) == sorted(own_section(config).get("bits") or [])
        same_epochs = multibit_epochs(c) == multibit_epochs(config)
        return (not same_bits, not same_epochs, -(row.get("created") or 0))

    out = []
    for row in candidates:
        c = row.get("config") or {}
        if row.get("id") == run.get("id") or row.get("status") != "completed" or \
                c.get("method") != config.get("method"):
            continue
        if c.get("model") != config.get("model") or (c.get("data") or {}).get("name") != \
                (config.get("data") or {}).get("name"):
            continue
        if float(own_section(c).get("coreset_fraction", 1.0)) < 1.0 or not _result(row.get("summary")).get("timings"):
            continue
        out.append(row)
    return sorted(out, key=key)


def time_saving(run: dict, scalars: dict, baseline: Optional[dict] = None) -> Optional[dict]:
    """This coreset run's time against full-data multi-bit training: a measured ``baseline`` run (full
    row) when there is one, scaled per epoch if its epoch count differs, else an estimate. None for a
    full-data run or before the first multi-bit epoch.

    -> {"this": {scoring, training, total, epochs}, "full": {label, training, scoring, total, epochs,
        estimated, scaled, id}, "saving": fraction of the full time saved, "speedup": full / this}"""
    fraction = coreset_fraction(run.get("config"), run.get("summary"))
    this = time_totals(scalars, run.get("summary"))
    if fraction is None or fraction >= 1.0 or this["epochs"] == 0 or this["total"] <= 0:
        return None
    if baseline is not None:
        other = time_totals({}, baseline.get("summary"))
        epochs = multibit_epochs(baseline.get("config")) or other["epochs"]
        scaled = epochs != this["epochs"]
        factor = this["epochs"] / epochs if scaled and epochs else 1.0
        name = baseline.get("name") or baseline["id"]
        full = {"label": html.escape(f"full-data run “{name}”", quote=False), "id": baseline["id"],
                "training": other["training"] * factor, "scoring": other["scoring"] * factor, "epochs": epochs,
                "estimated": False, "scaled": scaled,
                "mean_acc": _result(baseline.get("summary")).get("trained_mean_acc")}
    else:
        full = {"label": "full data (estimate)", "id": None, "scoring": 0.0, "epochs": this["epochs"],
                "training": estimated_full_seconds(this["training"], fraction), "estimated": True, "scaled": False,
                "mean_acc": None}
    full["total"] = full["training"] + full["scoring"]
    return {"this": this, "full": full, "fraction": fraction, "saving": 1.0 - this["total"] / full["total"],
            "speedup": full["total"] / this["total"]}


def width_points(row: dict, summary: Optional[dict]) -> list[dict]:
    """A finished multi-bit run as one compare point per width (accuracy and size at that width), so it
    sits on the accuracy-vs-compression chart beside the searched runs; [] when it has no result yet."""
    method = row.get("method") or (row.get("config") or {}).get("method")
    acc = final_accuracy(summary, {})
    sizes = sizes_by_width(summary)
    trained, unseen = widths_of(row.get("config"), summary, {})
    name = html.escape(row.get("name") or row["id"][-6:], quote=False)
    out = []
    for b in trained + unseen:
        if b in acc and b in sizes:
            out.append({"id": row["id"], "label": f"{name} @{b}b" + (" (unseen)" if b in unseen else ""),
                        "method": method, "compression": sizes[b].get("compression"), "accuracy": acc[b],
                        "avg_bits": sizes[b].get("avg_bits"), "lam": None})
    return out
