"""Multi-bit: one any-precision run -- accuracy at every width (never-trained widths too), its coresets and
the time they save against full-data training -- and the what-if mixer (``mixer_view.py``). It shows the runs
of the methods whose ``MethodSpec.page`` is this page."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import resources
from dashboard.app_pages import mixer_view, ui
from dashboard.components import multibit as mb
from dashboard.components import multibit_charts as mc
from dashboard.components.methods import methods_with_page, own_section
from dashboard.components.progress import format_seconds
from dashboard.components.snapshot import events_of, parse_config, read_run_row
from msq.errors import RunStoreError

REFRESH_S = 3
TABS = ("Widths and coresets", "What-if mixer")
EPOCH_KEYS = ("acc_", "coreset_", "score_b", "scoring_seconds", "training_seconds", "val_acc")

PAGE = Path(__file__).stem   # this page's url path (app.py names each method page by its file)
METHODS = methods_with_page(PAGE)

store = resources.store()
rows = [r for r in store.list_runs() if r.get("method") in METHODS]
if not rows:
    st.title("Multi-bit runs")
    ui.empty_state("No multi-bit runs yet — on the Launch page pick the "
                   + " or ".join(f"**{m}**" for m in METHODS) + " method: one network trained "
                   "for several widths at once, with EMQ's bias correction and bit-wise coresets.")
    st.stop()


def picker(current: str | None, label: str = "Multi-bit run") -> None:
    ui.run_switcher(rows, current, "mb_picker", label, "choose a multi-bit run")


# the URL names a run on purpose: not a multi-bit one is an error; the session's last run (an MSQ run opened on
# another page) is only a hint, and this page then shows the newest multi-bit run
from_url = st.query_params.get("run")
wanted = from_url or st.session_state.get("run_id")
run_id = wanted if wanted in {r["id"] for r in rows} else rows[0]["id"]
if from_url and from_url != run_id:
    try:
        other = store.run(from_url)
        why = f"run `{from_url}` used method **{other.get('method')}**; this page shows multi-bit runs"
    except (RunStoreError, ValueError) as exc:
        why = str(exc)
    st.title("Multi-bit runs")
    st.error(f"Cannot show it here: {why}.", icon=":material/error:")
    picker(None, "Pick a multi-bit run")
    st.stop()
st.session_state["run_id"] = run_id
run, row_problem = read_run_row(store, run_id)
config, config_problem = parse_config(run)
live = run.get("status") in ("running", "queued")

# -- header ----------------------------------------------------------------------------------------
c1, c2 = st.columns([3, 2], vertical_alignment="top")
with c1:
    st.header(run.get("name") or run_id, anchor=False)
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        ui.badge(run.get("status"))
        mbc = own_section(config)
        described = (f"coreset {mbc['coreset_fraction']:.0%} ({mbc.get('selection')}, {mbc.get('score')}, re-selected "
                     f"every {mbc.get('reselect_every')} epochs)" if mbc.get("coreset_fraction", 1.0) < 1
                     else "full data (no coreset)") if mbc else ""
        st.caption(f"`{run_id}` · {run.get('model')} on {run.get('dataset')} · {described}"
                   + (f" · bias correction {'on' if mbc.get('bias_correction') else 'off'}, "
                      f"{'one shared' if mbc.get('shared_bn') else 'per-width'} BatchNorm" if mbc else ""),
                   width="content")
with c2:
    picker(run_id)
    st.page_link(ui.page("run"), label="Live view of this run (loss, per-layer LSB density)",
                 query_params={"run": run_id}, icon=":material/monitoring:")
for problem in (row_problem, config_problem):
    if problem:
        st.warning(f"{problem}. The stored metrics are still shown.", icon=":material/warning:")


def read(run_id: str) -> tuple[dict, dict, list]:
    """The run row, its epoch-level scalars (not the per-step ones) and its events."""
    row, _ = read_run_row(store, run_id)
    keys = [k for k in store.scalar_keys(run_id) if k.startswith(EPOCH_KEYS)]
    return row, store.scalar_series(run_id, keys, max_points=2000), store.events(run_id)


def metrics(run: dict, scalars: dict, trained: list, unseen: list, saving) -> None:
    acc = mb.final_accuracy(run.get("summary"), scalars)
    seen = [acc[b] for b in trained if b in acc]
    other = [acc[b] for b in unseen if b in acc]
    totals = mb.time_totals(scalars, run.get("summary"))
    m = st.columns(6)
    m[0].metric("Mean acc. (trained)", f"{sum(seen) / len(seen):.2f}%" if seen else "—",
                help="validation accuracy averaged over " + ", ".join(f"{b}" for b in trained) + " bits")
    m[1].metric("Mean acc. (unseen)", f"{sum(other) / len(other):.2f}%" if other else "—",
                help="widths never trained (multibit.eval_bits), evaluated without calibration")
    if trained:
        lo, hi = min(trained), max(trained)
        m[2].metric(f"At {lo} bits", f"{acc[lo]:.2f}%" if lo in acc else "—")
        m[3].metric(f"At {hi} bits", f"{acc[hi]:.2f}%" if hi in acc else "—")
    m[4].metric("Training time", format_seconds(totals["total"]) if totals["epochs"] else "—",
                help=f"wall clock of the multi-bit phase: {totals['scoring']:.1f} s coreset scoring + "
                     f"{totals['training']:.1f} s training steps over {totals['epochs']} epochs")
    if saving is None:
        m[5].metric("Time saved", "—", help="a full-data run has no coreset to save time with")
    else:
        m[5].metric("Time saved" + (" (est.)" if saving["full"]["estimated"] else ""),
                    f"{saving['saving']:.0%}" if saving["saving"] >= 0 else "none", delta=f"{saving['speedup']:.2f}× " +
                    ("faster" if saving["speedup"] >= 1 else "slower"),
                    delta_color="green" if saving["speedup"] >= 1 else "red",
                    delta_arrow="up" if saving["speedup"] >= 1 else "down",
                    help="vs full-data multi-bit training, estimated: this run's training steps / coreset fraction "
                         "(steps scale with the samples seen)" if saving["full"]["estimated"] else
                         f"vs full-data multi-bit training, measured: {saving['full']['label']}")


def baselines(run: dict) -> list[dict]:
    rows_same = [r for r in rows if r["id"] != run["id"] and r.get("model") == run.get("model")
                 and r.get("dataset") == run.get("dataset") and r.get("status") == "completed"][:20]
    full = []
    for r in rows_same:
        try:
            full.append(store.run(r["id"]))
        except (RunStoreError, ValueError):   # a damaged record: not a baseline
            continue
    return mb.full_data_baselines({**run, "config": config}, full)


def time_section(run: dict, scalars: dict, trained: list, saving, candidates: list) -> None:
    st.subheader("Time saved vs full-data training", anchor=False)
    if saving is None:
        fraction = mb.coreset_fraction(config, run.get("summary"))
        st.caption("This run trains every width on all the data (coreset_fraction = 1): it is the full-data "
                   "baseline that coreset runs of the same model compare against." if fraction and fraction >= 1 else
                   "The time comparison appears after the first multi-bit epoch.")
        return
    this, full = saving["this"], saving["full"]
    acc = mb.final_accuracy(run.get("summary"), scalars)
    seen = [acc[b] for b in trained if b in acc]
    mean_trained = sum(seen) / len(seen) if seen else None
    if full["estimated"]:
        st.caption(f"**Estimate** — no completed full-data multi-bit run of {run.get('model')} on "
                   f"{run.get('dataset')} is in the store. Full-data training time is estimated as this run's "
                   f"training steps ÷ the coreset fraction ({this['training']:.1f} s ÷ {saving['fraction']:g} = "
                   f"{full['training']:.1f} s), since each width's steps scale with the samples it sees. Launch the "
                   "same run with `multibit.coreset_fraction = 1` to measure it.")
    else:
        st.caption(f"Measured against {full['label']} (`{full['id']}`)"
                   + (f", scaled from its {full['epochs']} multi-bit epochs to this run's {this['epochs']}"
                      if full["scaled"] else f", {full['epochs']} multi-bit epochs each") + ". Wall-clock times "
                   "depend on what else the machine ran meanwhile.")
    table = [{"run": "this run", "coreset": f"{saving['fraction']:.0%}", "multi-bit epochs": str(this["epochs"]),
              "scoring (s)": this["scoring"], "training (s)": this["training"], "total (s)": this["total"],
              "mean acc, trained (%)": mean_trained},
             {"run": full["label"], "coreset": "100%",
              "multi-bit epochs": f"{this['epochs']} (scaled from {full['epochs']})" if full["scaled"]
              else str(full["epochs"]),
              "scoring (s)": full["scoring"], "training (s)": full["training"], "total (s)": full["total"],
              "mean acc, trained (%)": full.get("mean_acc")}]
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch", placeholder="—", column_config={
        c: st.column_config.NumberColumn(format="%.2f") for c in ("scoring (s)", "training (s)", "total (s)",
                                                                   "mean acc, trained (%)")})
    ui.chart(mc.time_comparison(saving), key=f"mbtime:{run['id']}")
    if len(candidates) > 1:
        st.caption("Other full-data runs of this model: " + ", ".join(f"`{c['id']}`" for c in candidates[1:4]))


@st.fragment(run_every=REFRESH_S if live else None)
def overview() -> None:
    try:
        run, scalars, events = read(run_id)
    except RunStoreError as exc:
        st.error(f"This run is no longer in the store: {exc}")
        return
    if live and run.get("status") not in ("running", "queued"):
        st.rerun(scope="app")
    trained, unseen = mb.widths_of(config, run.get("summary"), scalars)
    candidates = baselines(run)
    saving = mb.time_saving({**run, "config": config}, scalars, candidates[0] if candidates else None)
    metrics(run, scalars, trained, unseen, saving)
    if not mb.by_width(scalars, "acc"):
        st.info("No per-width accuracy yet: it is measured at the end of each multi-bit epoch (after float "
                "pretraining).", icon=":material/hourglass_top:")
        return
    fraction = mb.coreset_fraction(config, run.get("summary"))
    selections = mb.selection_epochs(events)
    summary = run.get("summary") or {}
    figures = [("acc_widths", mc.accuracy_per_width(scalars, trained, unseen, events, summary.get("float_acc")), False),
               ("acc_vs_width", mc.accuracy_vs_width(mb.final_accuracy(summary, scalars), trained, unseen,
                                                     mb.sizes_by_width(summary)), False)]
    if mb.by_width(scalars, "coreset_size"):
        figures += [("coreset_sizes", mc.coreset_sizes(scalars, trained, fraction, selections), False),
                    ("coreset_overlap", mc.coreset_overlap(scalars, trained, fraction, selections), False),
                    ("scores", mc.score_quantiles(scalars, trained, selections), False)]
    figures.append(("epoch_times", mc.epoch_times(scalars), len(figures) % 2 == 0))
    for _, fig, _ in figures:
        fig.update_layout(uirevision=f"{run_id}-mb")
    st.caption(f"Trained widths {', '.join(map(str, trained))} (solid); unseen widths "
               f"{', '.join(map(str, unseen)) or 'none'} (dashed / open) are evaluated with the same weights and "
               "BatchNorm, never trained. " + (f"{len(selections)} coreset selection(s) so far (dotted lines)."
                                              if selections else ""))
    ui.chart_panel(figures, key=f"mbpanel:{run_id}")
    time_section(run, scalars, trained, saving, candidates)
    coresets = events_of(events, "coreset")
    if coresets:
        with st.expander(f"Coreset selections ({len(coresets)})"):
            st.dataframe([{"epoch": c["epoch"], "selection": c.get("selection"), "seconds": c.get("seconds"),
                           "overlap": c.get("overlap"), "sizes": c.get("sizes")} for c in coresets],
                         hide_index=True, width="stretch")


tabs = st.tabs(list(TABS), key="view", on_change="rerun", bind="query-params")
with tabs[0]:
    if tabs[0].open:
        overview()
with tabs[1]:
    if tabs[1].open:
        mixer_view.mixer(run_id, run, config)
