"""The Export page's report: the canonical, versioned report of ``msq.report`` (``build_report`` +
``render_report``, the same as ``python -m msq report RUN --format ...``), built once per version of a
run. The page's preview and every download come from it:

- ``preview_report(...)``: the report without the checkpoint (no torch import), or why it cannot be
  built for this run (``report_version`` keys it); ``preview_rows(report)`` the table the page shows.
- ``export_files(...)``: the report (JSON, CSV, Markdown, HTML, PNG/PDF figures) and the files a
  deployment toolchain takes (bit map, HAWQ bit_config.py, NNCF config, torchao config), rendered only
  when a download is clicked. The model files (ONNX, packed checkpoint) are in ``model_files``.
"""
from __future__ import annotations

import functools
import json
import sqlite3
from typing import Callable, Optional

from msq.errors import MSQError
from msq.report import fmt

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
def canonical_report(home: str, run_id: str, version: tuple, read_checkpoint: bool = True) -> dict:
    """msq.report's canonical report of a run; ``version`` (status, end, last step) keys the cache, so a
    run that moved on is reported afresh. ``read_checkpoint=False``: without the float-parameter table
    (and, for a run with no final summary, its scales and float-parameter count), torch-free."""
    from msq.report import build_report
    return build_report(home, run_id, read_checkpoint=read_checkpoint)


def preview_report(home: str, run_id: str, version: tuple) -> tuple[Optional[dict], Optional[str]]:
    """(the report the page shows, None), or (None, why this run has no report)."""
    try:
        return canonical_report(home, run_id, version, read_checkpoint=False), None
    except json.JSONDecodeError as exc:   # a damaged record: the store's other pages still list it
        return None, f"its stored config or summary is not valid JSON ({exc})"
    except (MSQError, OSError, sqlite3.Error) as exc:
        return None, str(exc)


def report_version(store, row: dict) -> tuple:
    """What keys a run's cached report: (status, end, last step); it moves on while the run trains."""
    latest = store.latest_scalar(row["id"], "loss") or {}
    return row["status"], row.get("ended"), latest.get("step")


def preview_rows(report: dict) -> list[dict]:
    """The page's table: one row per layer of the report, with its share of the quantized weights' memory."""
    layers = report["layers"]
    used = sum(l["params"] * l["storage_bits"] for l in layers.values()) or 1
    return [{"layer": fqn, "kind": l["kind"], "weights": l["params"], "bits": l["bits"],
             "LSB density": l["lsb_density"], "sensitivity": l["sensitivity"],
             "memory share": l["params"] * l["storage_bits"] / used, "bit history": fmt.history(l["bit_history"]),
             "fixed": l["fixed_reason"] if l["fixed"] else ""}
            for fqn, l in layers.items()]


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
