"""Pure tensor math: quantizers, the differentiable LSB, bit-plane helpers. Modules only hold state."""
from msq.functional.activation import pact_quantize
from msq.functional.bitplanes import (from_bit_planes, from_sign_magnitude_planes, plane_densities,
                                      to_bit_planes, to_sign_magnitude_planes)
from msq.functional.quantize import (GRIDS, code_range, code_step, dequantize_codes, dequantize_weight_codes,
                                     drop_lsbs, drop_weight_lsbs, fake_quantize, lsb, lsb_density, moved_by_drop,
                                     quantization_error, quantize_codes, signed_codes, ste_codes, unit_interval,
                                     weight_codes)

__all__ = [
    "GRIDS", "code_range", "code_step", "dequantize_weight_codes", "drop_weight_lsbs", "moved_by_drop",
    "weight_codes", "dequantize_codes", "drop_lsbs", "fake_quantize", "lsb", "lsb_density", "quantization_error",
    "quantize_codes", "signed_codes", "ste_codes", "unit_interval", "to_bit_planes", "from_bit_planes",
    "to_sign_magnitude_planes", "from_sign_magnitude_planes", "plane_densities", "pact_quantize",
]
