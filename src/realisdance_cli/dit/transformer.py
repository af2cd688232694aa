"""The RealisDance-DiT transformer: Wan2.1-I2V's blocks (diffusers' own modules) with the pose
videos added to the noise tokens and the reference picture's tokens appended to the sequence.

What it adds to Wan, as the authors' `rd_dit.py` does:

- `add_conv_in` + `add_proj` patch-embed the pose latents (SMPL-CS then HaMeR, 32 channels) and
  add them to the noise tokens, position for position;
- `attn_conv_in` patch-embeds the reference latents (their own size and aspect) into tokens that
  join the self-attention sequence and are dropped before the output projection;
- the reference tokens' rotary positions are shifted past the video's (`shift_f/h/w`), so the
  network can tell the picture from the frames.

The conditions that do not change between denoising steps (text, CLIP tokens, pose and reference
tokens, rotary tables) can be encoded once per video (`encode_conditions`) and reused by every
step; `forward` with raw inputs encodes them on each call, as the original does.

Context parallelism (diffusers' engine, `enable_parallelism`, see `realisdance_cli.dit.parallel`)
splits the joint sequence (video then reference tokens) and its rotary tables across ranks before
the blocks and gathers it after `norm_out`, a per-token norm, before the reference tokens are
dropped; cross-attention keeps its whole context on every rank.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models._modeling_parallel import (
    ContextParallelConfig,
    ContextParallelInput,
    ContextParallelOutput,
    ParallelConfig,
)
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.cache_utils import CacheMixin
from diffusers.models.embeddings import get_1d_rotary_pos_embed
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import (
    WanAttention,
    WanTimeTextImageEmbedding,
    WanTransformerBlock,
)
from diffusers.utils import apply_lora_scale
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn
from torch.distributed import get_rank, get_world_size
from torch.distributed.device_mesh import init_device_mesh

from realisdance_cli.dit.teacache import TeaCache
from realisdance_cli.errors import UserError

REFERENCE_FRAME_SHIFT = 81  # the original's `shift_f_size`: the reference sits past 81 rotary frames
CLIP_TOKENS = 257  # CLIP ViT-H/14 at 224x224: the class token and 16x16 patches


class ShiftedRotaryEmbedding(nn.Module):
    """Wan's 3-D rotary tables for the video tokens followed by the reference tokens, whose frame,
    row and column positions may start past the video's (real cos/sin form, as diffusers' Wan)."""

    def __init__(self, attention_head_dim: int, max_seq_len: int, theta: float = 10000.0):
        super().__init__()
        side = 2 * (attention_head_dim // 6)
        self.split = (attention_head_dim - 2 * side, side, side)  # frames, rows, columns
        dtype = torch.float32 if torch.backends.mps.is_available() else torch.float64
        tables = [
            get_1d_rotary_pos_embed(
                dim, max_seq_len, theta, use_real=True, repeat_interleave_real=True, freqs_dtype=dtype
            )
            for dim in self.split
        ]
        self.register_buffer("freqs_cos", torch.cat([cos for cos, _ in tables], dim=1), persistent=False)
        self.register_buffer("freqs_sin", torch.cat([sin for _, sin in tables], dim=1), persistent=False)

    def _grid(
        self, table: torch.Tensor, grid: tuple[int, int, int], offsets: tuple[int, int, int]
    ) -> torch.Tensor:
        """(1, f*h*w, 1, head_dim): each token's angles for its (frame, row, column) + `offsets`."""
        frames, rows, columns = grid
        axes = table.split(self.split, dim=1)
        parts = []
        for axis, (part, start, count) in enumerate(zip(axes, offsets, grid, strict=True)):
            shape = [1, 1, 1, -1]
            shape[axis] = count
            parts.append(part[start : start + count].view(*shape).expand(frames, rows, columns, -1))
        return torch.cat(parts, dim=-1).reshape(1, frames * rows * columns, 1, -1)

    def forward(
        self, video: tuple[int, int, int], reference: tuple[int, int, int], shift: tuple[bool, bool, bool]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The (cos, sin) tables of the video's token grid then the reference's (patches per axis)."""
        offsets = (
            REFERENCE_FRAME_SHIFT if shift[0] else 0,
            video[1] if shift[1] else 0,
            video[2] if shift[2] else 0,
        )
        cos, sin = (
            torch.cat([self._grid(table, video, (0, 0, 0)), self._grid(table, reference, offsets)], dim=1)
            for table in (self.get_buffer("freqs_cos"), self.get_buffer("freqs_sin"))
        )
        return cos, sin


class ImageTextAttnProcessor:
    """Wan I2V cross-attention (text, plus the CLIP tokens through their own key/value
    projections) that splits the context after `image_tokens` CLIP tokens. diffusers >= 0.34
    splits at `length - 512`, right only for text padded to 512 tokens; the original (diffusers
    0.33) split after the 257 CLIP tokens, which is what texts of any length need."""

    def __init__(self, image_tokens: int = CLIP_TOKENS):
        self.image_tokens = image_tokens

    def __call__(
        self,
        attn: WanAttention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        rotary_emb: Any = None,
    ) -> torch.Tensor:
        assert attn.add_k_proj is not None and attn.add_v_proj is not None
        image, text = encoder_hidden_states.split(
            [self.image_tokens, encoder_hidden_states.shape[1] - self.image_tokens], dim=1
        )

        def heads(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.unflatten(2, (attn.heads, -1))

        query = heads(attn.norm_q(attn.to_q(hidden_states)))
        key, value = heads(attn.norm_k(attn.to_k(text))), heads(attn.to_v(text))
        key_image, value_image = (
            heads(attn.norm_added_k(attn.add_k_proj(image))),
            heads(attn.add_v_proj(image)),
        )
        from_image = dispatch_attention_fn(query, key_image, value_image, attn_mask=None)
        from_text = dispatch_attention_fn(query, key, value, attn_mask=attention_mask)
        out = from_text.flatten(2, 3).type_as(query) + from_image.flatten(2, 3).type_as(query)
        return attn.to_out[1](attn.to_out[0](out))


@dataclass
class DiTConditions:
    """What stays fixed while a video is denoised, encoded once: the cross-attention context
    (CLIP tokens then text, projected), the pose tokens added to the noise tokens, the reference
    tokens appended to them, and the rotary tables of the joint sequence. Guidance keeps the pose,
    so the branches of a batch share one copy of its tokens (batch 1, broadcast where they are
    added): a copy per branch would hold another ~1 GB per 81-frame window at 768x768."""

    context: torch.Tensor  # (B, 257 + text tokens, dim)
    pose: torch.Tensor  # (B or 1, f*h*w, dim)
    reference: torch.Tensor  # (B, reference tokens, dim)
    rotary: tuple[torch.Tensor, torch.Tensor]  # (1, f*h*w + reference tokens, 1, head dim) each


class RealisDanceDiT(ModelMixin, ConfigMixin, PeftAdapterMixin, CacheMixin):
    """The authors' `RealisDanceDiT` (same config and weight names, so the release loads as is).

    Args as diffusers' `WanTransformer3DModel`, plus `add_cond_in_dim` (pose latent channels),
    `attn_cond_in_dim` (reference latent channels) and `shift_f/h/w` (the reference's rotary
    positions shifted past the video's along frames, rows, columns).
    """

    _supports_gradient_checkpointing = True
    _skip_layerwise_casting_patterns: ClassVar = ["patch_embedding", "conv_in", "condition_embedder", "norm"]
    _no_split_modules: ClassVar = ["WanTransformerBlock"]
    _keep_in_fp32_modules: ClassVar = [
        "rope",
        "time_embedder",
        "scale_shift_table",
        "norm1",
        "norm2",
        "norm3",
    ]
    _keys_to_ignore_on_load_unexpected: ClassVar = ["norm_added_q"]
    _repeated_blocks: ClassVar = ["WanTransformerBlock"]
    # Sequence (context) parallelism: `joint` is where the sequence is complete (it runs whether
    # or not TeaCache skips the blocks), `rope` makes the tables of the same sequence, `norm_out`
    # is the first layer after the blocks.
    _cp_plan: ClassVar = {
        "joint": {"input": ContextParallelInput(split_dim=1, expected_dims=3)},
        "rope": {
            0: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
            1: ContextParallelInput(split_dim=1, expected_dims=4, split_output=True),
        },
        "norm_out": ContextParallelOutput(gather_dim=1, expected_dims=3),
    }

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, int, int] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 36,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = None,
        added_kv_proj_dim: int | None = None,
        rope_max_seq_len: int = 1024,
        add_cond_in_dim: int = 32,
        attn_cond_in_dim: int = 16,
        shift_f: bool = True,
        shift_h: bool = True,
        shift_w: bool = True,
    ) -> None:
        super().__init__()
        inner_dim = num_attention_heads * attention_head_dim
        patch = (patch_size[0], patch_size[1], patch_size[2])
        self.rope = ShiftedRotaryEmbedding(attention_head_dim, rope_max_seq_len)
        self.patch_embedding = nn.Conv3d(in_channels, inner_dim, kernel_size=patch, stride=patch)
        self.condition_embedder = WanTimeTextImageEmbedding(
            dim=inner_dim,
            time_freq_dim=freq_dim,
            time_proj_dim=inner_dim * 6,
            text_embed_dim=text_dim,
            image_embed_dim=image_dim,
        )
        self.add_conv_in = nn.Conv3d(add_cond_in_dim, inner_dim, kernel_size=patch, stride=patch)
        self.add_proj = nn.Linear(inner_dim, inner_dim)
        self.attn_conv_in = nn.Conv3d(attn_cond_in_dim, inner_dim, kernel_size=patch, stride=patch)
        self.blocks = nn.ModuleList(
            [
                WanTransformerBlock(
                    inner_dim, ffn_dim, num_attention_heads, qk_norm, cross_attn_norm, eps, added_kv_proj_dim
                )
                for _ in range(num_layers)
            ]
        )
        if added_kv_proj_dim is not None:
            for block in self.blocks:
                block.attn2.set_processor(ImageTextAttnProcessor())  # type: ignore[union-attr,operator]
        self.joint = nn.Identity()  # the joint sequence, where context parallelism splits it
        self.norm_out = FP32LayerNorm(inner_dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(inner_dim, out_channels * math.prod(patch))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, inner_dim) / inner_dim**0.5)
        self.gradient_checkpointing = False

    def _resolve_parallel_config(self, config: ParallelConfig | ContextParallelConfig) -> ParallelConfig:
        """diffusers (0.42) puts rank r on accelerator `r % count`, a division by zero on a machine
        without one: there every rank runs context parallelism on the CPU (gloo), as
        `enable_parallelism` otherwise would."""
        if isinstance(config, ContextParallelConfig):
            config = ParallelConfig(context_parallel_config=config)
        context = config.context_parallel_config
        if torch.accelerator.device_count() > 0 or context is None:
            return super()._resolve_parallel_config(config)
        mesh = context.mesh or init_device_mesh(
            "cpu", context.mesh_shape, mesh_dim_names=context.mesh_dim_names
        )
        config.setup(get_rank(), get_world_size(), torch.device("cpu"), mesh=mesh)
        self._parallel_config = config
        return config

    def _tokens(self, conv: nn.Conv3d, video: torch.Tensor) -> torch.Tensor:
        """(B, C, F, H, W) -> (B, patches, dim)."""
        return conv(video).flatten(2).transpose(1, 2)

    def _grid(self, video: torch.Tensor) -> tuple[int, int, int]:
        p_t, p_h, p_w = self.config.patch_size
        return video.shape[2] // p_t, video.shape[3] // p_h, video.shape[4] // p_w

    @apply_forward_hook  # model CPU offload brings the weights to the GPU for this call too
    def encode_conditions(
        self,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None,
        add_cond: torch.Tensor,
        attn_cond: torch.Tensor,
    ) -> DiTConditions:
        """The step-independent inputs as the blocks take them. `encoder_hidden_states` (B, L,
        text_dim), `encoder_hidden_states_image` (B, 257, image_dim), `add_cond` (B, 32, f, h, w)
        pose latents at the video's latent size (or (1, ...): one pose for every branch, encoded
        once), `attn_cond` (B, 16, 1, h', w') reference latents."""
        embedder = self.condition_embedder
        context = embedder.text_embedder(encoder_hidden_states)
        if encoder_hidden_states_image is not None:
            context = torch.cat([embedder.image_embedder(encoder_hidden_states_image), context], dim=1)
        shift = (self.config.shift_f, self.config.shift_h, self.config.shift_w)
        video, reference = self._grid(add_cond), self._grid(attn_cond)
        self._check_split(video, reference)
        return DiTConditions(
            context=context,
            pose=self.encode_pose(add_cond),
            reference=self._tokens(self.attn_conv_in, attn_cond),
            rotary=self.rope(video, reference, shift),
        )

    @apply_forward_hook
    def encode_pose(self, add_cond: torch.Tensor) -> torch.Tensor:
        """The pose tokens (B, f*h*w, dim) of pose latents (B, 32, f, h, w): the one condition
        that differs between the windows of a long video."""
        return self.add_proj(self._tokens(self.add_conv_in, add_cond))

    def _check_split(self, video: tuple[int, int, int], reference: tuple[int, int, int]) -> None:
        """Context parallelism splits the joint sequence in equal parts (gloo gathers no uneven
        parts, and padding tokens would join the attention): other lengths are refused."""
        parallel = self._parallel_config
        context = parallel.context_parallel_config if parallel is not None else None
        if context is None:
            return
        ranks = context.ring_degree * context.ulysses_degree
        tokens = math.prod(video) + math.prod(reference)
        if tokens % ranks:
            raise UserError(
                f"sequence parallelism needs the token count to be a multiple of the {ranks} "
                f"processes, but this video has {tokens} ({'x'.join(map(str, video))} latent patches "
                f"plus the reference's {reference[1]}x{reference[2]}); choose another size or "
                "number of processes."
            )

    def _time_embedding(
        self, timestep: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(temb (B, dim), the six modulations (B, 6, dim)), as Wan's condition embedder makes them."""
        embedder = self.condition_embedder
        frequencies = embedder.timesteps_proj(timestep)
        embedder_dtype = next(iter(embedder.time_embedder.parameters())).dtype
        if frequencies.dtype != embedder_dtype and embedder_dtype != torch.int8:
            frequencies = frequencies.to(embedder_dtype)
        temb = embedder.time_embedder(frequencies).to(dtype)
        return temb, embedder.time_proj(embedder.act_fn(temb)).unflatten(1, (6, -1))

    def _run_blocks(
        self, hidden_states: torch.Tensor, conditions: DiTConditions, modulation: torch.Tensor
    ) -> torch.Tensor:
        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(
                    block, hidden_states, conditions.context, modulation, conditions.rotary
                )
            else:
                hidden_states = block(hidden_states, conditions.context, modulation, conditions.rotary)
        return hidden_states

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_hidden_states_image: torch.Tensor | None = None,
        add_cond: torch.Tensor | None = None,
        attn_cond: torch.Tensor | None = None,
        return_dict: bool = True,
        attention_kwargs: dict[str, Any] | None = None,
        conditions: DiTConditions | None = None,
        teacache: TeaCache | None = None,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """The velocity for `hidden_states` (B, 36, f, h, w: noise latents, 4 mask channels, 16
        image-condition channels) at `timestep` (B,). The conditions come either raw (the
        original's arguments) or already encoded (`conditions`, from `encode_conditions`).
        `teacache` (state kept by the caller, one per branch batch) may skip the blocks.
        `attention_kwargs={"scale": s}` scales the LoRA layers (PEFT) for this call, as diffusers'
        Wan does; encoded `conditions` keep the scale they were encoded with."""
        if conditions is None:
            if encoder_hidden_states is None or add_cond is None or attn_cond is None:
                raise ValueError(
                    "give encoder_hidden_states, add_cond and attn_cond, or encoded `conditions`."
                )
            conditions = self.encode_conditions(
                encoder_hidden_states, encoder_hidden_states_image, add_cond, attn_cond
            )
        batch = hidden_states.shape[0]
        frames, rows, columns = self._grid(hidden_states)
        tokens = self._tokens(self.patch_embedding, hidden_states) + conditions.pose
        video_tokens = tokens.shape[1]
        tokens = self.joint(torch.cat([tokens, conditions.reference], dim=1))
        temb, modulation = self._time_embedding(timestep, tokens.dtype)

        if teacache is None:
            tokens = self._run_blocks(tokens, conditions, modulation)
        elif teacache.should_compute(modulation if teacache.use_timestep_proj else temb):
            tokens = teacache.remember(tokens, self._run_blocks(tokens, conditions, modulation))
        else:
            tokens = teacache.reuse(tokens)

        normed = self.norm_out(tokens.float())[:, :video_tokens]  # the reference tokens end here
        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        tokens = self.proj_out((normed * (1 + scale) + shift).type_as(tokens))
        p_t, p_h, p_w = self.config.patch_size
        tokens = tokens.reshape(batch, frames, rows, columns, p_t, p_h, p_w, -1)
        output = tokens.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)


