"""What the two video feature networks (I3D for FVD, the 3-D ResNet-50 for FID-VID) share: their
frames resized as DisCo's evaluation resizes them, and batch norm as their releases store it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def resize_frames(clips: torch.Tensor, size: int) -> torch.Tensor:
    """Every frame of clips (N, C, T, H, W) resized to size x size: bicubic with Pillow's kernel
    (a = -0.5), widened when shrinking. That is torch's antialiased bicubic, and it is what DisCo's
    evaluation applies per channel to float frames (cleanfid's `make_resizer("PIL", False,
    "bicubic")`); the two agree to about 1e-5 of the value range. Nothing is clipped: DisCo's copy of
    that resizer (`tool/metrics/resize.py`) leaves the overshoot, unlike clean-fid's own."""
    n, channels, frames, height, width = clips.shape
    flat = clips.transpose(1, 2).reshape(n * frames, channels, height, width)
    flat = F.interpolate(flat, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return flat.reshape(n, frames, channels, size, size).transpose(1, 2)


class FrozenBatchNorm3d(nn.Module):
    """Batch norm at inference under torch's names (`weight`, `bias`, `running_mean`,
    `running_var`) but without the `num_batches_tracked` counter: both releases were saved without
    one (the 3-D ResNet before torch had it, I3D from a hand-built dict), so their files load key
    for key."""

    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=self.eps
        )
