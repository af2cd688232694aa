"""HaMeR's network: the ViT backbone and the MANO transformer-decoder head, with module names
that match the released checkpoint."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from realisdance_cli.extractors.hamer.config import DecoderConfig, HamerConfig
from realisdance_cli.extractors.vit import ViT
from realisdance_cli.geometry.rotations import matrix_from_6d_columns


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x), **kwargs)


def _heads_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    def split(t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (heads, -1)).transpose(1, 2)

    return F.scaled_dot_product_attention(split(q), split(k), split(v)).transpose(1, 2).flatten(2)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, heads * dim_head * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        return self.to_out(_heads_attention(q, k, v, self.heads))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, context_dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_kv = nn.Linear(context_dim, heads * dim_head * 2, bias=False)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_out = nn.Sequential(nn.Linear(heads * dim_head, dim))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        k, v = self.to_kv(context).chunk(2, dim=-1)
        return self.to_out(_heads_attention(self.to_q(x), k, v, self.heads))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CrossAttentionStack(nn.Module):
    def __init__(self, c: DecoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(c.dim, SelfAttention(c.dim, c.heads, c.dim_head)),
                    PreNorm(c.dim, CrossAttention(c.dim, c.context_dim, c.heads, c.dim_head)),
                    PreNorm(c.dim, FeedForward(c.dim, c.mlp_dim)),
                ]
            )
            for _ in range(c.depth)
        )

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            self_attention, cross_attention, feed_forward = tuple(layer.children())
            x = self_attention(x) + x
            x = cross_attention(x, context=context) + x
            x = feed_forward(x) + x
        return x


class TransformerDecoder(nn.Module):
    def __init__(self, token_width: int, c: DecoderConfig) -> None:
        super().__init__()
        self.to_token_embedding = nn.Linear(token_width, c.dim)
        self.pos_embedding = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.transformer = CrossAttentionStack(c)

    def forward(self, token: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.transformer(self.to_token_embedding(token) + self.pos_embedding, context)


class ManoHead(nn.Module):
    """Context tokens -> 6-D joint rotations, shape and crop camera, as offsets from the mean."""

    def __init__(self, config: HamerConfig) -> None:
        super().__init__()
        self.config = config
        npose = config.pose_width
        token = npose + 13 if config.mean_shape_input else 1
        self.transformer = TransformerDecoder(token, config.decoder)
        self.decpose = nn.Linear(config.decoder.dim, npose)
        self.decshape = nn.Linear(config.decoder.dim, 10)
        self.deccam = nn.Linear(config.decoder.dim, 3)
        self.init_hand_pose: torch.Tensor
        self.init_betas: torch.Tensor
        self.init_cam: torch.Tensor
        self.register_buffer("init_hand_pose", torch.zeros(1, npose))
        self.register_buffer("init_betas", torch.zeros(1, 10))
        self.register_buffer("init_cam", torch.zeros(1, 3))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch = features.shape[0]
        context = features.flatten(2).transpose(1, 2)
        pose = self.init_hand_pose.expand(batch, -1)
        betas = self.init_betas.expand(batch, -1)
        cam = self.init_cam.expand(batch, -1)
        for _ in range(self.config.ief_iters):
            if self.config.mean_shape_input:
                token = torch.cat([pose, betas, cam], dim=1)[:, None]
            else:
                token = features.new_zeros(batch, 1, 1)
            out = self.transformer(token, context)[:, 0]
            pose = self.decpose(out) + pose
            betas = self.decshape(out) + betas
            cam = self.deccam(out) + cam
        rotations = matrix_from_6d_columns(pose).view(batch, self.config.hand_joints + 1, 3, 3)
        return rotations, betas, cam


class Hamer(nn.Module):
    """Normalised square crops (B, 3, S, S) -> MANO rotations (B, 16, 3, 3), betas, crop camera."""

    def __init__(self, config: HamerConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ViT(config.backbone)
        self.mano_head = ManoHead(config)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        margin = self.config.crop_margin
        features, _ = self.backbone(crops[:, :, :, margin : crops.shape[-1] - margin])
        return self.mano_head(features)
