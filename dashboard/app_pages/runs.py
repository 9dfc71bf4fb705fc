"""Runs: every run in MSQ_HOME -- filter, select, open, stop, resume, compare, delete."""
from __future__ import annotations

import sqlite3

import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components import charts
from dashboard.components.comparison import group_name, is_final, model_groups
from dashboard.components.methods import methods_with_page, page_specs
from dashboard.components.queue import queue_positions
from dashboard.components.runs_table import compare_points, filter_runs, runs_frame
from msq.errors import MSQError
from msq.report import figures
from msq.runs import STATUSES, runner

STATUS_MARKS = {"running": "● running", "queued": "○ queued", "completed": "✓ completed",
                "stopped": "■ stopped", "failed": "✗ failed"}
COLUMN_CONFIG = {
    "id": st.column_config.TextColumn("run id", width="medium"),
    "name": st.column_config.TextColumn("name", width="medium"),
    "open": st.column_config.LinkColumn("live page", display_text="open ↗", width=90,
                                        help="the run's live page (its own URL: /run?run=ID)"),
    "status": st.column_config.TextColumn("status", width=130,
                                          help="a queued run shows its place in its device's queue"),
    "λ": st.column_config.NumberColumn("λ", format="%.4g", help="LSB-penalty strength now (live changes included)"),
    "accuracy (%)": st.column_config.NumberColumn("accuracy", format="%.2f %%", help="validation accuracy"),
    "compression (×)": st.column_config.NumberColumn("compression", format="%.2f×",
                                                     help="32-bit float weights / quantized weights"),
    "avg bits": st.column_config.NumberColumn("avg bits", format="%.2f", help="average bits per quantized weight"),
    "created": st.column_config.DatetimeColumn("created (UTC)", format="MMM D, HH:mm"),
}


@st.dialog("Delete runs?")
def confirm_delete(run_ids: list[str]) -> None:
    st.write(f"This removes {len(run_ids)} run(s) and their metrics from the store:")
    st.code("\n".join(run_ids), language=None)
    remove = st.toggle("Also delete their folders (checkpoints, worker.log, reports)", value=True)
    c1, c2 = st.columns(2)
    if c1.button("Delete", type="primary", icon=":material/delete:", width="stretch"):
        problems = ui.delete_runs(run_ids, remove)
        st.session_state["runs_notice"] = ("error", "; ".join(problems)) if problems else \
            ("success", f"Deleted {len(run_ids)} run(s).")
        st.rerun()
    if c2.button("Cancel", width="stretch"):
        st.rerun()


def act(action: str, run_ids: list[str]) -> None:
    """Stop / resume the selected runs; the outcome is shown as a notice at the top."""
    done, problems = [], []
    for run_id in run_ids:
        try:
            if action == "stop":
                done.append(f"{run_id}: {ui.request_stop(run_id)}")
            else:
                done.append(f"{run_id}: {runner.resume(resources.store(), run_id)}")
        except (MSQError, sqlite3.Error, OSError, ValueError) as exc:
            problems.append(str(exc))
    st.session_state["runs_notice"] = ("error", "\n\n".join(problems)) if problems else ("success", "; ".join(done))


head = st.columns([4, 1], vertical_alignment="center")
head[0].title("Runs")
head[1].page_link(ui.page("launch"), label="Launch a run", icon=":material/rocket_launch:", width="stretch")
store = resources.store()
all_rows = store.list_runs()
if (notice := st.session_state.pop("runs_notice", None)) is not None:   # the outcome of the last action
    getattr(st, notice[0])(notice[1])
if not all_rows:
    ui.empty_state("No runs yet — launch one, or train headless with `python -m msq train` "
                   f"(MSQ_HOME={resources.home()}): runs appear here as they start.",
                   launch_link=False)   # the page's own "Launch a run" button is right above
    st.stop()

c1, c2, c3 = st.columns([2, 2, 3])
statuses = c1.multiselect("Status", list(STATUSES), key="runs_status", placeholder="any status",
                          persist_state="session")
methods = c2.multiselect("Method", sorted({r["method"] for r in all_rows if r.get("method")}), key="runs_method",
                         placeholder="any method", persist_state="session")
text = c3.text_input("Search", key="runs_search", placeholder="name, id, model or dataset", persist_state="session")


