"""What the dashboard asks about a run's method, answered from the method registry (``msq.methods``): the
look-ups and their fallbacks in one place, so no page or component names a method. Pure and torch-free.

A run stores its method's name; ``spec_of`` finds its ``MethodSpec``. An old run whose method is no longer
registered gets None, and the callers then draw the method-neutral view; a run without a method (the
oldest rows) trained with ``RunConfig``'s default method.

    >>> spec_of("msq").knob.symbol, spec_of("no such method")
    ('λ', None)
    >>> steers_lam("msq"), steers_lam("bsq"), steers_lam(None)
    (True, False, True)
"""
from __future__ import annotations

from typing import Optional

from msq.config import RunConfig, get_dotted
from msq.methods import DEFAULT_METHOD, LiveKnob, MethodSpec, all_methods, find_method, list_methods

LAM_KEY = "reg.lam"                   # the config key the store's "lam" column falls back to (msq.runs.store)
MARKS = {"circle": "●", "circle-open": "○", "square": "■", "diamond": "◆", "triangle-up": "▲"}   # plotly symbol -> glyph


def spec_of(method: Optional[str]) -> Optional[MethodSpec]:
    """The spec of a run's method (None: a method this installation does not know)."""
    return find_method(DEFAULT_METHOD if method is None else method)


def chosen_spec(method: Optional[str]) -> MethodSpec:
    """The spec of a method picked on a form: ``method`` if registered, else the default (or the first) one."""
    return spec_of(method) or spec_of(DEFAULT_METHOD) or find_method(list_methods()[0])


def knob_of(method: Optional[str]) -> Optional[LiveKnob]:
    """The strength a user steers while the method trains, if it has one."""
    spec = spec_of(method)
    return spec.knob if spec else None


def steers_lam(method: Optional[str]) -> bool:
    """Whether the store's λ of a run (its last live change, else reg.lam) is the strength its method uses."""
    knob = knob_of(method)
    return knob is not None and knob.key == LAM_KEY


def prunes_lsbs(spec: Optional[MethodSpec]) -> bool:
    """Whether the method drops LSB planes by their density (a phase with pruning on, as MSQ's search)."""
    return spec is not None and any(phase.prune for phase in spec.phases(RunConfig()))


def regularized_phases(spec: MethodSpec) -> list[str]:
    """The phases in which the method's penalty (and so its knob) acts, in order."""
    return [phase.name for phase in spec.phases(RunConfig()) if phase.regularize]


def own_section(config: Optional[dict]) -> dict:
    """The run's method's own config section ({} when it has none, or the config is unreadable)."""
    config = config or {}
    spec = spec_of(config.get("method")) if config else None
    section = config.get(spec.config_key) if spec and spec.config_key else None
    return section if isinstance(section, dict) else {}


def own_key(spec: MethodSpec, name: str) -> Optional[str]:
    """The dotted key of field ``name`` of the method's own section ("act_bits" -> "multibit.act_bits"), if it has it."""
    fields = getattr(spec.config_class, "__dataclass_fields__", {})
    return f"{spec.config_key}.{name}" if spec.config_key and name in fields else None


def widths_of(spec: Optional[MethodSpec], config: Optional[dict]) -> list[int]:
    """The widths a run's user picked for its method (its ``widths_key``): [] when it picks none."""
    if spec is None or not spec.widths_key or not config:
        return []
    try:
        value = get_dotted(config, spec.widths_key)
    except (KeyError, TypeError):
        return []
    values = value if isinstance(value, (list, tuple)) else [value]
    return sorted(int(v) for v in values if isinstance(v, int) and not isinstance(v, bool))


def methods_with_page(page: str) -> list[str]:
    """The methods whose own dashboard page is ``page``."""
    return [spec.name for spec in all_methods() if spec.page == page]


def page_specs() -> list[MethodSpec]:
    """One spec per method page (the first method that names it), in registration order."""
    seen: dict[str, MethodSpec] = {}
    for spec in all_methods():
        if spec.page:
            seen.setdefault(spec.page, spec)
    return list(seen.values())


def reference_specs() -> list[MethodSpec]:
    """The methods whose runs are the reference points comparisons are drawn against (uniform QAT)."""
    return [spec for spec in all_methods() if spec.reference]


def marker_legend() -> str:
    """Each registered method's marker in the accuracy-vs-compression plane, in words: "● MSQ; ◆ uniform QAT
    (reference); …" (what ``msq.report.figures.accuracy_vs_compression`` draws)."""
    parts = []
    for spec in all_methods():
        text = f"{MARKS.get(spec.symbol, '•')} {spec.title_in_text}"
        if spec.reference:
            text += " (reference)"
        if not spec.one_allocation:
            text += " (a point at each of its widths)"
        parts.append(text)
    return "; ".join(parts)
