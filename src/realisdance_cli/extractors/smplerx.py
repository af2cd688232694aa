"""SMPLer-X (whole-body SMPL-X regression), inference only: a person crop -> SMPL-X parameters.

A re-implementation of SMPLer-X's test-mode forward pass (`main/SMPLer_X.py`, `common/nets/`), as
RealisDance vendors it, with module names that match the released `smpler_x_h32.pth.tar`: the ViT
encoder with 31 task tokens (0 shape, 1 camera, 2 expression, 3 jaw, 4-5 hands, 6-30 body), the
body position and rotation nets, the hand/face box net, the hand RoI net, the hand position and
rotation nets and the face regressor. Widths come from the checkpoint; the constants of
`config_smpler_x_h32.py` are the defaults of `SmplerXConfig`, and the encoder's head count, which
the weights cannot tell, may be given in a `config.json` beside the checkpoint.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from realisdance_cli.errors import UserError
from realisdance_cli.extractors.hamer import crop_transform
from realisdance_cli.extractors.roi_align import roi_align
from realisdance_cli.extractors.vit import ViT, ViTConfig
from realisdance_cli.state_dicts import load_exactly, read_weights

BODY_JOINTS = 25  # position joints of the body (and body task tokens)
HAND_JOINTS = 20  # position joints of a hand
HAND_ROTATIONS = 15
MIN_BOX = (50, 150)  # RealisDance skips person boxes narrower or shorter than this
BOX_RATIO = 1.25
RENAMES = (
    ("module.backbone", "module.encoder"),
    ("body_rotation_net", "body_regressor"),
    ("hand_rotation_net", "hand_regressor"),
)


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


# -- the network's parts, named as in the checkpoint ------------------------------------------------


def _linear(*widths: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _conv1x1(*widths: int, bn_relu_last: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Conv2d(widths[i], widths[i + 1], 1))
        if i < len(widths) - 2 or bn_relu_last:
            layers += [nn.BatchNorm2d(widths[i + 1]), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _deconv(*widths: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers += [
            nn.ConvTranspose2d(widths[i], widths[i + 1], 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(widths[i + 1]),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


def soft_argmax(heatmap: torch.Tensor) -> torch.Tensor:
    """Expected (x, y[, z]) of (B, J, [D,] H, W) heatmaps after a softmax over each map."""
    batch, joints, *sizes = heatmap.shape
    weights = F.softmax(heatmap.reshape(batch, joints, -1), dim=2).reshape(heatmap.shape)
    coords = []
    for axis in reversed(range(len(sizes))):  # x (last axis) first
        others = tuple(2 + a for a in range(len(sizes)) if a != axis)
        marginal = weights.sum(dim=others)
        steps = torch.arange(sizes[axis], device=heatmap.device, dtype=heatmap.dtype)
        coords.append((marginal * steps).sum(dim=2, keepdim=True))
    return torch.cat(coords, dim=2)


def sample_features(features: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear features (B, J, C) of (B, C, H, W) maps at pixel positions (B, J, 2)."""
    height, width = features.shape[2:]
    x = points[:, :, 0] / (width - 1) * 2 - 1
    y = points[:, :, 1] / (height - 1) * 2 - 1
    grid = torch.stack((x, y), 2)[:, :, None, :]
    return F.grid_sample(features, grid, align_corners=True)[:, :, :, 0].transpose(1, 2)


