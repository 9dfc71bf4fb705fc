"""Curves: several runs' loss, accuracy, average bits, λ (any logged scalar) and one layer's LSB density
or bits over training, overlaid with a stable colour per run; EMA smoothing over the faint raw curve,
log or linear y, x = step, epoch or training time. The selection lives in the URL (``?compare=a,b``)
and is shared with the Compare page."""
from __future__ import annotations

import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components.comparison import group_name, model_groups
from dashboard.components.curve_data import LAYER_METRICS, layer_choices, metric_choices, read_curves, read_run_curves
from dashboard.components.curves import METRIC_TITLES, X_AXES, curve_figure
from msq.runs.store import FINAL_STATUSES

REFRESH_S = 3
DEFAULT_METRICS = ("loss", "val_acc", "avg_bits", "lam")

st.title("Curves")
store = resources.store()
rows = store.list_runs()
if not rows:
    ui.empty_state("No runs yet — launch two or three runs and overlay their curves here.")
    st.stop()
by_id = {r["id"]: r for r in rows}
default = [r["id"] for r in rows if r["status"] != "queued" and r.get("step")][:5]
c1, c2 = st.columns([4, 2], vertical_alignment="bottom")
with c1:
    chosen = ui.pick_compared_runs(rows, default, key="curves_pick")
x = c2.radio("x axis", list(X_AXES), format_func={"step": "step", "epoch": "epoch", "time": "training time"}.get,
             horizontal=True, key="curves_x",
             help="Training time adds up each epoch's seconds: time a run spent stopped or queued is not counted")
if not chosen:
    st.info("Choose runs above to overlay their curves.", icon=":material/info:")
    st.stop()

groups = model_groups([by_id[i] for i in chosen])
if len(groups) > 1:
    st.warning("These runs train different models or datasets — "
               + "; ".join(f"**{group_name(g)}**: {ui.plural(len(rs), 'run')}" for g, rs in groups.items())
               + ". Their curves share axes here but are not one comparison: keep one group below.",
               icon=":material/call_split:")
    keep = st.selectbox("Show", ["all groups (not comparable)"] + [group_name(g) for g in groups], key="curves_group")
    if keep in {group_name(g) for g in groups}:
        chosen = [r["id"] for g, rs in groups.items() if group_name(g) == keep for r in rs]
waiting = [by_id[i] for i in chosen if by_id[i]["status"] == "queued"]
if waiting:
    st.caption("Queued, no steps yet: " + ", ".join(ui.run_label(r) for r in waiting))

choices = metric_choices(store, chosen)
c1, c2, c3 = st.columns([4, 2, 1], vertical_alignment="bottom")
metrics = c1.multiselect("Metrics", choices, default=[m for m in DEFAULT_METRICS if m in choices],
                         format_func=lambda m: METRIC_TITLES.get(m, m), key="curves_metrics")
smoothing = c2.slider("Smoothing (EMA weight)", 0.0, 0.99, 0.6, 0.01, key="curves_smoothing",
                      help="0 = the raw curve; the raw curve stays faint behind the smoothed one")
log_y = c3.toggle("Log y axis", key="curves_log")
layers = layer_choices(store, chosen)
c1, c2 = st.columns([4, 3], vertical_alignment="bottom")
layer = c1.selectbox("Layer (per-layer series across runs)", layers, index=None, key="curves_layer",
                     placeholder="choose a layer to overlay its LSB density or bits")
layer_metrics = c2.multiselect("Per-layer metrics", list(LAYER_METRICS), default=["lsb_density"],
                               format_func=LAYER_METRICS.get, key="curves_layer_metrics", disabled=layer is None)
live = any(by_id[i]["status"] in ("running", "queued") for i in chosen)


@st.cache_data(max_entries=64, show_spinner=False)
def finished_run_curves(home: str, run_id: str, ended: float, metrics: tuple, layer, layer_metrics: tuple) -> dict:
    """A finished run's series, read once per (run, end time, what is drawn): a live refresh then reads
    only the runs still training."""
    return read_run_curves(resources.store(), run_id, metrics, layer, layer_metrics)


@st.fragment(run_every=REFRESH_S if live else None)
def draw() -> None:
    fresh = {r["id"]: r for r in store.list_runs() if r["id"] in set(chosen)}
    wanted = (tuple(metrics), layer, tuple(layer_metrics) if layer else ())

    def read_run(run_id: str) -> dict:
        row = fresh[run_id]
        if row["status"] in FINAL_STATUSES and row.get("ended"):
            return finished_run_curves(str(store.home), run_id, row["ended"], *wanted)
        return read_run_curves(store, run_id, *wanted)
    series = read_curves(store, [i for i in chosen if i in fresh], metrics, layer=layer,
                         layer_metrics=wanted[2], rows=fresh, read_run=read_run)
    figures = []
    for key, runs in series.items():
        metric, _, on_layer = key.partition("@")
        title = f"{LAYER_METRICS.get(metric, metric)} of {on_layer}" if on_layer else None
        figures.append((key, curve_figure(metric, runs, x=x, smoothing=smoothing, log_y=log_y, title=title),
                        len(series) == 1))
    missing = [key for key, runs in series.items() if not runs]
    if missing:
        st.caption("Not logged by these runs yet: " + ", ".join(missing))
    if figures:
        ui.chart_panel(figures, key="curves_panel")


draw()
