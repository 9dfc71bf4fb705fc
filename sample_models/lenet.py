"""LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, as used across the quantization literature.

conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> fc 120 -> fc 84 -> fc classes. The classic layout expects
32x32 inputs, so a 28x28 image gets padding 2 on conv1 (flatten stays 16*5*5 = 400: 61,706 parameters
at 10 classes). Small images (8x8 digits) also pad conv2 so two 5x5 convs and two pools still fit.
Each layer is a named attribute (conv1 ... fc3): the bit-allocation report shows these names.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sample_models._shapes import check_image_size
from sample_models.registry import register_model


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        pad1 = 0 if image_size >= 32 else 2          # 28 -> 32 effective, like the original layout
        after1 = (image_size + 2 * pad1 - 4) // 2    # side after conv1 + pool
        pad2 = 0 if after1 >= 10 else 2              # tiny inputs: keep conv2 from shrinking to nothing
        after2 = (after1 + 2 * pad2 - 4) // 2        # 5 at 28x28 and 32x32
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=pad1)
        self.conv2 = nn.Conv2d(6, 16, 5, padding=pad2)
        self.fc1 = nn.Linear(16 * after2 * after2, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # [B, 6, 14, 14] at 28x28
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # [B, 16, 5, 5]
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


@register_model("lenet5")
def lenet5(num_classes: int = 10, in_channels: int = 1, image_size: int = 28) -> nn.Module:
    """LeNet-5 CNN (2 conv + 3 fc, ReLU, max-pool); 61.7k params at 28x28."""
    check_image_size("lenet5", image_size, 4)
    return LeNet5(num_classes, in_channels, image_size)
