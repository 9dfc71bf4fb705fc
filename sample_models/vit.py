"""A tiny Vision Transformer (Dosovitskiy et al. 2021) for 8x8 to 32x32 images.

Attention is written out with plain ``nn.Linear`` layers for qkv and the output projection, never
``nn.MultiheadAttention``: the quantizer swaps exact nn.Linear/nn.Conv2d modules, and MHA calls its
out_proj weight through a functional path that would bypass the swapped module.

Layout: Conv2d patch embedding -> [CLS] + learned positions -> pre-norm blocks (attention, MLP) ->
LayerNorm -> fc on the [CLS] token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from msq.errors import ConfigError
from sample_models._shapes import check_image_size
from sample_models.registry import register_model


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)                            # each [B, heads, N, d/heads]
        out = F.scaled_dot_product_attention(q, k, v)      # softmax(q k^T / sqrt(d_h)) v
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    def __init__(self, num_classes: int, in_channels: int, image_size: int, patch_size: int,
                 dim: int, depth: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        num_patches = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)             # [B, N, dim]
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.fc(x[:, 0])                                          # [CLS] token


def default_patch_size(image_size: int) -> int:
    """4 for 28x28/32x32 (49/64 patches), 2 for 8x8 (16 patches), else the largest fitting divisor."""
    for p in ((4, 2, 1) if image_size >= 16 else (2, 1)):
        if image_size % p == 0:
            return p
    return 1


@register_model("vit_tiny")
def vit_tiny(num_classes: int = 10, in_channels: int = 3, image_size: int = 32, patch_size: int | None = None,
             dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: int = 2) -> nn.Module:
    """Tiny ViT: Conv2d patch embedding, 4 pre-norm blocks of dim 64, explicit qkv/proj Linear; ~0.14M params."""
    check_image_size("vit_tiny", image_size, 1)
    patch = patch_size or default_patch_size(image_size)
    if image_size % patch:
        raise ConfigError(f"model_kwargs.patch_size = {patch} is invalid for image_size {image_size}: "
                          "allowed a divisor of the image size; pass another patch_size")
    if dim % heads:
        raise ConfigError(f"model_kwargs.heads = {heads} is invalid for dim {dim}: allowed a divisor of dim")
    return TinyViT(num_classes, in_channels, image_size, patch, dim, depth, heads, mlp_ratio)
