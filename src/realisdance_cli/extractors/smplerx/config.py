"""SMPLer-X's sizes: widths from the checkpoint; the constants of `config_smpler_x_h32.py` are the
defaults of `SmplerXConfig`, and the encoder's head count, which the weights cannot tell, may be
given in the layout of the golden CONFIG.json."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch

from realisdance_cli.extractors.vit import ViTConfig


@dataclass(frozen=True)
class SmplerXConfig:
    encoder: ViTConfig = field(default_factory=lambda: ViTConfig(task_tokens=31))
    upscale: int = 4
    input_img_shape: tuple[int, int] = (512, 384)  # h, w of the person crop
    input_body_shape: tuple[int, int] = (256, 192)
    output_hm_shape: tuple[int, int, int] = (16, 16, 12)  # depth, h, w
    output_hand_hm_shape: tuple[int, int, int] = (16, 16, 16)
    input_hand_shape: tuple[int, int] = (256, 256)
    input_face_shape: tuple[int, int] = (192, 192)
    focal: tuple[float, float] = (5000.0, 5000.0)
    princpt: tuple[float, float] = (96.0, 128.0)
    camera_3d_size: float = 2.5

    @property
    def feat_dim(self) -> int:
        return self.encoder.embed_dim

    @property
    def depth_scale(self) -> float:
        """k in t_z = k * sigmoid(c): the depth at which the body spans `camera_3d_size` metres."""
        (fx, fy), (h, w) = self.focal, self.input_body_shape
        return math.sqrt(fx * fy * self.camera_3d_size**2 / (h * w))


def read_config(state: dict[str, torch.Tensor], overrides: dict[str, Any] | None = None) -> SmplerXConfig:
    """The checkpoint's widths, with `overrides` in the layout of the golden CONFIG.json."""
    overrides = dict(overrides or {})
    encoder_fixed = {
        key: tuple(value) if isinstance(value, list) else value
        for key, value in overrides.pop("encoder", {}).items()
        if key in ("img_size", "num_heads")
    }
    encoder = ViTConfig.from_state(state, "encoder.", **{"num_heads": 16, **encoder_fixed})
    upscale = 2 ** sum(
        1 for key in state if key.startswith("hand_roi_net.deconv.") and key.endswith("running_var")
    )
    known = {f.name for f in fields(SmplerXConfig)} - {"encoder", "upscale"}
    values: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if k in known
    }
    return replace(SmplerXConfig(encoder=encoder, upscale=upscale), **values)
