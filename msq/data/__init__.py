"""Datasets for MSQ Studio: bundled real data that works offline, torchvision sets over a local root,
a fixed seeded train/val split, and a fast deterministic batch loader.

    from msq.config import DataConfig
    from msq.data import load_dataset, make_loader
    data = load_dataset(DataConfig(name="mnist5k"))      # 4,000 train / 1,000 val, normalised
    for x, y in make_loader(data.train, 64, shuffle=True, seed=0, epoch=0): ...
"""
from msq.data.bundle import DatasetBundle, ImageTensorDataset
from msq.data.loader import example_input, make_loader
from msq.data.registry import dataset_info, list_datasets, load_dataset

__all__ = ["DatasetBundle", "ImageTensorDataset", "dataset_info", "example_input", "list_datasets",
           "load_dataset", "make_loader"]
