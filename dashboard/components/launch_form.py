"""The launch form's logic, built on the config dataclasses: defaults and types from ``RunConfig``,
every field error from the dataclasses' own validation (``ConfigError`` names the field), λ on a
log grid, λ sweeps. Pure (no streamlit): the page only draws widgets and calls these.

    >>> sweep_values(1.0, 100.0, 3)
    [1.0, 10.0, 100.0]
    >>> field_of("train.search_epochs = -1 is invalid: allowed an integer in [0, 100000].")
    'train.search_epochs'
    >>> labelled("train.search_epochs", "train.search_epochs = -1 is invalid: allowed an integer in [0, 100000].")
    'Search epochs = -1 is invalid: allowed an integer in [0, 100000].'
"""
from __future__ import annotations

import copy
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional

from msq.config import RunConfig, get_dotted, set_dotted
from msq.errors import ConfigError

DEFAULTS = RunConfig().to_dict()
CUSTOM_MODEL = "your own model file…"
IMAGEFOLDER = "imagefolder (your own images)…"

# λ on a log scale: the R10 preferred numbers (10 per decade), 0.1 … 10,000
R10 = (1, 1.25, 1.6, 2, 2.5, 3.2, 4, 5, 6.4, 8)
LAM_GRID = sorted({round(m * 10.0 ** e, 6) for e in range(-1, 4) for m in R10} | {10000.0})
# BSQ's decay α lives orders of magnitude lower (default 5e-3): 1e-5 … 1
DECAY_GRID = sorted({float(f"{m * 10.0 ** e:.3g}") for e in range(-5, 0) for m in R10} | {1.0})
ACT_BITS_CHOICES = ["same", "none", 2, 3, 4, 5, 6, 7, 8]   # multibit.act_bits ("none": a selectbox reads None as empty)

# The form's label of every field it shows, by config key (dotted; a run-level field by its bare name),
# plus the form-only controls that can have an error. The page draws each widget with this label and
# every error about a field is shown under it, so the message the user reads names what is on screen.
LABELS = {
    "model": "Model file and factory",
    "checkpoint": "Float checkpoint (optional)",
    "data.name": "Dataset",
    "data.root": "Local data root",
    "data.download": "Allow download",
    "train.device": "Device",
    "train.nproc": "Processes per run",
    "method": "Method",
    "uniform_bits": "Bits of every searched layer",
    "bsq.decay": "BSQ decay α — group-Lasso strength (log scale)",
    "bsq.requant_every": "Re-quantize (epochs)",
    "multibit.bits": "Widths to train",
    "multibit.eval_bits": "Unseen widths to evaluate",
    "multibit.act_bits": "Activation bits",
    "multibit.bias_correction": "Weight bias correction",
    "multibit.shared_bn": "One shared BatchNorm",
    "multibit.coreset_fraction": "Coreset fraction per width",
    "multibit.reselect_every": "Re-select (epochs)",
    "multibit.selection": "Selection",
    "multibit.score": "Score",
    "reg.lam": "λ — LSB-penalty strength (log scale)",
    "prune.threshold": "α — prune threshold",
    "prune.every": "Prune every (epochs)",
    "prune.min_bits": "Minimum bits",
    "prune.target_avg_bits": "Target average bits (sign included)",
    "hessian.enabled": "Hessian-aware pruning",
    "hessian.probes": "Hutchinson probes",
    "train.pretrain_epochs": "Pretrain epochs",
    "train.search_epochs": "Search epochs",
    "train.finetune_epochs": "Finetune epochs",
    "quant.init_bits": "Initial bits",
    "quant.act_bits": "Activation bits",
    "quant.keep_first_last": "Keep the first and last layers at fixed bits",
    "quant.grid": "Weight grid",
    "train.seed": "Seed",
    "train.batch_size": "Batch size",
    "train.lr": "Learning rate",
    "train.log_every": "Log every (steps)",
    "train.threads": "CPU threads (0 = auto)",
    "name": "Run name (optional)",
}
FORM_ONLY = {"sweep": "λ sweep"}   # errors of controls that are no config field (no key to show)

