"""What ``load_dataset`` returns: a DatasetBundle of two normalised datasets plus their shape.

In-memory datasets are ``ImageTensorDataset``s: a TensorDataset of float images [N, C, H, W] that are
already normalised, and int64 labels [N]. Holding whole tensors lets ``make_loader`` gather a batch
by one index op instead of collating samples one by one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from msq.data.split import split_indices


class ImageTensorDataset(TensorDataset):
    """Normalised images and labels in memory; ``augment`` asks the loader for random crop + flip."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, augment: bool = False):
        super().__init__(images, labels)
        self.augment = augment

    @property
    def images(self) -> torch.Tensor:
        return self.tensors[0]

    @property
    def labels(self) -> torch.Tensor:
        return self.tensors[1]


@dataclass
class DatasetBundle:
    """A dataset ready to train on: normalisation is already applied inside ``train`` and ``val``."""
    name: str
    train: Dataset
    val: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple          # per channel, in [0, 1] pixel units, as subtracted before dividing by std
    std: tuple
    description: str = ""

    def __repr__(self) -> str:  # the datasets themselves are not worth printing
        return (f"DatasetBundle({self.name!r}, train={len(self.train)}, val={len(self.val)}, "
                f"classes={self.num_classes}, shape=({self.in_channels}, {self.image_size}, {self.image_size}))")


def bundle_from_arrays(name: str, images: np.ndarray, labels: np.ndarray, cfg, scale: float,
                       description: str, num_classes: int | None = None) -> DatasetBundle:
    """Split, cap and normalise one in-memory array of images [N, C, H, W] (values 0..scale).

    The split comes from ``cfg.split_seed`` only; mean/std are those of the training split as used
    (after ``cfg.limit``), so validation data never leaks into the normalisation.
    """
    train_idx, val_idx = split_indices(labels, cfg.val_fraction, cfg.split_seed)
    if cfg.limit is not None:
        train_idx = train_idx[:cfg.limit]          # train_idx is in seeded random order
    x = torch.from_numpy(np.array(images, dtype=np.float32) / scale)
    y = torch.from_numpy(np.array(labels, dtype=np.int64))  # a copy: cached arrays are read-only
    x_train = x[torch.from_numpy(train_idx)]
    mean = x_train.mean(dim=(0, 2, 3))
    std = x_train.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return DatasetBundle(
        name=name,
        train=ImageTensorDataset(normalize(x_train, mean, std), y[torch.from_numpy(train_idx)]),
        val=ImageTensorDataset(normalize(x[torch.from_numpy(val_idx)], mean, std), y[torch.from_numpy(val_idx)]),
        num_classes=int(num_classes or int(y.max()) + 1), in_channels=x.shape[1], image_size=x.shape[2],
        mean=tuple(mean.tolist()), std=tuple(std.tolist()), description=description)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """(x - mean) / std per channel of x [N, C, H, W]."""
    mean = torch.as_tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - mean) / std