def active(rows) -> bool:
    return any(r["status"] in ("running", "queued") for r in rows)


@st.fragment(run_every=3 if active(all_rows) else None)
def table() -> None:
    rows = filter_runs(store.list_runs(), statuses, methods, text)
    if (notice := st.session_state.pop("runs_notice", None)) is not None:   # an action inside this fragment
        getattr(st, notice[0])(notice[1])
    if not rows:
        st.info("No run matches these filters.")
        return
    frame = runs_frame(rows)
    frame.insert(1, "open", ["/run?run=" + run_id for run_id in frame["id"]])   # each run's page as a link
    places = queue_positions(rows)   # a queued run says where it stands: "○ queued #2 (cpu)"
    frame["status"] = [STATUS_MARKS.get(s, s) + (f" #{places[i]['position']} ({places[i]['device']})" if i in places
                                                 else "") for s, i in zip(frame["status"], frame["id"])]
    # the selection is positional: a new table key whenever the set of rows changes, so it never points
    # at a different run after a refresh
    key = "runs_table_" + str(abs(hash(tuple(frame["id"]))) % 10**8)
    event = st.dataframe(frame, key=key, on_select="rerun", selection_mode="multi-row", hide_index=True,
                         placeholder="—", column_config=COLUMN_CONFIG, height=min(38 + 35 * len(frame), 560),
                         width="stretch")
    chosen = [rows[i] for i in event.selection.rows] if event is not None else []
    ids = [r["id"] for r in chosen]
    st.caption(f"{ui.plural(len(rows), 'run')} shown" + (f" · {len(ids)} selected" if ids else
                                                        " · select rows to act on them"))
    pages = page_specs()   # a button for each method page (multi-bit's), for one run of that method
    b = st.columns(6 + len(pages))
    if b[0].button("Open live view", icon=":material/monitoring:", disabled=len(ids) != 1, width="stretch"):
        ui.open_run(ids[0])
    for col, spec in zip(b[6:], pages):
        one_of_its = len(chosen) == 1 and chosen[0].get("method") in methods_with_page(spec.page)
        if col.button(spec.title, icon=spec.page_icon or None, disabled=not one_of_its, width="stretch",
                      key=f"runs_page_{spec.page}", help=f"{spec.page_label} of one {spec.title_in_text} run"):
            st.session_state["run_id"] = ids[0]
            st.switch_page(ui.page(spec.page), query_params={"run": ids[0]})
    if b[1].button("Compare", icon=":material/scatter_plot:", disabled=len(ids) < 2, width="stretch"):
        st.session_state["compare_now"] = ids
        st.switch_page(ui.page("compare"), query_params={"compare": ",".join(ids)})
    if b[2].button("Export", icon=":material/download:", disabled=len(ids) != 1, width="stretch"):
        st.session_state["run_id"] = ids[0]
        st.switch_page(ui.page("export"), query_params={"run": ids[0]})
    stoppable = [r["id"] for r in chosen if r["status"] in ("running", "queued")]
    resumable = [r["id"] for r in chosen if r["status"] in ("failed", "stopped")]
    deletable = [r["id"] for r in chosen if r["status"] != "running"]
    b[3].button("Stop", icon=":material/stop_circle:", disabled=not stoppable, on_click=act, args=("stop", stoppable),
                width="stretch")
    b[4].button("Resume", icon=":material/play_circle:", disabled=not resumable, on_click=act,
                args=("resume", resumable), width="stretch")
    if b[5].button("Delete…", icon=":material/delete:", disabled=not deletable, width="stretch",
                   help="Running runs must be stopped first"):
        confirm_delete(deletable)
    groups = model_groups(rows)   # one model and dataset per plane: the largest group of the runs shown
    group, members = next(iter(groups.items()), (None, []))
    points = [{**p, "final": is_final(r)} for p, r in zip(compare_points(members), members)]
    if any(p["compression"] is not None and p["accuracy"] is not None for p in points):
        ui.chart(charts.to_figure(figures.accuracy_vs_compression(
            points, title=f"Accuracy vs compression — {group_name(group)} (colour = average bits)"), "runs-overview"),
            key="runs_overview")
        if len(groups) > 1:
            st.caption(f"Other models and datasets ({', '.join(group_name(g) for g in list(groups)[1:])}): filter "
                       "the table or compare them on the Compare page, one plane each.")


table()