HELP = {
    "reg.lam": "λ scales the L1 penalty on the weights' least-significant bits. Larger λ pushes more LSBs to "
               "zero, so more layers lose bits (smaller model) at some cost in accuracy. Try a sweep to see the "
               "trade-off.",
    "prune.threshold": "α: a layer's LSB is dropped once its LSB density (the fraction of weights with an odd "
                       "integer code) is at or below α. Larger α prunes earlier and more aggressively.",
    "prune.every": "Search epochs between prune checks.",
    "prune.min_bits": "No searched layer is pruned below this width (sign included; 1 = binary on the symmetric grid).",
    "prune.target_avg_bits": "Budget: the search ends at this average width over the quantized weights (sign "
                             "included), within prune.landing_tolerance under it; λ is raised while the run falls "
                             "behind the path to it and set to 0 once it lands.",
    "quant.grid": "affine: 2^n levels from −s (1 bit = {−s, 0}); symmetric: sign-magnitude levels around 0 "
                  "(2 bits = ternary, 1 bit = binary). Both nest, so dropping zero LSBs changes no value.",
    "hessian.enabled": "Hessian-aware pruning (MSQ): layers whose average Hessian trace is below the mean are "
                       "insensitive and drop two LSBs at once; the others drop one.",
    "hessian.probes": "Rademacher probes per Hutchinson estimate: more probes, less noise, more time.",
    "quant.init_bits": "Every searched layer starts at this width; MSQ prunes down from it.",
    "quant.keep_first_last": "The input and output layers are usually the most sensitive: by default they stay at "
                             "fixed bits (8) and are not searched.",
    "quant.act_bits": "Quantize the inputs of quantized layers to this many bits (PACT clip); float = off.",
    "train.seed": "Seeds weights and data order; the train/val split has its own seed.",
    "uniform_bits": "Uniform QAT reference point: every searched layer trains at this width.",
    "bsq.decay": "α of BSQ: strength of the bit-plane group Lasso.",
    "bsq.requant_every": "Epochs between BSQ's re-quantizations: bit planes are rounded to {0, 1}, all-zero planes "
                         "dropped (the layer loses bits) and overflowing ones grown.",
    "multibit.bits": "The widths one any-precision network is trained for, e.g. 2, 3, 4, 8.",
    "multibit.eval_bits": "Widths that are evaluated every epoch but never trained (e.g. 5, 6, 7): how well the "
                          "shared weights generalise to unseen precisions. Empty = none.",
    "multibit.act_bits": "Activation width: the same as each weight width, float (none), or one fixed width.",
    "multibit.bias_correction": "EMQ's weight bias correction: each width's quantized weights get the float "
                                "weights' per-channel mean and std, so all widths share one BatchNorm.",
    "multibit.shared_bn": "One BatchNorm for every width (needs bias correction to work well); off = one BatchNorm "
                          "per width, the Any-Precision baseline.",
    "multibit.coreset_fraction": "Fraction of the training set each width trains on per epoch (its own EL2N-chosen "
                                 "subset). 1.0 = full-data multi-bit training; 0.2 = EMQ's headline setting.",
    "multibit.reselect_every": "Epochs between coreset re-selections (importance drifts as the network learns).",
    "multibit.selection": "weighted: sample ∝ score (keeps some easy samples); topk: only the hardest.",
    "multibit.score": "el2n: ‖softmax − one-hot‖₂ with each width's own model; random: a uniformly random subset "
                      "(the ablation).",
    "train.nproc": "Processes of one data-parallel run (torchrun): on CPU they share the cores over gloo; on CUDA "
                   "each takes its own GPU, assigned by the runner.",
    "train.device": "cpu; any free GPU (the runner picks the least busy ones, one per process); or one GPU.",
    "train.pretrain_epochs": "Float training before quantization (0 with a checkpoint).",
    "train.search_epochs": "λ on, LSB pruning on.",
    "train.finetune_epochs": "λ off, bits frozen: recover accuracy at the final widths.",
}

METHOD_HELP = {
    "msq": "MSQ: L1 on the differentiable LSBs, prune LSBs that became zero, Hessian-aware steps.",
    "uniform": "Uniform QAT at fixed bits: the honest reference point for compression vs accuracy.",
    "bsq": "BSQ baseline: trainable bit planes with a group Lasso; re-quantized periodically.",
    "multibit": "Multi-bit (EMQ): one network for several widths, with bias correction and coresets.",
    "hawq": "HAWQ-style baseline: widths chosen once from the float model's Hessian traces for the budget (exact "
            "knapsack), then QAT at those widths.",
}


def label(key: str) -> str:
    """The form's label of a field (or form control); a key the form does not show stays the key."""
    return LABELS.get(key) or FORM_ONLY.get(key) or key


