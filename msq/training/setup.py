"""Building what a run needs from its config: device, seeds, model, data, optimizer."""
from __future__ import annotations

import random

import torch
from torch import nn

from msq.config import RunConfig, TrainConfig
from msq.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device = {name!r} is invalid here: no CUDA device is visible; use 'cpu'")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise ConfigError(f"train.device = {name!r} is invalid: this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s), cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device = 'mps' is invalid here: MPS is not available; use 'cpu'")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def build_model_and_data(cfg: RunConfig):
    """The dataset bundle and a model shaped for it (classes, channels, image size)."""
    from msq.data import load_dataset
    from msq.data.loader import example_input
    from msq.training.preflight import DRY_BATCH, check_forward
    from sample_models import create_model, load_checkpoint

    data = load_dataset(cfg.data)
    model = create_model(cfg.model, num_classes=data.num_classes, in_channels=data.in_channels,
                         image_size=data.image_size, **cfg.model_kwargs)
    if cfg.checkpoint:
        load_checkpoint(model, cfg.checkpoint)
    check_forward(model, example_input(data, DRY_BATCH), data.num_classes, cfg.model, cfg.data.name)
    return model, data


def make_optimizer(model: nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"train.optimizer = {cfg.optimizer!r} is invalid: allowed 'sgd' or 'adam'")
