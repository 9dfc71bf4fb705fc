"""Data-parallel training with PyTorch DDP, launched by torchrun (one process per rank).

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK (and the rendezvous address); the trainer calls
``init_distributed`` and gets a ``DistContext``. With one process everything here is a no-op, so the
single-process path is the same code. Backend: nccl on CUDA, gloo on CPU.

What must agree across ranks, and how it is kept so:
- weights: DDP averages gradients; every rank starts from the same seed (and rank 0's broadcast).
- pruning decisions: they follow from replicated weights; rank 0's decisions are broadcast anyway.
- stop requests and live λ: read from the store by rank 0 only, broadcast before every step.
- Hessian traces: each rank estimates on its own batches; the samples are gathered, so the estimate
  uses world × the data at the same cost per rank.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")   # where collectives put their tensors (nccl: the GPU)

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def init_distributed(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join the process group torchrun set up (if any); on CUDA each rank takes GPU ``LOCAL_RANK``."""
    world = env_world_size()
    if world <= 1:
        return DistContext(), device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    ctx = DistContext(rank=env_rank(), world=world, local_rank=local_rank,
                      device=device if device.type == "cuda" else torch.device("cpu"))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=int(os.environ.get("MSQ_DIST_TIMEOUT", "300"))))
    return ctx, device


def broadcast_object(ctx: DistContext, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_reduce_sum(ctx: DistContext, values: list[float]) -> list[float]:
    if not ctx.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()


def all_gather_rows(ctx: DistContext, rows: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's [S, L] sample rows (same S on every rank) in rank order."""
    if not ctx.enabled:
        return rows
    rows = rows.to(ctx.device).contiguous()
    parts = [torch.empty_like(rows) for _ in range(ctx.world)]
    dist.all_gather(parts, rows)
    return torch.cat(parts).cpu()


def sync_controls(ctx: DistContext, stop: bool, lam: float) -> tuple[bool, float]:
    """Rank 0's stop flag and λ on every rank (one tiny broadcast per step)."""
    if not ctx.enabled:
        return stop, lam
    tensor = torch.tensor([1.0 if stop else 0.0, lam], dtype=torch.float64, device=ctx.device)
    dist.broadcast(tensor, src=0)
    return bool(tensor[0].item()), float(tensor[1].item())


def broadcast_parameters_(ctx: DistContext, module: torch.nn.Module) -> None:
    """Every rank starts from rank 0's parameters and buffers (DDP does this at wrap time too)."""
    if ctx.enabled:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_for_training(model: torch.nn.Module, ctx: DistContext, device: torch.device, cfg) -> torch.nn.Module:
    """The module the training step calls: DDP around ``model`` with several ranks, else ``model``.

    Everything else (quantized layers, pruning, the Hessian, checkpoints) works on the bare ``model``.
    PACT clips are unused while pretraining in float mode, so then DDP must look for unused parameters.
    """
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   find_unused_parameters=cfg.quant.act_bits is not None)
