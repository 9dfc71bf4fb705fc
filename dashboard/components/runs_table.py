"""The runs table: ``RunStore.list_runs`` rows -> a DataFrame the Runs page shows, and filtering. Pure.

    >>> runs_frame([]).columns.tolist()[:4]
    ['name', 'status', 'method', 'model']
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

from dashboard.components.methods import steers_lam
from dashboard.components.progress import format_seconds

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["name", "status", "method", "model", "dataset", "λ", "accuracy (%)", "compression (×)",
           "avg bits", "step", "duration", "created", "id"]
STATUS_COLORS = {"running": "#15803d", "queued": "#b45309", "completed": "#1d4ed8", "stopped": "#6b7280",
                 "failed": "#b91c1c"}


def runs_frame(rows: Sequence[dict]) -> pd.DataFrame:
    import pandas as pd   # here, not at import: every page imports this module (the status bar's counts), an
    # empty store's landing page needs no DataFrame, and pandas is most of the first script run's imports
    data = [{"id": r["id"], "name": r.get("name") or "", "status": r.get("status"), "method": r.get("method"),
             "model": r.get("model"), "dataset": r.get("dataset"),
             "λ": r.get("lam") if steers_lam(r.get("method")) else None,   # λ means nothing to the others
             "accuracy (%)": r.get("val_acc"), "compression (×)": r.get("compression"), "avg bits": r.get("avg_bits"),
             "step": r.get("step"), "duration": format_seconds(r.get("duration")) if r.get("duration") else "—",
             "created": pd.to_datetime(r.get("created"), unit="s") if r.get("created") else pd.NaT}
            for r in rows]
    frame = pd.DataFrame(data, columns=COLUMNS)
    for col in ("λ", "accuracy (%)", "compression (×)", "avg bits"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame["step"] = pd.to_numeric(frame["step"], errors="coerce").astype("Int64")
    return frame


def filter_runs(rows: Sequence[dict], statuses: Optional[Iterable[str]] = None, methods: Optional[Iterable[str]] = None,
                text: str = "") -> list[dict]:
    """Rows whose status and method are among the chosen ones and whose id/name/model contain ``text``."""
    statuses = set(statuses) if statuses else None
    methods = set(methods) if methods else None
    needle = (text or "").strip().lower()
    out = []
    for r in rows:
        if statuses is not None and r.get("status") not in statuses:
            continue
        if methods is not None and r.get("method") not in methods:
            continue
        if needle and not any(needle in str(r.get(k) or "").lower() for k in ("id", "name", "model", "dataset")):
            continue
        out.append(r)
    return out


def counts(rows: Sequence[dict]) -> dict[str, int]:
    out = {s: 0 for s in STATUS_COLORS}
    for r in rows:
        out[r.get("status")] = out.get(r.get("status"), 0) + 1
    return out


def run_label(row: dict) -> str:
    """How a run is named in pickers: "name · method · id" (the id is always there, names repeat)."""
    parts = [row.get("name") or row.get("model") or "run", row.get("method") or "", row["id"]]
    return " · ".join(p for p in parts if p)


def compare_points(rows: Sequence[dict]) -> list[dict]:
    """list_runs rows -> the points ``msq.report.figures.accuracy_vs_compression`` takes."""
    out = []
    for r in rows:
        label = html.escape(r.get("name") or r["id"][-6:], quote=False)   # plotly reads <b>, <a> in text as markup
        out.append({"id": r["id"], "label": label, "method": r.get("method"), "compression": r.get("compression"),
                    "accuracy": r.get("val_acc"), "avg_bits": r.get("avg_bits"), "lam": r.get("lam")})
    return out
