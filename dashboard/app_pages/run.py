"""Run (live): one run's status, progress, and every chart of the search, refreshed while it trains;
the live slider of its method's strength (λ, BSQ's decay α), stop and resume. What it shows for a method
comes from the method's ``MethodSpec``; a run of a method not known here gets the method-neutral view."""
from __future__ import annotations

import sqlite3
from typing import Optional

import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components import launch_form as lf
from dashboard.components import multibit as mb
from dashboard.components.live import build_figures, current_layers
from dashboard.components.methods import prunes_lsbs, regularized_phases, spec_of, widths_of
from dashboard.components.progress import format_seconds, measure, phase_help, phase_plan
from dashboard.components.queue import queue_positions
from dashboard.components.snapshot import events_of, read_run_row, read_snapshot
from dashboard.components.why import layer_rows, why_display
from msq.config import RunConfig, get_dotted
from msq.errors import MSQError, RunStoreError
from msq.methods import MethodSpec
from msq.runs import runner

REFRESH_S = 2
PANEL = [("bits_heatmap", "bits_bars"), ("density_heatmap", "layer_lines"), ("sensitivity_bars", "sensitivity_heatmap"),
         ("loss", "accuracy"), ("trajectory", "lam")]   # chart pairs, one row each
VIEWS = {"widths": [("acc_widths", "loss_widths"), ("accuracy", "loss")]}   # MethodSpec.panels: in place of PANEL
store = resources.store()
rows = store.list_runs()
if not rows:
    st.title("Run")
    ui.empty_state("No runs yet — launch one and watch it train here.")
    st.stop()


def picker(label: str = "Switch run") -> None:
    ui.run_switcher(rows, run_id, "run_picker", label, "choose a run")


run_id = ui.selected_run_id() or rows[0]["id"]
try:
    store.require(run_id)
except RunStoreError as exc:   # a mistyped ?run=, or a run deleted meanwhile
    st.error(f"Cannot show this run: {exc}", icon=":material/error:")
    picker("Pick an existing run")
    st.stop()
st.session_state["run_id"] = run_id


def set_lam(run_id: str) -> None:
    value = st.session_state[f"lamslider:{run_id}"]
    try:
        runner.set_lam(store, run_id, float(value))
        st.toast(f"λ → {value:g}: applied at the worker's next step", icon=":material/tune:")
    except (MSQError, sqlite3.Error, ValueError) as exc:
        st.session_state["run_notice"] = str(exc)


def do(action: str, run_id: str) -> None:
    try:
        if action == "stop":
            ui.request_stop(run_id)
        else:
            runner.resume(store, run_id)
    except (MSQError, sqlite3.Error, OSError, ValueError) as exc:
        st.session_state["run_notice"] = str(exc)


def header(run: dict) -> None:
    c1, c2 = st.columns([3, 2], vertical_alignment="top")
    with c1:
        st.header(run.get("name") or run["id"], anchor=False)
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            ui.badge("stopping…" if ui.stop_pending(run) else run.get("status"))
            st.caption(f"`{run['id']}` · {run.get('method')} · {run.get('model')} on {run.get('dataset')} · "
                       f"{run.get('device')}", width="content")
        picker()
    with c2:
        status = run.get("status")
        spec = spec_of(run.get("method"))
        if spec is not None and spec.knob is not None:
            strength_slider(run, spec)
        elif spec is not None and spec.page:
            st.page_link(ui.page(spec.page), label=spec.page_label or spec.title, query_params={"run": run["id"]},
                         icon=spec.page_icon or None)
        b1, b2 = st.columns(2)
        b1.button("Stop run", icon=":material/stop_circle:", disabled=status not in ("running", "queued"),
                  on_click=do, args=("stop", run["id"]), width="stretch")
        b2.button("Resume", icon=":material/play_circle:", disabled=status not in ("failed", "stopped"),
                  on_click=do, args=("resume", run["id"]), width="stretch")
    if (notice := st.session_state.pop("run_notice", None)) is not None:
        st.error(notice)


def strength_slider(run: dict, spec: MethodSpec) -> None:
    """The method's strength, live: sent to the worker (as its "lam" control) while the run is queued or running."""
    knob = spec.knob
    live_ok = run.get("status") in ("running", "queued")
    changes = store.events(run["id"], "lam_change")
    current = lf.live_strength(spec.name, run.get("config"), changes[-1]["payload"].get("new") if changes else None)
    st.select_slider(f"{knob.symbol} live — {knob.meaning} (log scale)",
                     options=lf.strength_options(spec.name, current), value=current, format_func=lf.format_lam,
                     key=f"lamslider:{run['id']}", on_change=set_lam, args=(run["id"],), disabled=not live_ok,
                     help=lf.HELP.get(knob.key))
    phases = store.events(run["id"], "phase")
    phase = (phases[-1]["payload"] or {}).get("phase") if phases else None
    st.caption(strength_note(spec, phase, live_ok))


