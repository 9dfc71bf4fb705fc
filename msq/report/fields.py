"""Every field of the report (schema version 1), documented once: the README's table is generated from
here (``fields_markdown``) and a test checks a real report has exactly these fields.

Paths: ``a.b`` nested keys, ``<fqn>`` a layer's fully qualified name, ``<key>`` any key, ``[]`` list items.
"""
from __future__ import annotations

from msq.report.schema import SCHEMA, SCHEMA_VERSION

FIELDS: list[tuple[str, str, str]] = [
    ("schema", "str", f'always "{SCHEMA}"'),
    ("schema_version", "int", f"{SCHEMA_VERSION}; bumped when a field changes meaning or is removed"),
    ("generated.at", "str", "when the report was built (ISO 8601, UTC)"),
    ("generated.msq_version", "str", "msq version that built the report"),
    ("generated.sources", "list[str]", '"store", plus "result.json" and/or "checkpoint.pt" when read'),
    ("run.id", "str", "run id"),
    ("run.name", "str", "the run's label (free text; file names made from it are sanitized)"),
    ("run.status", "str", "queued, running, completed, stopped or failed"),
    ("run.complete", "bool", "true only for a completed run with a stored summary"),
    ("run.error", "str | null", "why the run failed or stopped"),
    ("run.method", "str", "msq, uniform, bsq, hawq or multibit"),
    ("run.model", "str", "model name (registry name, tv:NAME or file.py:factory)"),
    ("run.dataset", "str", "dataset name"),
    ("run.device", "str", "device it ran on"),
    ("run.host", "str | null", "machine it ran on"),
    ("run.created", "str | null", "ISO 8601 UTC"),
    ("run.started", "str | null", "ISO 8601 UTC"),
    ("run.ended", "str | null", "ISO 8601 UTC"),
    ("run.duration_s", "float | null", "seconds from start to end (or to now while running)"),
    ("run.epochs_done", "int | null", "epochs finished"),
    ("run.steps_done", "int | null", "optimizer steps taken"),
    ("notes", "list[str]", "what a reader must know: failed/running/stopped, what was not stored and why"),
    ("totals.quantized_params", "int", "Σ N_l: weights of the quantized layers"),
    ("totals.float_params", "int | null", "parameters kept in float (biases, BatchNorm, PACT clips)"),
    ("totals.average_bits", "float", "Σ N_l n_l / Σ N_l (METHODS §6)"),
    ("totals.compression", "float", "32 Σ N_l / Σ N_l n_l, weights only"),
    ("totals.model_size_bytes", "float | null", "Σ N_l n_l / 8 + 4 · float_params"),
    ("totals.float_model_size_bytes", "float | null", "4 · (quantized_params + float_params)"),
    ("totals.bit_ops", "int", "Σ MACs_l · n_l · a_l per sample (a_l = 32 for float activations)"),
    ("totals.float_acc", "float | null", "validation accuracy (%) of the float model, after pretraining"),
    ("totals.final_acc", "float | null", "validation accuracy (%) at the end (or the last stored epoch)"),
    ("totals.final_val_loss", "float | null", "validation cross-entropy at the end (or the last stored epoch)"),
    ("totals.trainable_params", "int | null", "Σ numel of trainable parameters (from the summary)"),
    ("totals.quantized_layers", "int", "number of quantized layers"),
    ("totals.searched_layers", "int", "quantized layers whose width was searched (not fixed)"),
    ("totals.lam", "float | null", "λ at the end (after any live change)"),
    ("layers.<fqn>.index", "int", "position in the model (registration order)"),
    ("layers.<fqn>.kind", "str", "conv2d, dwconv2d (depthwise) or linear"),
    ("layers.<fqn>.shape", "list[int]", "weight shape"),
    ("layers.<fqn>.params", "int", "N_l, weights in the layer"),
    ("layers.<fqn>.macs", "int", "multiply-accumulates per input sample"),
    ("layers.<fqn>.bits", "int", "n_l, final weight width (sign included; BSQ: magnitude planes)"),
    ("layers.<fqn>.storage_bits", "int", "bits each weight takes stored, sign included (what the totals count)"),
    ("layers.<fqn>.bit_ops", "int", "MACs · n_l · a_l"),
    ("layers.<fqn>.fixed", "bool", "width pinned (not searched)"),
    ("layers.<fqn>.fixed_reason", "str", 'why: "first layer", "last layer", a quant.fixed pattern; "" if searched'),
    ("layers.<fqn>.scale", "float | null", "s_l: codes q map to W = s (2q/2^n − 1); null if never calibrated"),
    ("layers.<fqn>.act_bits", "int | null", "width of the layer's input activations; null = float"),
    ("layers.<fqn>.lsb_density", "float | null", "final fraction of odd codes (1 − LSB sparsity)"),
    ("layers.<fqn>.quant_error", "float | null", "final ‖Q_n(W) − W‖² / N_l"),
    ("layers.<fqn>.sensitivity", "float | null", "last Hutchinson estimate of Tr(H_l)/N_l"),
    ("layers.<fqn>.sensitivity_se", "float | null", "its standard error"),
    ("layers.<fqn>.sensitivity_interval", "list | null", "[low, high] at ± hessian.z standard errors (95% by default)"),
    ("layers.<fqn>.bit_history", "list", "every change of the width, oldest first"),
    ("layers.<fqn>.bit_history[].epoch", "int", "0-based epoch at whose end the LSBs were pruned"),
    ("layers.<fqn>.bit_history[].step", "int", "optimizer step of the prune"),
    ("layers.<fqn>.bit_history[].old_bits", "int", "width before"),
    ("layers.<fqn>.bit_history[].new_bits", "int", "width after"),
    ("layers.<fqn>.bit_history[].k", "int", "LSBs dropped (2 = Hessian-aware double prune)"),
    ("layers.<fqn>.bit_history[].density", "float", "LSB density that triggered it"),
    ("layers.<fqn>.bit_history[].sensitivity", "float | null", "Tr(H)/N at that time"),
    ("budget", "object", "the size budget and how close the run landed (every field null: no budget)"),
    ("budget.target_avg_bits", "float | null", "the target average width (32 / target_compression when given so)"),
    ("budget.target_compression", "float | null", "the target as a compression ratio, when given so"),
    ("budget.final_avg_bits", "float | null", "where the run ended"),
    ("budget.final_compression", "float | null", "its compression"),
    ("budget.gap_bits", "float | null", "final − target average bits (≤ 0: within budget)"),
    ("budget.tolerance_bits", "float | null", "prune.landing_tolerance"),
    ("budget.landed", "bool | null", "−tolerance ≤ gap ≤ 0"),
    ("float_parameters", "list | null", "tensors kept in float (from the checkpoint; null if unread)"),
    ("float_parameters[].name", "str", "state_dict name"),
    ("float_parameters[].shape", "list[int]", "shape"),
    ("float_parameters[].numel", "int", "values"),
    ("float_parameters[].role", "str", "bias, batchnorm, norm, activation clip (PACT) or other"),
    ("seed", "int", "train.seed"),
    ("versions", "object | null", "torch, msq, python, platform of the training run (null without a summary)"),
    ("versions.<key>", "str", "one version string"),
    ("timings", "object", "seconds per phase (pretrain, search, finetune, ...) plus eval and hessian"),
    ("timings.<key>", "float", "seconds"),
    ("events", "list", "everything logged: phase, prune, hessian, lam_change, stop, nan, ..."),
    ("events[].kind", "str", "event kind; the other keys are its payload"),
    ("events[].<key>", "any", "step, epoch, t (unix time) and the kind's payload"),
    ("series.epochs.<key>", "object", "per-epoch scalar (val_acc, val_loss, train_acc, train_loss, avg_bits, "
                                      "compression, epoch_seconds, epoch_lam, ...)"),
    ("series.epochs.<key>.step", "list[int]", "step of each point"),
    ("series.epochs.<key>.epoch", "list[int]", "epochs finished at each point"),
    ("series.epochs.<key>.value", "list[float]", "values (6 significant digits)"),
    ("series.layers.<key>", "object", "per-layer metric over logged steps: bits, lsb_density, sensitivity, "
                                      "sensitivity_se (at most 200 evenly spaced steps)"),
    ("series.layers.<key>.step", "list[int]", "steps (columns)"),
    ("series.layers.<key>.epoch", "list[int]", "epochs finished at each column"),
    ("series.layers.<key>.values", "list[list[float]]", "one list per layer, in layer order, aligned with step"),
    ("config", "object", "the full RunConfig (as in config.json)"),
]

