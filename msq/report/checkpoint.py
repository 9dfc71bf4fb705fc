"""The quantized checkpoint: integer codes really packed at each layer's width, plus what it takes to
rebuild the model (config, model shape, scales, widths, float parameters and buffers).

    path = export_quantized("runs", run_id, "model.msq.pt")
    model = load_quantized(path)          # frozen (converted) model; logits == the fake-quantized model's

File format (``torch.save`` of a dict; loads with ``torch.load(weights_only=True)``), version 2:

    format          "msq.quantized"            format_version   2 (version 1 files still load)
    msq_version, torch_version                 strings of the exporting environment
    run             {"id", "name", "method", "status", "epoch", "step", "checkpoint"}: the training
                    checkpoint packed (checkpoint.stop.pt, checkpoint.pt or checkpoint.prev.pt) and its step
    config          the run's RunConfig as a dict
    model           {"name", "num_classes", "in_channels", "image_size", "kwargs"}: create_model's arguments
    sizes           {"codes_bytes", "float_param_bytes", "buffer_bytes", "predicted_model_size_bytes"}
    codes           uint8 tensor: every layer's packed codes back to back (layout: msq.report.packing:
                    signed two's-complement fields, first element in the low bits, as ONNX INT4);
                    layer i is codes[offset : offset + nbytes], nbytes = ceil(numel · bits / 8).
                    A binary layer (symmetric grid, 1 bit: c = ±1) stores 1 for +1 and 0 for -1.
    floats          float32 tensor: every float32 parameter and buffer (biases, BatchNorm weights and
                    running statistics, PACT clips) back to back
    others          {dtype name: 1-d tensor}: the few other entries (BatchNorm step counters, sign flags)
    index           uint8 tensor: zlib-compressed UTF-8 JSON of the tables (compressed: the names of a
                    deep model's tensors would otherwise outweigh a small model's packed weights)
                      {"layers": [{"fqn", "shape", "bits", "grid", "scale", "step", "fixed", "fixed_reason",
                                   "act_bits", "offset", "nbytes"}],
                       "floats": [{"name", "shape", "offset", "numel", "parameter"}],
                       "others": [{"name", "shape", "dtype", "offset", "numel"}]}
                    ``read_quantized`` decodes it into the keys layers / float_table / other_table.

A weight is rebuilt from its signed codes c by ``msq.functional.dequantize_weight_codes`` on the layer's
grid (affine: W = scale · (2 (c + 2^(bits-1)) / 2^bits − 1), METHODS §1; symmetric: W = step · c), which
is bit-for-bit the value the fake-quantized layer computes, so the loaded model's outputs equal the
trained model's. ``step`` (Δ, with W = Δ c and zero point 0) is stored for other readers. Version 1
files hold unsigned codes q = c + 2^(bits-1), most significant bit first, on the affine grid.
"""
from __future__ import annotations

import io
import json
import os
import zlib
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from msq import __version__
from msq.accounting import model_size_bytes
from msq.config import RunConfig
from msq.errors import ModelLoadError
from msq.functional import dequantize_codes, dequantize_weight_codes
from msq.quant import convert_, quantize_
from msq.report.packing import pack_codes, packed_nbytes, unpack_codes, unpack_codes_v1
from msq.report.paths import check_writable, default_output, file_name, resolve_output, run_stem, write_atomic
from msq.report.rebuild import build_quantized_model, load_run_checkpoint, model_from_payload
from sample_models.registry import is_file_spec
from msq.runs import RunStore

FORMAT, FORMAT_VERSION = "msq.quantized", 2
READABLE_VERSIONS = (1, 2)
SUFFIX = "msq.pt"
EXPORTS_DIR = "exports"


def _quant_entries(state: dict) -> dict[str, dict]:
    """Quantized layers of a state_dict: prefixes whose extra state carries a width."""
    return {key[: -len("._extra_state")]: value for key, value in state.items()
            if key.endswith("._extra_state") and isinstance(value, dict) and "bits" in value}


