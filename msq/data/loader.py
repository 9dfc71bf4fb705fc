"""Batches for training and evaluation, deterministic given (seed, epoch).

In-memory TensorDatasets (and Subsets of them) are batched by indexing the tensors with a seeded
permutation: one gather per batch instead of DataLoader's per-sample ``__getitem__`` + collate.
Anything else falls back to a ``torch.utils.data.DataLoader`` with a seeded generator, no workers.
"""
from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset


def make_loader(dataset: Dataset, batch_size: int, shuffle: bool, seed: int = 0, epoch: int = 0,
                drop_last: bool = False, shard: tuple[int, int] = (0, 1)) -> "BatchLoader":
    """An iterable of ``(x, y)`` batches; iterating twice gives the same batches, another epoch others.

    ``shard=(rank, world)`` (distributed training): every rank draws the same global batches of
    ``batch_size`` and keeps samples ``rank, rank + world, ...`` of each, so the ranks together see
    exactly the batches a single process would, and each reads only its own samples.
    """
    return BatchLoader(dataset, batch_size, shuffle, seed, epoch, drop_last, shard)


class BatchLoader:
    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool, seed: int, epoch: int, drop_last: bool,
                 shard: tuple[int, int] = (0, 1)):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size = {batch_size!r} is invalid: allowed an integer >= 1")
        rank, world = shard
        if not 0 <= rank < world:
            raise ValueError(f"shard = {shard!r} is invalid: allowed (rank, world) with 0 <= rank < world")
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.seed, self.epoch, self.drop_last, self.rank, self.world = seed, epoch, drop_last, rank, world

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def global_batches(self, g: torch.Generator) -> list[torch.Tensor]:
        """Index tensors of the global batches, each already cut to this rank's shard."""
        n = len(self.dataset)
        order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
        stop = n - n % self.batch_size if self.drop_last else n
        return [order[start:start + self.batch_size][self.rank::self.world] for start in range(0, stop, self.batch_size)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(mix_seed(self.seed, self.epoch))
        view = tensor_view(self.dataset)
        batches = self.global_batches(g)
        if view is None:   # a dataset on disk: a DataLoader that reads only this rank's samples
            yield from DataLoader(self.dataset, batch_sampler=[b.tolist() for b in batches], num_workers=0)
            return
        (images, labels), index, augment = view
        for idx in batches:
            if index is not None:
                idx = index[idx]
            x, y = images[idx], labels[idx]          # one gather: a fresh batch, never a view of the data
            yield (random_crop_flip(x, g) if augment else x), y


def mix_seed(seed: int, epoch: int) -> int:
    """One well-mixed 63-bit seed from (seed, epoch): nearby pairs give unrelated streams."""
    state = np.random.SeedSequence([seed % 2**64, epoch % 2**64]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def tensor_view(dataset: Dataset) -> Optional[tuple[tuple[torch.Tensor, torch.Tensor], Optional[torch.Tensor], bool]]:
    """((images, labels), index into them or None, augment) for a TensorDataset or Subsets of one."""
    index = None
    while isinstance(dataset, Subset):
        here = torch.as_tensor(dataset.indices, dtype=torch.int64)
        index = here if index is None else here[index]
        dataset = dataset.dataset
    if not isinstance(dataset, TensorDataset) or len(dataset.tensors) != 2:
        return None
    return dataset.tensors, index, bool(getattr(dataset, "augment", False))


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """The CIFAR augmentation, batched: pad by ``pad``, crop back at a random offset, flip half.

    Padding is zero in normalised units, i.e. the dataset's mean colour.
    """
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]       # [B, 1, H, 1]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]       # [B, 1, 1, W]
    out = padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
    flip = torch.rand(b, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def example_input(bundle, batch: int = 2) -> torch.Tensor:
    """``batch`` real validation images [batch, C, H, W] (repeated if the set is smaller)."""
    view = tensor_view(bundle.val)
    if view is not None:
        (images, _), index, _ = view
        picked = index[:batch] if index is not None else torch.arange(min(batch, len(images)))
        x = images[picked]
    else:
        x = torch.stack([bundle.val[i][0] for i in range(min(batch, len(bundle.val)))])
    reps = math.ceil(batch / len(x))
    return x.repeat(reps, 1, 1, 1)[:batch].clone()
