"""Deployment: a quantized model as an ONNX graph with integer weights, and per-layer bit maps for
other toolchains (HAWQ, NNCF, torchao).

    from msq.deploy import export_onnx, export_run_onnx
    info = export_run_onnx("runs", run_id, "model.onnx")          # msq, uniform, bsq, multibit runs
    info = export_onnx(model, example_input, "model.onnx")         # any model with quantized layers

Everything here imports torch (and onnx where it writes ONNX); ``msq.report`` calls it lazily.
"""
from __future__ import annotations

from msq.lazy import lazy_attributes

_LAZY = {
    "export_onnx": "msq.deploy.onnx_export", "export_run_onnx": "msq.deploy.run_export",
    "integer_layer": "msq.deploy.integer", "load_run_model": "msq.deploy.run_model",
    "hawq_bit_config_module": "msq.deploy.hawq", "nncf_config": "msq.deploy.nncf_scopes",
    "torchao_config": "msq.deploy.torchao_config",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
