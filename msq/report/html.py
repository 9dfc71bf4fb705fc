"""The standalone HTML report: one file that opens offline -- header with the headline numbers, the
per-layer table, the shared figures (plotly.js inline), events, run details and the config.

Everything that comes from the run (names, errors, config values) is HTML-escaped, and the JSON fed
to the page's script is escaped so no string can close the script tag.
"""
from __future__ import annotations

import html
import json

from msq.report import figures, fmt
from msq.report.assets import plotly_js
from msq.report.charts import FIGURES, report_figures
from msq.report.schema import validate_report
from msq.report.tabular import headline

CSS = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--soft:#f6f7f9;--accent:#23609e;--bad:#b42318;--warn:#b54708}
*{box-sizing:border-box}
body{margin:0;background:var(--soft);color:var(--ink);font:14px/1.5 Inter,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:1240px;margin:0 auto;padding:28px 28px 48px}
header{background:linear-gradient(135deg,#1a3263,#23609e);color:#fff;padding:28px 28px 24px}
header .inner{max-width:1240px;margin:0 auto}
.eyebrow{text-transform:uppercase;letter-spacing:.08em;font-size:11px;opacity:.8}
h1{margin:4px 0 6px;font-size:26px;font-weight:650;word-break:break-word}
.meta{opacity:.92}.meta b{font-weight:600}.meta code{background:rgba(255,255,255,.15);padding:1px 6px;border-radius:4px}
.status{display:inline-block;padding:1px 9px;border-radius:999px;font-size:12px;font-weight:600;background:#e7f6ec;color:#067647}
.status.failed{background:#fee4e2;color:var(--bad)}.status.running,.status.queued,.status.stopped{background:#fef0c7;color:var(--warn)}
.notes{margin:18px 0 0}.note{border-left:4px solid var(--warn);background:#fffaeb;padding:10px 14px;border-radius:6px;margin:8px 0}
.note.failed{border-color:var(--bad);background:#fef3f2}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;margin:20px 0 8px}
.kpi{background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.kpi .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi .value{font-size:22px;font-weight:650;margin-top:2px;white-space:nowrap}
.kpi .sub{color:var(--muted);font-size:12px}
h2{font-size:17px;margin:32px 0 10px}
.card{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:0 0 14px}
.caption{color:var(--muted);font-size:12px;margin:2px 0 6px}
.tablewrap{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:10px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:7px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top;white-space:nowrap}
th{background:#fafbfc;color:var(--muted);font-weight:600;font-size:12px;position:sticky;top:0}
tr:last-child td{border-bottom:0}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td .fqn{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.chip{display:inline-block;min-width:26px;text-align:center;padding:1px 7px;border-radius:5px;font-weight:650}
.tag{display:inline-block;font-size:11px;padding:0 6px;border-radius:4px;background:#eef2f6;color:#475467;margin-left:4px}
.hist{color:var(--muted)}.hist b{color:var(--ink)}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}@media (max-width:900px){.grid2{grid-template-columns:1fr}}
details{margin:0 0 14px}summary{cursor:pointer;font-weight:600;margin:6px 0}
pre{background:#0f172a;color:#e2e8f0;padding:14px 16px;border-radius:10px;overflow:auto;font-size:12.5px;line-height:1.45}
footer{color:var(--muted);font-size:12px;margin-top:28px}
.fig{min-height:300px}
@media print{body{background:#fff}header{background:#1a3263;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.card,.tablewrap,.kpi{break-inside:avoid}}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _script_json(value) -> str:
    """JSON that is safe inside <script>: no "<", ">" or "&" a string could use to end the tag."""
    return (json.dumps(value, ensure_ascii=False, allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _chip(bits) -> str:
    key = figures.bit_key(bits)
    color = figures.bit_color(bits)
    text = figures.BIT_TEXT_COLORS.get(key, figures.INK)
    return f'<span class="chip" style="background:{color};color:{text}">{_e(bits)}</span>'


def _header(report: dict) -> str:
    run = report["run"]
    title = run["name"] or f"Run {run['id']}"
    status = _e(run["status"]) + ("" if run["complete"] or run["status"] != "completed" else " (no summary)")
    return (f'<header><div class="inner"><div class="eyebrow">MSQ Studio · bit-allocation report</div>'
            f"<h1>{_e(title)}</h1><div class=\"meta\">model <b>{_e(run['model'])}</b> · dataset "
            f"<b>{_e(run['dataset'])}</b> · method <b>{_e(run['method'])}</b> · run <code>{_e(run['id'])}</code> · "
            f'<span class="status {_e(run["status"])}">{status}</span></div></div></header>')


def _kpis(report: dict) -> str:
    t = report["totals"]
    delta = "float → final" if report["run"]["complete"] else "float → last stored epoch"
    if t.get("float_acc") is not None and t.get("final_acc") is not None:
        delta = f"{t['final_acc'] - t['float_acc']:+.2f} pts vs the float model" + (
            "" if report["run"]["complete"] else " (last stored epoch)")
    cards = [
        ("Accuracy", f"{fmt.pct(t.get('float_acc'))} → {fmt.pct(t.get('final_acc'))}", delta),
        ("Compression", fmt.ratio(t.get("compression")), "weights vs 32-bit float"),
        ("Average bits", fmt.bits(t.get("average_bits")), f"per weight · {t['quantized_layers']} layers, "
                                                            f"{t['searched_layers']} searched"),
        ("Model size", fmt.size(t.get("model_size_bytes")),
         f"{fmt.count(t.get('model_size_bytes'))} B · float {fmt.size(t.get('float_model_size_bytes'))}"),
        ("Bit-ops", fmt.big(t.get("bit_ops")), "per sample, Σ MACs·bits·act bits"),
    ]
    return '<section class="kpis">' + "".join(
        f'<div class="kpi"><div class="label">{_e(a)}</div><div class="value">{_e(b)}</div>'
        f'<div class="sub">{_e(c)}</div></div>' for a, b, c in cards) + "</section>"


def _notes(report: dict) -> str:
    notes = report.get("notes") or []
    if not notes:
        return ""
    kind = "failed" if report["run"]["status"] == "failed" else ""
    return '<section class="notes">' + "".join(f'<div class="note {kind}">{_e(n)}</div>' for n in notes) + "</section>"


def _history(events: list) -> str:
    if not events:
        return '<span class="hist">unchanged</span>'
    parts = [f"<b>{_e(events[0]['old_bits'])}</b>"]
    parts += [f"<b>{_e(e['new_bits'])}</b> <span title=\"k={_e(e.get('k'))}, density {fmt.fixed3(e.get('density'))}, "
              f"sensitivity {fmt.sci(e.get('sensitivity'))}\">(e{_e(e['epoch'])})</span>" for e in events]
    return '<span class="hist">' + " → ".join(parts) + "</span>"


def _layer_table(report: dict) -> str:
    acts = any(l.get("act_bits") is not None for l in report["layers"].values())
    head = ["#", "layer", "kind", "shape", "params", "MACs", "bits", *(["act bits"] if acts else []), "bit-ops",
            "scale", "LSB density", "sensitivity ± s.e.", "bit history (epoch)"]
    nums = {"#", "params", "MACs", "bit-ops", "scale", "LSB density", "sensitivity ± s.e."}
    rows = []
    for fqn, l in report["layers"].items():
        pin = (f' <span class="tag" title="width kept fixed, not searched">fixed · {_e(l["fixed_reason"])}</span>'
               if l["fixed"] else "")
        cells = [(str(l["index"]), "num"), (f'<span class="fqn">{_e(fqn)}</span>{pin}', ""), (_e(l.get("kind")), ""),
                 (_e(fmt.shape(l["shape"])), ""), (fmt.count(l["params"]), "num"), (fmt.count(l["macs"]), "num"),
                 (_chip(l["bits"]), ""), *([(_e(l.get("act_bits") or "float"), "")] if acts else []),
                 (fmt.big(l["bit_ops"]), "num"), (fmt.scale(l.get("scale")), "num"),
                 (fmt.fixed3(l.get("lsb_density")), "num"),
                 (_e(fmt.sensitivity(l.get("sensitivity"), l.get("sensitivity_se"))), "num"),
                 (_history(l["bit_history"]), "")]
        rows.append("<tr>" + "".join(f'<td class="{c}">{v}</td>' for v, c in cells) + "</tr>")
    header = "".join(f'<th class="{"num" if h in nums else ""}">{h}</th>' for h in head)
    t = report["totals"]
    foot = (f'<p class="caption">Weights only are quantized: {fmt.count(t["quantized_params"])} weights in '
            f"{t['quantized_layers']} layers ({t['searched_layers']} searched, the others kept at a fixed width). "
            f"Biases, normalisation and activation clips stay float ({fmt.count(t.get('float_params'))} parameters) "
            "and count at 32 bits in the model size." + ("" if acts else " Activations are float.") +
            " Bit history: width after each prune, with the (0-based) epoch at whose end it happened.</p>")
    return f'<div class="tablewrap"><table><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{foot}'


def _small_table(rows: list[tuple], head: tuple = ()) -> str:
    thead = "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead>" if head else ""
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="tablewrap"><table>{thead}<tbody>{body}</tbody></table></div>'


def _figures(specs: dict) -> str:
    cards = []
    for name, caption in FIGURES.items():
        if name in specs:
            cards.append(f'<div class="card"><div class="caption">{_e(caption)}</div>'
                         f'<div class="fig" id="fig-{name}" data-figure="{name}"></div></div>')
    missing = [c for n, c in FIGURES.items() if n not in specs]
    note = (f'<p class="caption">Not drawn (no data stored for them): {_e("; ".join(missing))}.</p>' if missing else "")
    return "".join(cards) + note


def _event_text(e: dict) -> str:
    kind = e.get("kind")
    if kind == "prune":
        return (f"{e.get('fqn')}: {e.get('old_bits')} → {e.get('new_bits')} bits (k={e.get('k')}), LSB density "
                f"{fmt.fixed3(e.get('density'))}, sensitivity {fmt.sci(e.get('sensitivity'))} "
                f"(mean {fmt.sci(e.get('mean_sensitivity'))})")
    if kind == "phase":
        return f"{e.get('phase')} starts ({e.get('epochs')} epochs)"
    if kind == "lam_change":
        return f"λ {e.get('old')} → {e.get('new')} ({e.get('source', 'user')})"
    detail = {k: v for k, v in e.items() if k not in ("kind", "step", "epoch", "t", "index")}
    return ", ".join(f"{k}={format(v, '.4g') if isinstance(v, float) else v}" for k, v in detail.items())


def _events(report: dict) -> str:
    """Every event but the Hessian estimates (their results are in the table and the figures)."""
    rows = [(e.get("epoch"), e.get("step"), e.get("kind"), _event_text(e))
            for e in report.get("events") or [] if e.get("kind") != "hessian"]
    if not rows:
        return ""
    table = _small_table(rows, ("epoch", "step", "event", "details"))
    prunes = sum(1 for r in rows if r[2] == "prune")
    return (f"<details{' open' if len(rows) <= 12 else ''}><summary>{len(rows)} events ({prunes} prunes)</summary>"
            f"{table}</details>")


def _run_details(report: dict) -> str:
    run, t = report["run"], report["totals"]
    rows = [("run id", run["id"]), ("name", run["name"] or fmt.DASH), ("status", run["status"]),
            ("seed", report.get("seed")), ("λ (final)", t.get("lam")),
            ("epochs / steps", f"{run.get('epochs_done')} / {run.get('steps_done')}"),
            ("trainable parameters", fmt.count(t.get("trainable_params"))),
            ("device", f"{run.get('device')} on {run.get('host') or fmt.DASH}"),
            ("started → ended", f"{run.get('started') or fmt.DASH} → {run.get('ended') or fmt.DASH}"),
            ("duration", fmt.seconds(run.get("duration_s")))]
    if run.get("error"):
        rows.append(("error", run["error"]))
    spent = report.get("timings") or {}
    total = sum(v for k, v in spent.items() if k not in ("eval", "hessian")) or None   # eval/hessian run inside phases
    timings = [(k, fmt.seconds(v), f"{100 * v / total:.1f}%" if total else fmt.DASH) for k, v in spent.items()]
    versions = [(k, v) for k, v in (report.get("versions") or {}).items()] or [("versions", "not recorded (no summary)")]
    return (f'<div class="grid2"><div>{_small_table(rows)}</div><div>{_small_table(timings, ("time spent in", "seconds", "share of training"))}'
            f'<div style="height:12px"></div>{_small_table(versions, ("software", "version"))}</div></div>')


def _float_parameters(report: dict) -> str:
    floats = report.get("float_parameters")
    if not floats:
        return ""
    rows = [(p["name"], p["role"], fmt.shape(p["shape"]), fmt.count(p["numel"])) for p in floats]
    return (f"<details><summary>Float parameters kept at 32 bits ({len(floats)} tensors, "
            f"{fmt.count(sum(p['numel'] for p in floats))} values)</summary>"
            f"{_small_table(rows, ('parameter', 'role', 'shape', 'count'))}</details>")


def to_html(report: dict) -> str:
    validate_report(report)
    specs = report_figures(report)
    run = report["run"]
    events = _events(report)
    body = [
        _header(report), "<main>", _notes(report), _kpis(report),
        "<h2>Layers</h2>", _layer_table(report), _float_parameters(report),
        "<h2>Figures</h2>", _figures(specs),
        *(["<h2>Events</h2>", events] if events else []),
        "<h2>Run</h2>", _run_details(report),
        "<h2>Config</h2>", f"<pre>{_e(json.dumps(report['config'], indent=2, ensure_ascii=False))}</pre>",
        f"<footer>{_e(report['schema'])} v{report['schema_version']} · generated {_e(report['generated']['at'])} "
        f"by msq {_e(report['generated']['msq_version'])} · headline: "
        + _e("; ".join(f"{k} {v}" for k, v in headline(report))) + "</footer></main>",
    ]
    boot = ("const FIGS=" + _script_json(specs) + ";\n"
            "for (const [name, spec] of Object.entries(FIGS)) {\n"
            "  const el = document.getElementById('fig-' + name);\n"
            "  if (el) Plotly.newPlot(el, spec.data, spec.layout, {displaylogo: false, responsive: true,\n"
            "    modeBarButtonsToRemove: ['select2d', 'lasso2d'], toImageButtonOptions: {filename: name}});\n"
            "}\ndocument.body.dataset.figuresRendered = Object.keys(FIGS).length;")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<link rel=\"icon\" href=\"data:,\">"
            f"<title>{_e(run['name'] or run['id'])} · MSQ bit-allocation report</title><style>{CSS}</style></head>"
            f"<body>{''.join(body)}<script>{plotly_js()}</script><script>{boot}</script></body></html>\n")