class PositionNet(nn.Module):
    def __init__(self, feat_dim: int, joints: int, heatmap: tuple[int, int, int]) -> None:
        super().__init__()
        self.joints, self.heatmap = joints, heatmap
        self.conv = _conv1x1(feat_dim, joints * heatmap[0])

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmaxed heatmaps (B, J, D, H, W) and their soft-argmax (B, J, 3)."""
        heatmap = self.conv(features).view(-1, self.joints, *self.heatmap)
        coords = soft_argmax(heatmap)
        weights = F.softmax(heatmap.flatten(2), dim=2).view_as(heatmap)
        return weights, coords


class BodyRotationNet(nn.Module):
    def __init__(self, feat_dim: int, rotations: int) -> None:
        super().__init__()
        width = BODY_JOINTS * (512 + 3)
        self.body_conv = _linear(feat_dim, 512)
        self.root_pose_out = _linear(width, 6)
        self.body_pose_out = _linear(width, rotations * 6)
        self.shape_out = _linear(feat_dim, 10)
        self.cam_out = _linear(feat_dim, 3)

    def forward(
        self,
        pose_tokens: torch.Tensor,
        shape_token: torch.Tensor,
        cam_token: torch.Tensor,
        joints: torch.Tensor,
    ) -> tuple:
        features = torch.cat((self.body_conv(pose_tokens), joints), 2).flatten(1)
        return (
            self.root_pose_out(features),
            self.body_pose_out(features),
            self.shape_out(shape_token),
            self.cam_out(cam_token),
        )


class BoxNet(nn.Module):
    """Centres and sizes of the two hands' and the face's boxes, in heatmap pixels."""

    def __init__(self, feat_dim: int, depth: int) -> None:
        super().__init__()
        self.deconv = _deconv(feat_dim + BODY_JOINTS * depth, 256, 256, 256)
        self.bbox_center = _conv1x1(256, 3)
        self.lhand_size = _linear(256, 256, 2)
        self.rhand_size = _linear(256, 256, 2)
        self.face_size = _linear(256, 256, 2)

    def forward(
        self, features: torch.Tensor, joint_heatmaps: torch.Tensor
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        maps = joint_heatmaps.flatten(1, 2)
        x = self.deconv(torch.cat((features, maps), 1))
        centres = soft_argmax(self.bbox_center(x))
        heads = (self.lhand_size, self.rhand_size, self.face_size)
        return [
            (centres[:, i] / 8, head(sample_features(x, centres[:, i : i + 1].detach())[:, 0]))
            for i, head in enumerate(heads)
        ]


class HandRoI(nn.Module):
    def __init__(self, feat_dim: int, upscale: int) -> None:
        super().__init__()
        widths = [feat_dim // 2**i for i in range(int(math.log2(upscale)) + 1)]
        self.deconv = _deconv(*widths)
        self.conv = _conv1x1(widths[-1], feat_dim)


class HandRotationNet(nn.Module):
    def __init__(self, feat_dim: int) -> None:
        super().__init__()
        self.hand_conv = _conv1x1(feat_dim, 512, bn_relu_last=True)
        self.hand_pose_out = _linear(HAND_JOINTS * (512 + 3), HAND_ROTATIONS * 6)

    def forward(self, features: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        sampled = sample_features(self.hand_conv(features), joints[:, :, :2])
        return self.hand_pose_out(torch.cat((sampled, joints), 2).flatten(1))


class FaceRegressor(nn.Module):
    def __init__(self, feat_dim: int) -> None:
        super().__init__()
        self.expr_out = _linear(feat_dim, 10)
        self.jaw_pose_out = _linear(feat_dim, 6)


# -- rotations --------------------------------------------------------------------------------------


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """SMPLer-X's convention: each 6-vector read as a 3x2 matrix (interleaved), Gram-Schmidt."""
    x = x.reshape(-1, 3, 2)
    b1 = F.normalize(x[:, :, 0], dim=1)
    a2 = x[:, :, 1]
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1, dim=1)
    return torch.stack((b1, b2, torch.linalg.cross(b1, b2, dim=1)), dim=-1)


