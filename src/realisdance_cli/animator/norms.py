"""The original 3-D UNet's group norms, which diffusers' video blocks compute differently.

The original (AnimateDiff code without inflated group norm) normalises its resnets and output
over all frames of a clip at once (a plain GroupNorm on a 5-D tensor), but each frame alone
inside the motion modules, always with 32 groups. Diffusers does the opposite in both places, so
`match_original` swaps these norms in; parameter names and shapes stay the same.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
from torch import nn

MOTION_NORM_GROUPS = 32


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm of each frame on its own, for (B, C, F, H, W) input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * f, c, h, w)
        return super().forward(frames).view(b, f, c, h, w).transpose(1, 2)


class ClipGroupNorm(nn.GroupNorm):
    """GroupNorm over every frame of a clip together, for (B*F, C, H, W) input; `frames` is F."""

    frames = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bf, c, h, w = x.shape
        clips = x.view(bf // self.frames, self.frames, c, h * w).transpose(1, 2)
        return super().forward(clips).transpose(1, 2).reshape(bf, c, h, w)


Norm = TypeVar("Norm", bound=nn.GroupNorm)


def _swapped(norm: nn.GroupNorm, kind: type[Norm], groups: int | None = None) -> Norm:
    new = kind(groups or norm.num_groups, norm.num_channels, eps=norm.eps, affine=norm.affine)
    return new.to(device=norm.weight.device, dtype=norm.weight.dtype)


def frame_norm_motion_modules(model: nn.Module) -> None:
    """Per-frame, 32-group norms in every motion module of `model`."""
    for module in model.modules():
        if isinstance(module, AnimateDiffTransformer3D):
            module.norm = _swapped(module.norm, FrameGroupNorm, MOTION_NORM_GROUPS)


def match_original(unet: Any) -> list[ClipGroupNorm]:
    """Gives a diffusers `UNetMotionModel` the original's norms (see the module docstring); returns
    the clip norms, whose `frames` the caller sets before each forward."""
    frame_norm_motion_modules(unet)
    clip_norms: list[ClipGroupNorm] = []
    for module in unet.modules():
        if isinstance(module, ResnetBlock2D):
            module.norm1 = _swapped(module.norm1, ClipGroupNorm)
            module.norm2 = _swapped(module.norm2, ClipGroupNorm)
            clip_norms += [module.norm1, module.norm2]
    unet.conv_norm_out = _swapped(unet.conv_norm_out, ClipGroupNorm)
    clip_norms.append(unet.conv_norm_out)
    return clip_norms
