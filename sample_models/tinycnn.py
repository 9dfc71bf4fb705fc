"""A tiny CNN (2 convs + 1 fc, a few thousand parameters) that trains on 8x8 digits in under a second.

It is the model of the engine's end-to-end tests: small enough to run every phase of a search in a
test, yet with both conv and linear layers and a real accuracy to lose.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sample_models._shapes import check_image_size
from sample_models.registry import register_model


class TinyCNN(nn.Module):
    """conv 8@3x3 -> pool -> conv 16@3x3 -> 4x4 average pool -> fc: a few thousand parameters."""

    def __init__(self, num_classes: int, in_channels: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.fc = nn.Linear(2 * width * 16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)       # [B, w, H/2, W/2]
        x = F.relu(self.conv2(x))                        # [B, 2w, H/2, W/2]
        x = F.adaptive_avg_pool2d(x, 4).flatten(1)       # [B, 2w*16] whatever the image size
        return self.fc(x)


@register_model("tinycnn")
def tinycnn(num_classes: int = 10, in_channels: int = 1, image_size: int = 28, width: int = 8) -> nn.Module:
    """Tiny CNN (2 conv + 1 fc, ~3.8k params); for sub-second tests."""
    check_image_size("tinycnn", image_size, 2)
    return TinyCNN(num_classes, in_channels, width)