def rotmat_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """torchgeometry's `rotation_matrix_to_angle_axis` (with the boolean-mask fix), NaN -> 0."""
    r = matrix.transpose(1, 2)
    d2 = r[:, 2, 2] < 1e-6
    d0_d1 = r[:, 0, 0] > r[:, 1, 1]
    d0_nd1 = r[:, 0, 0] < -r[:, 1, 1]
    t0 = 1 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]
    t1 = 1 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2]
    t2 = 1 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2]
    t3 = 1 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    q0 = torch.stack([r[:, 1, 2] - r[:, 2, 1], t0, r[:, 0, 1] + r[:, 1, 0], r[:, 2, 0] + r[:, 0, 2]], -1)
    q1 = torch.stack([r[:, 2, 0] - r[:, 0, 2], r[:, 0, 1] + r[:, 1, 0], t1, r[:, 1, 2] + r[:, 2, 1]], -1)
    q2 = torch.stack([r[:, 0, 1] - r[:, 1, 0], r[:, 2, 0] + r[:, 0, 2], r[:, 1, 2] + r[:, 2, 1], t2], -1)
    q3 = torch.stack([t3, r[:, 1, 2] - r[:, 2, 1], r[:, 2, 0] - r[:, 0, 2], r[:, 0, 1] - r[:, 1, 0]], -1)
    masks = [d2 & d0_d1, d2 & ~d0_d1, ~d2 & d0_nd1, ~d2 & ~d0_nd1]
    m = [mask.to(matrix.dtype)[:, None] for mask in masks]
    q = q0 * m[0] + q1 * m[1] + q2 * m[2] + q3 * m[3]
    t = t0[:, None] * m[0] + t1[:, None] * m[1] + t2[:, None] * m[2] + t3[:, None] * m[3]
    q = q / torch.sqrt(t) * 0.5
    sin_sq = (q[:, 1:] ** 2).sum(dim=1)
    sin = torch.sqrt(sin_sq)
    cos = q[:, 0]
    two_theta = 2.0 * torch.where(cos < 0.0, torch.atan2(-sin, -cos), torch.atan2(sin, cos))
    k = torch.where(sin_sq > 0.0, two_theta / sin, torch.full_like(sin, 2.0))
    axis_angle = q[:, 1:] * k[:, None]
    return torch.nan_to_num(axis_angle, nan=0.0, posinf=math.inf, neginf=-math.inf)


def rot6d_to_axis_angle(x: torch.Tensor) -> torch.Tensor:
    """(..., 6k) 6-D rotations -> (N, 3k) axis-angles, row by row."""
    batch = x.shape[0]
    return rotmat_to_axis_angle(rot6d_to_rotmat(x)).reshape(batch, -1)


# -- the whole network ------------------------------------------------------------------------------


def restore_box(
    centre: torch.Tensor, size: torch.Tensor, aspect: float, extension: float, c: SmplerXConfig
) -> torch.Tensor:
    """A (B, 4) xyxy box in crop pixels (the 512x384 input, which the vendored `restore_bbox` maps
    to, whatever its comment says) from a heatmap centre and size, grown to `aspect` (w/h) and by
    `extension`."""
    _, hm_h, hm_w = c.output_hm_shape
    crop_h, crop_w = c.input_img_shape
    scale = torch.tensor([crop_w / hm_w, crop_h / hm_h], dtype=centre.dtype, device=centre.device)
    low = (centre - size / 2.0) * scale
    high = (centre + size / 2.0) * scale
    w, h = (high - low).unbind(1)
    cx, cy = low[:, 0] + w / 2.0, low[:, 1] + h / 2.0
    h, w = torch.where(w > aspect * h, w / aspect, h), torch.where(w < aspect * h, h * aspect, w)
    w, h = w * extension, h * extension
    return torch.stack([cx - w / 2.0, cy - h / 2.0, cx - w / 2.0 + w, cy - h / 2.0 + h], dim=1)


@dataclass
class BodyOutputs:
    root_pose: torch.Tensor  # (B, 3) axis-angle
    body_pose: torch.Tensor  # (B, 63)
    lhand_pose: torch.Tensor  # (B, 45), un-flipped
    rhand_pose: torch.Tensor  # (B, 45)
    jaw_pose: torch.Tensor  # (B, 3)
    shape: torch.Tensor  # (B, 10)
    expression: torch.Tensor  # (B, 10)
    cam_trans: torch.Tensor  # (B, 3)
    lhand_box: torch.Tensor  # (B, 4) xyxy in crop pixels
    rhand_box: torch.Tensor
    face_box: torch.Tensor
    joint_img: torch.Tensor  # (B, 65, 3): body, left hand, right hand, in body-heatmap coordinates