def pack_state(model: nn.Module) -> dict:
    """The packed tensors and tables of a fake-quantized model (weights, scales, floats)."""
    state = model.state_dict()
    quant = _quant_entries(state)
    layers, chunks, offset = [], [], 0
    for fqn, extra in quant.items():
        weight, scale, bits = state[f"{fqn}.weight"], state[f"{fqn}.scale"], int(extra["bits"])
        layer = model.get_submodule(fqn)
        codes, step = layer.integer_weight()
        grid = str(extra.get("grid", "affine"))
        packed = pack_codes(codes > 0, 1, signed=False) if _binary(grid, bits) else pack_codes(codes, bits)
        layers.append({"fqn": fqn, "shape": list(weight.shape), "bits": bits, "grid": grid, "scale": float(scale),
                       "step": float(step),
                       "fixed": bool(extra["fixed"]), "fixed_reason": str(extra.get("fixed_reason", "")),
                       "act_bits": getattr(layer, "act_bits", None), "offset": offset, "nbytes": packed.numel()})
        chunks.append(packed)
        offset += packed.numel()
    skip = {f"{fqn}.{name}" for fqn in quant for name in ("weight", "scale", "_extra_state")}
    params = {name for name, _ in model.named_parameters()}
    float_table, floats, other_table, others = [], [], [], {}
    for key, tensor in state.items():
        if key in skip:
            continue
        flat = tensor.detach().reshape(-1).cpu()
        if tensor.dtype == torch.float32:
            at = sum(f.numel() for f in floats)
            float_table.append({"name": key, "shape": list(tensor.shape), "offset": at, "numel": flat.numel(),
                                "parameter": key in params})
            floats.append(flat)
        else:   # grouped by dtype: one tensor (one storage in the file) per dtype
            dtype = str(tensor.dtype).rpartition(".")[2]
            group = others.setdefault(dtype, [])
            other_table.append({"name": key, "shape": list(tensor.shape), "dtype": dtype,
                                "offset": sum(g.numel() for g in group), "numel": flat.numel()})
            group.append(flat)
    return {"layers": layers, "float_table": float_table, "other_table": other_table,
            "codes": torch.cat(chunks) if chunks else torch.zeros(0, dtype=torch.uint8),
            "floats": torch.cat(floats) if floats else torch.zeros(0),
            "others": {dtype: torch.cat(group) for dtype, group in others.items()}}


def _binary(grid: str, bits: int) -> bool:
    """A symmetric 1-bit layer: codes ±1, which a 1-bit two's-complement field cannot hold."""
    return grid == "symmetric" and bits == 1


TABLES = {"layers": "layers", "floats": "float_table", "others": "other_table"}   # index key -> payload key


def encode_index(packed: dict) -> torch.Tensor:
    text = json.dumps({key: packed[name] for key, name in TABLES.items()}, separators=(",", ":"))
    return torch.frombuffer(bytearray(zlib.compress(text.encode("utf-8"), 9)), dtype=torch.uint8)


def decode_index(index: torch.Tensor) -> dict:
    tables = json.loads(zlib.decompress(index.numpy().tobytes()).decode("utf-8"))
    return {name: tables[key] for key, name in TABLES.items()}


def _sizes(packed: dict) -> dict:
    table, layers = packed["float_table"], packed["layers"]
    float_params = sum(e["numel"] for e in table if e["parameter"])
    numels = [int(torch.Size(l["shape"]).numel()) for l in layers]
    other_bytes = sum(t.numel() * t.element_size() for t in packed["others"].values())
    return {"codes_bytes": int(packed["codes"].numel()), "float_param_bytes": 4 * float_params,
            "buffer_bytes": 4 * sum(e["numel"] for e in table if not e["parameter"]) + other_bytes,
            "predicted_model_size_bytes": model_size_bytes(numels, [l["bits"] for l in layers], float_params)}


def export_quantized(home, run_id: str, out: Optional[str | os.PathLike] = None, *, overwrite: bool = False,
                     notify: Optional[Callable[[str], None]] = None) -> Path:
    """Pack the run's newest readable checkpoint (for a stopped run: the one written at the stop) into a
    quantized checkpoint at ``out`` (default: ``<run folder>/exports/msq-model-<run id>[-<name>].msq.pt``).
    Refuses to replace a file unless ``overwrite``. ``notify`` hears of a replacement, of a damaged
    checkpoint skipped, and of the step packed. Returns the path written."""
    store = RunStore(home, create=False)
    run = store.run(run_id)
    run_dir = store.run_dir(run_id)
    ckpt, source = load_run_checkpoint(run_dir, notify)
    model, cfg, args = model_from_payload(ckpt, run.get("config") or {})
    name = file_name(run_stem("msq-model", run), f".{SUFFIX}")
    path = default_output(run_dir, name, EXPORTS_DIR) if out is None else resolve_output(out, run_dir, name)
    check_writable(path, overwrite)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "msq_version": __version__,
               "torch_version": str(torch.__version__),
               "run": {"id": run_id, "name": run.get("name") or "", "method": cfg.method, "status": run["status"],
                       "epoch": (ckpt.get("state") or {}).get("epoch"), "step": (ckpt.get("state") or {}).get("step"),
                       "checkpoint": source.name},
               "config": cfg.to_dict(), "model": args}
    packed = pack_state(model)
    payload.update(sizes=_sizes(packed), codes=packed["codes"], floats=packed["floats"], others=packed["others"],
                   index=encode_index(packed))
    buffer = io.BytesIO()
    torch.save(payload, buffer)        # in memory: the archive inside is named "archive", not after a temp file
    if write_atomic(path, buffer.getvalue(), overwrite=overwrite) and notify:
        notify(f"replaced the existing {path}")
    if notify:
        notify(packed_step_note(store, run, payload["run"]))
    return path