def strength_note(spec: MethodSpec, phase: Optional[str], live_ok: bool) -> str:
    """When a change of the strength takes effect: in the phases its penalty acts in, not after them."""
    symbol = spec.knob.symbol
    if not live_ok:
        return f"{symbol} can change while the run is queued or running."
    names, acting = [p.name for p in spec.phases(RunConfig())], regularized_phases(spec)
    if phase in acting:
        return (f"Moving {symbol} changes the running {phase} at its next step (logged as a λ-change event, "
                "dashed on the charts).")
    if acting and phase in names and names.index(phase) > names.index(acting[-1]):
        return (f"{phase.capitalize()}: {symbol} is off and the widths are frozen, so a change has no effect "
                "any more.")
    when = f"from the {acting[0]} phase" if acting else "while its penalty is on"
    return (f"{symbol} acts {when}: a change now is kept and takes effect then"
            + (" (the phases before it train without it)." if acting else "."))


def problems(snap) -> None:
    run = snap.run
    folder = store.run_dir(run["id"])
    if run.get("status") == "failed":
        st.error(f"**This run failed.** {run.get('error') or 'No reason was recorded.'}", icon=":material/error:")
        tail = run.get("log_tail") or _log_tail(folder)
        if tail:
            with st.expander("worker.log (last lines)", expanded=True):
                st.code(tail, language=None)
        st.caption("Its metrics and last checkpoint stay readable; **Resume** continues from the checkpoint.")
    elif run.get("status") == "stopped" and run.get("error"):
        st.info(f"Stopped: {run['error']}", icon=":material/stop_circle:")
    if not folder.is_dir():
        st.warning(f"The run folder `{folder}` is missing (deleted?): worker.log and checkpoints are gone, so a "
                   "resume starts over. The metrics below come from the store and are intact.",
                   icon=":material/folder_off:")
    if snap.config_error:
        st.warning(f"{snap.config_error}. Charts still show the stored metrics; phases and α are unknown.",
                   icon=":material/warning:")
    resumes = events_of(snap.events, "resume")
    if resumes:   # a resume drops what was logged after the checkpoint: the step counter went back on purpose
        steps = ", ".join(str(e.get("step")) for e in resumes)
        st.caption(f"Resumed {ui.plural(len(resumes), 'time')} (from the checkpoint at step {steps}): the steps "
                   "logged after that checkpoint were dropped and trained again, so the step count went back there. "
                   "Resumes are the green dotted marks on the step charts.")


def _log_tail(folder) -> str:
    try:
        lines = (folder / "worker.log").read_text(errors="replace").splitlines()
        return "\n".join(lines[-30:])
    except OSError:
        return ""


def progress(snap) -> None:
    plan = phase_plan(snap.config, snap.events)
    fraction, eta = measure(plan, snap.latest, snap.scalars, snap.status)
    latest = snap.latest
    acc = (latest.get("val_acc") or {}).get("value")
    comp = (latest.get("compression") or {}).get("value")
    bits = (latest.get("avg_bits") or {}).get("value")
    method, config = snap.run.get("method"), snap.config or {}
    spec = spec_of(method)
    several = spec is not None and not spec.one_allocation   # one set of weights at several widths
    widths = widths_of(spec, config)
    widest = f" at {max(widths)} bits" if several and widths else ""
    m = st.columns(6)
    m[0].metric("Mean acc. (trained)" if several else "Validation accuracy",
                "—" if acc is None else f"{acc:.2f}%")
    m[1].metric("Compression" + widest, "—" if comp is None else f"{comp:.2f}×",
                help="32-bit float weights / quantized weights")
    m[2].metric("Average bits" + widest, "—" if bits is None else f"{bits:.2f}", help="bits per quantized weight")
    label, value, help_text = method_metric(snap)
    m[3].metric(label, value, help=help_text)
    m[4].metric("Step", (latest.get("loss") or {}).get("step") or 0)
    if snap.status in ("running", "queued"):
        m[5].metric("ETA", format_seconds(eta), help="from the measured seconds per epoch")
    else:
        m[5].metric("Duration", format_seconds(snap.run.get("duration")))
    if plan:
        cols = st.columns(len(plan))
        for col, phase in zip(cols, plan):
            eta_text = f" · ETA {format_seconds(phase.eta_s)}" if phase.state != "done" and phase.eta_s else ""
            note = phase_help(method, phase.name, config)
            note = f" ({note})" if note else ""
            col.progress(phase.fraction,
                         text=f"**{phase.name}**{note} {phase.done:.1f}/{phase.epochs} epochs{eta_text}")


def method_metric(snap) -> tuple[str, str, str]:
    """The fourth headline number: what steers this method (its strength now, or the widths it trains at)."""
    run, config = snap.run, snap.config or {}
    spec = spec_of(run.get("method"))
    if spec is not None and spec.knob is not None:
        value = strength_now(run.get("config"), spec.knob.key, snap.events)
        return (f"{spec.knob.symbol} now", f"{value:g}" if isinstance(value, (int, float)) else "—",
                f"{spec.knob.meaning} (live changes included)")
    widths = widths_of(spec, config)
    if spec is not None and spec.one_allocation and spec.widths_key:
        return (f"{spec.title} width", f"{widths[0]} bits" if widths else "—",
                "every searched layer trains at this width")
    if spec is not None and spec.widths_key:
        unseen = [b for b in mb.widths_of(config, run.get("summary"), snap.scalars)[1] if b not in widths]
        return ("Widths", ",".join(map(str, widths)) or "—",
                "trained widths" + (f"; also evaluated, never trained: {', '.join(map(str, unseen))}" if unseen else ""))
    return "Method", run.get("method") or "—", ""


