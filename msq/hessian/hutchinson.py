"""Per-layer Hessian traces by Hutchinson's estimator (METHODS §4, HAWQ-V2 / PyHessian).

One Rademacher probe z spans every quantized layer's weight at once; one Hessian-vector product Hz
(double backprop) then gives every layer's sample z_l^T (Hz)_l, because Tr(H_ll) = E[z_l^T H_ll z_l]
and (Hz)_l = H_ll z_l + Σ_{k≠l} H_lk z_k with E[z_l^T H_lk z_k] = 0 for independent blocks.
The per-layer samples sum exactly to the full-model sample z^T H z.

Sensitivity = Tr(H_l) / N_l (the average trace). The forward pass is the one being trained (the
quantized one during the search), with BatchNorm and dropout in eval mode.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional

import torch
from torch import nn

from msq.eval_mode import eval_mode
from msq.quant import quant_layers


@dataclass
class TraceEstimate:
    """Per-layer Hutchinson estimates. ``samples`` has one row per (batch, probe), one column per layer."""
    names: list[str]
    numels: list[int]
    samples: torch.Tensor                 # [S, L] float64, z_l^T (Hz)_l
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def traces(self) -> list[float]:
        """Estimated Tr(H_l)."""
        return self.samples.mean(0).tolist()

    @property
    def trace_std_errors(self) -> list[float]:
        count = self.samples.shape[0]
        if count < 2:
            return [math.nan] * len(self.names)
        return (self.samples.std(0, unbiased=True) / math.sqrt(count)).tolist()

    @property
    def sensitivities(self) -> list[float]:
        """Average trace Tr(H_l) / N_l."""
        return [t / n for t, n in zip(self.traces, self.numels)]

    @property
    def sensitivity_std_errors(self) -> list[float]:
        return [e / n for e, n in zip(self.trace_std_errors, self.numels)]

    @property
    def total_trace(self) -> float:
        """Estimated Tr(H) over all the layers' weights (the full-model estimate, same probes)."""
        return float(self.samples.sum(1).mean())

    def relative_std_errors(self) -> list[float]:
        """se_l / |Tr_l| per layer (inf where the estimate is 0, nan with fewer than 2 samples)."""
        return [e / abs(t) if t != 0 else math.inf for t, e in zip(self.traces, self.trace_std_errors)]

    def sensitivity_intervals(self, z: float = 1.96) -> list[tuple[float, float]]:
        """(low, high) of each layer's Tr/N at ± z standard errors (z = 1.96: a 95% interval)."""
        return [(s - z * e, s + z * e) for s, e in zip(self.sensitivities, self.sensitivity_std_errors)]

    def as_dict(self) -> dict:
        return {"names": self.names, "trace": self.traces, "trace_se": self.trace_std_errors,
                "sensitivity": self.sensitivities, "sensitivity_se": self.sensitivity_std_errors,
                "samples": int(self.samples.shape[0]), "seconds": self.seconds, **self.extra}


def rademacher_like(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """±1 with equal probability, same shape/dtype/device as ``tensor``."""
    bits = torch.randint(0, 2, tensor.shape, generator=generator, device=generator.device)
    return (bits.to(tensor.dtype) * 2 - 1).to(tensor.device)


def hutchinson_samples(loss: torch.Tensor, params: list[torch.Tensor], probes: int,
                       generator: torch.Generator) -> torch.Tensor:
    """[probes, L] samples z_l^T (Hz)_l of the Hessian of ``loss`` with respect to ``params``."""
    grads = torch.autograd.grad(loss, params, create_graph=True)
    rows = []
    for probe in range(probes):
        zs = [rademacher_like(p, generator) for p in params]
        hz = torch.autograd.grad(grads, params, grad_outputs=zs, retain_graph=probe < probes - 1)
        rows.append(torch.stack([(z * h).sum().double() for z, h in zip(zs, hz)]))
    return torch.stack(rows)


def estimate_layer_traces(model: nn.Module, batches: Iterable, loss_fn: Callable = nn.functional.cross_entropy,
                          layers: Optional[list[tuple[str, nn.Module]]] = None, probes: int = 4,
                          seed: int = 0, device: Optional[torch.device] = None, target_rse: Optional[float] = None,
                          min_batches: int = 1, watch: Optional[list[int]] = None) -> TraceEstimate:
    """Hutchinson estimate of every layer's weight-Hessian trace over ``batches`` of (x, y).

    ``layers`` defaults to the model's quantized layers. The model's train/eval mode is restored.
    With ``target_rse``, batches are consumed only until every watched layer's relative standard
    error (se / |Tr|) is at or below it (after ``min_batches``); ``extra`` then says whether it was met.
    """
    layers = layers if layers is not None else quant_layers(model)
    params = [layer.weight for _, layer in layers]
    device = device or params[0].device
    generator = torch.Generator(device=device if device.type == "cuda" else "cpu")
    generator.manual_seed(seed)
    started = time.perf_counter()
    chunks = []
    names, numels = [name for name, _ in layers], [p.numel() for p in params]
    watch = list(range(len(layers))) if watch is None else watch
    met = None
    with eval_mode(model), torch.enable_grad():
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model(x), y)
            chunks.append(hutchinson_samples(loss, params, probes, generator))
            if target_rse is not None and len(chunks) >= min_batches:
                rse = TraceEstimate(names, numels, torch.cat(chunks)).relative_std_errors()
                met = all(rse[i] <= target_rse for i in watch)
                if met:
                    break
    samples = torch.cat(chunks).cpu()
    extra = {} if target_rse is None else {"target_rse": target_rse, "target_met": bool(met), "batches": len(chunks)}
    return TraceEstimate(names=names, numels=numels, samples=samples, seconds=time.perf_counter() - started,
                         extra=extra)
