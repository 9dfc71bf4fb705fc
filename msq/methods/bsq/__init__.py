"""BSQ baseline (Yang et al., ICLR 2021): bit planes as trainable parameters, group Lasso per bit
position, periodic re-quantization (METHODS §7); ``--method bsq``.

    from msq.methods.bsq import to_bsq, group_lasso_penalty
    layer = to_bsq(quant_layer, bits=8, max_bits=8)     # planes [2, 8, *W.shape] + a trainable scale
    loss = task_loss + decay * group_lasso_penalty([layer])
    layer.requantize_()                                   # binary planes, all-zero MSB/LSB planes dropped

Importing the package is torch-free (its registration, ``spec.py``); the torch names load on first use.
"""
from msq.lazy import lazy_attributes
from msq.methods.bsq.spec import SPEC

_EXPORTS = {
    **{name: "msq.methods.bsq.layers" for name in ("BSQConv2d", "BSQLinear", "BSQMixin", "is_bsq_layer", "to_bsq")},
    "BSQMethod": "msq.methods.bsq.method",
    **{name: "msq.methods.bsq.planes" for name in ("decode_planes", "encode_planes", "initial_codes",
                                                   "plane_coefficients", "plane_sum", "round_codes_ste")},
    "group_lasso_penalty": "msq.methods.bsq.regularizer", "plane_group_norms": "msq.methods.bsq.regularizer",
    "Requantized": "msq.methods.bsq.requantize", "requantize_codes": "msq.methods.bsq.requantize",
}
__all__ = sorted(_EXPORTS) + ["SPEC"]
__getattr__ = lazy_attributes(__name__, _EXPORTS, globals())
