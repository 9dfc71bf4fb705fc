"""What the rest of the product knows about a training method: one ``MethodSpec`` per method,
registered once. Torch-free, so the CLI and the dashboard read it cheaply.

    from msq.methods import get_method, list_methods, register_method
    list_methods()                       # ['msq', 'uniform', 'hawq', 'bsq', 'multibit'] (registration order)
    spec = get_method("msq")
    spec.knob.key, spec.phases(cfg)      # 'reg.lam', [Phase('pretrain', ...), ...]
    method = spec.create(cfg)            # the torch side: imports spec.method_path on first use

A method of one's own is one module that defines a ``Method`` subclass and calls
``register_method(MethodSpec(name=..., method_path="pkg.mod:Class", ...))``; the CLI's choices, the
launch form, the live page and the reports then offer it.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional

from msq.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from msq.config import RunConfig

BUDGET_NONE, BUDGET_OPTIONAL, BUDGET_REQUIRED = "none", "optional", "required"
PLUGINS_ENV = "MSQ_METHOD_MODULES"   # more modules to import, comma-separated: each registers its own method(s)


@dataclass(frozen=True)
class LiveKnob:
    """The strength a user steers while the method trains (sent as the run's "lam" control)."""
    key: str                  # config key it starts from, e.g. "reg.lam"
    symbol: str               # "λ": the short name in tables and legends
    meaning: str              # "LSB-penalty strength": what its value is
    penalty: str              # legend of the penalty term, e.g. "λ·R (LSB penalty)"
    grid: tuple               # the slider's values (a log grid); live values are checked by msq.runs.controls
    effect: str = ""          # what moving it does, in a sentence (the launch form's caption under it)

    @property
    def label(self) -> str:
        """"λ (LSB-penalty strength)": the symbol and what it means."""
        return f"{self.symbol} ({self.meaning})"


@dataclass(frozen=True)
class MethodSpec:
    """Everything outside ``msq/methods/<name>/`` may ask about a method."""
    name: str                           # the value of run.method
    title: str                          # short display name ("MSQ", "Uniform QAT")
    help: str                           # one line: what it does (launch form, ``--method`` help)
    method_path: str                    # "module:Class" of its ``msq.methods.base.Method`` (torch; imported lazily)
    phases: Callable[["RunConfig"], list]   # its phases for a config (``msq.training.schedule.Phase``)
    schedule_help: str = ""             # what the three epoch counts mean for it
    phase_help: dict = field(default_factory=dict)   # phase name -> a few words for the progress bar
    config_key: Optional[str] = None    # its own section of RunConfig ("bsq"), if any ...
    config_class: Optional[type] = None  # ... and that section's dataclass (msq/methods/<name>/config.py)
    knob: Optional[LiveKnob] = None     # its live strength control, if any
    budget: str = BUDGET_NONE           # whether it takes prune.target_avg_bits: none / optional / required
    widths_key: Optional[str] = None    # config key of the widths the user picks ("uniform_bits", "multibit.bits")
    panels: tuple = ()                  # extra dashboard views, e.g. ("widths",) for every trained width
    page: Optional[str] = None          # a dashboard page of its own (dashboard/app_pages/<page>.py), if any ...
    page_label: str = ""                # ... what it shows, as the text of links to it (live page, Runs page) ...
    page_icon: str = ""                 # ... and its icon (":material/<name>:")
    exportable: bool = False            # quantized export and packing (one weight tensor per layer)
    packs_checkpoint: bool = False      # the packed .msq.pt checkpoint is offered for it
    one_allocation: bool = True         # ends at one per-layer allocation (multi-bit: one per width)
    reference: bool = False             # the uniform reference front comparisons are drawn against
    data_parallel: bool = False         # trains with train.nproc > 1
    estimates_hessian: bool = False     # logs per-layer Hessian traces
    symbol: str = "circle"              # marker in the accuracy-vs-compression figures
    phase_note: Optional[Callable[[str, dict], str]] = None   # (phase, a run's config dict) -> that run's note on
    #                                     the phase ("": the phase_help text), e.g. multi-bit's coreset or full data
    explain_layer: Optional[Callable[[Optional[int], list, dict], str]] = None   # (a layer's bits now, its width
    #                                     changes -- prune events: old_bits, new_bits --, the run's config dict) -> one
    #                                     sentence on why it has its width (the dashboard's "why" table); None: the
    #                                     dashboard's own wording (LSB pruning, fixed or trained widths)
    extra: dict = field(default_factory=dict)   # anything else a method wants to say (free form)

    def method_class(self) -> type:
        module, _, attr = self.method_path.partition(":")
        return getattr(importlib.import_module(module), attr)

    def create(self, cfg: "RunConfig") -> Any:
        return self.method_class()(cfg)

    def phase_names(self, cfg: "RunConfig") -> list[str]:
        return [p.name for p in self.phases(cfg)]

    @property
    def title_in_text(self) -> str:
        """The title as it reads inside a sentence: "Uniform QAT" -> "uniform QAT"; "MSQ", "HAWQ-style" stay."""
        t = self.title
        return t[0].lower() + t[1:] if len(t) > 1 and t[0].isupper() and t[1].islower() else t


_REGISTRY: dict[str, MethodSpec] = {}
_plugins_loaded = False


def _load_plugins() -> None:
    """Import the modules named in ``$MSQ_METHOD_MODULES`` once, at the first question to the registry
    (not when the package is imported: a plugin imports msq itself)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in filter(None, (part.strip() for part in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"${PLUGINS_ENV} names the module {module!r}, which cannot be imported ({exc}); "
                              f"fix the name or its folder on PYTHONPATH, or unset {PLUGINS_ENV}") from exc


def register_method(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    """Make ``spec`` known everywhere. A second registration of a name is an error unless ``replace``."""
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"register_method takes a MethodSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and not replace and _REGISTRY[spec.name] is not spec:
        raise ValueError(f"a method named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_method(name: str) -> None:
    """Forget a method registered at run time (tests register toy methods)."""
    _REGISTRY.pop(name, None)


def list_methods() -> list[str]:
    _load_plugins()
    return list(_REGISTRY)


def all_methods() -> list[MethodSpec]:
    _load_plugins()
    return list(_REGISTRY.values())


def find_method(name: Optional[str]) -> Optional[MethodSpec]:
    """The spec of ``name``, or None (an old run's method that is no longer known)."""
    _load_plugins()
    return _REGISTRY.get(name) if isinstance(name, str) else None


def get_method(name: str) -> MethodSpec:
    spec = find_method(name)
    if spec is None:
        raise ConfigError(f"run.method = {name!r} is not available here: allowed {', '.join(_REGISTRY)} (a method "
                          f"of your own: name its module in ${PLUGINS_ENV})")
    return spec


def methods_where(predicate: Callable[[MethodSpec], bool]) -> list[str]:
    """Names of the methods whose spec satisfies ``predicate``, e.g. ``methods_where(lambda s: s.exportable)``."""
    return [spec.name for spec in all_methods() if predicate(spec)]
