"""Every output format from the one report dict: ``render_report`` (bytes or text, for downloads) and
``export_report`` (a file in the run folder, or where ``out`` says).

    render_report(report, "md")                      -> str
    render_report(report, "png", figure="allocation") -> bytes (one PNG)
    render_report(report, "png")                     -> bytes (a zip of every figure)
    export_report("runs", run_id, "html")            -> Path of <run folder>/reports/msq-report-<id>-<name>.html
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Callable, Optional

from msq.errors import MSQError
from msq.report.adapters import ADAPTER_FORMATS, adapter_text, bit_map
from msq.report.charts import FIGURES, report_figures
from msq.report.html import to_html
from msq.report.images import render_images
from msq.report.paths import (check_writable, checked_path, default_output, file_name, resolve_output, run_stem,
                              safe_join, write_atomic)
from msq.report.schema import build_report, to_json, validate_report
from msq.report.tabular import to_csv, to_markdown

FORMATS = ("json", "csv", "md", "html", "png", "pdf", "bits", "hawq", "nncf", "torchao")
SUFFIXES = {"json": "json", "csv": "csv", "md": "md", "html": "html", "png": "png", "pdf": "pdf",
            "bits": "bits.json", "hawq": "bit_config.py", "nncf": "nncf.json", "torchao": "torchao.json"}
TEXT_FORMATS = ("json", "csv", "md", "html", "bits", "hawq", "nncf", "torchao")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise MSQError(f"report format {fmt!r} is invalid: allowed {', '.join(FORMATS)}")


def _figures_for(report: dict, figure: Optional[str]) -> dict:
    specs = report_figures(report)
    if figure is None:
        return specs
    if figure not in FIGURES:
        raise MSQError(f"figure {figure!r} is invalid: allowed {', '.join(FIGURES)}")
    if figure not in specs:
        raise MSQError(f"figure {figure!r} has no data in this run (drawn here: {', '.join(specs)})")
    return {figure: specs[figure]}


def render_images_of(report: dict, fmt: str, figure: Optional[str] = None) -> dict[str, bytes]:
    return render_images(_figures_for(report, figure), fmt)


def render_report(report: dict, fmt: str, figure: Optional[str] = None) -> bytes | str:
    """The report in ``fmt``: text for json/csv/md/html/bits and the toolchain adapters (hawq: HAWQ's
    bit_config.py, nncf, torchao; see ``msq.report.adapters``); bytes for png/pdf (one figure when
    ``figure`` names it, else a zip of every figure)."""
    _check_format(fmt)
    validate_report(report)
    if fmt == "json":
        return to_json(report)
    if fmt == "csv":
        return to_csv(report)
    if fmt == "md":
        return to_markdown(report)
    if fmt == "html":
        return to_html(report)
    if fmt == "bits":
        return json.dumps(bit_map(report), indent=2, ensure_ascii=False)
    if fmt in ADAPTER_FORMATS:
        return adapter_text(report, fmt)
    images = render_images_of(report, fmt, figure)
    if figure is not None:
        return images[figure]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in images.items():
            zf.writestr(f"{name}.{fmt}", data)
    return buffer.getvalue()


def export_report(home, run_id: str, fmt: str, out: Optional[str | os.PathLike] = None, *,
                  overwrite: bool = False, figure: Optional[str] = None, report: Optional[dict] = None,
                  notify: Optional[Callable[[str], None]] = None) -> Path:
    """Write the run's report in ``fmt``; returns the path written.

    ``out`` None: ``<run folder>/reports/msq-report-<run id>[-<name>].<ext>``; a folder: that file name
    inside it; else the file itself. png/pdf write one file per figure into a folder
    (``<stem>-figures/`` by default, or ``out``) unless ``figure`` picks one. An existing file is
    replaced only with ``overwrite=True``, and ``notify`` (the CLI prints) hears of every replacement.
    ``report``: an already built report of this run (saves building it again)."""
    _check_format(fmt)
    from msq.runs import RunStore
    store = RunStore(home, create=False)
    report = validate_report(report) if report is not None else build_report(home, run_id)
    run_dir = store.run_dir(run_id)
    stem = run_stem("msq-report", report["run"])
    if fmt in ("png", "pdf") and figure is None:
        return _export_figures(report, fmt, out, run_dir, stem, overwrite, notify)
    name = file_name(stem, f"-{figure}.{fmt}" if figure else f".{SUFFIXES[fmt]}")
    path = default_output(run_dir, name) if out is None else resolve_output(out, run_dir, name)
    data = render_report(report, fmt, figure)
    if write_atomic(path, data, overwrite=overwrite) and notify:
        notify(f"replaced the existing {path}")
    return path


def _export_figures(report: dict, fmt: str, out, run_dir: Path, stem: str, overwrite: bool,
                    notify: Optional[Callable[[str], None]]) -> Path:
    """One file per figure in a folder; every target is checked before anything is written."""
    if out is None:
        folder = default_output(run_dir, file_name(stem, "-figures"))
    else:
        folder = checked_path(out)
        if not folder.is_dir() and (folder.exists() or folder.suffix.lower() == f".{fmt}"):
            raise MSQError(f"--out {os.fspath(out)!r}: {fmt} figures are written one file per figure into a "
                           "folder; give a folder (it is created), or pick one figure with --figure")
        if not folder.parent.is_dir():
            raise MSQError(f"--out {os.fspath(out)!r}: the folder {folder.parent} does not exist; create it first")
    if folder.is_symlink():
        raise MSQError(f"refusing to write into {folder}: it is a symbolic link")
    folder.mkdir(exist_ok=True)
    images = render_images_of(report, fmt)
    targets = {name: safe_join(folder, file_name(name, f".{fmt}")) for name in images}
    for path in targets.values():
        check_writable(path, overwrite)
    for name, path in targets.items():
        if write_atomic(path, images[name], overwrite=overwrite) and notify:
            notify(f"replaced the existing {path}")
    return folder
