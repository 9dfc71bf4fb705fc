"""Multi-bit (any-precision) training with EMQ's two techniques (METHODS §8).

One set of float weights serves every width in ``multibit.bits``; the active width is the ``bits`` of
the model's quantized layers. Two techniques make that cheap and robust:
- weight bias correction (``correction.py``): per output channel, quantized weights get the float
  weights' mean and std, so every width shares ONE BatchNorm and unseen widths work uncalibrated;
- bit-wise coreset sampling (``coreset.py``): each width trains on its own EL2N-selected subset.

API (what the CLI, the trainer and the dashboard use):
    prepare_multibit_(model, cfg, example_input)   -> quantized layer names   (layers.py)
    set_width_(model, b); active_width(model); with allocation(model, {fqn: b}): ...
    evaluate_allocation(model, b_or_mix, data)     -> {acc, loss, size_bytes, avg_bits, compression, seconds}
    evaluate_widths(model, [2, 3, 5], data)        -> {b: the same}
    load_multibit_run(run_dir).evaluate(mix)       -> the same, from a run folder's checkpoint (evaluate.py)
    el2n_scores, select_coreset, mean_pairwise_jaccard                          (coreset.py)
    bias_correct(Q, W)                                                          (correction.py)
    MultiBitMethod: ``--method multibit`` in the training loop                 (method.py)
result.json of a multi-bit run has a "multibit" section (summary.py documents its keys).

Importing the package is torch-free (its registration, ``spec.py``); the torch names load on first use.
"""
from msq.lazy import lazy_attributes
from msq.methods.multibit.spec import SPEC

_EXPORTS = {
    **{n: "msq.methods.multibit.correction" for n in ("bias_correct", "channel_moments", "correction_affine")},
    **{n: "msq.methods.multibit.coreset" for n in ("el2n", "el2n_scores", "mean_pairwise_jaccard", "score_summary",
                                                   "select_coreset")},
    **{n: "msq.methods.multibit.evaluate" for n in ("MultiBitRun", "accuracy", "evaluate_allocation",
                                                    "evaluate_widths", "load_multibit_run", "size_stats")},
    **{n: "msq.methods.multibit.layers" for n in ("SwitchableBatchNorm", "active_width", "allocation",
                                                  "prepare_multibit_", "set_width_")},
    "MultiBitMethod": "msq.methods.multibit.method",
}
__all__ = sorted(_EXPORTS) + ["SPEC"]
__getattr__ = lazy_attributes(__name__, _EXPORTS, globals())
