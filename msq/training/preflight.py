"""Checks of a run's model against its dataset, before any run is created or queued.

``check_forward`` runs the model once on a batch of the dataset's shape: it must not raise and must give
one score per class. ``build_model_and_data`` calls it on real images, so every run (foreground, worker,
dashboard) fails with the same one-line ModelLoadError; ``preflight`` calls it on zeros of the shape the
dataset table gives, without loading the data, so ``sweep`` can refuse a bad model or dataset name before
it queues anything. ``unsearched_warning`` says when a run would search no layer at all, ``budget_warning``
when its budget is below what the model can reach.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from msq.config import RunConfig
from msq.errors import DatasetNotFoundError, ModelLoadError

DRY_BATCH = 2   # BatchNorm in eval mode needs no more; 2 rather than 1 catches a hard-coded batch size


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_forward(model: nn.Module, x: torch.Tensor, num_classes: Optional[int], model_name: str,
                  dataset: str) -> None:
    """One forward of ``x`` (no gradients, eval mode, the mode restored after): it must not raise and must
    return a tensor [batch, num_classes] (any width when ``num_classes`` is None)."""
    shape = list(x.shape)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as exc:   # the user's model: any failure is reported in one line
        raise ModelLoadError(
            f"model {model_name!r} failed on a batch of {dataset} images of shape {shape}: {type(exc).__name__}: "
            f"{_first_line(exc)}; it must accept [N, {shape[1]}, {shape[2]}, {shape[3]}] inputs (the factory "
            f"is given in_channels={shape[1]} and image_size={shape[2]})") from None
    finally:
        model.train(was_training)
    allowed = f"[{shape[0]}, {num_classes if num_classes is not None else 'classes'}]"
    got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    ok = isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == shape[0] and (
        num_classes is None or out.shape[1] == num_classes)
    if not ok:
        raise ModelLoadError(
            f"model {model_name!r} output for a batch of {dataset} images {shape} is {got}: allowed {allowed}, one "
            f"score per class of {dataset}; make the last layer give num_classes outputs (the factory is given "
            f"num_classes={num_classes})")


def unsearched_warning(model: nn.Module, model_name: str) -> Optional[str]:
    """A one-line warning when the (quantized) model has quantized layers but none of them is searched."""
    from msq.quant import quant_layers, searched_layers

    layers = quant_layers(model)
    if not layers or searched_layers(model):
        return None
    return (f"no layer of model {model_name!r} is searched: its {len(layers)} quantized layer(s) all keep a fixed "
            "width (quant.keep_first_last keeps the first and last, quant.fixed the matched ones), so no bit-width "
            "changes; set quant.keep_first_last=false or use a model with more layers")


def budget_warning(model: nn.Module, cfg: RunConfig) -> Optional[str]:
    """A one-line warning when the budget is below the smallest average the model can reach (every searched
    layer at ``prune.min_bits``, the fixed ones at their width): the run then ends above its target."""
    from msq.accounting import average_bits
    from msq.methods import BUDGET_NONE, find_method
    from msq.methods.budget import lowest_widths
    from msq.quant import quant_layers

    target, layers, spec = cfg.prune.budget_bits, quant_layers(model), find_method(cfg.method)
    if target is None or not layers or spec is None or spec.budget == BUDGET_NONE:
        return None
    lowest = lowest_widths([layer.bits for _, layer in layers], [not layer.fixed for _, layer in layers],
                           cfg.prune.min_bits)
    floor = average_bits([layer.weight.numel() for _, layer in layers], lowest)
    if target >= floor - 1e-9:
        return None
    return (f"the budget of {target:.2f} average bits is below the {floor:.2f} this model can reach with "
            f"prune.min_bits = {cfg.prune.min_bits} and its fixed layers, so the run will end above it; lower "
            "prune.min_bits (1 = binary), search the fixed layers (quant.keep_first_last=false) or raise the target")


def run_warnings(model: nn.Module, cfg: RunConfig) -> list[str]:
    """The warnings a run starts with (also shown before it is queued)."""
    return [w for w in (unsearched_warning(model, cfg.model), budget_warning(model, cfg)) if w]


def preflight(cfg: RunConfig) -> list[str]:
    """Build ``cfg``'s model for its dataset's shape (the data is not loaded), run ``check_forward`` on a
    zero batch, and return the warnings (``run_warnings``). Raises the one-line MSQError otherwise."""
    from msq.data import dataset_info
    from msq.data.registry import IMAGEFOLDER
    from msq.quant import quantize_
    from sample_models import create_model

    info = dataset_info(cfg.data.name)
    if cfg.data.name.startswith(IMAGEFOLDER):
        folder = Path(cfg.data.name[len(IMAGEFOLDER):]).expanduser()
        if not folder.is_dir():
            raise DatasetNotFoundError(f"data.name = {cfg.data.name!r}: the folder {folder} does not exist; give "
                                       "a folder with one sub-folder of images per class")
    channels, size = info["in_channels"], info["image_size"]
    model = create_model(cfg.model, num_classes=info["num_classes"] or 2, in_channels=channels, image_size=size,
                         checkpoint=cfg.checkpoint, **cfg.model_kwargs)
    check_forward(model, torch.zeros(DRY_BATCH, channels, size, size), info["num_classes"], cfg.model, info["name"])
    quantize_(model, cfg.quant)
    return run_warnings(model, cfg)
