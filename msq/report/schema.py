"""The canonical bit-allocation report: one versioned JSON-ready dict per run, keyed by each quantized
module's fully qualified name. Every exporter (CSV, Markdown, HTML, figures, bit maps) renders this
dict and nothing else, so they cannot disagree.

    report = build_report("runs", "20261123-120000-a1b2c3")
    report["layers"]["features.0"]["bits"], report["totals"]["compression"]

Totals come from ``msq.accounting`` (METHODS §6), computed from the report's own layers. A run that
failed or is still running gets a report too: ``run.complete`` is false and ``notes`` say what is
missing and why. The fields are documented in ``msq/report/fields.py`` (and docs/report_fields.md).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
from typing import Optional

from msq import __version__
from msq.accounting import bit_ops, summarize
from msq.errors import MSQError
from msq.jsonsafe import finite_or_none
from msq.report.collect import Sources, gather
from msq.runs import RunStore
from msq.methods.budget import BUDGET_FIELDS      # torch-free: the planner is pure Python

SCHEMA = "msq-studio/bit-allocation-report"
SCHEMA_VERSION = 1


class ReportSchemaError(MSQError, ValueError):
    """A dict that is not a report this version of msq can render."""


def build_report(home, run_id: str, *, read_checkpoint: bool = True) -> dict:
    """The report of one stored run. ``read_checkpoint=False`` skips the checkpoint (no torch import):
    the float-parameter table is then left out."""
    store = RunStore(home, create=False)
    return assemble(gather(store, run_id, read_checkpoint=read_checkpoint))


def _iso(t: Optional[float]) -> Optional[str]:
    return None if t is None else _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")


def _first(*values):
    return next((v for v in values if v is not None), None)


def _last(series: dict, key: str):
    values = [v for v in (series.get(key) or {}).get("value", []) if v is not None]
    return values[-1] if values else None


def _float_acc_from_series(src: Sources, epochs: dict) -> Optional[float]:
    """Validation accuracy at the end of the float pretraining phase (the first phase event after it)."""
    starts = [e for e in src.events if e["kind"] == "phase" and e.get("phase") != "pretrain"]
    acc = epochs.get("val_acc") or {}
    if not starts or not acc:
        return None
    at = [v for v, ep in zip(acc.get("value", []), acc.get("epoch", [])) if ep == starts[0]["epoch"]]
    return at[-1] if at and starts[0]["epoch"] else None


def _layers(src: Sources, cfg: dict) -> dict:
    summary_layers = (src.summary or {}).get("layers") or []
    base = summary_layers or sorted(src.layers, key=lambda l: l["idx"])
    ckpt = (src.checkpoint or {}).get("layers") or {}
    calibrated = (src.checkpoint or {}).get("scales_calibrated", True)
    act_cfg = (cfg.get("quant") or {}).get("act_bits")
    z = float((cfg.get("hessian") or {}).get("z", 1.96))
    out = {}
    for index, row in enumerate(base):
        fqn = row["fqn"]
        latest = {m: v["values"][index] for m, v in src.latest.items() if index < len(v["values"])}
        if summary_layers:
            values = {k: row.get(k) for k in ("scale", "act_bits", "lsb_density", "quant_error", "sensitivity",
                                             "sensitivity_se")}
            history = row.get("bit_history") or []
        else:
            saved = ckpt.get(fqn, {})
            values = {"scale": saved.get("scale") if calibrated else None,
                      "act_bits": saved.get("act_bits", act_cfg if index > 0 else None),
                      **{k: latest.get(k) for k in ("lsb_density", "quant_error", "sensitivity", "sensitivity_se")}}
            history = [{k: e.get(k) for k in ("epoch", "step", "old_bits", "new_bits", "k", "density", "sensitivity")}
                       for e in src.events if e["kind"] == "prune" and e.get("fqn") == fqn]
        bits = int(row["bits"])
        sens, se = values.get("sensitivity"), values.get("sensitivity_se")
        interval = [sens - z * se, sens + z * se] if sens is not None and se is not None and math.isfinite(se) else None
        out[fqn] = {
            "index": index, "kind": row.get("kind"), "shape": list(row.get("shape") or []),
            "params": int(row.get("params") or 0), "macs": int(row.get("macs") or 0), "bits": bits,
            "storage_bits": int(row.get("storage_bits") or bits), "sensitivity_interval": interval,
            "bit_ops": bit_ops([int(row.get("macs") or 0)], [bits], [values["act_bits"]]),
            "fixed": bool(row.get("fixed")), "fixed_reason": row.get("fixed_reason") or "",
            **values, "bit_history": history,
        }
    return out


def _notes(src: Sources, run: dict, layers: dict, epochs: dict) -> list[str]:
    notes, status = [], run["status"]
    last = max((e for series in epochs.values() for e in series.get("epoch", []) if e is not None), default=None)
    where = f"up to epoch {last}" if last is not None else "before the first epoch ended"
    if status == "failed":
        notes.append(f"This run FAILED ({run.get('error') or 'no reason recorded'}); the report covers what was "
                     f"stored {where}.")
    elif status in ("running", "queued"):
        notes.append(f"This run is still {status}: the report is a snapshot {where}.")
    elif status == "stopped":
        notes.append(f"This run was stopped ({run.get('error') or 'on request'}) {where}; numbers are those at the stop.")
    if src.summary is None and status in ("running", "queued"):
        if layers:
            notes.append("No final summary yet: per-layer values are the last logged ones and the totals are "
                         "computed from them.")
    elif src.summary is None:
        notes.append("No final summary was stored (the worker ended before writing one): per-layer values are the "
                     "last logged ones and the totals are recomputed from them.")
        if src.checkpoint is not None and not src.checkpoint.get("scales_calibrated", True):
            notes.append("Scales are not listed: the run stopped before its quantized phases set them.")
    elif src.summary_source == "result.json":
        notes.append("The store holds no summary for this run; the final values come from its result.json.")
    if layers and all(l.get("sensitivity") is None for l in layers.values()):
        notes.append("Sensitivity (Hessian trace) was not estimated in this run: it is measured only when a layer "
                     "is about to be pruned, or hessian.enabled is off.")
    return notes + src.notes


def assemble(src: Sources) -> dict:
    run, s = src.run, src.summary or {}
    cfg, ckpt = run.get("config") or {}, src.checkpoint or {}
    epochs = src.series.get("epochs", {})
    layers = _layers(src, cfg)
    rows = list(layers.values())
    float_params = s.get("float_params", ckpt.get("float_params"))
    totals = summarize([l["params"] for l in rows], [l["storage_bits"] for l in rows], float_params or 0,
                       [l["macs"] for l in rows], [l["act_bits"] for l in rows])
    if float_params is None:   # unknown: say so rather than print a size without the float part
        totals.update(float_params=None, model_size_bytes=None, float_model_size_bytes=None)
    if not rows:               # nothing stored yet: no ratio to speak of
        totals.update(average_bits=None, compression=None)
    if src.summary:
        float_acc, final_acc, final_loss = s.get("float_acc"), s.get("final_acc"), s.get("final_val_loss")
    else:
        float_acc = _first(ckpt.get("float_acc"), _float_acc_from_series(src, epochs))
        final_acc, final_loss = _last(epochs, "val_acc"), _last(epochs, "val_loss")
    lam_changes = [e["new"] for e in src.events if e["kind"] == "lam_change"]
    totals.update({
        "float_acc": float_acc, "final_acc": final_acc, "final_val_loss": final_loss,
        "trainable_params": s.get("trainable_params"), "quantized_layers": len(rows),
        "searched_layers": sum(not l["fixed"] for l in rows),
        "lam": s.get("lam", lam_changes[-1] if lam_changes else (cfg.get("reg") or {}).get("lam")),
    })
    if float_params is None and rows:
        src.notes.append("Model size is not given: the float-parameter count is kept in the final summary and the "
                         "checkpoint, and neither was available.")
    sources = ["store"] + ([src.summary_source] if src.summary_source == "result.json" else []) + \
              (["checkpoint.pt"] if src.checkpoint is not None else [])
    report = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "generated": {"at": _iso(_dt.datetime.now().timestamp()), "msq_version": __version__, "sources": sources},
        "run": {
            "id": run["id"], "name": run.get("name") or "", "status": run["status"],
            "complete": run["status"] == "completed" and src.summary is not None, "error": run.get("error"),
            "method": run.get("method") or cfg.get("method"), "model": run.get("model") or cfg.get("model"),
            "dataset": run.get("dataset") or (cfg.get("data") or {}).get("name"), "device": run.get("device"),
            "host": run.get("host"), "created": _iso(run.get("created")), "started": _iso(run.get("started")),
            "ended": _iso(run.get("ended")), "duration_s": run.get("duration"),
            "epochs_done": s.get("epochs_done") if src.summary else _first(src.last_epoch, ckpt.get("epoch")),
            "steps_done": s.get("steps_done") if src.summary else _first(src.last_step, ckpt.get("step")),
        },
        "notes": _notes(src, run, layers, epochs),
        "totals": totals,
        "layers": layers,
        "budget": s.get("budget") or dict.fromkeys(BUDGET_FIELDS),
        "float_parameters": ckpt.get("float_parameters"),
        "seed": (cfg.get("train") or {}).get("seed"),
        "versions": s.get("versions"),
        "timings": s.get("timings") or ckpt.get("timings") or {},
        "events": s.get("events") if src.summary and not src.events else src.events,
        "series": src.series,
        "config": cfg,
    }
    return finite_or_none(report)


def validate_report(report: object) -> dict:
    """The report itself if this msq can render it; a ReportSchemaError naming the problem otherwise."""
    if not isinstance(report, dict) or report.get("schema") != SCHEMA:
        raise ReportSchemaError(f"not an MSQ bit-allocation report: expected a JSON object with "
                                f"schema = {SCHEMA!r} (build one with msq.report.build_report)")
    version = report.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ReportSchemaError(f"report schema_version = {version!r} is not supported: this msq "
                                f"({__version__}) reads version {SCHEMA_VERSION}; rebuild the report with it")
    missing = [k for k in ("run", "totals", "layers", "config") if k not in report]
    if missing:
        raise ReportSchemaError(f"report is missing {', '.join(missing)}: rebuild it with msq.report.build_report")
    return report


def to_json(report: dict, indent: Optional[int] = 2) -> str:
    return json.dumps(validate_report(report), indent=indent, ensure_ascii=False, allow_nan=False)


def from_json(text: str) -> dict:
    try:
        return validate_report(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ReportSchemaError(f"the report is not valid JSON: {exc}") from None
