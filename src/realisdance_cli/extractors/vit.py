"""The ViTPose-style vision transformer that HaMeR and SMPLer-X use as their backbone.

Module names and arithmetic follow the original (`patch_embed.proj`, `pos_embed`, `blocks.N.{norm1,
attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`, `last_norm`), so the released weights load as they
are. There is no class token: the first row of `pos_embed` is added to every patch's row instead,
and the patch convolution pads by 2, so a 256x192 picture gives 16x12 tokens. SMPLer-X's variant
puts learnt task tokens (no positional embedding) in front of the patches.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

LAYER_NORM_EPS = 1e-6


@dataclass(frozen=True)
class ViTConfig:
    img_size: tuple[int, int] = (256, 192)
    patch_size: int = 16
    embed_dim: int = 1280
    depth: int = 32
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    patch_padding: int = 2
    task_tokens: int = 0

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], prefix: str, **fixed: object) -> ViTConfig:
        """Widths and depth read off the weights; what the weights cannot tell (heads, input size)
        comes from `fixed`."""
        proj = state[f"{prefix}patch_embed.proj.weight"]
        depth = 1 + max(
            int(key[len(prefix) :].split(".")[1]) for key in state if key.startswith(f"{prefix}blocks.")
        )
        hidden = state[f"{prefix}blocks.0.mlp.fc1.weight"].shape[0]
        settings: dict = {
            "patch_size": proj.shape[-1],
            "embed_dim": proj.shape[0],
            "depth": depth,
            "mlp_ratio": hidden / proj.shape[0],
            "qkv_bias": f"{prefix}blocks.0.attn.qkv.bias" in state,
            "task_tokens": state[f"{prefix}task_tokens"].shape[1] if f"{prefix}task_tokens" in state else 0,
        }
        return cls(**{**settings, **fixed})


class PatchEmbed(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        size = config.patch_size
        self.proj = nn.Conv2d(3, config.embed_dim, size, stride=size, padding=config.patch_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, config.num_heads, config.qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """(B, 3, H, W) pictures -> (B, C, H/16, W/16) feature maps and (B, T, C) task tokens."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        self.config = config
        height, width = config.img_size
        patches = (height // config.patch_size) * (width // config.patch_size)
        self.patch_embed = PatchEmbed(config)
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, config.embed_dim))
        if config.task_tokens:
            self.task_tokens = nn.Parameter(torch.zeros(1, config.task_tokens, config.embed_dim))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.last_norm = nn.LayerNorm(config.embed_dim, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.patch_embed(x)
        batch, _, rows, cols = x.shape
        x = x.flatten(2).transpose(1, 2) + self.pos_embed[:, 1:] + self.pos_embed[:, :1]
        count = self.config.task_tokens
        if count:
            x = torch.cat([self.task_tokens.expand(batch, -1, -1), x], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.last_norm(x)
        return x[:, count:].transpose(1, 2).reshape(batch, -1, rows, cols), x[:, :count]