def _key_prefixes(key: str) -> tuple[str, ...]:
    """How a message may name ``key`` at its start: "train.lr"; a run-level field also as "run.name"."""
    return (key,) if "." in key else (key, f"run.{key}")


def labelled(key: str, message: str) -> str:
    """``message`` with the config key it starts with replaced by the form's label of that field
    ("train.batch_size = 0 is invalid…" -> "Batch size = 0 is invalid…"); other messages unchanged."""
    if key not in LABELS:
        return message
    for prefix in _key_prefixes(key):
        if message.startswith(prefix + " = "):
            return LABELS[key] + message[len(prefix):]
    return message


def error_markdown(key: str, message: str) -> str:
    """What the form shows for a field's error: the message led by the field's label, then (small) the
    config key, for those who set it in a config file or on the command line."""
    text = labelled(key, message)
    if key in LABELS:
        text += f"\n\n:small[config key `{key}`]"
    return text


def default(key: str) -> Any:
    return get_dotted(DEFAULTS, key)


def lam_options(value: Optional[float] = None) -> list[float]:
    """The λ grid, with ``value`` inserted when it is not on it (so a stored λ shows exactly)."""
    grid = list(LAM_GRID)
    if valid_lam(value) and value not in grid:
        grid = sorted(grid + [float(value)])
    return grid


def strength_options(method: str, value: Optional[float] = None) -> list[float]:
    """The log grid of a method's live strength (MSQ's λ or BSQ's decay α), ``value`` included."""
    grid = list(DECAY_GRID if method == "bsq" else LAM_GRID)
    if valid_lam(value) and value not in grid:
        grid = sorted(grid + [float(value)])
    return grid


def live_strength(method: str, config: Optional[dict], last_change: Optional[float] = None) -> float:
    """The strength a run uses now: its last live change, else the config's (reg.lam, or bsq.decay for BSQ)."""
    if valid_lam(last_change):
        return float(last_change)
    key = "bsq.decay" if method == "bsq" else "reg.lam"
    try:
        value = get_dotted(config or {}, key)
    except (KeyError, TypeError):
        value = None
    return float(value) if valid_lam(value) else default(key)


def parse_widths(key: str, text: str, allow_empty: bool = False) -> tuple[Optional[list[int]], Optional[str]]:
    """"2, 3, 4, 8" -> ([2, 3, 4, 8], None); bad text -> (None, the error for ``key``).

    >>> parse_widths("multibit.bits", "2, x")[1]
    "multibit.bits = '2, x' is invalid: write widths separated by commas, e.g. 2,3,4,8"
    """
    try:
        values = [int(p) for p in (text or "").replace(" ", "").split(",") if p]
    except ValueError:
        return None, f"{key} = {text!r} is invalid: write widths separated by commas, e.g. 2,3,4,8"
    if not values and not allow_empty:
        return None, f"{key} = {text!r} is invalid: give at least one width, e.g. 2,3,4,8"
    return values, None


def format_act_bits(value) -> str:
    return {"same": "same as the weights", "none": "float (none)", None: "float (none)"}.get(value, f"{value} bits")


def check_devices(values: dict[str, Any], gpus: tuple, cpu_cores: Optional[int] = None) -> dict[str, str]:
    """What the dataclasses cannot know: that this machine has the GPUs (or CPU cores) a run asks for."""
    device = values.get("train.device") or "cpu"
    nproc = values.get("train.nproc") or 1
    cores = cpu_cores if cpu_cores is not None else (os.cpu_count() or 1)
    if device == "cpu" and isinstance(nproc, int) and nproc > cores:
        return {"train.nproc": f"Processes per run = {nproc} is more than this machine's {cores} CPU cores: the "
                               f"processes would only take turns; use at most {cores}"}
    if not device.startswith("cuda") or not isinstance(nproc, int):
        return {}
    if not gpus:
        return {"train.device": f"train.device = {device!r}: no GPU is visible to the runner here "
                                "(nvidia-smi, $CUDA_VISIBLE_DEVICES or $MSQ_GPUS); pick cpu"}
    if device.startswith("cuda:") and int(device[5:]) not in gpus:
        return {"train.device": f"train.device = {device!r}: this machine offers GPUs "
                                f"{', '.join(map(str, gpus))}; pick one of them or 'any free GPU'"}
    if device == "cuda" and nproc > len(gpus):
        return {"train.nproc": f"train.nproc = {nproc} is invalid here: each process takes its own GPU and this "
                               f"machine offers {len(gpus)}; use at most {len(gpus)}, or run on cpu"}
    return {}