def packed_step_note(store: RunStore, run: dict, packed: dict) -> str:
    """Which step the file packs, and -- when the run's report describes a later one (a stop whose
    snapshot could not be written, a damaged checkpoint skipped) -- that it differs."""
    text = f"packed the model at step {packed['step']} (epoch {packed['epoch']}) from {packed['checkpoint']}"
    summary = run.get("summary") or {}
    described = summary.get("steps_done") if summary else max(
        (v["step"] for v in store.latest_scalars(run["id"]).values() if v["step"] is not None), default=None)
    if described is not None and packed["step"] is not None and described != packed["step"]:
        text += (f"; note: the run's report describes step {described}, the model there was not saved "
                 f"(resume the run to train past it and export again)")
    return text


def read_quantized(path: str | os.PathLike) -> dict:
    """The raw payload of a quantized checkpoint, checked to be one this msq can read."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"no quantized checkpoint at {path}: export one with `python -m msq export RUN --out FILE`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelLoadError(f"{path} is not an MSQ quantized checkpoint (format {FORMAT!r}); a training "
                             "checkpoint.pt is exported with `python -m msq export RUN --out model.msq.pt`")
    if payload.get("format_version") not in READABLE_VERSIONS:
        raise ModelLoadError(f"{path} has format_version {payload.get('format_version')!r}; this msq "
                             f"({__version__}) reads versions {', '.join(map(str, READABLE_VERSIONS))}")
    return {**payload, **decode_index(payload["index"])}


def unpacked_state(payload: dict) -> dict:
    """The state_dict the payload stands for: dequantized weights, scales, widths, floats."""
    state = {}
    floats = payload["floats"]
    for entry in payload["float_table"]:
        state[entry["name"]] = floats[entry["offset"]: entry["offset"] + entry["numel"]].reshape(entry["shape"]).clone()
    for entry in payload["other_table"]:
        group = payload["others"][entry["dtype"]]
        state[entry["name"]] = group[entry["offset"]: entry["offset"] + entry["numel"]].reshape(entry["shape"]).clone()
    codes, version = payload["codes"], payload.get("format_version", FORMAT_VERSION)
    for layer in payload["layers"]:
        shape, bits = torch.Size(layer["shape"]), layer["bits"]
        grid = layer.get("grid", "affine")
        raw = codes[layer["offset"]: layer["offset"] + layer["nbytes"]]
        scale = torch.tensor(layer["scale"], dtype=torch.float32)
        if version == 1:   # unsigned codes, MSB first, affine grid
            weight = dequantize_codes(unpack_codes_v1(raw, bits, shape.numel()), scale, bits)
        elif _binary(grid, bits):
            weight = dequantize_weight_codes(unpack_codes(raw, 1, shape.numel(), signed=False) * 2 - 1, scale, 1, grid)
        else:
            weight = dequantize_weight_codes(unpack_codes(raw, bits, shape.numel()), scale, bits, grid)
        state[f"{layer['fqn']}.weight"] = weight.reshape(shape)
        state[f"{layer['fqn']}.scale"] = scale
        state[f"{layer['fqn']}._extra_state"] = {"bits": bits, "fixed": layer["fixed"],
                                                 "fixed_reason": layer["fixed_reason"], "grid": grid}
    return state


def load_quantized(path: str | os.PathLike, model: Optional[nn.Module] = None, *,
                   trust_code: bool = False) -> nn.Module:
    """Rebuild the model of a quantized checkpoint: create it from the stored config (or take ``model``,
    a float model of the same architecture), quantize it, load the unpacked weights, scales and
    widths, then ``convert_`` (frozen, eval mode).

    Loading never runs code named inside the file: a checkpoint whose model is a ``file.py:factory``
    is refused unless you pass ``model`` (your own float instance) or ``trust_code=True`` (import and
    run that file: only for files you made). Registry and ``tv:`` models are built from this msq."""
    payload = read_quantized(path)
    cfg = RunConfig.from_dict(payload["config"])
    name = str((payload.get("model") or {}).get("name") or cfg.model)
    if model is None and is_file_spec(name) and not trust_code:
        raise ModelLoadError(
            f"{path} names the model {name!r}, a Python file that loading would import and run; msq does "
            "not run code named inside a checkpoint. Pass your own float model instead, "
            "load_quantized(path, model=my_model), or, only if you trust that file, trust_code=True")
    if model is None:
        model = build_quantized_model(cfg, payload["model"])
    else:
        quantize_(model, cfg.quant)
    try:
        model.load_state_dict(unpacked_state(payload), strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{path} does not fit the model {payload['model']['name']!r} built from its config: "
                             f"{str(exc).splitlines()[0]}") from None
    return convert_(model).eval()


def packed_sizes(path: str | os.PathLike) -> dict:
    """``sizes`` of a quantized checkpoint plus its file size in bytes."""
    return {**read_quantized(path)["sizes"], "file_bytes": Path(path).stat().st_size}


__all__ = ["FORMAT", "FORMAT_VERSION", "READABLE_VERSIONS", "export_quantized", "load_quantized", "pack_state", "packed_nbytes",
           "packed_sizes", "read_quantized", "unpacked_state"]
