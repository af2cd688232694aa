"""HaMeR (hand mesh recovery), inference only: hand crops -> MANO parameters and cameras.

A re-implementation of geopavlakos/hamer's `HAMER` forward pass (ViT backbone, MANO transformer
decoder head) and of its demo preprocessing (`ViTDetDataset`), so the released `hamer.ckpt` runs
without detectron2, Lightning or yacs. Sizes come from the checkpoint and `model_config.yaml`;
the ViT's head count and input size, which the original hard-codes in `vit()`, default to the
released model's and may be set under `MODEL.BACKBONE` (`NUM_HEADS`, `IMG_SIZE`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from realisdance_cli.errors import UserError
from realisdance_cli.extractors.vit import ViT, ViTConfig
from realisdance_cli.state_dicts import load_exactly, read_weights

FINGERTIP_VERTICES = (744, 320, 443, 554, 671)  # smplx's vertex_ids["mano"]: thumb .. pinky
MANO_TO_OPENPOSE = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
IGNORED_PREFIXES = ("discriminator.", "mano.")  # training-only; MANO is rebuilt from its own file
RESCALE_FACTOR = 2.0  # RealisDance's inference_video.py (the HaMeR demo default is 2.5)


@dataclass(frozen=True)
class DecoderConfig:
    depth: int = 6
    heads: int = 8
    mlp_dim: int = 1024
    dim_head: int = 64
    context_dim: int = 1280
    dim: int = 1024


@dataclass(frozen=True)
class HamerConfig:
    backbone: ViTConfig
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    image_size: int = 256
    bbox_shape: tuple[int, int] = (192, 256)  # w, h
    image_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    image_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    focal_length: float = 5000.0
    hand_joints: int = 15
    ief_iters: int = 1
    mean_shape_input: bool = False  # TRANSFORMER_INPUT: "zero" (released) or "mean_shape"

    @property
    def pose_width(self) -> int:
        return 6 * (self.hand_joints + 1)

    @property
    def crop_margin(self) -> int:
        """Columns cut from each side of the square crop: the model sees the 3:4 middle."""
        width, height = self.bbox_shape
        return (self.image_size - self.image_size * width // height) // 2


def _pair(values: Sequence[Any]) -> tuple[int, int]:
    first, second = values
    return int(first), int(second)


def _triple(values: Sequence[Any]) -> tuple[float, float, float]:
    first, second, third = values
    return float(first), float(second), float(third)


def read_config(path: Path, state: dict[str, torch.Tensor]) -> HamerConfig:
    """`model_config.yaml` (the yacs dump the release ships) + the checkpoint's shapes."""
    import yaml

    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"{path} is not a readable HaMeR model_config.yaml ({error}).") from None
    model = raw.get("MODEL", {})
    head = model.get("MANO_HEAD", {})
    if head.get("JOINT_REP", "6d") != "6d":
        raise UserError(f"{path}: only the 6-D joint representation is supported (as released).")
    backbone = model.get("BACKBONE", {})
    fixed: dict[str, Any] = {"num_heads": int(backbone.get("NUM_HEADS", 16))}
    if "IMG_SIZE" in backbone:
        fixed["img_size"] = _pair(backbone["IMG_SIZE"])
    decoder_keys = {f.name for f in DecoderConfig.__dataclass_fields__.values()}
    decoder = {k: v for k, v in head.get("TRANSFORMER_DECODER", {}).items() if k in decoder_keys}
    return HamerConfig(
        backbone=ViTConfig.from_state(state, "backbone.", **fixed),
        decoder=DecoderConfig(**decoder),
        image_size=int(model.get("IMAGE_SIZE", 256)),
        bbox_shape=_pair(model.get("BBOX_SHAPE") or (192, 256)),
        image_mean=_triple(model.get("IMAGE_MEAN", HamerConfig.image_mean)),
        image_std=_triple(model.get("IMAGE_STD", HamerConfig.image_std)),
        focal_length=float(raw.get("EXTRA", {}).get("FOCAL_LENGTH", 5000)),
        hand_joints=int(raw.get("MANO", {}).get("NUM_HAND_JOINTS", 15)),
        ief_iters=int(head.get("IEF_ITERS", 1)),
        mean_shape_input=head.get("TRANSFORMER_INPUT", "zero") == "mean_shape",
    )


