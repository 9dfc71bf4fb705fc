"""The fixed train/val split: stratified, seeded by ``split_seed`` only (never by the training seed),
so every run with the same data config sees exactly the same validation images."""
from __future__ import annotations

import numpy as np


def split_indices(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): ``round(N * val_fraction)`` validation samples, each class in proportion.

    Class quotas use largest remainders so the total is exact (5,000 at 0.2 -> 4,000 / 1,000).
    Training indices come back in a seeded random order, so ``train_idx[:limit]`` is a random subset;
    validation indices come back sorted.
    """
    labels = np.asarray(labels)
    n = len(labels)
    n_val = min(max(int(round(n * val_fraction)), 1), n - 1)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n_val / n
    take = np.floor(quota).astype(np.int64)
    leftover = n_val - int(take.sum())
    take[np.argsort(-(quota - take), kind="stable")[:leftover]] += 1
    is_val = np.zeros(n, dtype=bool)
    for cls, k in zip(classes, take):
        is_val[rng.permutation(np.flatnonzero(labels == cls))[:k]] = True
    return rng.permutation(np.flatnonzero(~is_val)), np.flatnonzero(is_val)


def seeded_subset(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` samples, a random subset fixed by ``seed`` (all when None)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])