def check_positions_fit(
    config: Mapping[str, Any],
    window_frames: int,
    size: tuple[int, int],
    reference: tuple[int, int],
    *,
    temporal_factor: int = 4,
    spatial_factor: int = 8,
    window_name: str = "context_frames",
) -> None:
    """The token grid of a window and of the reference within the rotary tables, or one sentence
    in frames and pixels. The tables hold `rope_max_seq_len` positions per axis and the reference's
    follow the video's on each shifted axis: past the end the tables come out short (a reshape
    error deep in the transformer), and a window longer than `REFERENCE_FRAME_SHIFT` latent frames
    would share frame positions with the reference. Needs no weights: `config` is the
    transformer's (its config.json will do); `window_frames` the video frames per window; `size`
    and `reference` (height, width) in pixels of the video and of the reference scaled to its area.
    """
    _check_window_fits(config, window_frames, temporal_factor, window_name)
    for axis, side in enumerate(("height", "width")):
        _check_side_fits(config, side, size[axis], reference[axis], spatial_factor)


def _setting(config: Mapping[str, Any], name: str) -> Any:
    """A config value, or `RealisDanceDiT`'s default (a config.json may leave defaults out)."""
    return config.get(name, inspect.signature(RealisDanceDiT.__init__).parameters[name].default)


