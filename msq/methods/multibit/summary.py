"""The "multibit" section of result.json: what the dashboard's multi-bit run page draws.

    {"bits": [2, 3, 4, 8], "unseen_bits": [5, 6, 7],
     "acc_by_width": {"2": 96.1, ..., "8": 98.0}, "loss_by_width": {...},     # trained and unseen widths
     "trained_mean_acc": 97.3, "unseen_mean_acc": 97.9,
     "size_by_width": {"2": {"avg_bits", "compression", "size_bytes", "correction_bytes"}, ...},
     "bias_correction": true, "shared_bn": true, "act_bits": "same",
     "coreset": {"fraction", "selection", "score", "reselect_every", "selections", "last": {stats}},
     "timings": {"scoring_seconds", "training_seconds", "train_seconds_total",    # wall
                 "scoring_cpu_seconds", "training_cpu_seconds"}}                        # process CPU

Keys of the width dicts are strings (JSON object keys). Accuracies are percent on the validation split,
measured after the last epoch with no calibration at any width.
"""
from __future__ import annotations

from msq.methods.multibit.evaluate import size_stats
from msq.methods.multibit.layers import allocation


def multibit_summary(method, trainer) -> dict:
    mb = method.mb
    evaluated = method.last_eval
    if not evaluated and method.calibrated:       # quantized training started (not only float pretraining)
        try:
            evaluated = method.evaluate_all(trainer)
        except Exception as exc:  # a failed run still gets a summary; say why the numbers are missing
            evaluated = {}
            error = f"{type(exc).__name__}: {exc}"
        else:
            error = None
    else:
        error = None
    sizes = {}
    for b in method.widths + method.unseen:
        with allocation(trainer.model, b):
            sizes[str(b)] = size_stats(trainer.model)
    trained = [evaluated[b]["acc"] for b in method.widths if b in evaluated]
    unseen = [evaluated[b]["acc"] for b in method.unseen if b in evaluated]
    t = trainer.timings
    scoring, steps = t.get("coreset_scoring", 0.0), t.get("multibit_steps", 0.0)
    return {
        "bits": sorted(method.widths), "unseen_bits": list(method.unseen),
        "acc_by_width": {str(b): r["acc"] for b, r in sorted(evaluated.items())},
        "loss_by_width": {str(b): r["loss"] for b, r in sorted(evaluated.items())},
        "trained_mean_acc": sum(trained) / len(trained) if trained else None,
        "unseen_mean_acc": sum(unseen) / len(unseen) if unseen else None,
        "size_by_width": sizes, "eval_error": error,
        "bias_correction": mb.bias_correction, "shared_bn": mb.shared_bn, "act_bits": mb.act_bits,
        "coreset": {"fraction": mb.coreset_fraction, "selection": mb.selection, "score": mb.score,
                    "reselect_every": mb.reselect_every, "selections": method.selections, "last": dict(method.stats)},
        "timings": {"scoring_seconds": scoring, "training_seconds": steps, "train_seconds_total": scoring + steps,
                    "scoring_cpu_seconds": t.get("coreset_scoring_cpu", 0.0),
                    "training_cpu_seconds": t.get("multibit_steps_cpu", 0.0)},
    }
