"""The Export page's model files, built when their button is clicked: the ONNX model (any method; a
multi-bit run at a chosen width) and the packed ``.msq.pt`` checkpoint (the methods whose spec
``packs_checkpoint``: msq and uniform).

    files = model_files(home, run_id, version, method="msq", width=None)
    label, file_name, mime, make = files["onnx"]; make() -> bytes
"""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Optional

from msq.methods import find_method
from msq.report.paths import run_stem


@functools.lru_cache(maxsize=4)
def onnx_bytes(home: str, run_id: str, version: tuple, width: Optional[int]) -> bytes:
    from msq.deploy.run_export import export_run_onnx
    with tempfile.TemporaryDirectory() as tmp:
        info = export_run_onnx(home, run_id, Path(tmp) / "model.onnx", bits=width)
        return Path(info["path"]).read_bytes()


@functools.lru_cache(maxsize=4)
def checkpoint_bytes(home: str, run_id: str, version: tuple) -> bytes:
    from msq.report.checkpoint import export_quantized
    with tempfile.TemporaryDirectory() as tmp:
        return export_quantized(home, run_id, Path(tmp) / "model.msq.pt").read_bytes()


def model_files(home: str, run_id: str, version: tuple, run: dict, width: Optional[int] = None) -> dict:
    """{kind: (label, file name, mime, make bytes)} of the files this run can give."""
    stem = run_stem("msq-model", run)
    tag = f"-w{width}" if width is not None else ""
    files = {"onnx": ("ONNX model", f"{stem}{tag}.onnx", "application/octet-stream",
                      functools.partial(onnx_bytes, home, run_id, version, width))}
    spec = find_method(run.get("method"))
    if spec is not None and spec.packs_checkpoint:
        files["msq"] = ("Packed checkpoint (.msq.pt)", f"{stem}.msq.pt", "application/octet-stream",
                        functools.partial(checkpoint_bytes, home, run_id, version))
    return files
