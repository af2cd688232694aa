"""AnimateDiff motion modules as diffusers builds them, and the original checkpoint's key layout.

The original keeps AnimateDiff's layout (`motion_modules.N.temporal_transformer.transformer_blocks.0
.attention_blocks.{0,1}...` with a fixed sinusoidal `pos_encoder.pe` per attention); diffusers names
the same weights `motion_modules.N.transformer_blocks.0.attn{1,2}...` with one `pos_embed.pe` per
block. `to_diffusers_key` maps one onto the other.
"""

from __future__ import annotations

import torch
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

from realisdance_cli.animator.norms import frame_norm_motion_modules
from realisdance_cli.animator.windows import MAX_FRAMES

_RENAMES = (
    (".temporal_transformer", ""),
    (".norms.0", ".norm1"),
    (".norms.1", ".norm2"),
    (".ff_norm", ".norm3"),
    (".attention_blocks.0.pos_encoder.pe", ".pos_embed.pe"),
    (".attention_blocks.0", ".attn1"),
    (".attention_blocks.1", ".attn2"),
)
SECOND_POSITION_TABLE = ".attention_blocks.1.pos_encoder.pe"


def to_diffusers_key(key: str) -> str:
    """The diffusers name of an AnimateDiff-layout motion-module key (other keys pass through)."""
    if "motion_modules." not in key:
        return key
    for old, new in _RENAMES:
        key = key.replace(old, new)
    return key


def to_original_key(key: str) -> str:
    """The AnimateDiff-layout name of a diffusers motion-module key (other keys pass through)."""
    if "motion_modules." not in key:
        return key
    head, tail = key.split("motion_modules.", 1)
    index, rest = tail.split(".", 1)
    for new, old in (
        ("norm1.", "norms.0."),
        ("norm2.", "norms.1."),
        ("norm3.", "ff_norm."),
        ("pos_embed.pe", "attention_blocks.0.pos_encoder.pe"),
        ("attn1.", "attention_blocks.0."),
        ("attn2.", "attention_blocks.1."),
    ):
        rest = rest.replace(new, old)
    return f"{head}motion_modules.{index}.temporal_transformer.{rest}"


def with_position_tables(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of `check_position_tables`: each block's table stored for both attentions again."""
    out = dict(state)
    for key, value in state.items():
        if key.endswith(".attention_blocks.0.pos_encoder.pe"):
            out[key.replace(".attention_blocks.0.", ".attention_blocks.1.")] = value
    return out


def motion_module(channels: int, heads: int = 8) -> AnimateDiffTransformer3D:
    """One AnimateDiff temporal transformer: two temporal self-attentions and a GEGLU feed-forward."""
    module = AnimateDiffTransformer3D(
        num_attention_heads=heads,
        attention_head_dim=channels // heads,
        in_channels=channels,
        activation_fn="geglu",
        positional_embeddings="sinusoidal",
        num_positional_embeddings=MAX_FRAMES,
    )
    frame_norm_motion_modules(module)
    return module


def check_position_tables(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop each attention's second positional table after checking it equals the first.

    AnimateDiff stores the same fixed table twice per block; diffusers keeps one and applies it
    before both attentions, which is only equivalent when the two agree.
    """
    kept = {}
    for key, value in state.items():
        if key.endswith(SECOND_POSITION_TABLE):
            first = state.get(key.replace(".attention_blocks.1.", ".attention_blocks.0."))
            if first is None or not torch.equal(first, value):
                raise ValueError(f"{key} differs from the block's first positional table")
            continue
        kept[key] = value
    return kept