def valid_lam(value) -> bool:
    """The runner's own λ check (``msq.runs.controls.is_valid_lam``): the form offers what a run accepts."""
    from msq.runs.controls import is_valid_lam
    return is_valid_lam(value)


def format_lam(value: float) -> str:
    return f"{value:g}"


def sweep_values(lo: float, hi: float, count: int) -> list[float]:
    """``count`` λ values evenly spaced on a log scale from ``lo`` to ``hi`` (3 significant digits)."""
    if count < 1:
        raise ConfigError(f"Runs in the sweep = {count!r} is invalid: allowed an integer >= 1")
    lo, hi = sorted((float(lo), float(hi)))
    if count == 1 or lo == hi:
        return [lo]
    if lo <= 0:
        raise ConfigError(f"λ range from = {lo!r} is invalid: a log-spaced sweep needs λ > 0")
    out = []
    for i in range(count):
        value = math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (count - 1))
        out.append(float(f"{value:.3g}"))
    return sorted(set(out))


def build_config(values: dict[str, Any]) -> dict:
    """The defaults with the form's dotted-key values set (no validation yet)."""
    data = copy.deepcopy(DEFAULTS)
    for key, value in values.items():
        set_dotted(data, key, value)
    return data


_FIELD = re.compile(r"^(\w+)\.(\w+) = ")


def field_of(message: str) -> str:
    """The dotted key a ConfigError message is about ("run.x" -> "x"; a whole section -> its name)."""
    match = _FIELD.match(message)
    if match:
        section, name = match.groups()
        return name if section == "run" else f"{section}.{name}"
    head = re.match(r"^(\w+)", message)
    return head.group(1) if head else "form"


def validate(data: dict, max_errors: int = 30) -> dict[str, str]:
    """Every field error of ``data``, by dotted key, found by the dataclasses' own validation: validate,
    put the offending field back to its default, validate again -- so all bad fields are reported at once."""
    data = copy.deepcopy(data)
    errors: dict[str, str] = {}
    for _ in range(max_errors):
        try:
            RunConfig.from_dict(data)
            return errors
        except ConfigError as exc:
            message = str(exc)
            key = field_of(message)
            if key in errors:      # resetting did not help: report it and stop
                return errors
            errors[key] = message
            try:
                set_dotted(data, key, default(key))
            except (ConfigError, KeyError):
                return errors
    return errors


def check_paths(values: dict[str, Any], root: Path = Path("."), models: Optional[Iterable[str]] = None) -> dict[str, str]:
    """What the dataclasses cannot know: that a user's model file, checkpoint or image folder exists, and
    (given the registered ``models``) that a model spec names something the worker can build."""
    errors = {}
    model = values.get("model") or ""
    if models is not None and not (model.endswith(".py") or ".py:" in model or model.startswith("tv:")) \
            and model not in set(models):
        errors["model"] = (f"Model file and factory = {model!r} is not a model: write path/to/file.py:make_model "
                           "(make_model() returns a torch.nn.Module), a torchvision name such as tv:resnet18, or "
                           "pick a sample model")
    elif model.endswith(".py") or ".py:" in model:
        path, _, factory = model.partition(":")
        if not factory:
            errors["model"] = (f"model = {model!r} needs a factory: write path/to/file.py:make_model, where "
                               "make_model() returns a torch.nn.Module")
        elif not (root / path).is_file():
            errors["model"] = (f"model = {model!r}: the file {path!r} does not exist (relative to "
                               f"{root.resolve()})")
    checkpoint = values.get("checkpoint")
    if checkpoint and not (root / checkpoint).is_file():
        errors["checkpoint"] = f"checkpoint = {checkpoint!r}: no such file (relative to {root.resolve()})"
    dataset = values.get("data.name") or ""
    if dataset.startswith("imagefolder:") and not (root / dataset.split(":", 1)[1]).is_dir():
        errors["data.name"] = (f"data.name = {dataset!r}: the folder does not exist; give a folder with one "
                               "sub-folder of images per class")
    return errors


def run_names(base: str, lams: list[float]) -> list[str]:
    """One label per run of a sweep: "<base> λ=<value>"; a single run keeps ``base``."""
    if len(lams) == 1:
        return [base]
    return [f"{base} λ={lam:g}".strip() for lam in lams]
