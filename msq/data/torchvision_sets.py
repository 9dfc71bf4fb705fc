"""Datasets read by torchvision from a local folder: ``cifar10``, ``mnist``, ``fashion-mnist`` and
``imagefolder:PATH``. Nothing is downloaded unless ``data.download`` is true.

The three standard sets use their official test split as the validation set (so accuracies compare
with published numbers; ``val_fraction`` does not apply) and their usual normalisation constants.
They are decoded once into memory as tensors, so a batch is one tensor gather instead of a PIL
conversion per image; CIFAR-10 then takes ~0.7 GB of RAM. ``imagefolder`` stays on disk, decoded per image.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from msq.data import idx
from msq.data.bundle import DatasetBundle, ImageTensorDataset
from msq.data.split import seeded_subset, split_indices
from msq.errors import DatasetNotFoundError

# name -> (torchvision class, folder it looks in under root, mean, std)
STANDARD = {
    "cifar10": ("CIFAR10", "cifar-10-batches-py", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "mnist": ("MNIST", "MNIST/raw", (0.1307,), (0.3081,)),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST/raw", (0.2860,), (0.3530,)),   # IDX files: msq.data.idx
}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_standard(name: str, cfg) -> DatasetBundle:
    """cifar10 / mnist / fashion-mnist from ``cfg.root`` as normalised in-memory tensors."""
    class_name, folder, mean, std = STANDARD[name]
    train_x, train_y = _read_split(name, class_name, folder, cfg, train=True)
    val_x, val_y = _read_split(name, class_name, folder, cfg, train=False)
    keep = torch.from_numpy(seeded_subset(len(train_y), cfg.limit, cfg.split_seed))
    train_x, train_y = train_x[keep], train_y[keep]
    augment = cfg.augment and train_x.shape[-1] == 32      # crops and flips for 32x32 sets only
    return DatasetBundle(
        name=name,
        train=ImageTensorDataset(_to_normalized(train_x, mean, std), train_y, augment=augment),
        val=ImageTensorDataset(_to_normalized(val_x, mean, std), val_y),
        num_classes=10, in_channels=train_x.shape[1], image_size=train_x.shape[-1], mean=mean, std=std,
        description=f"{class_name} from {_source(name, cfg)} (val = official test split)")


def _source(name: str, cfg) -> str:
    found = idx.find_idx_files(name, cfg.root, True) if name in idx.IDX_LOCATIONS else None
    return str(found[0].parent) if found else str(cfg.root)


def _to_normalized(images: torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    """uint8 [N, C, H, W] -> normalised float32, in place after one conversion (CIFAR-10: 0.6 GB, not 1.8)."""
    x = images.float().div_(255.0)
    return x.sub_(torch.tensor(mean).view(1, -1, 1, 1)).div_(torch.tensor(std).view(1, -1, 1, 1))


def _read_split(name: str, class_name: str, folder: str, cfg, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images [N, C, H, W], int64 labels [N]) of the official train or test split.

    MNIST-style sets are read from their IDX files (gzipped or not) wherever ``msq.data.idx`` finds
    them (data.root, then the folder a system package installs); torchvision only reads CIFAR-10 or
    downloads when data.download is set.
    """
    if name in idx.IDX_LOCATIONS:
        found = idx.find_idx_files(name, cfg.root, train)
        if found is not None:
            return idx.read_idx_split(*found)
        if not cfg.download:
            looked = ", ".join(str(p) for p in idx.search_folders(name, cfg.root))
            hint = f" install it with `{idx.INSTALL_HINT[name]}`," if name in idx.INSTALL_HINT else ""
            raise DatasetNotFoundError(
                f"{name} not found under {Path(cfg.root).expanduser().resolve()} (looked in {looked}):{hint} put "
                "the four IDX files in --data-root (data.root), or pass --data-download (data.download=true) on a "
                "machine with network")
    import torchvision

    root = Path(cfg.root).expanduser()
    try:
        ds = getattr(torchvision.datasets, class_name)(str(root), train=train, download=cfg.download)
    except Exception as exc:  # torchvision raises RuntimeError when files are missing, others on download
        where = (root / folder).resolve()
        if cfg.download:
            raise DatasetNotFoundError(f"{name}: downloading into {root.resolve()} failed ({exc}); on a machine "
                                       f"without network put the files under {where} by hand") from None
        raise DatasetNotFoundError(
            f"{name} not found under {root.resolve()} (looked in {where}): put the {class_name} files there, point "
            "--data-root / data.root at the folder that holds them, or pass --data-download "
            "(data.download=true) on a machine with network") from None
    data = torch.as_tensor(np.asarray(ds.data))
    images = data.permute(0, 3, 1, 2) if data.ndim == 4 else data.unsqueeze(1)   # -> [N, C, H, W]
    return images.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)


def load_imagefolder(path_text: str, cfg, image_size: int = 32) -> DatasetBundle:
    """ImageFolder over PATH (``PATH/train`` + ``PATH/val`` if both exist, else a seeded split),
    images resized to ``image_size`` and normalised with the ImageNet constants."""
    from torch.utils.data import Subset
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    path = Path(path_text).expanduser()
    if not path_text or not path.is_dir():
        raise DatasetNotFoundError(f"imagefolder: folder {path_text!r} not found (looked at {path.resolve()}); pass "
                                   "imagefolder:PATH with one sub-folder per class (PATH/cat/1.png, PATH/dog/2.png)")
    base = [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    crop = [T.RandomCrop(image_size, padding=max(1, image_size // 8)), T.RandomHorizontalFlip()]
    train_tf = T.Compose(base[:1] + (crop if cfg.augment else []) + base[1:])
    val_tf = T.Compose(base)

    def folder(p: Path, tf) -> ImageFolder:
        try:
            return ImageFolder(str(p), transform=tf)
        except FileNotFoundError as exc:
            raise DatasetNotFoundError(f"imagefolder: {p.resolve()} holds no images ({exc}); put images in one "
                                       "sub-folder per class, e.g. PATH/cat/1.png") from None

    if (path / "train").is_dir() and (path / "val").is_dir():
        train, val = folder(path / "train", train_tf), folder(path / "val", val_tf)
        if train.classes != val.classes:
            raise DatasetNotFoundError(f"imagefolder: {path}/train and {path}/val have different class folders "
                                       f"({train.classes} vs {val.classes}); give both the same sub-folders")
        classes = train.classes
        train_idx = seeded_subset(len(train), cfg.limit, cfg.split_seed)
    else:
        train, val = folder(path, train_tf), folder(path, val_tf)
        classes = train.classes
        train_idx, val_idx = split_indices(np.asarray(train.targets), cfg.val_fraction, cfg.split_seed)
        val = Subset(val, val_idx.tolist())
        if cfg.limit is not None:
            train_idx = train_idx[:cfg.limit]
    return DatasetBundle(
        name=f"imagefolder:{path_text}", train=Subset(train, train_idx.tolist()), val=val,
        num_classes=len(classes), in_channels=3, image_size=image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD,
        description=f"images from {path} ({len(classes)} classes, resized to {image_size}x{image_size})")
