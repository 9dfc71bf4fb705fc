"""Reports of a run (bit allocation, accuracy, compression) and the charts they share with the dashboard.

``msq.report.figures`` builds the shared charts as plain plotly-JSON dicts (no plotly import) with one
bit colour scale, so the HTML report and the dashboard draw the same charts in the same colours.
"""
from msq.lazy import lazy_attributes
from msq.report.figures import (BIT_COLORS, accuracy_vs_compression, bit_allocation_bars,
                                bit_allocation_heatmap, bit_color, bit_colorscale, lsb_density_heatmap,
                                pareto_front, relative_sensitivity_heatmap, sensitivity_bars)

__all__ = ["BIT_COLORS", "accuracy_vs_compression", "bit_allocation_bars", "bit_allocation_heatmap", "bit_color",
           "bit_colorscale", "lsb_density_heatmap", "pareto_front", "relative_sensitivity_heatmap",
           "sensitivity_bars"]

# -- reports and the quantized export (loaded on first use: ``import msq.report`` stays free of torch) --
_LAZY = {
    "build_report": "msq.report.schema", "validate_report": "msq.report.schema", "SCHEMA_VERSION": "msq.report.schema",
    "render_report": "msq.report.render", "export_report": "msq.report.render", "FORMATS": "msq.report.render",
    "bit_map": "msq.report.adapters", "adapter_text": "msq.report.adapters",
    "export_quantized": "msq.report.checkpoint", "load_quantized": "msq.report.checkpoint",
}
__all__ += sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY, globals())
