"""The what-if mixer of the Multi-bit page (not a page itself): per-layer widths for a trained multi-bit
model, evaluated on the spot on the validation split, with quick setters (one width everywhere, another
run's final allocation) and every mix tried on an accuracy-vs-average-bits chart. The model comes from the
run folder's checkpoint, loaded once per checkpoint (``resources.multibit_model``)."""
from __future__ import annotations

import sqlite3
import time

import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components import mixer as mx
from msq.errors import MSQError


def _key(run_id: str, fqn: str) -> str:
    return f"mix:{run_id}:{fqn}"


def _set(run_id: str, mix: dict) -> None:
    for fqn, bits in mix.items():
        st.session_state[_key(run_id, fqn)] = int(bits)


def _set_uniform(run_id: str, layers: list) -> None:
    bits = st.session_state.get(f"mixuniform:{run_id}")
    if bits is None:
        return
    _set(run_id, mx.uniform_mix(layers, bits, st.session_state.get(f"mixunlock:{run_id}", False)))
    st.session_state[f"mixnotes:{run_id}"] = [f"every {'' if st.session_state.get(f'mixunlock:{run_id}') else 'searched '}"
                                              f"layer set to {bits} bits"]
    st.session_state[f"mixuniform:{run_id}"] = None     # a setter, not a state: the next click applies again


def _apply_run(run_id: str, layers: list, options: list) -> None:
    source = st.session_state.get(f"mixsrc:{run_id}")
    if not source:
        return
    try:
        source_layers = resources.store().layers(source)
    except (MSQError, sqlite3.Error, ValueError) as exc:
        st.session_state[f"mixnotes:{run_id}"] = [f"could not read run {source}: {exc}"]
        return
    mix, notes = mx.mix_from_layers(layers, source_layers, st.session_state.get(f"mixunlock:{run_id}", False), options)
    _set(run_id, mix)
    st.session_state[f"mixlabel:{run_id}"] = f"allocation of {source}"
    st.session_state[f"mixnotes:{run_id}"] = [f"applied the final widths of run `{source}`"] + notes


def _relock(run_id: str, fixed: list) -> None:
    """Locking the fixed layers again puts them back at their own width."""
    if not st.session_state.get(f"mixunlock:{run_id}"):
        _set(run_id, {l["fqn"]: l["bits"] for l in fixed})


def _forget_notes(run_id: str) -> None:
    """A hand-moved layer: the last quick setter's notes no longer describe the mix."""
    st.session_state.pop(f"mixnotes:{run_id}", None)


def _clear(points_key: str) -> None:
    st.session_state[points_key] = []


