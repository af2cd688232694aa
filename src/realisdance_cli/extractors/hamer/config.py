"""HaMeR's sizes: from the checkpoint's shapes and `model_config.yaml` (the yacs dump the release
ships). The ViT's head count and input size, which the original hard-codes in `vit()`, default to
the released model's and may be set under `MODEL.BACKBONE` (`NUM_HEADS`, `IMG_SIZE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from realisdance_cli.errors import UserError
from realisdance_cli.extractors.vit import ViTConfig


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
