"""Quantized layers and the prepare/convert/restore API."""
from msq.quant.api import (bit_allocation, calibrate_scales_, convert_, quant_layers, quantizable_layers, quantize_,
                           restore_, searched_layers, set_bit_allocation_, set_mode_)
from msq.quant.layers import QuantConv2d, QuantLinear, QuantMixin, is_quant_layer

__all__ = [
    "QuantConv2d", "QuantLinear", "QuantMixin", "is_quant_layer", "quantize_", "restore_", "quant_layers",
    "searched_layers", "quantizable_layers", "set_mode_", "calibrate_scales_", "bit_allocation",
    "set_bit_allocation_", "convert_",
]
