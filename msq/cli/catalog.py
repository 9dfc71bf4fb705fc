"""``models`` and ``datasets``: what can be trained here."""
from __future__ import annotations


def register(subparsers) -> None:
    models = subparsers.add_parser("models", help="list the sample models")
    models.set_defaults(handler=_list_models)
    datasets = subparsers.add_parser("datasets", help="list the datasets")
    datasets.set_defaults(handler=_list_datasets)


def _list_models(args) -> int:
    from sample_models import list_models, model_info
    for name in list_models():
        print(f"{name:<16} {model_info(name).get('description', '')}")
    print("tv:NAME          any torchvision classification model (random init, no download)")
    print("FILE.py:FACTORY  your own model: a function in a Python file that returns an nn.Module")
    return 0


def _list_datasets(args) -> int:
    from msq.data import dataset_info, list_datasets
    for name in list_datasets():
        print(f"{name:<16} {dataset_info(name).get('description', '')}")
    print("imagefolder:PATH an image folder (class subfolders; train/ and val/ inside, or a seeded split)")
    return 0