def strength_now(config: Optional[dict], key: str, events: list):
    """The strength a run trains with now, as stored: its last live change, else its config's ``key``."""
    changes = events_of(events, "lam_change")
    if changes:
        return changes[-1].get("new")
    try:
        return get_dotted(config or {}, key)
    except (KeyError, TypeError):
        return None


def charts(snap) -> None:
    names = snap.layer_names
    searched = [l["fqn"] for l in snap.layers if not l.get("fixed")] or names
    default = sorted(searched, key=lambda n: -next(l["params"] or 0 for l in snap.layers if l["fqn"] == n))[:4]
    key = f"layers:{snap.run['id']}"
    chosen = st.session_state.get(key, default)
    figs = build_figures(snap, chosen=[c for c in chosen if c in names])
    if not figs.get("bits_bars") and not figs.get("loss") and snap.status == "queued":
        place = queue_positions(store.list_runs(status=("queued", "running"))).get(snap.run["id"])
        st.info("Queued" + (f" — {place['text']}." if place else ".") + " Its charts start with its first steps.",
                icon=":material/schedule:")
        return
    if not figs.get("bits_bars") and not figs.get("loss"):
        st.info("Waiting for the first metrics: the worker is starting (the first per-layer values arrive after "
                "`log_every` steps).", icon=":material/hourglass_top:")
        return
    rid = snap.run["id"]
    spec = spec_of(snap.run.get("method"))
    pairs = [pair for view in (spec.panels if spec else ()) for pair in VIEWS.get(view, [])] or PANEL
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    if any("layer_lines" in pair for pair in pairs):
        c2.multiselect("Layers to follow (LSB density lines)", names, default=default, key=key, max_selections=10)
    hessian_pruning = prunes_lsbs(spec) and spec.estimates_hessian   # it estimates layers about to lose an LSB
    if "sensitivity_bars" not in figs and hessian_pruning and ((snap.config or {}).get("hessian") or {}).get(
            "enabled", True):
        c1.caption(f"No Hessian estimate yet: with Hessian-aware pruning, {spec.title} estimates each layer's "
                   "sensitivity when a layer is about to lose an LSB." if snap.status in ("running", "queued") else
                   "No Hessian estimate in this run: no layer came close enough to losing an LSB for "
                   f"{spec.title} to estimate its sensitivity.")
    panel = []
    for pair in pairs:
        present = [name for name in pair if name in figs]
        panel += [(name, figs[name], len(present) == 1) for name in present]
    ui.chart_panel(panel, key=f"panel:{rid}")
    st.subheader("Why each layer got its bits")
    if spec is not None and not spec.one_allocation:
        st.caption(f"A {spec.title_in_text} network has no single allocation: every searched layer runs at each "
                   "trained width. The columns below describe it at its widest width"
                   + (f"; the {spec.title} page evaluates any mix." if spec.page else "."))
    st.caption("LSB density = fraction of weights with an odd integer code (0: the LSB plane is empty); "
               "sensitivity = average Hessian trace per weight, Tr(H)/N, and its ratio to the layer mean"
               + ("." if hessian_pruning else " (Hessian-aware pruning only: this method does not estimate it)."))
    why = why_display(layer_rows(current_layers(snap), snap.vectors, snap.events, snap.config))
    if len(why) <= 24:
        st.table(why)                        # wrapped text: every reason readable at once
    else:                                    # big models: a scrollable table (hover a cell for its full text)
        st.dataframe(why, height=560, width="stretch", column_config={"why": st.column_config.TextColumn(width="large")})
    with st.expander(f"Events ({len(snap.events)})"):
        st.dataframe([{"step": e["step"], "epoch": e["epoch"], "kind": e["kind"], "details": e["payload"]}
                      for e in snap.events], hide_index=True, width="stretch")


run_row = read_run_row(store, run_id)[0]
live = run_row["status"] in ("running", "queued")   # only a live run polls; it stops polling when it ends


@st.fragment(run_every=REFRESH_S if live else None)
def live_view() -> None:
    try:
        snap = read_snapshot(store, run_id)
    except RunStoreError as exc:   # deleted meanwhile
        st.error(f"This run is no longer in the store: {exc}")
        return
    if live and snap.status not in ("running", "queued"):
        st.rerun(scope="app")   # it just ended: redraw the header and stop polling
    progress(snap)
    problems(snap)
    charts(snap)
    if live:
        st.caption(f"Live: refreshes every {REFRESH_S} s · store read {1000 * snap.read_seconds:.0f} ms · "
                   f"{len(events_of(snap.events, 'prune'))} prune events")


header(run_row)
live_view()