def _check_window_fits(
    config: Mapping[str, Any], window_frames: int, temporal_factor: int, name: str
) -> None:
    """A window's latent frames before the reference's frame position (or the table's end)."""
    patch, shifted = _setting(config, "patch_size")[0], _setting(config, "shift_f")
    room = REFERENCE_FRAME_SHIFT if shifted else _setting(config, "rope_max_seq_len")
    if ((window_frames - 1) // temporal_factor + 1) // patch > room:
        most = (room * patch - 1) * temporal_factor + 1
        raise UserError(
            f"a window of {window_frames} frames is more than the {most} ({room} latent frames) the "
            f"transformer's rotary positions hold{' before the reference' if shifted else ''}; give "
            f"{name} {most} or fewer."
        )


def _check_side_fits(
    config: Mapping[str, Any], side: str, video: int, reference: int, spatial_factor: int
) -> None:
    """The video's patches along `side`, then the reference's where shifted, within the table."""
    positions, shifted = _setting(config, "rope_max_seq_len"), _setting(config, f"shift_{side[0]}")
    pixels = spatial_factor * _setting(config, "patch_size")[1 if side == "height" else 2]
    needed = video // pixels + reference // pixels if shifted else max(video, reference) // pixels
    if needed > positions:
        raise UserError(
            f"the video's {side} and the reference's scaled to the video's area ({video} and {reference} "
            f"pixels) need {needed} of the transformer's {positions} rotary positions, one per {pixels} "
            f"pixels: {'together they' if shifted else 'each'} may be {positions * pixels} pixels at "
            "most; give a smaller size, or crop the reference picture to a less elongated shape."
        )
