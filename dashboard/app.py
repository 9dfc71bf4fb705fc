"""MSQ Studio dashboard: ``streamlit run dashboard/app.py`` (or ``make run``).

The router: page config, a status bar (store location, live run counts), and ``st.navigation`` over the
thin pages in ``app_pages/`` (a method with a page of its own, ``MethodSpec.page``, adds it). It never
trains: runs are worker processes started through ``msq.runs``.
"""
from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:   # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import resources  # noqa: E402
from dashboard.app_pages import ui  # noqa: E402
from dashboard.components.methods import page_specs  # noqa: E402
from dashboard.favicon import favicon  # noqa: E402
from msq.errors import MSQError  # noqa: E402

st.set_page_config(page_title="MSQ Studio", page_icon=favicon(), layout="wide",
                   initial_sidebar_state="collapsed")

try:
    resources.store().list_runs(limit=1)
except (MSQError, sqlite3.Error, OSError) as exc:
    st.error(f"The run store at `{resources.home()}` cannot be opened: {exc}\n\n"
             "Set `MSQ_HOME` to a folder you can write (it is created if missing), or move a damaged "
             "`msq.db` aside; nothing else is touched.")
    st.stop()


def method_pages() -> dict:
    """The pages of the methods that have one (``MethodSpec.page``: app_pages/<page>.py), titled by the method."""
    return {spec.page: st.Page(f"app_pages/{spec.page}.py", title=spec.title, icon=spec.page_icon or None,
                               url_path=spec.page)
            for spec in page_specs() if (Path(__file__).parent / "app_pages" / f"{spec.page}.py").is_file()}


PAGES = {
    "runs": st.Page("app_pages/runs.py", title="Runs", icon=":material/table_rows:", default=True),
    "launch": st.Page("app_pages/launch.py", title="Launch", icon=":material/rocket_launch:", url_path="launch"),
    "run": st.Page("app_pages/run.py", title="Run (live)", icon=":material/monitoring:", url_path="run"),
    **method_pages(),
    "compare": st.Page("app_pages/compare.py", title="Compare", icon=":material/scatter_plot:", url_path="compare"),
    "curves": st.Page("app_pages/curves.py", title="Curves", icon=":material/show_chart:", url_path="curves"),
    "export": st.Page("app_pages/export.py", title="Export", icon=":material/download:", url_path="export"),
}
ui.PAGES.update(PAGES)

page = st.navigation(list(PAGES.values()), position="top")
try:
    resources.tick()
except (MSQError, sqlite3.Error, OSError) as exc:   # the queue is retried at the next page run
    st.warning(f"Could not update the run queue: {exc}")
ui.style()
ui.status_bar()
page.run()
