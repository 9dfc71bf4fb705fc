"""Small streamlit pieces the pages share: the status bar, status badges, charts and the live chart
panel, run pickers, empty states, and the run actions (stop, delete). (Not a page: ``app.py``
registers only the pages.)"""
from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from typing import Optional, Sequence

import streamlit as st

from dashboard import resources
from dashboard.components.runs_table import counts, run_label  # noqa: F401 (run_label: pages use ui.run_label)
from msq.errors import MSQError
from msq.report.chart_style import dark_frame
from msq.runs import runner
from msq.runs.controls import STOP

PAGES: dict = {}   # filled by app.py: name -> st.Page
BADGE_COLORS = {"running": "green", "queued": "orange", "completed": "blue", "stopped": "gray", "failed": "red"}
BADGE_ICONS = {"running": ":material/play_circle:", "queued": ":material/schedule:",
               "completed": ":material/check_circle:", "stopped": ":material/stop_circle:",
               "failed": ":material/error:"}
CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2},
                "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def page(name: str):
    """The registered st.Page (or its file, when a page runs outside app.py)."""
    return PAGES.get(name, f"app_pages/{name}.py")


@st.fragment(run_every=3)
def status_bar() -> None:
    """The line above every page: what this is, where the runs live, how many run / wait now."""
    try:
        rows = resources.store().list_runs()
    except (MSQError, sqlite3.Error) as exc:
        st.warning(f"Run store unreadable: {exc}")
        return
    n = counts(rows)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.markdown("**MSQ Studio**", width="content")
        st.caption("per-layer bit-widths by bit-level sparsity", width="content")
        st.space("stretch")
        st.badge(f"{n['running']} running", color="green" if n["running"] else "gray", icon=":material/play_circle:")
        st.badge(f"{n['queued']} queued", color="orange" if n["queued"] else "gray", icon=":material/schedule:")
        st.badge(plural(len(rows), "run"), color="gray")
        home = str(resources.home())
        shown = home if len(home) <= 32 else "…" + home[-31:]
        st.caption(f"MSQ_HOME `{shown}`", width="content", help=f"Runs are stored in {home}")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


STYLE = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 3.5rem; padding-bottom: 3rem; }
[data-testid="stMetricValue"] { font-size: 1.9rem; }
</style>"""


def style() -> None:
    """Tighter top padding and metric size: the pages are dense dashboards, not documents."""
    st.html(STYLE)


def badge(status: Optional[str]) -> None:
    status = status or "unknown"
    st.badge(status, color=BADGE_COLORS.get(status, "gray"), icon=BADGE_ICONS.get(status))


def dark_page() -> bool:
    """True when the browser shows the dark theme (it follows prefers-color-scheme, or the menu)."""
    try:
        return st.context.theme.type == "dark"
    except (AttributeError, RuntimeError):   # outside a script run (bare mode, tests)
        return False


def themed(fig):
    """The figure on the page's frame: the report's own look on white, or its dark twin on a dark page."""
    if dark_page():
        fig.update_layout(dark_frame(fig.to_plotly_json()["layout"]))
    return fig


def chart(fig, key: str) -> None:
    """A plotly figure with the report's own colours (no streamlit theme, dark frame on a dark page)."""
    st.plotly_chart(themed(fig), theme=None, key=key, config=CHART_CONFIG, width="stretch")


def chart_panel(figures: list[tuple[str, object, bool]], key: str) -> None:
    """Figures [(name, figure, wide)] in a two-column grid that redraws in place on every refresh, so
    zoom and pan (the figures' ``uirevision``) survive live updates."""
    import plotly.utils   # only pages with a chart panel pay for plotly's encoder
    items = [{"key": name, "wide": wide, "figure": themed(fig).to_plotly_json()} for name, fig, wide in figures]
    payload = json.dumps(items, cls=plotly.utils.PlotlyJSONEncoder)
    resources.chart_panel()(panel=payload, config=CHART_CONFIG, key=key, default=None)


def empty_state(message: str, launch_link: bool = True) -> None:
    st.info(message, icon=":material/info:")
    if launch_link:
        st.page_link(page("launch"), label="Launch a run", icon=":material/rocket_launch:")


def pick_run(rows: Sequence[dict], key: str, current: Optional[str] = None, label: str = "Run") -> Optional[str]:
    """A selectbox over runs (newest first); returns the chosen id."""
    ids = [r["id"] for r in rows]
    if not ids:
        return None
    labels = {r["id"]: run_label(r) for r in rows}
    index = ids.index(current) if current in ids else 0
    return st.selectbox(label, ids, index=index, format_func=labels.get, key=key)


