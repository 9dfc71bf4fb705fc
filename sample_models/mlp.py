"""A two-hidden-layer MLP over flattened pixels: only Linear layers, the fastest model to quantize in tests."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sample_models._shapes import check_image_size
from sample_models.registry import register_model


class MLP(nn.Module):
    def __init__(self, num_classes: int, in_features: int, hidden: tuple[int, int]):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc1(x.flatten(1)))   # [B, C*H*W] -> [B, hidden0]
        x = F.relu(self.fc2(x))
        return self.fc3(x)


@register_model("mlp")
def mlp(num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
        hidden: tuple[int, int] = (256, 128)) -> nn.Module:
    """MLP with two hidden layers (256, 128) over the flattened image; for fast tests."""
    check_image_size("mlp", image_size, 1)
    return MLP(num_classes, in_channels * image_size * image_size, tuple(hidden))
