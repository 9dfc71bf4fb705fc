"""Models from outside the registry: ``tv:NAME`` torchvision models, a user's ``file.py:factory``, and
float checkpoints. Every failure becomes a one-line ModelLoadError that says what and how to fix it.

Nothing here touches the network: torchvision models are built with ``weights=None`` and checkpoints
load with ``torch.load(..., weights_only=True)`` (no arbitrary code from a pickle).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path

import torch
from torch import nn

from msq.errors import ModelLoadError, UnknownNameError
from sample_models.registry import check_kwargs


# -- torchvision ---------------------------------------------------------------------------------
def create_torchvision_model(name: str, num_classes: int, in_channels: int, image_size: int, **kwargs) -> nn.Module:
    """torchvision.models.get_model(name, weights=None, num_classes=...), first conv re-made for in_channels."""
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)  # classification models only
    if name not in known:
        raise UnknownNameError(f"unknown torchvision model 'tv:{name}': classification models are "
                               f"{', '.join(known)}")
    if kwargs.get("weights") not in (None, "None"):
        raise ModelLoadError(f"tv:{name}: pretrained weights are never downloaded; drop 'weights' and pass "
                             "checkpoint=PATH with a state_dict you have locally")
    kwargs.pop("weights", None)
    try:
        model = torchvision.models.get_model(name, weights=None, num_classes=num_classes, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"tv:{name} could not be built with model_kwargs {kwargs}: {exc}") from None
    if in_channels != 3:
        _replace_first_conv(model, in_channels, name)
    return model


def _replace_first_conv(model: nn.Module, in_channels: int, name: str) -> None:
    """Swap the first Conv2d for one with ``in_channels`` inputs (same kernel, stride, padding, width)."""
    for fqn, conv in model.named_modules():
        if isinstance(conv, nn.Conv2d):
            parent = model.get_submodule(fqn.rpartition(".")[0]) if "." in fqn else model
            new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                            conv.dilation, groups=1, bias=conv.bias is not None, padding_mode=conv.padding_mode)
            setattr(parent, fqn.rpartition(".")[2], new)
            return
    raise ModelLoadError(f"tv:{name} has no Conv2d to adapt to in_channels={in_channels}; use a 3-channel dataset")


# -- user files ----------------------------------------------------------------------------------
def create_from_file(spec: str, num_classes: int, in_channels: int, image_size: int, **kwargs) -> nn.Module:
    """Import ``path/to/file.py`` by path and call its ``factory`` with the arguments it accepts.

    num_classes/in_channels/image_size are passed only when the factory's signature takes them, so a
    plain ``def make_model(): ...`` works too; other model_kwargs must be accepted by the factory.
    """
    path_text, _, factory_name = spec.rpartition(":") if not spec.endswith(".py") else (spec, ":", "")
    if not factory_name:
        raise ModelLoadError(f"model {spec!r} names no factory: write path/to/file.py:FUNCTION, "
                             "e.g. my_model.py:make_model")
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ModelLoadError(f"model file {path_text!r} not found (looked at {path}); pass an existing "
                             "path/to/file.py:factory, relative to the working directory or absolute")
    module = _import_file(path)
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise ModelLoadError(f"{path.name} has no function {factory_name!r}: it defines "
                             f"{', '.join(found) or 'no public functions'}; name one as {path_text}:NAME")
    params = inspect.signature(factory).parameters
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    shape = dict(num_classes=num_classes, in_channels=in_channels, image_size=image_size)
    args = {k: v for k, v in shape.items() if takes_all or k in params}
    check_kwargs(spec, factory, kwargs)
    try:
        with _on_sys_path(path.parent):
            model = factory(**args, **kwargs)
    except (Exception, SystemExit) as exc:  # the user's code: report any failure (sys.exit too) in one line
        raise ModelLoadError(f"{path.name}:{factory_name}({', '.join(list(args) + list(kwargs))}) raised "
                             f"{type(exc).__name__}: {exc}; fix the factory or the model_kwargs") from exc
    if not isinstance(model, nn.Module):
        raise ModelLoadError(f"{path.name}:{factory_name} returned {type(model).__name__}, not a torch.nn.Module; "
                             "return the model instance (e.g. `return MyNet()`)")
    return model


def _import_file(path: Path):
    """Import a .py file under a unique module name (two user files called model.py do not collide)."""
    name = "msq_user_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"{path} cannot be imported as a Python module; pass a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # dataclasses and pickle look classes up here
    try:
        with _on_sys_path(path.parent):   # so the file can import its sibling modules
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:   # sys.exit() in the file must not end the caller silently
        sys.modules.pop(name, None)
        raise ModelLoadError(f"importing {path} failed with {type(exc).__name__}: {exc}; "
                             "fix the file (try `python {path}`)".replace("{path}", str(path))) from exc
    return module


@contextlib.contextmanager
def _on_sys_path(folder: Path):
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


# -- checkpoints ---------------------------------------------------------------------------------
def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a float state_dict (or a dict holding one under "state_dict" or "model") into ``model``.

    Mismatches are refused with the first few offending keys, instead of loading half a model.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ModelLoadError(f"checkpoint {str(path)!r} not found (looked at {file.resolve()}); pass the path "
                             "of a file written by torch.save(model.state_dict(), PATH)")
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"checkpoint {file} is not a weights-only state_dict ({first}); save it with "
                             "torch.save(model.state_dict(), PATH)") from None
    state = _find_state_dict(payload, file)
    _check_matches(model, state, file)
    model.load_state_dict(state, strict=True)
    return model


def _find_state_dict(payload, file: Path) -> dict:
    for key in ("state_dict", "model"):
        if isinstance(payload, dict) and isinstance(payload.get(key), dict):
            payload = payload[key]
            break
    if not isinstance(payload, dict) or not payload:
        raise ModelLoadError(f"checkpoint {file} holds no state_dict (got {type(payload).__name__}); save it with "
                             "torch.save(model.state_dict(), PATH)")
    if all(isinstance(k, str) and k.startswith("module.") for k in payload):  # saved from DataParallel/DDP
        payload = {k[len("module."):]: v for k, v in payload.items()}
    return payload


def _check_matches(model: nn.Module, state: dict, file: Path) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and isinstance(v, torch.Tensor) and isinstance(state[k], torch.Tensor)
              and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch (checkpoint vs model) {_few(shapes)}")
    if problems:
        raise ModelLoadError(f"checkpoint {file} does not match the model: {'; '.join(problems)}; use a "
                             "checkpoint of this same architecture, num_classes and in_channels")


def _few(items: list, n: int = 3) -> str:
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more
