"""ResNet-20 in the CIFAR layout of He et al. 2016 (§4.2): 3 stages x 3 BasicBlocks, 16/32/64 channels.

Shortcuts default to option A, as in the paper's CIFAR experiments: identity, and where a stage
halves the resolution and doubles the width, subsample by 2 and zero-pad the new channels. Option A
adds no weights, so every quantized layer is a 3x3 conv (plus the stem and the fc) and the model has
the paper's 0.27M parameters (269,722 at 3 channels, 10 classes). ``shortcut="B"`` uses a 1x1 conv +
BatchNorm projection instead (more layers to quantize, 272,474 parameters).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msq.errors import ConfigError
from sample_models._shapes import check_image_size
from sample_models.registry import register_model


class PadShortcut(nn.Module):
    """Option A: take every second pixel and zero-pad the extra channels (no parameters)."""

    def __init__(self, extra_channels: int):
        super().__init__()
        self.extra = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::2, ::2]
        half = self.extra // 2
        return F.pad(x, (0, 0, 0, 0, half, self.extra - half))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = PadShortcut(planes - in_planes)
            else:
                self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, blocks_per_stage: int, num_classes: int, in_channels: int, shortcut: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(blocks_per_stage):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1, shortcut))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():  # the paper's init (He et al. 2015) for conv and fc weights
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))      # [B, 16, H, W]
        x = self.layer3(self.layer2(self.layer1(x)))  # [B, 64, H/4, W/4]
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)    # global average pool: any image size works
        return self.fc(x)


@register_model("resnet20")
def resnet20(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, shortcut: str = "A") -> nn.Module:
    """CIFAR ResNet-20 (He et al. 2016), 16/32/64 channels, BatchNorm, option-A shortcuts; 0.27M params."""
    check_image_size("resnet20", image_size, 4)
    if shortcut not in ("A", "B"):
        raise ConfigError(f"model_kwargs.shortcut = {shortcut!r} is invalid: allowed 'A' (zero-pad, the "
                          "paper's CIFAR choice) or 'B' (1x1 conv projection)")
    return CifarResNet(3, num_classes, in_channels, shortcut)
