"""Compare: accuracy vs compression of chosen runs, one plane per model and dataset (Pareto front over
every finished point, the reference runs of the same model -- a method whose spec has ``reference``:
uniform QAT --, runs that are not final flagged, each point's training budget), λ against compression and
accuracy, and two runs' bit allocations side by side. The selection is in the URL (``?compare=a,b``),
shared with the Curves page."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components import charts
from dashboard.components.comparison import budget_text, group_name, is_final, model_groups, progress_text
from dashboard.components.methods import marker_legend, reference_specs, spec_of, steers_lam
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
REFERENCES = {spec.name for spec in reference_specs()}
finished = [r for r in rows if r["status"] == "completed" and r["method"] not in REFERENCES]
default = [r["id"] for r in next(iter(model_groups(finished).values()), [])][:20]
c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
with c1:
    chosen = ui.pick_compared_runs(rows, default, key="compare_pick")
references = " / ".join(spec.title_in_text for spec in reference_specs())
refs_on = c2.toggle(f"{references} references".strip(), value=True,
                    help=f"Show the {references or 'reference'} runs of the same model and dataset as reference points")
if not chosen:
    st.info("Choose runs above: each model and dataset gets its own accuracy-vs-compression plane.",
            icon=":material/info:")
    st.stop()
picked = [by_id[i] for i in chosen]
refs = [r for r in rows if r["method"] in REFERENCES and r["id"] not in chosen] if refs_on else []


def config_of(run_id: str) -> dict:
    try:
        return store.run(run_id).get("config") or {}
    except (MSQError, ValueError):   # a damaged record: its budget reads "unknown"
        return {}


def several_widths(method) -> bool:
    """A run of this method is one network at several widths (multi-bit), not one allocation."""
    spec = spec_of(method)
    return spec is not None and not spec.one_allocation


def with_widths(points: list[dict]) -> list[dict]:
    """Runs at several widths as one point per width (their headline is a mean over widths at the widest size)."""
    out = []
    for p in points:
        if not several_widths(p["method"]):
            out.append(p)
            continue
        try:
            row = store.run(p["id"])
        except (MSQError, ValueError):   # a damaged record: keep its headline point
            row = None
        out += (width_points(row, row.get("summary")) if row else []) or [p]
    return out


def honest(points: list[dict]) -> list[dict]:
    """Each point with its training budget and, unless its run completed, "not final" and where it is."""
    configs = {p["id"]: config_of(p["id"]) for p in points}
    for p in points:
        row = dict(by_id[p["id"]])
        if not is_final(row):
            row["epoch"] = (store.scalar_series(p["id"], "val_acc", max_points=1)["val_acc"]["epoch"] or [None])[-1]
        p["final"] = is_final(row)
        p["note"] = " · ".join(t for t in (budget_text(configs[p["id"]]), progress_text(row, configs[p["id"]])) if t)
    return points


groups = model_groups(picked)
if len(groups) > 1:
    st.caption("The chosen runs train " + ", ".join(f"**{group_name(g)}**" for g in groups)
               + ": one plane each (accuracy of different models or data is not one comparison).")
points: list[dict] = []
for group, members in groups.items():
    group_refs = [r for r in refs if (r.get("model") or "?", r.get("dataset") or "?") == group]
    plane = honest(with_widths(compare_points(members + group_refs)))
    points += plane
    if not [p for p in plane if p["compression"] is not None and p["accuracy"] is not None]:
        st.info(f"{group_name(group)}: none of these runs has finished an epoch yet — accuracy and compression "
                "appear after the first epoch.", icon=":material/hourglass_top:")
        continue
    budgets = sorted({p["note"].split(" · ")[0] for p in plane})
    if len(budgets) > 1:
        st.warning(f"{group_name(group)}: the runs had different training budgets ("
                   + "; ".join(budgets) + ") — hover a point for its own.", icon=":material/balance:")
    ui.chart(charts.to_figure(figures.accuracy_vs_compression(
        plane, title=f"Accuracy vs compression — {group_name(group)}"), f"compare-{group}"),
        key=f"cmp_front_{group_name(group)}")
st.caption(f"Colour = average bits (the colour bar); symbol = method: {marker_legend()}; faded and “(not final)” = "
           "a run that has not completed (where it stands now, not its result). The dashed line links the finished "
           "points, references included, that no other finished point beats on both accuracy and compression.")
main_group = picked if len(groups) == 1 else next(iter(groups.values()))
c1, c2 = st.columns(2)
with c1:
    ui.chart(charts.lam_sweep(compare_points(main_group), "compression"), key="cmp_lam_comp")
with c2:
    ui.chart(charts.lam_sweep(compare_points(main_group), "accuracy"), key="cmp_lam_acc")
if len(groups) > 1:
    st.caption(f"λ sweeps: {group_name(next(iter(groups)))} (the largest group) only.")

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

table = pd.DataFrame([{"run": labels[p["id"]] + (f" — {p['label'].split(' @')[-1]}" if several_widths(p["method"]) and
                                                  " @" in p["label"] else ""),
                       "open": f"/run?run={p['id']}",
                       "model": by_id[p["id"]].get("model"), "dataset": by_id[p["id"]].get("dataset"),
                       "method": p["method"], "λ": p["lam"] if steers_lam(p["method"]) else None,
                       "accuracy (%)": p["accuracy"],
                       "compression (×)": p["compression"], "avg bits": p["avg_bits"],
                       "final": "yes" if p["final"] else "no", "budget and state": p["note"]} for p in points])
if not table.empty:
    st.subheader("Numbers")
    st.dataframe(table, hide_index=True, width="stretch", placeholder="—", column_config={
        "open": st.column_config.LinkColumn("run id", display_text=r"run=(.*)", help="open the run's live page"),
        "accuracy (%)": st.column_config.NumberColumn(format="%.2f"),
        "compression (×)": st.column_config.NumberColumn(format="%.2f×"),
        "avg bits": st.column_config.NumberColumn(format="%.2f")})
