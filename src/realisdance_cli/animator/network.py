"""The RealisDance network's parts as diffusers models, and the whole network for training.

`ClipProjector` and `PoseGuider` (pose_guider.py) are `ModelMixin`/`ConfigMixin` models;
`RealisDanceUNet` is diffusers' `UNetMotionModel` (AnimateDiff modules in every down/up block,
none in the middle) with the original's norms, the pose guider's five feature maps added after
`conv_in` and after each down block, exactly where the original's in-place `+=` lands (on the
sample handed to the next block and on that block's last skip connection, the same tensor), and
reference attention read from the reference UNet, a plain `UNet2DConditionModel`.
`RealisDanceNet` holds the four parts under the original checkpoint's names.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from diffusers import ConfigMixin, ModelMixin, UNet2DConditionModel, UNetMotionModel
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention import FeedForward
from torch import nn

from realisdance_cli.animator import norms, reference
from realisdance_cli.animator.motion import MAX_FRAMES
from realisdance_cli.animator.pose_guider import PoseGuider

MOTION_HEADS = 8


class ClipProjector(ModelMixin, ConfigMixin):
    """DINOv2 tokens -> cross-attention width: a residual GEGLU feed-forward, LayerNorm, output projection."""

    @register_to_config
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.identity = nn.Linear(in_features, out_features)
        self.ff = FeedForward(in_features, out_features, mult=2, activation_fn="geglu")
        self.post_norm = nn.LayerNorm(out_features)
        self.post_proj = nn.Linear(out_features, out_features)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.post_proj(self.post_norm(self.identity(tokens) + self.ff(tokens)))


def motion_unet_config(unet_config: dict[str, Any]) -> dict[str, Any]:
    """The `UNetMotionModel` config matching an SD UNet config, with the original's motion settings."""
    config = {k: v for k, v in unet_config.items() if not k.startswith("_")}
    config["down_block_types"] = [
        "CrossAttnDownBlockMotion" if "CrossAttn" in t else "DownBlockMotion"
        for t in config["down_block_types"]
    ]
    config["up_block_types"] = [
        "CrossAttnUpBlockMotion" if "CrossAttn" in t else "UpBlockMotion" for t in config["up_block_types"]
    ]
    # SD configs call the head count `attention_head_dim`.
    config["num_attention_heads"] = config.get("num_attention_heads") or config["attention_head_dim"]
    config.update(use_motion_mid_block=False, motion_num_attention_heads=MOTION_HEADS)
    config["motion_max_seq_length"] = MAX_FRAMES
    accepted = inspect.signature(UNetMotionModel.__init__).parameters
    return {k: v for k, v in config.items() if k in accepted}


