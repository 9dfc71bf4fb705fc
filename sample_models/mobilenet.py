"""A small MobileNet-V2-style network (Sandler et al. 2018) for 8x8 to 32x32 images.

Why it is here: depthwise 3x3 convs have 9 weights per output channel and are the layers that
suffer most from low precision, so a search should learn to keep them wider than the 1x1 convs.

Layout: 3x3 stem (16) -> inverted residual blocks (1x1 expand, BN, ReLU6 -> depthwise 3x3, BN,
ReLU6 -> 1x1 linear projection, BN; a residual when shape allows) -> 1x1 head (128) -> pool -> fc.
The stem keeps full resolution, as in CIFAR variants of MobileNet, so small images are not over-shrunk.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sample_models._shapes import check_image_size
from sample_models.registry import register_model

# (expansion t, output channels c, repeats n, first stride s), as in the paper's Table 2, scaled down
TINY_BLOCKS = ((1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2), (4, 64, 1, 1))


def conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(out_ch)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int):
        super().__init__()
        hidden = in_ch * expand
        layers = [conv_bn(in_ch, hidden, 1)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden),   # depthwise
                   conv_bn(hidden, out_ch, 1, act=False)]               # linear bottleneck
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class MobileNetTiny(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, width: float = 1.0, head: int = 128):
        super().__init__()
        def ch(c: int) -> int:  # channels scaled by the width multiplier, at least 8
            return max(8, int(round(c * width)))

        in_ch = ch(16)
        self.stem = conv_bn(in_channels, in_ch, 3)
        blocks = []
        for t, c, n, s in TINY_BLOCKS:
            for i in range(n):
                blocks.append(InvertedResidual(in_ch, ch(c), s if i == 0 else 1, t))
                in_ch = ch(c)
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn(in_ch, head, 1)
        self.fc = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))      # [B, 128, H/4, W/4]
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


@register_model("mobilenet_tiny")
def mobilenet_tiny(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, width: float = 1.0) -> nn.Module:
    """MobileNet-V2-style net: inverted residuals with depthwise 3x3 convs, BN+ReLU6; ~51k params."""
    check_image_size("mobilenet_tiny", image_size, 4)
    return MobileNetTiny(num_classes, in_channels, width)
