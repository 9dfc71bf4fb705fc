"""Read MNIST-style IDX files (plain or gzipped) straight into tensors, and find them on disk.

An IDX file is a big-endian header (two zero bytes, a type code, the number of dimensions, then one
uint32 size per dimension) followed by the raw array. MNIST and Fashion-MNIST ship their images as
uint8 [N, 28, 28] and labels as uint8 [N]. Debian's ``dataset-fashion-mnist`` package installs the
four gzipped files under /usr/share/datasets/fashion-mnist/, which ``find_idx_files`` looks in after
``data.root`` (torchvision's layout ``<root>/FashionMNIST/raw`` or the files directly in ``root``).
"""
from __future__ import annotations

import gzip
from pathlib import Path
from typing import Optional

import numpy as np
import torch

# IDX type code -> numpy dtype (big-endian where it matters)
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
SPLIT_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# dataset name -> (torchvision's folder under root, system folders a package installs)
IDX_LOCATIONS = {
    "fashion-mnist": ("FashionMNIST/raw", ("/usr/share/datasets/fashion-mnist",)),
    "mnist": ("MNIST/raw", ("/usr/share/datasets/mnist",)),
}
INSTALL_HINT = {"fashion-mnist": "apt-get install -y dataset-fashion-mnist (or `make install`)"}


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in one IDX file (``.gz`` is decompressed on the fly)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise ValueError(f"{path}: header says {shape} ({expected} bytes) but {len(data) - offset} bytes follow")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape)


def _locate(folder: Path, stem: str) -> Optional[Path]:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def search_folders(name: str, root: str | Path) -> list[Path]:
    """Where ``name``'s IDX files are looked for, in order."""
    sub, system = IDX_LOCATIONS[name]
    root = Path(root).expanduser()
    return [root / sub, root, *map(Path, system)]


def find_idx_files(name: str, root: str | Path, train: bool) -> Optional[tuple[Path, Path]]:
    """(images, labels) paths of one split in the first folder that has both, or None."""
    for folder in search_folders(name, root):
        found = [_locate(folder, stem) for stem in SPLIT_FILES[train]]
        if all(found):
            return found[0], found[1]
    return None


def read_idx_split(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, 1, H, W], int64 labels [N]) from one split's two files."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{images_path} / {labels_path}: expected [N, H, W] images and [N] labels, got "
                         f"{images.shape} and {labels.shape}")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))
