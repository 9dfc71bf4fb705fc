"""Launch: a form over the config dataclasses -> one run, or a sweep of queued runs over the method's
strength (its registered knob: MSQ's λ, BSQ's decay α). What the form offers for a method comes from its
``MethodSpec`` (``msq.methods``): its help, widths, budget, knob, schedule and its own config section."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components import launch_form as lf
from dashboard.components.methods import chosen_spec, own_key, prunes_lsbs
from msq.config import WEIGHT_GRIDS
from msq.errors import MSQError
from msq.methods import BUDGET_NONE, BUDGET_OPTIONAL, BUDGET_REQUIRED, LiveKnob, MethodSpec, list_methods
from msq.methods.bsq.config import BSQConfig
from msq.methods.multibit.config import CORESET_SCORES, CORESET_SELECTIONS, MultiBitConfig
from msq.runs import runner

K = "f:"   # widget keys are "f:" + the config field's dotted key (or a form-only name)
KEEP = {"persist_state": "session"}   # the form keeps its values while you look at other pages
FIELDS = ("train.device", "train.nproc", "uniform_bits", "bsq.decay", "bsq.requant_every", "reg.lam", "prune.threshold",
          "prune.every", "prune.min_bits", "hessian.enabled", "hessian.probes", "train.pretrain_epochs",
          "train.search_epochs", "train.finetune_epochs", "quant.init_bits", "quant.act_bits", "quant.keep_first_last",
          "train.seed", "train.batch_size", "train.lr", "train.log_every", "train.threads", "multibit.act_bits",
          "multibit.bias_correction", "multibit.shared_bn", "multibit.coreset_fraction", "multibit.reselect_every",
          "multibit.selection", "multibit.score", "quant.grid")   # config fields whose widget key is K + the dotted name
BUDGET_START = {BUDGET_REQUIRED: 2.0, BUDGET_OPTIONAL: 4.0}   # the budget input's first value, by MethodSpec.budget


def _get(name, fallback=None):
    return st.session_state.get(K + name, fallback)


def collect() -> tuple[dict, list[float], dict]:
    """(dotted config values, the method's strength of each run to launch -- [] for a method without a
    knob --, errors found before the dataclasses)."""
    errors, values = {}, {}
    models = resources.catalog()["models"]
    choice = _get("model_choice", next(iter(models)))
    values["model"] = (_get("model_path") or "").strip() if choice == lf.CUSTOM_MODEL else choice
    if choice == lf.CUSTOM_MODEL:
        values["checkpoint"] = (_get("checkpoint") or "").strip() or None
    dataset = _get("dataset_choice", "digits")
    values["data.name"] = f"imagefolder:{(_get('imagefolder') or '').strip()}" if dataset == lf.IMAGEFOLDER else dataset
    for key in ("data.root", "data.download"):
        if K + key in st.session_state:
            values[key] = _get(key)
    spec = chosen_spec(_get("method"))
    values["method"] = spec.name
    for key in FIELDS:
        if K + key in st.session_state:
            values[key] = _get(key)
    if values.get("multibit.act_bits") == "none":
        values["multibit.act_bits"] = None
    wants_budget = spec.budget == BUDGET_REQUIRED or (spec.budget == BUDGET_OPTIONAL and _get("use_target"))
    values["prune.target_avg_bits"] = _get("prune.target_avg_bits") if wants_budget else None
    for key in width_lists(spec):
        if K + key in st.session_state:
            widths, problem = lf.parse_widths(key, _get(key), allow_empty=key != spec.widths_key)
            if problem:
                errors[key] = problem
            else:
                values[key] = widths
    values["name"] = (_get("name") or "").strip()
    strengths = strengths_to_launch(spec.knob, values, errors)
    # workers start in this process's folder; a custom model must be a file spec or a torchvision name
    errors.update(lf.check_paths(values, Path.cwd(), models=models if choice == lf.CUSTOM_MODEL else None))
    errors.update(lf.check_devices(values, resources.gpus()))
    return values, strengths, errors


def width_lists(spec: MethodSpec) -> list[str]:
    """The method's fields the form writes as comma-separated widths (list-valued): the widths it trains
    (``widths_key``), and list fields of its own section (multi-bit's widths evaluated, never trained)."""
    own = [f"{spec.config_key}.{name}" for name in getattr(spec.config_class, "__dataclass_fields__", {})]
    keys = ([spec.widths_key] if spec.widths_key else []) + own
    return [key for key in dict.fromkeys(keys) if isinstance(_default_or_none(key), list)]


def _default_or_none(key: str):
    try:
        return lf.default(key)
    except (KeyError, TypeError):   # a key of a method registered at run time that RunConfig lacks
        return None


def strengths_to_launch(knob: Optional[LiveKnob], values: dict, errors: dict) -> list[float]:
    """The knob's value of each run: the form's one, or a sweep's (a sweep's error goes into ``errors``)."""
    if knob is None:
        return []
    strengths = [values.get(knob.key, lf.default(knob.key))]
    if _get("sweep"):
        lo, hi = sweep_range(knob)
        try:
            strengths = lf.sweep_values(lo, hi, int(_get("sweep_count", 4) or 1))
        except MSQError as exc:
            errors["sweep"] = str(exc)
    return strengths


def sweep_range(knob: LiveKnob) -> tuple[float, float]:
    """The sweep's range as set, or the default one when it is not on this knob's grid (another method's)."""
    stored = _get("sweep_range")
    if isinstance(stored, (list, tuple)) and len(stored) == 2 and all(v in knob.grid for v in stored):
        return tuple(stored)
    return lf.sweep_default(knob)


def per_run(knob: Optional[LiveKnob], strengths: list[float]) -> list[dict]:
    """Each run's own values: its strength under the knob's key ([{}] for a method without a knob: one run)."""
    return [{knob.key: value} for value in strengths] if knob is not None else [{}]


def launch() -> None:
    """The Launch button: validate everything; launch nothing unless every field is valid."""
    st.session_state.pop("launched", None)
    values, strengths, errors = collect()
    knob = chosen_spec(values["method"]).knob
    kept = {k: v for k, v in values.items() if k not in errors}
    data = lf.build_config(kept)
    for own in per_run(knob, strengths):
        errors.update(lf.validate(lf.build_config({**kept, **own})))
    st.session_state["launch_errors"] = errors
    if errors:
        return
    base = values["name"] or f"{data['model']} on {data['data']['name']}"
    names = lf.run_names(base, strengths or [None], knob.symbol if knob else "")
    launched = []
    try:
        for own, name in zip(per_run(knob, strengths), names):
            config = lf.build_config({**values, **own, "name": name})
            launched.append(runner.launch(resources.store(), config, name=name))
    except MSQError as exc:
        st.session_state["launch_errors"] = {"form": str(exc)}
    st.session_state["launched"] = launched
    if len(launched) == 1:
        st.session_state["goto_run"] = launched[0]


def error(key: str) -> None:
    """The field's error, led by its label as the form shows it, with its config key in small print."""
    message = st.session_state.get("launch_errors", {}).get(key)
    if message:
        st.error(lf.error_markdown(key, message), icon=":material/error:")


def section(title: str, caption: str = ""):
    box = st.container(border=True)
    box.markdown(f"**{title}**")
    if caption:
        box.caption(caption)
    return box


def bsq_options() -> None:
    """BSQ's own section: how often bit planes are re-quantized (its decay α is its knob, above)."""
    c1, _ = st.columns([1, 3])
    c1.number_input(lf.label("bsq.requant_every"), value=lf.default("bsq.requant_every"), step=1,
                    key=K + "bsq.requant_every", help=lf.HELP["bsq.requant_every"], **KEEP)
    error("bsq.requant_every")


def multibit_options() -> None:
    """Multi-bit (EMQ)'s own section: widths evaluated, activation widths, bias correction / shared BatchNorm,
    bit-wise coresets (the widths it trains are its widths, above)."""
    c1, c2 = st.columns(2)
    c1.text_input(lf.label("multibit.eval_bits"), value=",".join(map(str, lf.default("multibit.eval_bits"))),
                  key=K + "multibit.eval_bits", help=lf.HELP["multibit.eval_bits"], **KEEP)
    c2.selectbox(lf.label("multibit.act_bits"), lf.ACT_BITS_CHOICES, format_func=lf.format_act_bits,
                 key=K + "multibit.act_bits",
                 help=lf.HELP["multibit.act_bits"], **KEEP)
    for key in ("multibit.eval_bits", "multibit.act_bits"):
        error(key)
    c1, c2 = st.columns(2)
    c1.toggle(lf.label("multibit.bias_correction"), value=lf.default("multibit.bias_correction"),
              key=K + "multibit.bias_correction",
              help=lf.HELP["multibit.bias_correction"], **KEEP)
    c2.toggle(lf.label("multibit.shared_bn"), value=lf.default("multibit.shared_bn"), key=K + "multibit.shared_bn",
              help=lf.HELP["multibit.shared_bn"], **KEEP)
    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    fraction = c1.slider(lf.label("multibit.coreset_fraction"), 0.05, 1.0,
                         value=float(lf.default("multibit.coreset_fraction")),
                         step=0.05, key=K + "multibit.coreset_fraction", help=lf.HELP["multibit.coreset_fraction"],
                         **KEEP)
    full = fraction >= 1.0
    c2.number_input(lf.label("multibit.reselect_every"), value=lf.default("multibit.reselect_every"), step=1,
                    disabled=full,
                    key=K + "multibit.reselect_every", help=lf.HELP["multibit.reselect_every"], **KEEP)
    c3.selectbox(lf.label("multibit.selection"), list(CORESET_SELECTIONS), index=list(CORESET_SELECTIONS).index(
        lf.default("multibit.selection")), disabled=full, key=K + "multibit.selection",
        help=lf.HELP["multibit.selection"], **KEEP)
    c4.selectbox(lf.label("multibit.score"), list(CORESET_SCORES),
                 index=list(CORESET_SCORES).index(lf.default("multibit.score")),
                 disabled=full, key=K + "multibit.score", help=lf.HELP["multibit.score"], **KEEP)
    st.caption("Full data: every width sees every sample each epoch." if full else
               f"Each width trains on its own {fraction:.0%} of the training set, the samples its own model finds "
               "hardest (EL2N), re-selected as training goes: about "
               f"{1 / fraction:.1f}× less training per epoch, plus the scoring passes.")
    for key in ("multibit.coreset_fraction", "multibit.reselect_every", "multibit.selection", "multibit.score",
                "multibit.bias_correction", "multibit.shared_bn"):
        error(key)


OWN_OPTIONS = {BSQConfig: bsq_options, MultiBitConfig: multibit_options}   # a method's own section, by its class


def widths_input(key: str) -> None:
    """The widths the method trains at: one number (uniform_bits) or a list written 2,3,4,8 (multibit.bits)."""
    value = _default_or_none(key)
    if isinstance(value, list):
        st.text_input(lf.label(key), value=",".join(map(str, value)), key=K + key, help=lf.HELP.get(key), **KEEP)
    else:
        st.number_input(lf.label(key), value=value, step=1, key=K + key, help=lf.HELP.get(key), **KEEP)
    error(key)


def knob_input(spec: MethodSpec) -> None:
    """The method's strength on its log grid (a sweep, under Launch, sets it run by run instead)."""
    knob, sweeping = spec.knob, bool(_get("sweep"))
    st.select_slider(lf.label(knob.key), options=lf.strength_options(spec.name, lf.default(knob.key)),
                     value=lf.default(knob.key), format_func=lf.format_lam, key=K + knob.key,
                     help=lf.HELP.get(knob.key), disabled=sweeping, **KEEP)
    if sweeping:
        st.caption(f"The {knob.symbol} sweep (under Launch) sets each run's {knob.symbol}: this slider is not used.")
    if knob.effect:
        st.caption(knob.effect)
    error(knob.key)


def budget_input(spec: MethodSpec) -> None:
    """The average-width budget: always set for a method that needs one, behind a toggle where it is optional."""
    key = "prune.target_avg_bits"
    if spec.budget == BUDGET_REQUIRED:
        st.number_input(lf.label(key), value=BUDGET_START[spec.budget], step=0.25, key=K + key, help=lf.HELP[key],
                        **KEEP)
    else:
        steered = f" ({spec.knob.symbol} steered)" if spec.knob else ""
        c1, c2 = st.columns(2)
        target = c1.toggle(f"Land on a bit budget{steered}", value=False, key=K + "use_target", **KEEP)
        c2.number_input(lf.label(key), value=BUDGET_START[spec.budget], step=0.25, disabled=not target,
                        key=K + key, help=lf.HELP[key], **KEEP)
    error(key)


def method_options(spec: MethodSpec) -> None:
    """What the chosen method is set by: its widths, its strength, its budget, its own config section."""
    if spec.widths_key:
        widths_input(spec.widths_key)
    if spec.knob is not None:
        knob_input(spec)
    if spec.budget != BUDGET_NONE:
        budget_input(spec)
    own = OWN_OPTIONS.get(spec.config_class)
    if own is not None:
        own()


def pruning_options(spec: MethodSpec) -> None:
    """LSB pruning (a method whose search drops LSB planes by their density): when a layer loses a bit, and
    for a method that estimates it, Hessian-aware pruning."""
    c1, c2, c3 = st.columns(3)
    c1.number_input(lf.label("prune.threshold"), value=lf.default("prune.threshold"), step=0.01, format="%.3f",
                    key=K + "prune.threshold", help=lf.HELP["prune.threshold"], **KEEP)
    c2.number_input(lf.label("prune.every"), value=lf.default("prune.every"), step=1, key=K + "prune.every",
                    help=lf.HELP["prune.every"], **KEEP)
    c3.number_input(lf.label("prune.min_bits"), value=lf.default("prune.min_bits"), step=1,
                    key=K + "prune.min_bits",
                    help=lf.HELP["prune.min_bits"], **KEEP)
    st.caption("α: a layer drops its LSB once the fraction of weights with an odd code (its LSB density) "
               "is ≤ α — the LSB plane is then (almost) empty and removing it changes (almost) nothing.")
    for key in ("prune.threshold", "prune.every", "prune.min_bits"):
        error(key)
    if spec.estimates_hessian:
        c1, c2 = st.columns(2)
        hessian = c1.toggle(lf.label("hessian.enabled"), value=lf.default("hessian.enabled"),
                            key=K + "hessian.enabled", help=lf.HELP["hessian.enabled"], **KEEP)
        c2.number_input(lf.label("hessian.probes"), value=lf.default("hessian.probes"), step=1,
                        disabled=not hessian, key=K + "hessian.probes", help=lf.HELP["hessian.probes"], **KEEP)
        error("hessian.probes")


if (goto := st.session_state.pop("goto_run", None)) is not None:
    ui.open_run(goto)

st.title("Launch a run")
st.caption("Pick a model, data and a method, set its strength, press Launch. Runs train in background processes; "
           "this page never trains. A sweep queues one run per value of the strength (MSQ_MAX_CPU_RUNS / "
           "MSQ_MAX_GPU_RUNS run at once).")
try:
    cat = resources.catalog()
except Exception as exc:   # a broken torch install: say so instead of a traceback
    st.error(f"The model and dataset catalog could not be loaded ({type(exc).__name__}: {exc}). Check that torch "
             "imports in this environment: `python -c 'import torch'`.", icon=":material/error:")
    st.stop()
left, right = st.columns([3, 2], gap="large")

with left:
    with section("Model and data"):
        c1, c2 = st.columns(2)
        models = list(cat["models"]) + [lf.CUSTOM_MODEL]
        choice = c1.selectbox("Model", models, index=models.index("lenet5") if "lenet5" in models else 0,
                              key=K + "model_choice", **KEEP)
        if choice == lf.CUSTOM_MODEL:
            c1.text_input(lf.label("model"), key=K + "model_path", placeholder="my_models/net.py:make_model",
                          help=lf.HELP["model"], **KEEP)
            c1.text_input(lf.label("checkpoint"), key=K + "checkpoint", placeholder="float.pt", **KEEP)
        else:
            c1.caption(cat["models"].get(choice, ""))
        with c1:
            error("model")
            error("checkpoint")
        datasets = list(cat["datasets"]) + [lf.IMAGEFOLDER]
        dataset = c2.selectbox(lf.label("data.name"), datasets,
                               index=datasets.index("mnist5k") if "mnist5k" in datasets else 0,
                               key=K + "dataset_choice", **KEEP)
        info = cat["datasets"].get(dataset) or {}
        if dataset == lf.IMAGEFOLDER:
            c2.text_input("Image folder", key=K + "imagefolder", placeholder="data/my_images", **KEEP)
        else:
            c2.caption(info.get("description", ""))
            if not info.get("bundled", True):
                c2.text_input(lf.label("data.root"), value=lf.default("data.root"), key=K + "data.root", **KEEP)
                c2.toggle(lf.label("data.download"), value=False, key=K + "data.download",
                          help=lf.HELP["data.download"], **KEEP)
        with c2:
            error("data.name")
            error("data.root")
        devices = resources.devices()
        labels = dict(devices)
        c1, c2 = st.columns([3, 1])
        c1.selectbox(lf.label("train.device"), [d for d, _ in devices],
                     index=1 if len(devices) > 1 else 0,   # any free GPU, if any
                     format_func=labels.get, key=K + "train.device", help=lf.HELP["train.device"], **KEEP)
        c2.number_input(lf.label("train.nproc"), value=lf.default("train.nproc"), step=1, key=K + "train.nproc",
                        help=lf.HELP["train.nproc"], **KEEP)
        error("train.device")
        error("train.nproc")

    with section("Method"):
        method = st.segmented_control(lf.label("method"), list_methods(), default=chosen_spec(None).name,
                                      required=True, key=K + "method", label_visibility="collapsed", **KEEP)
        spec = chosen_spec(method)
        st.caption(spec.help)
        error("method")
        method_options(spec)

    if prunes_lsbs(spec):
        with section("Bit-level sparsity search"):
            pruning_options(spec)

    with section("Schedule and precision", spec.schedule_help):
        c1, c2, c3 = st.columns(3)
        for col, key in ((c1, "train.pretrain_epochs"), (c2, "train.search_epochs"), (c3, "train.finetune_epochs")):
            col.number_input(lf.label(key), value=lf.default(key), step=1, key=K + key, help=lf.HELP[key], **KEEP)
            with col:
                error(key)
        c1, c2, c3 = st.columns(3)
        if spec.widths_key:   # the method's own widths, set in the Method section
            c1.caption("**Initial bits** — set by the method above")
        else:
            c1.slider(lf.label("quant.init_bits"), 2, 8, value=lf.default("quant.init_bits"), key=K + "quant.init_bits",
                      help=lf.HELP["quant.init_bits"], **KEEP)
        if own_key(spec, "act_bits"):   # the method's own section has its activation widths
            c2.caption("**Activation bits** — set by the method above")
        else:
            c2.selectbox(lf.label("quant.act_bits"), [None, 2, 3, 4, 5, 6, 7, 8],
                         format_func=lambda b: "float (off)" if b is None else f"{b} bits", key=K + "quant.act_bits",
                         help=lf.HELP["quant.act_bits"], **KEEP)
        c3.number_input(lf.label("train.seed"), value=lf.default("train.seed"), step=1, key=K + "train.seed",
                        help=lf.HELP["train.seed"], **KEEP)
        for key in ("quant.init_bits", "quant.act_bits", "train.seed"):
            error(key)
        c1, c2 = st.columns(2)
        c1.toggle(lf.label("quant.keep_first_last"), value=lf.default("quant.keep_first_last"),
                  key=K + "quant.keep_first_last", help=lf.HELP["quant.keep_first_last"], **KEEP)
        c2.selectbox(lf.label("quant.grid"), list(WEIGHT_GRIDS),
                     index=list(WEIGHT_GRIDS).index(lf.default("quant.grid")), key=K + "quant.grid",
                     help=lf.HELP["quant.grid"], **KEEP)
        error("quant.grid")
        with st.expander("Advanced: optimizer and logging"):
            c1, c2, c3, c4 = st.columns(4)
            c1.number_input(lf.label("train.batch_size"), value=lf.default("train.batch_size"), step=1,
                            key=K + "train.batch_size", **KEEP)
            c2.number_input(lf.label("train.lr"), value=lf.default("train.lr"), format="%.4f", step=0.01,
                            key=K + "train.lr", **KEEP)
            c3.number_input(lf.label("train.log_every"), value=lf.default("train.log_every"), step=1,
                            key=K + "train.log_every", **KEEP)
            c4.number_input(lf.label("train.threads"), value=lf.default("train.threads"), step=1,
                            key=K + "train.threads", **KEEP)
            for key in ("train.batch_size", "train.lr", "train.log_every", "train.threads"):
                error(key)

with right:
    values, strengths, _ = collect()
    knob = spec.knob
    with section("Launch"):
        st.text_input(lf.label("name"), key=K + "name", placeholder=f"{values['model']} on {values['data.name']}",
                      **KEEP)
        error("name")
        if knob is not None:
            sweep = st.toggle(f"{knob.symbol} sweep: several runs, one per {knob.symbol}", key=K + "sweep", **KEEP)
            if sweep:
                st.select_slider(f"{knob.symbol} range", options=knob.grid, value=lf.sweep_default(knob),
                                 format_func=lf.format_lam, key=K + "sweep_range", **KEEP)
                st.number_input("Runs in the sweep", value=4, step=1, key=K + "sweep_count", **KEEP)
                error("sweep")
        plural = f"{len(strengths)} runs" if len(strengths) > 1 else "1 run"
        nproc = values.get("train.nproc") or 1
        where = labels.get(values.get("train.device", "cpu"), values.get("train.device", "cpu")).split(" (")[0]
        st.markdown(f"Queues **{plural}** of **{values['method']}** on **{values['model']}** / "
                    f"**{values['data.name']}** ({where}" + (f", {nproc} processes each" if isinstance(nproc, int)
                                                             and nproc > 1 else "") + ")"
                    + (f" at {knob.symbol} = {', '.join(f'{v:g}' for v in strengths)}" if knob else "") + ".")
        st.button(f"Launch {plural}", type="primary", icon=":material/rocket_launch:", on_click=launch,
                  key="launch_button", width="stretch")
        errors = st.session_state.get("launch_errors") or {}
        fields = [lf.label(k) for k in errors if k != "form"]   # by the labels shown above
        if fields:
            st.error(f"Nothing was launched: {len(fields)} field(s) need fixing — "
                     + "; ".join(f"**{name}**" for name in fields), icon=":material/error:")
        error("form")   # the runner refused to queue a run (the runs queued before it are listed below)
        launched = st.session_state.get("launched") or []
        if launched:
            st.success(f"Queued {len(launched)} runs.", icon=":material/check_circle:")
            for run_id in launched:
                st.page_link(ui.page("run"), label=f"Watch {run_id}", query_params={"run": run_id},
                             icon=":material/monitoring:")
    with st.expander("config.json that will be stored"):
        try:
            st.json(lf.build_config({**values, **per_run(knob, strengths)[0]}), expanded=1)
        except MSQError as exc:
            st.caption(str(exc))
