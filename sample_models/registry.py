"""The model registry (timm-style): ``register_model``, ``create_model``, ``list_models``, ``model_info``.

Three kinds of names reach ``create_model``, the one entry point the trainer, the CLI and the
dashboard use:

- a registered sample model (``lenet5``, ``resnet20``, ...), built by its factory here;
- ``tv:NAME``, a torchvision classification model with random weights (see ``loading.py``);
- ``path/to/file.py:factory``, a user's own model file (see ``loading.py``).

Every factory takes ``(num_classes, in_channels, image_size)`` plus its own keyword options (e.g.
resnet20's ``shortcut``), so a model is always shaped for the dataset it meets (8x8 digits, 28x28
MNIST, 32x32 CIFAR; 1 or 3 channels). Options a factory does not name are refused, not ignored.
"""
from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from msq.errors import ConfigError, UnknownNameError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable:
    """Decorator that adds a factory under ``name``; the first docstring line is its description."""
    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is registered twice ({_MODELS[name].__module__} "
                             f"and {factory.__module__}); pick another name")
        _MODELS[name] = factory
        return factory
    return add


def list_models() -> list[str]:
    """Registered model names, sorted (``tv:NAME`` and ``file.py:factory`` also work in create_model)."""
    return sorted(_MODELS)


def is_file_spec(name: str) -> bool:
    """True for ``path/to/file.py:factory`` (and a bare ``file.py``, which then asks for the factory)."""
    return name.endswith(".py") or (":" in name and name.rsplit(":", 1)[0].endswith(".py"))


def model_info(name: str) -> dict:
    """``{"name", "description", "source"}`` for any name create_model accepts, without building it."""
    if name.startswith("tv:"):
        return {"name": name, "source": "torchvision",
                "description": f"torchvision {name[3:]} with random weights (never downloads pretrained)"}
    if is_file_spec(name):
        return {"name": name, "source": "file", "description": f"user model from {name}"}
    factory = _lookup(name)
    doc = (factory.__doc__ or "").strip().splitlines()
    return {"name": name, "source": "sample_models", "description": doc[0] if doc else ""}


def create_model(name: str, num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                 **kwargs) -> nn.Module:
    """Build a model by name; ``checkpoint=PATH`` also loads a float state_dict into it.

    >>> model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    """
    from sample_models.loading import create_from_file, create_torchvision_model, load_checkpoint

    checkpoint = kwargs.pop("checkpoint", None)
    if name.startswith("tv:"):
        model = create_torchvision_model(name[3:], num_classes, in_channels, image_size, **kwargs)
    elif is_file_spec(name):
        model = create_from_file(name, num_classes, in_channels, image_size, **kwargs)
    else:
        factory = _lookup(name)
        check_kwargs(name, factory, kwargs)
        try:
            model = factory(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
        except (TypeError, ValueError) as exc:   # a model_kwargs value of the wrong type or size
            if isinstance(exc, ConfigError) or not kwargs:
                raise
            raise ConfigError(f"run.model_kwargs = {kwargs!r} is invalid for model {name!r}: {type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}; allowed values "
                              f"are those of {name}'s options (see its factory's defaults)") from None
    if checkpoint:
        load_checkpoint(model, checkpoint)
    return model


def _lookup(name: str) -> Callable[..., nn.Module]:
    if name not in _MODELS:
        raise UnknownNameError(
            f"unknown model {name!r}: available models are {', '.join(list_models())}; "
            "also tv:NAME for a torchvision model (e.g. tv:resnet18) or path/to/file.py:factory for your own")
    return _MODELS[name]


def check_kwargs(name: str, factory: Callable, kwargs: dict) -> None:
    """Reject model_kwargs the factory does not take, naming them and the ones it does take."""
    params = inspect.signature(factory).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        accepted = [k for k in params if k not in ("num_classes", "in_channels", "image_size")]
        raise ConfigError(f"model_kwargs {', '.join(map(repr, unknown))} not accepted by model {name!r}: "
                          f"allowed keys are {', '.join(accepted) or '(none)'}")
