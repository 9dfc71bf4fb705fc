"""The final result of a run (result.json; the report builds on it): per-layer bits and signals,
float vs final accuracy, compression, timings."""
from __future__ import annotations

import platform
import sys

import torch

from msq import __version__
from msq.accounting import summarize
from msq.quant import quant_layers
from msq.quant.inventory import float_param_count, trainable_param_count
from msq.methods.signals import layer_signals


def accounting_totals(trainer) -> dict:
    layers = quant_layers(trainer.model)
    return summarize(params=[layer.weight.numel() for _, layer in layers], bits=[layer.storage_bits for _, layer in layers],
                     float_params=float_param_count(trainer.model), macs=[info.macs for info in trainer.layers],
                     act_bits=[layer.act_bits for _, layer in layers])


def _bit_history(trainer, index: int, name: str) -> list:
    """Every change of this layer's width: the prune events that touched it."""
    return [{k: e[k] for k in ("epoch", "step", "old_bits", "new_bits", "k", "density", "sensitivity")}
            for e in trainer.state.events if e["kind"] == "prune" and e["fqn"] == name]


def build_summary(trainer, status: str, error) -> dict:
    layers = quant_layers(trainer.model)
    signals = layer_signals(layers)
    estimate = trainer.latest_sensitivity
    per_layer = []
    for i, (name, layer) in enumerate(layers):
        info = trainer.layers[i]
        per_layer.append({
            "fqn": name, "kind": info.kind, "shape": info.shape, "params": info.params, "macs": info.macs,
            "bits": layer.bits, "storage_bits": layer.storage_bits, "fixed": layer.fixed, "fixed_reason": layer.fixed_reason,
            "scale": float(layer.scale), "act_bits": layer.act_bits,
            "lsb_density": signals["lsb_density"][i], "quant_error": signals["quant_error"][i],
            "sensitivity": estimate.sensitivities[i] if estimate else None,
            "sensitivity_se": estimate.sensitivity_std_errors[i] if estimate else None,
            "bit_history": _bit_history(trainer, i, name),
        })
    state = trainer.state
    return {
        "status": status, "error": error, "method": trainer.cfg.method, "model": trainer.cfg.model,
        "dataset": trainer.cfg.data.name, "epochs_done": state.epoch, "steps_done": state.step,
        "float_acc": state.float_acc, "final_acc": state.last_val_acc, "final_val_loss": state.last_val_loss,
        **accounting_totals(trainer), "trainable_params": trainable_param_count(trainer.model),
        "layers": per_layer, "bit_history": state.bit_history, "events": state.events,
        "timings": dict(trainer.timings), "lam": state.lam, "seed": trainer.cfg.train.seed,
        "versions": {"msq": __version__, "torch": torch.__version__, "python": sys.version.split()[0],
                     "platform": platform.platform()},
        **trainer.method.summary_extra(trainer),
    }