class SmplerX(nn.Module):
    """Person crops (B, 3, 512, 384) in [0, 1], BGR as RealisDance feeds them -> `BodyOutputs`."""

    def __init__(self, config: SmplerXConfig, body_rotations: int = 21) -> None:
        super().__init__()
        self.config = config
        dim = config.feat_dim
        self.encoder = ViT(config.encoder)
        self.body_position_net = PositionNet(dim, BODY_JOINTS, config.output_hm_shape)
        self.body_regressor = BodyRotationNet(dim, body_rotations)
        self.box_net = BoxNet(dim, config.output_hm_shape[0])
        self.hand_roi_net = HandRoI(dim, config.upscale)
        self.hand_position_net = PositionNet(dim, HAND_JOINTS, config.output_hand_hm_shape)
        self.hand_regressor = HandRotationNet(dim)
        self.face_regressor = FaceRegressor(dim)

    def _hand_features(self, features: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        """RoI-Align of both hands on the upsampled map; left hands mirrored to look right."""
        c = self.config
        upsampled = self.hand_roi_net.deconv(features)
        _, hm_h, hm_w = c.output_hm_shape
        crop_h, crop_w = c.input_img_shape
        scale = (
            torch.tensor(
                [hm_w / crop_w, hm_h / crop_h, hm_w / crop_w, hm_h / crop_h],
                dtype=features.dtype,
                device=features.device,
            )
            * c.upscale
        )
        index = torch.arange(features.shape[0], dtype=features.dtype, device=features.device)[:, None]
        size = c.output_hand_hm_shape[1:]
        left, right = (roi_align(upsampled, torch.cat([index, box * scale], 1), size) for box in boxes)
        return self.hand_roi_net.conv(torch.cat([left.flip(3), right]))

    def _into_body_heatmap(self, joints: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
        """Hand-heatmap joints placed by their (crop-pixel) box into the body heatmap's x and y."""
        c = self.config
        _, hm_h, hm_w = c.output_hm_shape
        crop_h, crop_w = c.input_img_shape
        _, hand_h, hand_w = c.output_hand_hm_shape
        x = joints[:, :, 0] * ((box[:, None, 2] - box[:, None, 0]) / crop_w * hm_w / hand_w)
        y = joints[:, :, 1] * ((box[:, None, 3] - box[:, None, 1]) / crop_h * hm_h / hand_h)
        x = x + box[:, None, 0] / crop_w * hm_w
        y = y + box[:, None, 1] / crop_h * hm_h
        return torch.stack([x, y, joints[:, :, 2]], dim=2)

    def forward(self, crops: torch.Tensor) -> BodyOutputs:
        c = self.config
        body = F.interpolate(crops, c.input_body_shape)  # nearest, as the original
        features, tokens = self.encoder(body)
        heatmaps, body_joints = self.body_position_net(features)
        root, pose, shape, cam = self.body_regressor(
            tokens[:, 6:], tokens[:, 0], tokens[:, 1], body_joints.detach()
        )
        boxes = self.box_net(features, heatmaps.detach())
        hand_aspect = c.input_hand_shape[1] / c.input_hand_shape[0]
        face_aspect = c.input_face_shape[1] / c.input_face_shape[0]
        (lhand_centre, lhand_size), (rhand_centre, rhand_size), (face_centre, face_size) = boxes
        lhand_box = restore_box(lhand_centre, lhand_size, hand_aspect, 2.0, c)
        rhand_box = restore_box(rhand_centre, rhand_size, hand_aspect, 2.0, c)
        face_box = restore_box(face_centre, face_size, face_aspect, 1.5, c)

        hand_features = self._hand_features(features, [lhand_box, rhand_box])
        _, hand_joints = self.hand_position_net(hand_features)
        hand_pose = rot6d_to_axis_angle(self.hand_regressor(hand_features, hand_joints.detach()))
        batch = crops.shape[0]
        lhand_pose = hand_pose[:batch].reshape(batch, -1, 3) * hand_pose.new_tensor([1.0, -1.0, -1.0])
        lhand_joints = hand_joints[:batch].clone()
        lhand_joints[:, :, 0] = c.output_hand_hm_shape[2] - 1 - lhand_joints[:, :, 0]
        lhand_joints = self._into_body_heatmap(lhand_joints, lhand_box)
        rhand_joints = self._into_body_heatmap(hand_joints[batch:], rhand_box)

        t_z = c.depth_scale * torch.sigmoid(cam[:, 2])
        return BodyOutputs(
            root_pose=rot6d_to_axis_angle(root),
            body_pose=rot6d_to_axis_angle(pose),
            lhand_pose=lhand_pose.reshape(batch, -1),
            rhand_pose=hand_pose[batch:],
            jaw_pose=rot6d_to_axis_angle(self.face_regressor.jaw_pose_out(tokens[:, 3])),
            shape=shape,
            expression=self.face_regressor.expr_out(tokens[:, 2]),
            cam_trans=torch.cat([cam[:, :2], t_z[:, None]], 1),
            lhand_box=lhand_box,
            rhand_box=rhand_box,
            face_box=face_box,
            joint_img=torch.cat([body_joints, lhand_joints, rhand_joints], 1),
        )


# -- loading ----------------------------------------------------------------------------------------


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The network weights of `smpler_x_h32.pth.tar` under the original loader's key names."""
    raw = read_weights(path, "a SMPLer-X checkpoint")
    network = raw.get("network") if isinstance(raw, dict) else None
    if not isinstance(network, dict):
        raise UserError(f"{path} is not a SMPLer-X checkpoint: it has no 'network' weights.")
    state = {}
    for key, value in network.items():
        key = key if key.startswith("module.") else f"module.{key}"
        for old, new in RENAMES:
            key = key.replace(old, new)
        state[key.removeprefix("module.")] = value
    if "encoder.patch_embed.proj.weight" not in state:
        raise UserError(f"{path} is not a SMPLer-X checkpoint: it has no encoder weights.")
    return state


def load_smplerx(checkpoint: Path) -> SmplerX:
    """The network, strictly loaded; `config.json` beside the checkpoint may set what the weights
    cannot tell (the encoder's head count) in the layout of the golden CONFIG.json."""
    state = read_checkpoint(checkpoint)
    sidecar = checkpoint.parent / "config.json"
    try:
        overrides = json.loads(sidecar.read_text()) if sidecar.is_file() else None
    except (OSError, ValueError) as error:
        raise UserError(f"{sidecar} is not readable JSON ({error}).") from None
    config = read_config(state, overrides)
    rotations = state["body_regressor.body_pose_out.0.weight"].shape[0] // 6
    with torch.device("meta"):
        model = SmplerX(config, rotations)
    load_exactly(model, state, f"{checkpoint} is not a SMPLer-X network this code knows")
    return model.eval()


# -- preprocessing and the full-frame camera --------------------------------------------------------


def process_box(box_xywh: np.ndarray, width: int, height: int, config: SmplerXConfig) -> np.ndarray | None:
    """The original's `process_bbox`: clip to the frame, grow to the crop's aspect, then x1.25."""
    x, y, w, h = (float(v) for v in box_xywh)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1))
    if not (w * h > 0 and x2 > x1 and y2 > y1):
        return None
    w, h = x2 - x1, y2 - y1
    cx, cy = x1 + w / 2.0, y1 + h / 2.0
    aspect = config.input_img_shape[1] / config.input_img_shape[0]
    if w > aspect * h:
        h = w / aspect
    elif w < aspect * h:
        w = h * aspect
    w, h = w * BOX_RATIO, h * BOX_RATIO
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h], dtype=np.float32)


def crop_person(frame_bgr: np.ndarray, box_xywh: np.ndarray, config: SmplerXConfig) -> np.ndarray:
    """(3, H, W) float32 in [0, 1]: the processed box warped to the crop size, no normalisation."""
    x, y, w, h = (float(v) for v in box_xywh)
    out_h, out_w = config.input_img_shape
    transform = crop_transform(x + 0.5 * w, y + 0.5 * h, w, h, out_w, out_h)
    patch = cv2.warpAffine(frame_bgr, transform, (out_w, out_h), flags=cv2.INTER_LINEAR)
    return np.ascontiguousarray(patch.astype(np.float32).transpose(2, 0, 1)) / 255


def full_camera(box_xywh: np.ndarray, config: SmplerXConfig) -> tuple[np.ndarray, np.ndarray]:
    """Focal lengths and principal point of the whole frame for a crop of the processed box."""
    x, y, w, h = (float(v) for v in box_xywh)
    body_h, body_w = config.input_body_shape
    focal = np.array([config.focal[0] / body_w * w, config.focal[1] / body_h * h], np.float32)
    princpt = np.array([config.princpt[0] / body_w * w + x, config.princpt[1] / body_h * h + y], np.float32)
    return focal, princpt
