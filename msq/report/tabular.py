"""CSV (one row per layer, full precision) and Markdown (for people) renderings of a report."""
from __future__ import annotations

import csv
import io
import json
import re

from msq.report import fmt
from msq.report.schema import validate_report

CSV_COLUMNS = ["fqn", "index", "kind", "shape", "params", "macs", "bits", "bit_ops", "scale", "act_bits",
               "lsb_density", "quant_error", "sensitivity", "sensitivity_se", "fixed", "fixed_reason",
               "prunes", "bit_history"]


def csv_row(fqn: str, layer: dict) -> dict:
    """One layer as CSV cells: numbers exactly as in the JSON (repr round-trips), empty for unknown,
    shape as 16x8x3x3, bit_history as compact JSON."""
    row = {"fqn": fqn, "prunes": len(layer["bit_history"]),
           "shape": "x".join(str(d) for d in layer["shape"]),
           "bit_history": json.dumps(layer["bit_history"], separators=(",", ":"))}
    for key in CSV_COLUMNS:
        if key not in row:
            value = layer.get(key)
            row[key] = "" if value is None else repr(value) if isinstance(value, float) else value
    return row


def to_csv(report: dict) -> str:
    validate_report(report)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for fqn, layer in report["layers"].items():
        writer.writerow(csv_row(fqn, layer))
    return out.getvalue()


def _md(text: object) -> str:
    """A Markdown table cell: pipes escaped, no line breaks, no raw HTML from run names."""
    return (str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
            .replace("<", "&lt;").replace(">", "&gt;"))


def _table(header: list[str], rows: list[list], align: str = "") -> list[str]:
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return lines


MD_LAYER_HEADER = ["#", "layer", "kind", "shape", "params", "MACs", "bits", "bit-ops", "scale", "LSB density",
                   "sensitivity ± s.e.", "bit history", "fixed"]


def md_layer_cells(fqn: str, layer: dict) -> list[str]:
    """The per-layer Markdown row (also what the tests compare with the JSON)."""
    return [str(layer["index"]), f"`{fqn}`", layer.get("kind") or fmt.DASH, fmt.shape(layer["shape"]),
            fmt.count(layer["params"]), fmt.count(layer["macs"]), str(layer["bits"]), fmt.big(layer["bit_ops"]),
            fmt.scale(layer.get("scale")), fmt.fixed3(layer.get("lsb_density")),
            fmt.sensitivity(layer.get("sensitivity"), layer.get("sensitivity_se")), fmt.history(layer["bit_history"]),
            layer["fixed_reason"] if layer["fixed"] else ""]


def headline(report: dict) -> list[tuple[str, str]]:
    """The numbers a reader looks for first, as (label, value) pairs (Markdown and HTML show them)."""
    t = report["totals"]
    acc = f"{fmt.pct(t.get('float_acc'))} → {fmt.pct(t.get('final_acc'))}"
    if t.get("float_acc") is not None and t.get("final_acc") is not None:
        acc += f" ({t['final_acc'] - t['float_acc']:+.2f} pts)"
    size = f"{fmt.size(t.get('model_size_bytes'))} (float: {fmt.size(t.get('float_model_size_bytes'))})"
    return [("accuracy (float → final)", acc), ("compression (weights)", fmt.ratio(t.get("compression"))),
            ("average bits", fmt.bits(t.get("average_bits"))), ("model size", size),
            ("bit-ops", fmt.big(t.get("bit_ops"))),
            ("quantized layers", f"{t['quantized_layers']} ({t['searched_layers']} searched)")]


def to_markdown(report: dict) -> str:
    validate_report(report)
    run, t = report["run"], report["totals"]
    title = run["name"] or run["id"]
    lines = [f"# Bit-allocation report: {_md(title)}", "",
             f"**{_md(run['model'])}** on **{_md(run['dataset'])}**, method **{_md(run['method'])}** · run "
             f"`{run['id']}` · status **{run['status']}**" + ("" if run["complete"] else " (incomplete)"), ""]
    for note in report.get("notes") or []:
        lines += [f"> **Note:** {_md(note)}", ""]
    lines += _table(["", ""], [[k, v] for k, v in headline(report)]) + [""]
    lines += [f"Model size = quantized weights at their widths ({fmt.count(t['quantized_params'])} weights) + "
              f"{fmt.count(t.get('float_params'))} float parameters at 32 bits "
              f"= {fmt.count(t.get('model_size_bytes'))} bytes.", ""]
    lines += ["## Layers", ""]
    lines += _table(MD_LAYER_HEADER, [md_layer_cells(f, l) for f, l in report["layers"].items()],
                    "rlllrrrrrrrll") + [""]
    lines += ["Bit history: width after each prune, with the (0-based) epoch at whose end it happened.", ""]
    floats = report.get("float_parameters")
    if floats:
        lines += ["## Float parameters (kept at 32 bits)", ""]
        lines += _table(["parameter", "role", "shape", "count"],
                        [[f"`{p['name']}`", p["role"], fmt.shape(p["shape"]), fmt.count(p["numel"])] for p in floats],
                        "llrr") + [""]
    lines += ["## Run", ""]
    details = [("run id", f"`{run['id']}`"), ("seed", str(report.get("seed"))), ("λ (final)", str(t.get("lam"))),
               ("epochs / steps", f"{run.get('epochs_done')} / {run.get('steps_done')}"),
               ("device", f"{run.get('device')} on {run.get('host') or fmt.DASH}"),
               ("started → ended", f"{run.get('started') or fmt.DASH} → {run.get('ended') or fmt.DASH}")]
    details += [(f"time: {phase}", fmt.seconds(sec)) for phase, sec in (report.get("timings") or {}).items()]
    details += [(f"version: {k}", str(v)) for k, v in (report.get("versions") or {}).items()]
    if run.get("error"):
        details.append(("error", run["error"]))
    lines += _table(["", ""], details) + [""]
    config = json.dumps(report["config"], indent=2, ensure_ascii=False)
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", config)), default=0))
    lines += ["## Config", "", f"{fence}json", config, fence, "",
              f"<sub>{report['schema']} v{report['schema_version']} · generated {report['generated']['at']} by msq "
              f"{report['generated']['msq_version']}</sub>", ""]
    return "\n".join(lines)
