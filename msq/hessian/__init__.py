"""Hessian-trace sensitivity of each quantized layer."""
from msq.hessian.hutchinson import TraceEstimate, estimate_layer_traces, hutchinson_samples, rademacher_like

__all__ = ["TraceEstimate", "estimate_layer_traces", "hutchinson_samples", "rademacher_like"]
