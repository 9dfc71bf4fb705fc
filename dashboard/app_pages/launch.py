"""Launch: a form over the config dataclasses -> one run, or a λ sweep of queued runs."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import resources
from dashboard.app_pages import ui
from dashboard.components import launch_form as lf
from msq.config import WEIGHT_GRIDS
from msq.methods import list_methods
from msq.methods.multibit.config import CORESET_SCORES, CORESET_SELECTIONS
from msq.errors import MSQError
from msq.runs import runner

K = "f:"   # widget keys are "f:" + the config field's dotted key (or a form-only name)
KEEP = {"persist_state": "session"}   # the form keeps its values while you look at other pages
FIELDS = ("train.device", "train.nproc", "uniform_bits", "bsq.decay", "bsq.requant_every", "reg.lam", "prune.threshold",
          "prune.every", "prune.min_bits", "hessian.enabled", "hessian.probes", "train.pretrain_epochs",
          "train.search_epochs", "train.finetune_epochs", "quant.init_bits", "quant.act_bits", "quant.keep_first_last",
          "train.seed", "train.batch_size", "train.lr", "train.log_every", "train.threads", "multibit.act_bits",
          "multibit.bias_correction", "multibit.shared_bn", "multibit.coreset_fraction", "multibit.reselect_every",
          "multibit.selection", "multibit.score", "quant.grid")   # config fields whose widget key is K + the dotted name
SCHEDULE = {   # what the three epoch counts mean for each method
    "msq": "Epochs per phase: pretrain (float) → search (λ on, pruning) → finetune (λ off, bits frozen).",
    "bsq": "Epochs per phase: pretrain (float) → search (bit planes with the group Lasso, re-quantized every few "
           "epochs) → finetune (bits frozen).",
    "uniform": "Pretrain (float), then QAT at the fixed width on MSQ's schedule: the search epochs at the search "
               "learning rate, then the finetune epochs.",
    "hawq": "Pretrain (float), then widths chosen once from the float model's Hessian for the budget, then QAT at "
            "those widths on MSQ's schedule (search epochs, then finetune epochs).",
    "multibit": "Pretrain (float), then multi-bit training for search + finetune epochs: every step trains every "
                "width (each on its own coreset when the fraction is below 1).",
}


def _get(name, fallback=None):
    return st.session_state.get(K + name, fallback)


def collect() -> tuple[dict, list[float], dict]:
    """(dotted config values, the λ of each run to launch, errors found before the dataclasses)."""
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
    method = _get("method") or "msq"
    values["method"] = method
    for key in FIELDS:
        if K + key in st.session_state:
            values[key] = _get(key)
    if values.get("multibit.act_bits") == "none":
        values["multibit.act_bits"] = None
    wants_budget = _get("use_target") or method == "hawq"      # HAWQ-style allocation always needs one
    values["prune.target_avg_bits"] = _get("prune.target_avg_bits") if wants_budget else None
    if method == "multibit":
        for key, allow_empty in (("multibit.bits", False), ("multibit.eval_bits", True)):
            if K + key in st.session_state:
                widths, problem = lf.parse_widths(key, _get(key), allow_empty)
                if problem:
                    errors[key] = problem
                else:
                    values[key] = widths
    values["name"] = (_get("name") or "").strip()
    lams = [values.get("reg.lam", lf.default("reg.lam"))]
    if method == "msq" and _get("sweep"):
        lo, hi = _get("sweep_range", (10.0, 100.0))
        try:
            lams = lf.sweep_values(lo, hi, int(_get("sweep_count", 4) or 1))
        except MSQError as exc:
            errors["sweep"] = str(exc)
    # workers start in this process's folder; a custom model must be a file spec or a torchvision name
    errors.update(lf.check_paths(values, Path.cwd(), models=models if choice == lf.CUSTOM_MODEL else None))
    errors.update(lf.check_devices(values, resources.gpus()))
    return values, lams, errors


def launch() -> None:
    """The Launch button: validate everything; launch nothing unless every field is valid."""
    st.session_state.pop("launched", None)
    values, lams, errors = collect()
    data = lf.build_config({k: v for k, v in values.items() if k not in errors})
    for lam in lams:
        errors.update(lf.validate(lf.build_config({**{k: v for k, v in values.items() if k not in errors},
                                                   "reg.lam": lam})))
    st.session_state["launch_errors"] = errors
    if errors:
        return
    base = values["name"] or f"{data['model']} on {data['data']['name']}"
    launched = []
    try:
        for lam, name in zip(lams, lf.run_names(base, lams)):
            config = lf.build_config({**values, "reg.lam": lam, "name": name})
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
    """BSQ: the group-Lasso strength on its own log grid, and how often bit planes are re-quantized."""
    c1, c2 = st.columns([3, 1])
    c1.select_slider(lf.label("bsq.decay"), options=lf.DECAY_GRID,
                     value=lf.default("bsq.decay"), format_func=lf.format_lam, key=K + "bsq.decay",
                     help=lf.HELP["bsq.decay"], **KEEP)
    c2.number_input(lf.label("bsq.requant_every"), value=lf.default("bsq.requant_every"), step=1,
                    key=K + "bsq.requant_every", help=lf.HELP["bsq.requant_every"], **KEEP)
    st.caption("Higher α pushes whole bit planes to zero faster; a re-quantization then drops them (fewer bits).")
    for key in ("bsq.decay", "bsq.requant_every"):
        error(key)


def multibit_options() -> None:
    """Multi-bit (EMQ): widths, activation widths, bias correction / shared BatchNorm, bit-wise coresets."""
    c1, c2, c3 = st.columns(3)
    c1.text_input(lf.label("multibit.bits"), value="2,3,4,8", key=K + "multibit.bits", help=lf.HELP["multibit.bits"],
                  **KEEP)
    c2.text_input(lf.label("multibit.eval_bits"), value="5,6,7", key=K + "multibit.eval_bits",
                  help=lf.HELP["multibit.eval_bits"], **KEEP)
    c3.selectbox(lf.label("multibit.act_bits"), lf.ACT_BITS_CHOICES, format_func=lf.format_act_bits,
                 key=K + "multibit.act_bits",
                 help=lf.HELP["multibit.act_bits"], **KEEP)
    for key in ("multibit.bits", "multibit.eval_bits", "multibit.act_bits"):
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


if (goto := st.session_state.pop("goto_run", None)) is not None:
    ui.open_run(goto)

st.title("Launch a run")
st.caption("Pick a model and data, set λ, press Launch. Runs train in background processes; this page "
           "never trains. A sweep queues one run per λ (MSQ_MAX_CPU_RUNS / MSQ_MAX_GPU_RUNS run at once).")
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
        method = st.segmented_control(lf.label("method"), list_methods(), default="msq", required=True, key=K + "method",
                                      label_visibility="collapsed", **KEEP)
        st.caption(lf.METHOD_HELP.get(method or "msq", ""))
        error("method")
        if method == "uniform":
            st.number_input(lf.label("uniform_bits"), value=lf.default("uniform_bits"), step=1,
                            key=K + "uniform_bits", help=lf.HELP["uniform_bits"], **KEEP)
            error("uniform_bits")
        elif method == "bsq":
            bsq_options()
        elif method == "multibit":
            multibit_options()
        elif method == "hawq":
            st.number_input(lf.label("prune.target_avg_bits"), value=2.0, step=0.25,
                            key=K + "prune.target_avg_bits", help=lf.HELP["prune.target_avg_bits"], **KEEP)
            error("prune.target_avg_bits")

    if (method or "msq") == "msq":
        with section("Bit-level sparsity search"):
            st.select_slider(lf.label("reg.lam"), options=lf.lam_options(lf.default("reg.lam")),
                             value=lf.default("reg.lam"), format_func=lf.format_lam, key=K + "reg.lam",
                             help=lf.HELP["reg.lam"], disabled=bool(_get("sweep")), **KEEP)
            if _get("sweep"):
                st.caption("The λ sweep (under Launch) sets each run's λ: this slider is not used.")
            st.caption("λ scales the L1 penalty on each layer's least-significant bits: higher λ → more LSBs "
                       "driven to zero → more bits pruned (smaller model), usually at some accuracy cost.")
            error("reg.lam")
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
            c1, c2 = st.columns(2)
            hessian = c1.toggle(lf.label("hessian.enabled"), value=lf.default("hessian.enabled"),
                                key=K + "hessian.enabled", help=lf.HELP["hessian.enabled"], **KEEP)
            c2.number_input(lf.label("hessian.probes"), value=lf.default("hessian.probes"), step=1,
                            disabled=not hessian, key=K + "hessian.probes", help=lf.HELP["hessian.probes"], **KEEP)
            error("hessian.probes")
            c1, c2 = st.columns(2)
            target = c1.toggle("Land on a bit budget (λ steered)", value=False, key=K + "use_target", **KEEP)
            c2.number_input(lf.label("prune.target_avg_bits"), value=4.0, step=0.25, disabled=not target,
                            key=K + "prune.target_avg_bits", help=lf.HELP["prune.target_avg_bits"], **KEEP)
            error("prune.target_avg_bits")

    with section("Schedule and precision", SCHEDULE.get(method or "msq", "")):
        c1, c2, c3 = st.columns(3)
        for col, key in ((c1, "train.pretrain_epochs"), (c2, "train.search_epochs"), (c3, "train.finetune_epochs")):
            col.number_input(lf.label(key), value=lf.default(key), step=1, key=K + key, help=lf.HELP[key], **KEEP)
            with col:
                error(key)
        c1, c2, c3 = st.columns(3)
        if method in ("uniform", "multibit"):   # their widths are set in the Method section
            c1.caption("**Initial bits** — set by the method above")
        else:
            c1.slider(lf.label("quant.init_bits"), 2, 8, value=lf.default("quant.init_bits"), key=K + "quant.init_bits",
                      help=lf.HELP["quant.init_bits"], **KEEP)
        if method == "multibit":
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
    values, lams, _ = collect()
    with section("Launch"):
        st.text_input(lf.label("name"), key=K + "name", placeholder=f"{values['model']} on {values['data.name']}",
                      **KEEP)
        error("name")
        if (method or "msq") == "msq":
            sweep = st.toggle(f"{lf.label('sweep')}: several runs, one per λ", key=K + "sweep", **KEEP)
            if sweep:
                st.select_slider("λ range", options=lf.LAM_GRID, value=(10.0, 100.0), format_func=lf.format_lam,
                                 key=K + "sweep_range", **KEEP)
                st.number_input("Runs in the sweep", value=4, step=1, key=K + "sweep_count", **KEEP)
                error("sweep")
        plural = f"{len(lams)} runs" if len(lams) > 1 else "1 run"
        nproc = values.get("train.nproc") or 1
        where = labels.get(values.get("train.device", "cpu"), values.get("train.device", "cpu")).split(" (")[0]
        st.markdown(f"Queues **{plural}** of **{values['method']}** on **{values['model']}** / "
                    f"**{values['data.name']}** ({where}" + (f", {nproc} processes each" if isinstance(nproc, int)
                                                             and nproc > 1 else "") + ")"
                    + (f" at λ = {', '.join(f'{v:g}' for v in lams)}" if values["method"] == "msq" else "") + ".")
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
            st.json(lf.build_config({**values, "reg.lam": lams[0]}), expanded=1)
        except MSQError as exc:
            st.caption(str(exc))
