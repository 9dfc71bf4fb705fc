"""BSQ baseline (Yang et al., ICLR 2021): bit planes as trainable parameters, group Lasso per bit
position, periodic re-quantization (METHODS §7). Importing this package registers method "bsq".

    from msq.baselines.bsq import to_bsq, group_lasso_penalty
    layer = to_bsq(quant_layer, bits=8, max_bits=8)     # planes [2, 8, *W.shape] + a trainable scale
    loss = task_loss + decay * group_lasso_penalty([layer])
    layer.requantize_()                                   # binary planes, all-zero MSB/LSB planes dropped
"""
from msq.baselines.bsq.layers import BSQConv2d, BSQLinear, BSQMixin, is_bsq_layer, to_bsq
from msq.baselines.bsq.method import BSQMethod
from msq.baselines.bsq.planes import (decode_planes, encode_planes, initial_codes, plane_coefficients, plane_sum,
                                      round_codes_ste)
from msq.baselines.bsq.regularizer import group_lasso_penalty, plane_group_norms
from msq.baselines.bsq.requantize import Requantized, requantize_codes
from msq.training.methods import register_method

register_method("bsq", BSQMethod)

__all__ = [
    "BSQConv2d", "BSQLinear", "BSQMixin", "BSQMethod", "Requantized", "decode_planes", "encode_planes",
    "group_lasso_penalty", "initial_codes", "is_bsq_layer", "plane_coefficients", "plane_group_norms",
    "plane_sum", "requantize_codes", "round_codes_ste", "to_bsq",
]
