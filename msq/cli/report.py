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
                    "or a toolchain's own file: hawq (HAWQ's bit_config.py, torchvision ResNets), nncf (NNCF config with "
                    "manual bitwidth_per_scope), torchao (FqnToConfig JSON). Works for failed and running runs too.")
    p.add_argument("run", metavar="RUN", help="run id (see `python -m msq runs`)")
    p.add_argument("--format", "-f", choices=FORMATS, default="html", help="output format (default html)")
    p.add_argument("--out", "-o", help="file or existing folder to write to (default: the run's reports/ folder); "
                                       "'-' prints text formats to stdout. png/pdf: a folder, one file per figure")
    p.add_argument("--figure", choices=list(FIGURES), help="png/pdf: only this figure, written as one file")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
    p.add_argument("--home", help=HOME_HELP)
    p.set_defaults(handler=report_command)

    p = subparsers.add_parser(
        "export", help="write a run's model: ONNX (integer weights) or the packed msq checkpoint",
        description="--format msq (default): pack the run's last checkpoint (integer codes at each layer's "
                    "width, scales, float parameters, config); load it with msq.load_quantized(path). "
                    "--format onnx: an ONNX model onnxruntime runs, each quantized weight an INT2/INT4/INT8 "
                    "initializer read through DequantizeLinear, quantized activations as Q/DQ pairs "
                    "(opset 21, or 25 when a layer needs INT2). msq, uniform, bsq and multibit runs.")
    p.add_argument("run", metavar="RUN", help="run id (see `python -m msq runs`)")
    p.add_argument("--format", "-f", choices=("msq", "onnx"), default="msq", help="msq (.msq.pt) or onnx")
    p.add_argument("--width", type=int, help="onnx, multi-bit runs: export every searched layer at this width")
    p.add_argument("--mix", help="onnx, multi-bit runs: per-layer widths, e.g. conv2=3,fc1=5 (others keep --width "
                                 "or the widest trained width)")
    p.add_argument("--out", "-o", help="file or existing folder (default: the run's exports/ folder, "
                                       "msq-model-<run id>-<name>.msq.pt or .onnx)")
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


def _allocation(args):
    if args.mix is None:
        return args.width
    mix = {}
    for item in args.mix.split(","):
        name, sep, bits = item.strip().partition("=")
        if not sep or not bits.strip().isdigit():
            raise MSQError(f"--mix item {item!r} is invalid: write LAYER=BITS, e.g. --mix conv2=3,fc1=5")
        mix[name.strip()] = int(bits)
    if args.width is None:
        return mix
    from msq.deploy.run_model import load_run_model    # --width for all, then the mix on top
    model, _, _ = load_run_model(args.home, args.run, args.width)
    from msq.quant import bit_allocation
    return {**bit_allocation(model), **mix}


def export_onnx_command(args) -> int:
    from msq.deploy.run_export import export_run_onnx

    info = export_run_onnx(args.home, args.run, args.out, bits=_allocation(args), overwrite=args.force, notify=_say)
    kinds = ", ".join(sorted({r["container"] for r in info["layers"]}))
    _say(f"ONNX opset {info['opset']}, input {info['input_shape']} (batch dynamic); {len(info['layers'])} "
         f"quantized layers as {kinds} + DequantizeLinear; {fmt.count(info['file_bytes'])} bytes on disk, "
         f"integer weights {fmt.count(info['weight_bytes'])} (packed at their widths: "
         f"{fmt.count(info['packed_bytes'])}); the report predicts {fmt.count(info['predicted_bytes'])}")
    print(info["path"])
    return 0


def export_command(args) -> int:
    if args.format == "onnx":
        return export_onnx_command(args)
    if args.width is not None or args.mix is not None:
        raise MSQError("--width/--mix choose a multi-bit run's widths for --format onnx; "
                       "the msq checkpoint keeps the run's own widths")
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
