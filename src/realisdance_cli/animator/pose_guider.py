"""The pose gating module and pose guidance network: three pose videos -> five UNet feature maps.

Module and parameter names follow the original `PoseGuider`, so its checkpoint keys load unchanged
(apart from the motion modules' AnimateDiff -> diffusers renaming in `motion.py`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

from realisdance_cli.animator.motion import motion_module

BACKBONE_CHANNELS = (16, 32, 96, 256)
UNET_CHANNELS = (320, 320, 640, 1280, 1280)  # after conv_in and after each SD-1.5 down block


class GroupedBackbone(nn.Module):
    """One grouped conv stack that encodes each condition on its own (groups = conditions), to 1/8 size."""

    def __init__(self, channels: Sequence[int], groups: int, in_channels: int) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels * groups, channels[0] * groups, 3, padding=1, groups=groups)
        layers: list[nn.Module] = []
        for c_in, c_out in itertools.pairwise(channels):
            layers.append(nn.Conv2d(c_in * groups, c_in * groups, 3, padding=1, groups=groups))
            layers.append(nn.Conv2d(c_in * groups, c_out * groups, 3, padding=1, stride=2, groups=groups))
        self.blocks = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.silu(self.conv_in(x))
        for layer in self.blocks:
            x = nn.functional.silu(layer(x))
        return x


class AdaptiveGate(nn.Module):
    """Per-pixel sigmoid weights for each condition, from all conditions' features together."""

    def __init__(self, channels: int, conditions: int) -> None:
        super().__init__()
        self.conditions = conditions
        self.gate_layer = nn.Sequential(
            nn.Conv2d(channels, 128, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(128, conditions, 7, padding=3),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gates = self.gate_layer(x)
        n, c, h, w = x.shape
        gated = x.view(n, self.conditions, c // self.conditions, h, w) * gates.unsqueeze(2)
        return gated.view(n, c, h, w)


class PoseGuider(ModelMixin, ConfigMixin):
    """Encodes (dwpose, hamer, smpl), gates them per pixel, and emits one feature map per UNet level."""

    @register_to_config
    def __init__(
        self,
        out_channels: Sequence[int] = UNET_CHANNELS,
        backbone_channels: Sequence[int] = BACKBONE_CHANNELS,
        num_conds: int = 3,
        conditioning_channels: int = 3,
        motion_heads: int = 8,
    ) -> None:
        super().__init__()
        self.backbone = GroupedBackbone(backbone_channels, num_conds, conditioning_channels)
        features = backbone_channels[-1] * num_conds
        self.gate_module = AdaptiveGate(features, num_conds)
        previous = features
        for i, channels in enumerate(out_channels):
            if i == 0:
                block = nn.Sequential(nn.Conv2d(previous, channels, 1), nn.SiLU())
            else:
                stride = 2 if i < len(out_channels) - 1 else 1
                block = nn.Sequential(
                    nn.Conv2d(previous, channels, 3, padding=1, stride=stride),
                    nn.SiLU(),
                    nn.Conv2d(channels, channels, 3, padding=1),
                    nn.SiLU(),
                )
            setattr(self, f"blocks_{i}", block)
            setattr(self, f"block_{i}_out_proj", nn.Conv2d(channels, channels, 1))
            previous = channels
        self.motion_modules = nn.ModuleList(motion_module(c, motion_heads) for c in out_channels)
        self.num_outputs = len(out_channels)

    def forward(self, dwpose: torch.Tensor, hamer: torch.Tensor, smpl: torch.Tensor) -> list[torch.Tensor]:
        """Pose videos (B, 3, F, H, W) in [0, 1] -> feature maps (B*F, C_i, H/8/2^i, W/8/2^i)."""
        batch, _, frames, height, width = dwpose.shape
        videos = torch.cat([dwpose, hamer, smpl], dim=1)
        x = self.gate_module(self.backbone(videos.transpose(1, 2).reshape(batch * frames, -1, height, width)))
        outputs = []
        for i in range(self.num_outputs):
            x = getattr(self, f"blocks_{i}")(x)
            if frames > 1:
                x = self.motion_modules[i](x, num_frames=frames)
            outputs.append(getattr(self, f"block_{i}_out_proj")(x))
        return outputs
