"""The bit-allocation report of the Export page.

- ``build_report(snapshot)``: the dashboard's own quick report from what the page already read (per layer
  fqn, bits, weights, LSB density, sensitivity, prune history, why; totals from ``msq.accounting``). It
  feeds the preview table, and the downloads if the canonical report cannot be built.
- ``export_files(...)``: the ADAPTER to the canonical report of ``msq.report`` (``build_report`` +
  ``render_report``): the report (JSON, CSV, Markdown, HTML, PNG/PDF figures) and the files a
  deployment toolchain takes (bit map, HAWQ bit_config.py, NNCF config, torchao config), rendered only
  when a download is clicked. The model files (ONNX, packed checkpoint) are in ``model_files``.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
import time
from typing import Callable, Optional

from dashboard.components.live import current_layers, float_accuracy
from dashboard.components.snapshot import RunSnapshot
from dashboard.components.why import layer_rows
from msq.accounting import summarize

FORMAT = "msq-bit-allocation/1"
CSV_COLUMNS = ["fqn", "kind", "params", "bits", "start_bits", "fixed", "lsb_density", "sensitivity",
               "sensitivity_vs_mean", "weight_bits", "memory_share", "prunes", "why"]


def build_report(snap: RunSnapshot) -> dict:
    """The report of one run, from what the store holds now (a finished run's summary wins)."""
    summary = snap.run.get("summary") or {}
    final = {l["fqn"]: l for l in summary.get("layers") or [] if isinstance(l, dict) and "fqn" in l}
    rows = layer_rows(current_layers(snap), snap.vectors, snap.events, snap.config)
    for row in rows:   # a finished run's own final signals, when it recorded them
        done = final.get(row["fqn"]) or {}
        for key in ("bits", "lsb_density", "sensitivity", "sensitivity_se"):
            if done.get(key) is not None:
                row[key] = done[key]
    params = [int(r["params"] or 0) for r in rows]
    bits = [int(r["bits"]) if r["bits"] is not None else 0 for r in rows]
    totals = summarize(params, bits, float_params=int(summary.get("float_params") or 0),
                       macs=[int(l.get("macs") or 0) for l in snap.layers])
    used = sum(n * b for n, b in zip(params, bits)) or 1
    for row, n, b in zip(rows, params, bits):
        row["weight_bits"], row["memory_share"] = n * b, n * b / used
    latest = snap.latest
    run = snap.run
    return _clean({
        "format": FORMAT, "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run": {k: run.get(k) for k in ("id", "name", "method", "model", "dataset", "status", "device", "lam",
                                        "created", "started", "ended", "error")},
        "accuracy": {"float": float_accuracy(snap),
                     "final": summary.get("final_acc", (latest.get("val_acc") or {}).get("value"))},
        "totals": {**totals, "layers": len(rows), "quantized_layers": len(rows)},
        "note": "compression and average bits count quantized weight layers only; biases and BatchNorm stay float",
        "layers": rows,
        "config": snap.config,
    })


def _clean(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def report_csv(report: dict) -> str:
    """One row per layer plus a TOTAL row (average bits in ``bits``, compression in ``why``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report["layers"]:
        writer.writerow({**row, "prunes": " ".join(f"{p['old_bits']}->{p['new_bits']}@e{p['epoch']}"
                                                   for p in row.get("prunes") or [])})
    totals = report["totals"]
    writer.writerow({"fqn": "TOTAL", "params": totals["quantized_params"], "bits": round(totals["average_bits"], 4),
                     "weight_bits": sum(r["weight_bits"] for r in report["layers"]), "memory_share": 1.0,
                     "why": f"compression {totals['compression']:.3f}x vs 32-bit float weights; "
                            f"accuracy {_pct(report['accuracy']['final'])} "
                            f"(float {_pct(report['accuracy']['float'])})"})
    return out.getvalue()


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def file_stem(run: dict) -> str:
    """``msq-report-<run id>[-<name>]``: the id is validated by the store; the name is reduced to
    letters, digits, ``.``, ``_`` and ``-`` so it can never become a path."""
    name = re.sub(r"[^\w.\-]+", "_", run.get("name") or "", flags=re.UNICODE).strip("._-")[:60]
    return f"msq-report-{run['id']}" + (f"-{name}" if name else "")


def report_files(report: dict) -> dict[str, tuple[bytes, str]]:
    """The dashboard report as {"json": (bytes, mime), "csv": (bytes, mime)} (the fallback downloads)."""
    return {"json": (json.dumps(report, indent=2).encode(), "application/json"),
            "csv": (report_csv(report).encode(), "text/csv")}


# -- adapter to the canonical report (msq.report) -------------------------------------------------
EXPORTS = {   # format -> (button label, file suffix, mime)
    "json": ("JSON", "json", "application/json"), "csv": ("CSV", "csv", "text/csv"),
    "md": ("Markdown", "md", "text/markdown"), "html": ("HTML report", "html", "text/html"),
}
FIGURES = {   # one zip of every figure (kaleido in the local Chromium)
    "png": ("Figures (PNG zip)", "png.zip", "application/zip"), "pdf": ("Figures (PDF zip)", "pdf.zip", "application/zip"),
}
ADAPTERS = {
    "bits": ("Bit map (layer → bits)", "bits.json", "application/json"),
    "hawq": ("HAWQ bit_config.py", "bit_config.py", "text/x-python"),
    "nncf": ("NNCF config", "nncf.json", "application/json"),
    "torchao": ("torchao config", "torchao.json", "application/json"),
}


@functools.lru_cache(maxsize=8)
def canonical_report(home: str, run_id: str, version: tuple) -> dict:
    """msq.report's canonical report of a run; ``version`` (status, end, last step) keys the cache, so a
    run that moved on is reported afresh."""
    from msq.report import build_report as canonical
    return canonical(home, run_id)


def render(home: str, run_id: str, version: tuple, fmt: str) -> bytes:
    from msq.report import render_report
    out = render_report(canonical_report(home, run_id, version), fmt)
    return out.encode() if isinstance(out, str) else out


def export_files(home: str, run_id: str, version: tuple, table: Optional[dict] = None
                 ) -> dict[str, tuple[str, str, str, Callable[[], bytes]]]:
    """{format: (label, file suffix, mime, make bytes)} of ``table`` (default: the report formats);
    each file is rendered when its button is clicked."""
    return {fmt: (label, suffix, mime, functools.partial(render, home, run_id, version, fmt))
            for fmt, (label, suffix, mime) in (table or EXPORTS).items()}


def adapter_files(home: str, run_id: str, version: tuple, model: str) -> dict:
    """The toolchain adapters that apply to this run's model (HAWQ only has torchvision ResNets)."""
    from msq.deploy.hawq import HAWQ_ARCHS
    table = {k: v for k, v in ADAPTERS.items() if k != "hawq" or model in HAWQ_ARCHS}
    return export_files(home, run_id, version, table)