DOCUMENTED = {path for path, _, _ in FIELDS}


def field_paths(report: dict) -> set[str]:
    """The documented-style paths of every field present in ``report`` (the layer, version, timing,
    event-payload and series keys are folded into their placeholders)."""
    folded = {"layers": "<fqn>", "versions": "<key>", "timings": "<key>", "series.epochs": "<key>",
              "series.layers": "<key>"}
    paths: set[str] = set()

    def walk(value, path: str) -> None:
        if path:
            paths.add(path)
        if path in ("config",) or path.startswith("events[]."):
            return
        if path == "events[]":
            paths.update(f"events[].{'kind' if k == 'kind' else '<key>'}" for k in value)
            return
        if isinstance(value, dict):
            for key, item in value.items():
                name = folded.get(path, key)
                walk(item, f"{path}.{name}" if path else name)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                walk(item, f"{path}[]")

    walk(report, "")
    return paths


def undocumented(report: dict) -> set[str]:
    """Fields of ``report`` missing from FIELDS (containers of documented fields do not count)."""
    return {p for p in field_paths(report) - DOCUMENTED
            if not any(d.startswith(p + ".") or d.startswith(p + "[]") for d in DOCUMENTED)}


def fields_markdown() -> str:
    """The table of fields for the README (docs/report_fields.md)."""
    lines = ["| field | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{path}` | {kind} | {text.replace('|', '/')} |" for path, kind, text in FIELDS]
    return "\n".join(lines)
