"""``export_run_onnx(home, run_id, out)``: a run's model as ONNX (``python -m msq export RUN --format onnx``).

The file goes to ``<run folder>/exports/msq-model-<run id>[-<name>].onnx`` unless ``out`` says
otherwise; an existing file is replaced only with ``overwrite=True``. A multi-bit run exports at its
widest trained width, or at ``bits`` (one width, or ``{fqn: bits}``). The returned dict adds the report's
predicted model size (packed weights at n bits + float parameters at 32 bits) beside the file size.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

from msq.deploy.onnx_export import summarize, to_onnx
from msq.deploy.run_model import Allocation, example_input, load_run_model
from msq.methods import get_method
from msq.report.paths import check_writable, default_output, file_name, resolve_output, run_stem, write_atomic
from msq.runs import RunStore

EXPORTS_DIR, SUFFIX = "exports", "onnx"


def add_metadata(proto, run_id: str, cfg, rows: list[dict]) -> None:
    """What a deployment needs beside the graph, as ONNX metadata (``session.get_modelmeta()``): the
    input normalisation of the run's dataset, the class count, the run and each layer's width."""
    import json
    from msq.data import load_dataset

    data = load_dataset(cfg.data)
    entries = {"msq.run_id": run_id, "msq.method": cfg.method, "msq.dataset": cfg.data.name,
               "msq.num_classes": str(data.num_classes),
               "msq.input_mean": json.dumps(list(data.mean)), "msq.input_std": json.dumps(list(data.std)),
               "msq.input_normalization": "x = (pixels / max pixel value - mean) / std per channel, NCHW float32",
               "msq.bits": json.dumps({r["fqn"]: r["bits"] for r in rows})}
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value


def export_run_onnx(home, run_id: str, out: Optional[str | os.PathLike] = None, *, bits: Allocation = None,
                    overwrite: bool = False, notify: Optional[Callable[[str], None]] = None) -> dict:
    """Write the run's ONNX model; returns {path, opset, layers, weight_bytes, file_bytes, predicted_bytes}."""
    store = RunStore(home, create=False)
    run = store.run(run_id)
    run_dir = store.run_dir(run_id)
    name = file_name(run_stem("msq-model", run), f".{SUFFIX}")
    path = default_output(run_dir, name, EXPORTS_DIR) if out is None else resolve_output(out, run_dir, name)
    check_writable(path, overwrite)
    model, cfg, args = load_run_model(home, run_id, bits)
    proto, rows = to_onnx(model, example_input(args))
    add_metadata(proto, run_id, cfg, rows)
    predicted = get_method(cfg.method).create(cfg).deployed_size_bytes(model)
    if write_atomic(path, proto.SerializeToString(), overwrite=overwrite) and notify:
        notify(f"replaced the existing {path}")
    return {**summarize(proto, rows, Path(path)), "predicted_bytes": predicted, "method": cfg.method,
            "input_shape": list(example_input(args).shape)}