@st.fragment
def mixer(run_id: str, run: dict, config) -> None:
    started = time.perf_counter()
    try:
        loaded = resources.multibit_model(run_id)
    except (MSQError, OSError, RuntimeError, KeyError) as exc:   # no checkpoint yet, or one that does not load
        st.info(f"The what-if mixer needs this run's model: {exc}", icon=":material/hourglass_top:")
        return
    trained, unseen = loaded.run.widths["trained"], loaded.run.widths["unseen"]
    layers = loaded.layers
    options = mx.width_options(trained, unseen)
    base = {l["fqn"]: int(l["bits"]) for l in layers}
    for l in layers:
        st.session_state.setdefault(_key(run_id, l["fqn"]), int(l["bits"]))
    fixed = [l for l in layers if l.get("fixed")]
    if run.get("status") in ("running", "queued"):
        st.caption("This run is still training: the mixer uses its latest checkpoint and reloads when the next "
                   "epoch's checkpoint is written.")

    # -- quick setters ----------------------------------------------------------------------------
    c1, c2, c3 = st.columns([3, 4, 2], vertical_alignment="bottom")
    c1.segmented_control("Set every searched layer to", options, key=f"mixuniform:{run_id}",
                         format_func=lambda b: f"{b}", on_change=_set_uniform, args=(run_id, layers),
                         help="A uniform width: trained widths " + ", ".join(map(str, trained)) +
                              "; unseen " + (", ".join(map(str, unseen)) or "none"))
    sources = mx.allocation_sources(resources.store().list_runs(), run.get("model"), run.get("dataset"))
    with c2:
        if sources:
            s1, s2 = st.columns([4, 1], vertical_alignment="bottom")
            s1.selectbox("Apply the final allocation of run", [r["id"] for r in sources], key=f"mixsrc:{run_id}",
                         format_func={r["id"]: ui.run_label(r) for r in sources}.get,
                         help=f"Completed {mx.source_methods_text()} runs of {run.get('model')} on "
                              f"{run.get('dataset')}: their final per-layer bits, matched by layer name")
            s2.button("Apply", key=f"mixapply:{run_id}", on_click=_apply_run, args=(run_id, layers, options),
                      width="stretch")
        else:
            st.caption(f"No completed {mx.source_methods_text()} run of {run.get('model')} on "
                       f"{run.get('dataset')} yet: their final allocations could be applied here.")
    with c3:
        if fixed:
            st.toggle("Unlock fixed layers", key=f"mixunlock:{run_id}", persist_state="session",
                      on_change=_relock, args=(run_id, fixed),
                      help=f"{', '.join(l['fqn'] for l in fixed)} stay at {fixed[0]['bits']} bits in this model "
                           "(quant.keep_first_last / quant.fixed): they were never trained at other widths.")
    unlock = bool(st.session_state.get(f"mixunlock:{run_id}"))

    # -- per-layer widths | result ----------------------------------------------------------------
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.markdown("**Per-layer weight widths** (bits)")
        box = st.container(height=520 if len(layers) > 10 else "content", border=False)
        for l in layers:
            locked = bool(l.get("fixed")) and not unlock
            choices = sorted(set(options) | {int(l["bits"])})
            box.select_slider(f"{l['fqn']} · {l['params']:,} weights" + (" · fixed" if l.get("fixed") else ""),
                              choices, key=_key(run_id, l["fqn"]), disabled=locked, persist_state="session",
                              on_change=_forget_notes, args=(run_id,),
                              help=f"{l['fqn']}: fixed at {l['bits']} bits in this model" if locked else None)
    mix = {l["fqn"]: int(st.session_state[_key(run_id, l["fqn"])]) for l in layers}
    samples_key = f"mixsamples:{run_id}"
    st.session_state.setdefault(samples_key, mx.default_samples(loaded.n_val, loaded.full_seconds))
    samples = int(st.session_state[samples_key])
    try:
        result = loaded.evaluate(mix, samples)
        if loaded.has_uniform(samples):
            uniform = loaded.uniform(samples)   # the reference points, on the same images
        else:
            with st.spinner(f"Evaluating every uniform width on {samples:,} images (once), for reference…"):
                uniform = loaded.uniform(samples)
    except (MSQError, RuntimeError, ValueError) as exc:
        right.error(f"This mix could not be evaluated: {exc}", icon=":material/error:")
        return
    widest = uniform.get(max(trained), {})
    label = st.session_state.pop(f"mixlabel:{run_id}", None) or mx.describe(mix, layers, base)
    points_key = f"mixpts:{run_id}:{samples}"   # accuracies on different image counts do not mix
    points = mx.add_point(st.session_state.get(points_key, []),
                          {"mix": mix, "label": label, "acc": result["acc"], "avg_bits": result["avg_bits"],
                           "compression": result["compression"]})
    st.session_state[points_key] = points
    subset = "" if samples >= loaded.n_val else f"the first {samples:,} of "
    with right:
        m = st.columns(4)
        m[0].metric("Accuracy", f"{result['acc']:.2f}%",
                    delta=f"{result['acc'] - widest['acc']:+.2f} pts vs {max(trained)} bits" if widest else None,
                    delta_color="off" if widest and abs(result["acc"] - widest["acc"]) < 0.005 else "normal",
                    delta_arrow="off" if widest and abs(result["acc"] - widest["acc"]) < 0.005 else "auto",
                    help=f"top-1 on {subset or 'all '}{loaded.n_val:,} validation images of {run.get('dataset')}")
        m[1].metric("Average bits", f"{result['avg_bits']:.2f}", help="bits per quantized weight")
        m[2].metric("Compression", f"{result['compression']:.2f}×", help="32-bit float weights / quantized weights")
        m[3].metric("Model size", _kib(result["size_bytes"]),
                    help="quantized weights + float parameters + the bias-correction pair per output channel")
        ui.chart_panel([("tradeoff", mx.tradeoff_figure(uniform, points, trained, unseen), True)],
                       key=f"mixpanel:{run_id}")
        for note in st.session_state.get(f"mixnotes:{run_id}") or []:
            st.caption(note)
        b1, b2 = st.columns([1, 2], vertical_alignment="bottom")
        b1.button("Clear the points", key=f"mixclear:{run_id}", on_click=_clear, args=(points_key,),
                  width="stretch")
        b2.select_slider("Validation images per evaluation", mx.sample_options(loaded.n_val), key=samples_key,
                         persist_state="session",
                         format_func=lambda n: f"{n:,}" + (" (all)" if n == loaded.n_val else ""),
                         help=f"One pass over all {loaded.n_val:,} takes {1000 * loaded.full_seconds:.0f} ms here; "
                              "fewer images answer faster, all give the exact accuracy.")
        st.caption(f"Evaluated in **{1000 * result['seconds']:.0f} ms** on {subset}{loaded.n_val:,} validation "
                   f"images (CPU) · whole update {1000 * (time.perf_counter() - started):.0f} ms · model loaded in "
                   f"{loaded.load_seconds:.2f} s (once per checkpoint)")


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.2f} MiB"