def _follow_pick(key: str) -> None:
    chosen = st.session_state.get(key)
    if chosen:
        st.session_state["run_id"] = chosen
        st.query_params["run"] = chosen


def run_switcher(rows: Sequence[dict], current: Optional[str], key: str, label: str, placeholder: str) -> None:
    """A selectbox that makes the picked run the one the session (and the URL's ``?run=``) looks at.
    Labels carry no status: a label must not go stale while the run trains."""
    ids = [r["id"] for r in rows]
    st.selectbox(label, ids, index=ids.index(current) if current in ids else None, key=key,
                 format_func={r["id"]: run_label(r) for r in rows}.get, on_change=_follow_pick, args=(key,),
                 placeholder=placeholder)


def selected_run_id() -> Optional[str]:
    """The run the user is looking at: ``?run=`` in the URL, else the last one opened this session."""
    return st.query_params.get("run") or st.session_state.get("run_id")


def pick_compared_runs(rows: Sequence[dict], default: Sequence[str], key: str) -> list[str]:
    """The multiselect of runs that the Compare and Curves pages share: it starts from ``?compare=a,b``
    in the URL, else from this session's last selection (on either page), else ``default``; the choice
    is written back to the URL, so a copied link reopens the same selection."""
    ids = [r["id"] for r in rows]
    known = set(ids)
    if key in st.session_state:       # drop runs deleted meanwhile (a widget value must be an option)
        st.session_state[key] = [i for i in st.session_state[key] if i in known]
    else:
        from_url = [i for i in (st.query_params.get("compare") or "").split(",") if i in known]
        remembered = [i for i in st.session_state.get("compare_now", []) if i in known]
        st.session_state[key] = from_url or remembered or [i for i in default if i in known]
    labels = {r["id"]: run_label(r) for r in rows}
    chosen = st.multiselect("Runs", ids, format_func=labels.get, key=key, placeholder="choose runs to compare")
    st.session_state["compare_now"] = chosen
    if chosen:
        st.query_params["compare"] = ",".join(chosen)
    elif "compare" in st.query_params:
        del st.query_params["compare"]
    return chosen


def open_run(run_id: str) -> None:
    st.session_state["run_id"] = run_id
    st.switch_page(page("run"), query_params={"run": run_id})


# -- actions shared by the Runs and Run pages ----------------------------------------------------
def request_stop(run_id: str) -> str:
    """Stop a run without blocking the page: a queued run stops at once; a running one gets a stop
    control (the worker ends at its next step) and a background thread escalates to SIGTERM/SIGKILL if
    it does not (that thread touches only the store and the process, never streamlit)."""
    store = resources.store()
    status = store.run(run_id)["status"]
    if status == "queued":
        runner.stop(store, run_id)
        return "stopped"
    if status == "running":
        st.session_state.setdefault("stop_asked", {})[run_id] = time.time()
        threading.Thread(target=_stop_in_background, args=(str(store.home), run_id), daemon=True,
                         name=f"stop-{run_id}").start()
        return "stopping"
    return status


def _stop_in_background(home: str, run_id: str) -> None:
    try:
        runner.stop(home, run_id, reason="stopped from the dashboard")
    except (MSQError, sqlite3.Error, OSError):
        pass   # the page shows the run's state; reap() marks a vanished worker failed


def stop_pending(row: dict) -> bool:
    """A running run with a stop request its worker has not finished acting on."""
    if row.get("status") != "running":
        return False
    asked = st.session_state.get("stop_asked", {}).get(row["id"], 0)
    return time.time() - asked < 60 or any(c["key"] == STOP and c["consumed"] is None and c["outcome"] is None
                                           for c in resources.store().controls(row["id"]))


def delete_runs(run_ids: Sequence[str], remove_files: bool) -> list[str]:
    """Delete stored runs (refused for running ones) and, if asked, their folders under MSQ_HOME."""
    store, problems = resources.store(), []
    for run_id in run_ids:
        try:
            folder = store.run_dir(run_id)
            store.delete_run(run_id)
            if remove_files and folder.is_dir() and folder.resolve().parent == store.home.resolve():
                shutil.rmtree(folder, ignore_errors=True)
        except (MSQError, sqlite3.Error, OSError, ValueError) as exc:
            problems.append(f"{run_id}: {exc}")
    return problems
