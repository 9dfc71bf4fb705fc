"""The launch form's logic, built on the config dataclasses: defaults and types from ``RunConfig``,
every field error from the dataclasses' own validation (``ConfigError`` names the field), a method's
strength (its registered knob: λ, BSQ's decay α) on its log grid, sweeps of it. Pure (no streamlit): the
page only draws widgets and calls these.

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
from typing import Any, Iterable, Optional, Sequence

from dashboard.components.methods import knob_of
from msq.config import RunConfig, all_field_help, get_dotted, set_dotted
from msq.errors import ConfigError
from msq.methods import LiveKnob, all_methods

DEFAULTS = RunConfig().to_dict()
CUSTOM_MODEL = "your own model file…"
IMAGEFOLDER = "imagefolder (your own images)…"


def knob_grid(key: str) -> tuple:
    """The log grid of the live strength that starts from config ``key`` (the registered methods' knobs)."""
    return next((spec.knob.grid for spec in all_methods() if spec.knob and spec.knob.key == key), ())


LAM_GRID = knob_grid("reg.lam")        # λ: R10 preferred numbers (10 per decade), 0.1 … 10,000
DECAY_GRID = knob_grid("bsq.decay")    # BSQ's decay α, orders of magnitude lower (default 5e-3): 1e-5 … 1
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

HELP = all_field_help()   # dotted key -> the field's help text (msq.config's metadata: the CLI shows the same)

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


def _with_value(grid: Sequence[float], value: Optional[float]) -> list[float]:
    """``grid`` with ``value`` inserted when it is not on it (so a stored value shows exactly)."""
    grid = list(grid)
    if valid_lam(value) and value not in grid:
        grid = sorted(grid + [float(value)])
    return grid


def lam_options(value: Optional[float] = None) -> list[float]:
    """The λ grid, ``value`` included."""
    return _with_value(LAM_GRID, value)


def strength_options(method: str, value: Optional[float] = None) -> list[float]:
    """The log grid of a method's live strength (its knob: MSQ's λ, BSQ's decay α), ``value`` included;
    [] for a method without one."""
    knob = knob_of(method)
    return _with_value(knob.grid, value) if knob else []


def live_strength(method: str, config: Optional[dict], last_change: Optional[float] = None) -> Optional[float]:
    """The strength a run uses now: its last live change, else the config's value of its knob's key (reg.lam,
    bsq.decay), else that key's default; None for a method without a knob."""
    knob = knob_of(method)
    if knob is None:
        return None
    if valid_lam(last_change):
        return float(last_change)
    try:
        value = get_dotted(config or {}, knob.key)
    except (KeyError, TypeError):
        value = None
    return float(value) if valid_lam(value) else default(knob.key)


def sweep_default(knob: LiveKnob) -> tuple[float, float]:
    """Where a sweep's range starts: the grid values nearest a decade centred on the knob's default
    (λ = 32 -> 10 … 100)."""
    centre = float(default(knob.key))
    return tuple(min(knob.grid, key=lambda v: abs(math.log(v / target)) if v > 0 else math.inf)
                 for target in (centre / math.sqrt(10), centre * math.sqrt(10)))


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


def run_names(base: str, lams: list[float], symbol: str = "λ") -> list[str]:
    """One label per run of a sweep: "<base> λ=<value>" (``symbol``: the swept strength's); a single run
    keeps ``base``."""
    if len(lams) == 1:
        return [base]
    return [f"{base} {symbol}={lam:g}".strip() for lam in lams]
