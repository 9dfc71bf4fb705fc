"""``python -m msq report RUN --format ...`` and ``python -m msq export RUN --out model.msq.pt``.

Files go to the run's folder by default (``<home>/<run id>/reports/``, ``.../exports/``) under names
made from the run id and its sanitized name; ``--out`` picks a file or a folder. An existing file is
never replaced without ``--force``, and a replacement is always printed.
"""
from __future__ import annotations

import sys

from msq.errors import MSQError
from msq.report import fmt
from msq.report.charts import FIGURES
from msq.report.render import FORMATS, TEXT_FORMATS, export_report, render_report
from msq.report.schema import build_report

HOME_HELP = "run store folder (default $MSQ_HOME or ./runs)"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="write a run's bit-allocation report",
        description="The run's bit-allocation report: json (canonical, versioned), csv (one row per layer), "
                    "md, html (standalone, opens offline), png/pdf figures (needs Chromium), bits ({layer: bits}) "
                    "or hawq (HAWQ-style bit_config). Works for failed and running runs too (it says so).")
    p.add_argument("run", metavar="RUN", help="run id (see `python -m msq runs`)")
    p.add_argument("--format", "-f", choices=FORMATS, default="html", help="output format (default html)")
    p.add_argument("--out", "-o", help="file or existing folder to write to (default: the run's reports/ folder); "
                                       "'-' prints text formats to stdout. png/pdf: a folder, one file per figure")
    p.add_argument("--figure", choices=list(FIGURES), help="png/pdf: only this figure, written as one file")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--home", help=HOME_HELP)
    p.set_defaults(handler=report_command)

    p = subparsers.add_parser(
        "export", help="write a run's quantized checkpoint (codes packed at their bit-widths)",
        description="Pack the run's last checkpoint: integer codes at each layer's width, scales, float "
                    "parameters and the config. Load it with msq.load_quantized(path).")
    p.add_argument("run", metavar="RUN", help="run id (see `python -m msq runs`)")
    p.add_argument("--out", "-o", help="file or existing folder (default: the run's exports/ folder, "
                                       "msq-model-<run id>-<name>.msq.pt)")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--home", help=HOME_HELP)
    p.set_defaults(handler=export_command)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def report_command(args) -> int:
    if args.figure and args.format not in ("png", "pdf"):
        raise MSQError(f"--figure is for the png and pdf formats, not {args.format}")
    report = build_report(args.home, args.run)
    if args.out == "-":
        if args.format not in TEXT_FORMATS:
            raise MSQError(f"--out - prints text; {args.format} is binary: give a file or folder")
        text = render_report(report, args.format)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0
    path = export_report(args.home, args.run, args.format, args.out, overwrite=args.force, figure=args.figure,
                         report=report, notify=_say)
    if not report["run"]["complete"]:
        _say(f"note: run {args.run} is {report['run']['status']}; the report covers what was stored")
    print(path)
    return 0


def export_command(args) -> int:
    from msq.report.checkpoint import export_quantized, packed_sizes   # torch: only for this command

    path = export_quantized(args.home, args.run, args.out, overwrite=args.force, notify=_say)
    sizes = packed_sizes(path)
    predicted, actual = sizes["predicted_model_size_bytes"], sizes["file_bytes"]
    _say(f"{fmt.count(actual)} bytes on disk; the report predicts {fmt.count(predicted)} "
         f"(packed weights {fmt.count(sizes['codes_bytes'])} + float parameters {fmt.count(sizes['float_param_bytes'])}); "
         f"the difference is buffers ({fmt.count(sizes['buffer_bytes'])}) and metadata "
         f"({actual - predicted - sizes['buffer_bytes']:+,.0f})")
    print(path)
    return 0
