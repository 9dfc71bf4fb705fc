"""Pure tensor math: quantizers, the differentiable LSB, bit-plane helpers. Modules only hold state."""
from msq.functional.activation import pact_quantize
from msq.functional.bitplanes import (from_bit_planes, from_sign_magnitude_planes, plane_densities,
                                      to_bit_planes, to_sign_magnitude_planes)
from msq.functional.quantize import (dequantize_codes, drop_lsbs, fake_quantize, lsb, lsb_density,
                                     quantization_error, quantize_codes, signed_codes, ste_codes, unit_interval)

__all__ = [
    "dequantize_codes", "drop_lsbs", "fake_quantize", "lsb", "lsb_density", "quantization_error",
    "quantize_codes", "signed_codes", "ste_codes", "unit_interval", "to_bit_planes", "from_bit_planes",
    "to_sign_magnitude_planes", "from_sign_magnitude_planes", "plane_densities", "pact_quantize",
]
