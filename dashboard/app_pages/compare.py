"""Compare: accuracy vs compression of chosen runs (Pareto front, uniform-QAT references), λ against
compression and accuracy, and two runs' bit allocations side by side."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components import charts
from dashboard.components.multibit import width_points
from dashboard.components.runs_table import compare_points, run_label
from msq.errors import MSQError
from msq.report import figures

st.title("Compare runs")
store = resources.store()
rows = store.list_runs()
if not rows:
    ui.empty_state("No runs yet — launch a λ sweep and compare the runs here.")
    st.stop()

by_id = {r["id"]: r for r in rows}
labels = {r["id"]: run_label(r) for r in rows}
preset = [i for i in st.session_state.pop("compare_ids", []) if i in by_id]
if preset:
    st.session_state["compare_pick"] = preset
default = [r["id"] for r in rows if r["status"] == "completed" and r["method"] != "uniform"][:20] or [rows[0]["id"]]
c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
chosen = c1.multiselect("Runs", list(by_id), default=default, format_func=labels.get, key="compare_pick",
                        placeholder="choose runs to compare")
refs_on = c2.toggle("uniform QAT references", value=True, help="Show every uniform-QAT run as a reference point")
picked = [by_id[i] for i in chosen]
refs = [r for r in rows if r["method"] == "uniform" and r["id"] not in chosen] if refs_on else []


def with_widths(points: list[dict]) -> list[dict]:
    """Multi-bit runs as one point per width (their headline is a mean over widths at the widest size)."""
    out = []
    for p in points:
        if p["method"] != "multibit":
            out.append(p)
            continue
        try:
            row = store.run(p["id"])
        except (MSQError, ValueError):   # a damaged record: keep its headline point
            row = None
        out += (width_points(row, row.get("summary")) if row else []) or [p]
    return out


points = with_widths(compare_points(picked + refs))
if not [p for p in points if p["compression"] is not None and p["accuracy"] is not None]:
    st.info("None of these runs has finished an epoch yet: accuracy and compression appear after the first epoch.")
else:
    ui.chart(charts.to_figure(figures.accuracy_vs_compression(
        points, title="Accuracy vs compression — Pareto front of the searched runs"), "compare"), key="cmp_front")
    st.caption("Colour = average bits on the shared bit scale; ◆ uniform QAT at fixed widths (reference); ▲ a "
               "multi-bit run at each of its widths; ■ BSQ; the dashed line links runs that no other run beats on "
               "both accuracy and compression.")
c1, c2 = st.columns(2)
with c1:
    ui.chart(charts.lam_sweep(compare_points(picked), "compression"), key="cmp_lam_comp")
with c2:
    ui.chart(charts.lam_sweep(compare_points(picked), "accuracy"), key="cmp_lam_acc")

st.subheader("Bit allocations side by side")
pair = chosen[:2] if len(chosen) >= 2 else (list(by_id)[:2] if len(by_id) >= 2 else list(by_id))
cols = st.columns(2)
allocations = {}
for col, default_id, side in zip(cols, pair, ("A", "B")):
    with col:
        run_id = st.selectbox(f"Run {side}", list(by_id), index=list(by_id).index(default_id), format_func=labels.get,
                              key=f"compare_{side}")
        layers = store.layers(run_id)   # the layer table follows every prune: these are the widths now
        allocations[side] = {l["fqn"]: l["bits"] for l in layers}
        if layers:
            ui.chart(charts.to_figure(figures.bit_allocation_bars(layers), f"cmp-{run_id}"), key=f"cmp_bars_{side}")
        else:
            st.caption("No layers recorded yet.")
if len(allocations) == 2 and allocations["A"] and allocations["B"]:
    names = list(dict.fromkeys(list(allocations["A"]) + list(allocations["B"])))
    diff = pd.DataFrame({"layer": names, "bits A": [allocations["A"].get(n) for n in names],
                         "bits B": [allocations["B"].get(n) for n in names]})
    diff["B − A"] = pd.to_numeric(diff["bits B"]) - pd.to_numeric(diff["bits A"])
    with st.expander("Per-layer difference"):
        st.dataframe(diff, hide_index=True, width="stretch")

table = pd.DataFrame([{"run": labels[p["id"]] + (f" — {p['label'].split(' @')[-1]}" if p["method"] == "multibit" and
                                                  " @" in p["label"] else ""),
                       "method": p["method"], "λ": p["lam"] if p["method"] == "msq" else None,
                       "accuracy (%)": p["accuracy"],
                       "compression (×)": p["compression"], "avg bits": p["avg_bits"]} for p in points])
if not table.empty:
    st.subheader("Numbers")
    st.dataframe(table, hide_index=True, width="stretch", placeholder="—", column_config={
        "accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
        "compression (×)": st.column_config.NumberColumn(format="%.2f×"),
        "avg bits": st.column_config.NumberColumn(format="%.2f")})