@contextmanager
def _features_added(unet: UNetMotionModel, features: Sequence[torch.Tensor]) -> Iterator[None]:
    """Adds `features[0]` after `conv_in` and `features[i+1]` after down block i (sample and last skip)."""

    def after_conv_in(_module: nn.Module, _args: Any, output: torch.Tensor) -> torch.Tensor:
        return output + features[0]

    def after_down_block(feature: torch.Tensor) -> Callable[..., tuple]:
        def hook(_module: nn.Module, _args: Any, output: tuple) -> tuple:
            sample, skips = output
            sample = sample + feature
            return sample, (*skips[:-1], sample)

        return hook

    handles = [unet.conv_in.register_forward_hook(after_conv_in)]
    handles += [
        block.register_forward_hook(after_down_block(feature))
        for block, feature in zip(unet.down_blocks, features[1:], strict=True)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class RealisDanceUNet(UNetMotionModel):
    """The denoising 3-D UNet: `UNetMotionModel`'s config and weights, the original's norms, pose
    features and reference attention as keyword arguments of `forward`."""

    @functools.wraps(UNetMotionModel.__init__)  # type: ignore[misc]  # its config signature, for from_config
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clip_norms = norms.match_original(self)
        self.reference_bank = reference.ReferenceBank()
        reference.read_into(self, self.reference_bank)

    @classmethod
    def from_sd_config(cls, unet_config: dict[str, Any]) -> RealisDanceUNet:
        """The (randomly initialised) UNet for an SD UNet config."""
        return cls.from_config(motion_unet_config(unet_config))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        pose_features: Sequence[torch.Tensor] = (),
        reference_rows: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """(B, 4, F, h, w) latents; `encoder_hidden_states` one row per sample and frame.

        `pose_features`: the pose guider's maps (none: no pose); `reference_rows` (B*F,) says which
        recorded reference each frame reads (-1: none); None runs without reference attention.
        """
        for norm in self.clip_norms:
            norm.frames = sample.shape[2]
        self.reference_bank.rows = reference_rows
        try:
            if not pose_features:
                return super().forward(sample, timestep, encoder_hidden_states, **kwargs)
            with _features_added(self, pose_features):
                return super().forward(sample, timestep, encoder_hidden_states, **kwargs)
        finally:
            self.reference_bank.rows = None


class RealisDanceNet(nn.Module):
    """The four trained parts as one module, under the original checkpoint's names: what training
    optimises and checkpoints hold, and the original's network call (`forward`)."""

    def __init__(
        self,
        unet_ref: UNet2DConditionModel,
        unet_main: RealisDanceUNet,
        pose_guider: PoseGuider,
        clip_projector: ClipProjector,
    ) -> None:
        super().__init__()
        self.unet_ref, self.unet_main = unet_ref, unet_main
        self.pose_guider, self.clip_projector = pose_guider, clip_projector
        reference.connect(unet_ref, unet_main, unet_main.reference_bank)

    @classmethod
    def build(cls, unet_config: dict[str, Any], token_width: int) -> RealisDanceNet:
        """A randomly initialised network for an SD UNet config and a DINOv2 token width."""
        unet_ref = UNet2DConditionModel.from_config(unet_config)
        unet_main = RealisDanceUNet.from_sd_config(unet_config)
        channels = unet_main.config.block_out_channels
        pose_guider = PoseGuider(out_channels=(channels[0], *channels), motion_heads=MOTION_HEADS)
        return cls(
            unet_ref, unet_main, pose_guider, ClipProjector(token_width, unet_main.config.cross_attention_dim)
        )

    @property
    def bank(self) -> reference.ReferenceBank:
        return self.unet_main.reference_bank

    @property
    def dtype(self) -> torch.dtype:
        return self.clip_projector.identity.weight.dtype

    def encode_reference(self, ref_latents: torch.Tensor, tokens: torch.Tensor) -> None:
        """Runs the reference UNet at t=0 and keeps its self-attention inputs for `denoise`."""
        self.bank.clear()
        timestep = torch.zeros(ref_latents.shape[0], device=ref_latents.device, dtype=torch.long)
        self.unet_ref(ref_latents, timestep, encoder_hidden_states=tokens)

    def denoise(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        tokens: torch.Tensor,
        pose_features: Sequence[torch.Tensor],
        reference_rows: torch.Tensor | None,
    ) -> torch.Tensor:
        """One 3-D UNet pass on (B, 4, F, h, w) latents; `tokens` are projected, one row per sample.

        `reference_rows` (B*F,) says which recorded reference each frame reads (-1: none); None
        runs without reference attention.
        """
        frames = sample.shape[2]
        return self.unet_main(
            sample,
            timestep,
            tokens.repeat_interleave(frames, dim=0),
            pose_features=pose_features,
            reference_rows=reference_rows,
        ).sample

    def forward(
        self,
        sample: torch.Tensor,
        ref_sample: torch.Tensor,
        dwpose: torch.Tensor,
        hamer: torch.Tensor,
        smpl: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        drop_reference: bool = False,
    ) -> torch.Tensor:
        """The original network call: raw DINOv2 tokens, the reference re-run on every call."""
        tokens = self.clip_projector(encoder_hidden_states)
        features = self.pose_guider(dwpose, hamer, smpl)
        rows = None
        if not drop_reference:
            self.encode_reference(ref_sample, tokens)
            batch, frames = sample.shape[0], sample.shape[2]
            rows = torch.arange(batch, device=sample.device).repeat_interleave(frames)
        return self.denoise(sample, timestep, tokens, features, rows)
