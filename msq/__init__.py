"""MSQ Studio's engine: per-layer bit-widths by bit-level sparsity (MSQ), plus baselines.

    import msq
    model = sample_models.create_model("lenet5")
    msq.quantize_(model, msq.QuantConfig(init_bits=8))
    summary = msq.train(msq.RunConfig(model="lenet5", data={"name": "digits"}))
    msq.bit_allocation(model)

The public names are loaded on first use, so ``import msq.runs`` or ``import msq.config`` stays light
(no torch) for the dashboard.
"""
from __future__ import annotations

from msq.lazy import lazy_attributes

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "msq.config", "QuantConfig": "msq.config", "RegConfig": "msq.config",
    "PruneConfig": "msq.config", "HessianConfig": "msq.config", "TrainConfig": "msq.config",
    "DataConfig": "msq.config", "MultiBitConfig": "msq.config", "BSQConfig": "msq.config",
    "MSQError": "msq.errors",
    "quantize_": "msq.quant", "restore_": "msq.quant", "convert_": "msq.quant", "bit_allocation": "msq.quant",
    "set_bit_allocation_": "msq.quant", "quant_layers": "msq.quant",
    "estimate_layer_traces": "msq.hessian",
    "train": "msq.api", "Trainer": "msq.training.trainer",
    "export_report": "msq.report", "load_quantized": "msq.report",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


__getattr__ = lazy_attributes(__name__, _EXPORTS, globals())


def __dir__():
    return __all__