# -- the MANO transformer-decoder head --------------------------------------------------------------


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


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """HaMeR's convention: each 6-vector is two consecutive 3-vectors, the first two columns."""
    x = x.reshape(-1, 2, 3).transpose(1, 2)
    b1 = F.normalize(x[:, :, 0], dim=1)
    a2 = x[:, :, 1]
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1, dim=1)
    return torch.stack((b1, b2, torch.linalg.cross(b1, b2, dim=1)), dim=-1)


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
        rotations = rot6d_to_rotmat(pose).view(batch, self.config.hand_joints + 1, 3, 3)
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


# -- loading ----------------------------------------------------------------------------------------


def _yacs_stand_in() -> type:
    """Stands in for yacs' CfgNode, which the checkpoint's `hyper_parameters` pickles: torch's
    weights-only unpickler accepts it by name, and each node it makes is an OrderedDict, one of the
    few types that unpickler lets the node's items and attributes be set on."""

    class CfgNode:
        def __new__(cls, *args: Any) -> Any:
            return OrderedDict()

    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    return CfgNode


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The network weights of a Lightning `hamer.ckpt`, read without plain unpickling."""
    raw = read_weights(path, "a HaMeR checkpoint", safe_globals=[_yacs_stand_in()])
    state = raw.get("state_dict") if isinstance(raw, dict) else None
    if not isinstance(state, dict) or "backbone.patch_embed.proj.weight" not in state:
        raise UserError(f"{path} is not a HaMeR checkpoint: it has no backbone weights.")
    return {
        k: v
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and not k.startswith(IGNORED_PREFIXES) and k != "initialized"
    }


def load_hamer(checkpoint: Path, config_path: Path, mean_params: Path | None = None) -> Hamer:
    """The network, strictly loaded; the mean MANO parameters come from the checkpoint's buffers
    (which the original's loading overwrote `mano_mean_params.npz` with) or, failing that, the file."""
    state = read_checkpoint(checkpoint)
    config = read_config(config_path, state)
    means = {"pose": "mano_head.init_hand_pose", "shape": "mano_head.init_betas", "cam": "mano_head.init_cam"}
    if not all(key in state for key in means.values()):
        if mean_params is None or not mean_params.is_file():
            raise UserError(
                f"{checkpoint} lacks the mean MANO parameters; put mano_mean_params.npz beside it."
            )
        with np.load(mean_params, allow_pickle=False) as data:
            state.update({key: torch.from_numpy(data[name]).float()[None] for name, key in means.items()})
    with torch.device("meta"):
        model = Hamer(config)
    load_exactly(model, state, f"{checkpoint} does not fit {config_path.name}")
    return model.eval()


# -- MANO outputs -----------------------------------------------------------------------------------


@dataclass
class HandOutputs:
    vertices: torch.Tensor  # (B, 778, 3) in the crop's (possibly flipped) frame
    keypoints_3d: torch.Tensor  # (B, 21, 3), OpenPose hand order
    keypoints_2d: torch.Tensor  # (B, 21, 2), crop-normalised projection
    cam_t: torch.Tensor  # (B, 3) crop camera translation


def mano_outputs(
    layer: Any, rotations: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor, config: HamerConfig
) -> HandOutputs:
    """What HaMeR's MANO wrapper and camera give: vertices, the 21 OpenPose joints (16 skeleton
    joints plus 5 fingertip vertices), their projection, and the crop camera translation."""
    rotations, betas, cam = rotations.float(), betas.float(), cam.float()
    out = layer(global_orient=rotations[:, :1], hand_pose=rotations[:, 1:], betas=betas)
    tips = out.vertices[:, list(FINGERTIP_VERTICES)]
    joints = torch.cat([out.joints, tips], dim=1)[:, list(MANO_TO_OPENPOSE)]
    depth = 2 * config.focal_length / (config.image_size * cam[:, 0] + 1e-9)
    cam_t = torch.stack([cam[:, 1], cam[:, 2], depth], dim=-1)
    points = joints + cam_t[:, None]
    projected = points[..., :2] / points[..., 2:] * (config.focal_length / config.image_size)
    return HandOutputs(out.vertices, joints, projected, cam_t)


def cam_crop_to_full(
    cam: torch.Tensor,
    center: torch.Tensor,
    size: torch.Tensor,
    image_size: torch.Tensor,
    focal: float | torch.Tensor,
) -> torch.Tensor:
    """The crop camera (s, tx, ty) as a translation for the full frame's camera (focal `focal`,
    principal point at the centre)."""
    scale = size * cam[:, 0] + 1e-9
    tz = 2 * focal / scale
    tx = 2 * (center[:, 0] - image_size[:, 0] / 2.0) / scale + cam[:, 1]
    ty = 2 * (center[:, 1] - image_size[:, 1] / 2.0) / scale + cam[:, 2]
    return torch.stack([tx, ty, tz], dim=-1)


def full_focal(config: HamerConfig, width: int, height: int) -> float:
    """The video script's focal length for the full frame: the crop focal scaled by the longer side."""
    return config.focal_length / config.image_size * max(width, height)


# -- preprocessing ----------------------------------------------------------------------------------


@dataclass
class HandCrop:
    pixels: np.ndarray  # (3, S, S) float32, normalised RGB
    center: np.ndarray  # (2,) box centre in the frame (not mirrored)
    size: float  # side of the square the crop covers, in frame pixels


def expand_to_aspect(size: np.ndarray, aspect: Sequence[int]) -> np.ndarray:
    """(w, h) grown to the target w:h by lengthening one side, as the original does."""
    w, h = size
    target_w, target_h = aspect
    if h / w < target_h / target_w:
        return np.array([w, max(w * target_h / target_w, h)])
    return np.array([max(h * target_w / target_h, w), h])


def _blurred(frame: np.ndarray, sigma: float, window: tuple[slice, slice]) -> np.ndarray:
    """The `window` of scikit-image's `gaussian(frame, sigma, channel_axis=2, preserve_range=True)`
    (float64, SciPy's nearest-edge filter, truncate 4), blurring only as far around it as the
    filter reaches."""
    from scipy import ndimage

    rows, cols = window
    radius = int(4.0 * sigma + 0.5)
    height, width = frame.shape[:2]
    outer = (
        slice(max(rows.start - radius, 0), min(rows.stop + radius, height)),
        slice(max(cols.start - radius, 0), min(cols.stop + radius, width)),
    )
    part = ndimage.gaussian_filter(
        frame[outer].astype(np.float64), sigma=(sigma, sigma, 0), mode="nearest", truncate=4.0
    )
    inner = (
        slice(rows.start - outer[0].start, rows.stop - outer[0].start),
        slice(cols.start - outer[1].start, cols.stop - outer[1].start),
    )
    return part[inner]


def crop_transform(cx: float, cy: float, width: float, height: float, out_w: int, out_h: int) -> np.ndarray:
    """`gen_trans_from_patch_cv` of HaMeR and SMPLer-X without rotation or scale: the box of
    `width` x `height` around (cx, cy) -> an `out_w` x `out_h` picture (float32 points, as there)."""
    src = np.array([[cx, cy], [cx, cy + height * 0.5], [cx + width * 0.5, cy]], dtype=np.float32)
    half_w, half_h = out_w * 0.5, out_h * 0.5
    dst = np.array([[half_w, half_h], [half_w, half_h + half_h], [half_w + half_w, half_h]], dtype=np.float32)
    return cv2.getAffineTransform(src, dst)


def crop_hand(frame_bgr: np.ndarray, box: np.ndarray, right: bool, config: HamerConfig) -> HandCrop:
    """One hand's network input, as `ViTDetDataset` makes it with RealisDance's rescale factor 2."""
    box = np.asarray(box, dtype=np.float32)
    center = (box[2:4] + box[0:2]) / 2.0
    scale = RESCALE_FACTOR * (box[2:4] - box[0:2]) / 200.0
    side = float(expand_to_aspect(scale * 200, config.bbox_shape).max())
    out = config.image_size
    height, width = frame_bgr.shape[:2]
    reach = side / 2 + 2  # the warp below reads within side / 2 + 1 of the centre
    rows, cols = window = (
        slice(max(math.floor(center[1] - reach), 0), min(math.ceil(center[1] + reach) + 1, height)),
        slice(max(math.floor(center[0] - reach), 0), min(math.ceil(center[0] + reach) + 1, width)),
    )
    downsampling = side / out / 2.0
    region = _blurred(frame_bgr, (downsampling - 1) / 2, window) if downsampling > 1.1 else frame_bgr[window]
    # A frame-sized picture holding only the window (the original blurs, converts and, for left
    # hands, flips the whole frame): untouched zero pages cost nothing, and the warp reads none.
    image = np.zeros(frame_bgr.shape, region.dtype)
    cx = float(center[0])
    if right:
        image[window] = region
    else:
        image[rows, width - cols.stop : width - cols.start] = region[:, ::-1]
        cx = width - cx - 1
    patch = cv2.warpAffine(
        image,
        crop_transform(cx, float(center[1]), side, side, out, out),
        (out, out),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    rgb = np.transpose(patch[:, :, ::-1], (2, 0, 1)).astype(np.float32)
    mean = 255.0 * np.array(config.image_mean)
    std = 255.0 * np.array(config.image_std)
    pixels = ((rgb - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
    return HandCrop(pixels, center, side)
