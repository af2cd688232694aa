"""SMPLer-X's network, with module names that match the released checkpoint: the ViT encoder with
31 task tokens (0 shape, 1 camera, 2 expression, 3 jaw, 4-5 hands, 6-30 body), the body position
and rotation nets, the hand/face box net, the hand RoI net, the hand position and rotation nets
and the face regressor."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from realisdance_cli.extractors.roi_align import roi_align
from realisdance_cli.extractors.smplerx.config import SmplerXConfig
from realisdance_cli.extractors.vit import ViT
from realisdance_cli.geometry.rotations import axis_angle_from_6d_rows

BODY_JOINTS = 25  # position joints of the body (and body task tokens)
HAND_JOINTS = 20  # position joints of a hand
HAND_ROTATIONS = 15


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
        hand_pose = axis_angle_from_6d_rows(self.hand_regressor(hand_features, hand_joints.detach()))
        batch = crops.shape[0]
        lhand_pose = hand_pose[:batch].reshape(batch, -1, 3) * hand_pose.new_tensor([1.0, -1.0, -1.0])
        lhand_joints = hand_joints[:batch].clone()
        lhand_joints[:, :, 0] = c.output_hand_hm_shape[2] - 1 - lhand_joints[:, :, 0]
        lhand_joints = self._into_body_heatmap(lhand_joints, lhand_box)
        rhand_joints = self._into_body_heatmap(hand_joints[batch:], rhand_box)

        t_z = c.depth_scale * torch.sigmoid(cam[:, 2])
        return BodyOutputs(
            root_pose=axis_angle_from_6d_rows(root),
            body_pose=axis_angle_from_6d_rows(pose),
            lhand_pose=lhand_pose.reshape(batch, -1),
            rhand_pose=hand_pose[batch:],
            jaw_pose=axis_angle_from_6d_rows(self.face_regressor.jaw_pose_out(tokens[:, 3])),
            shape=shape,
            expression=self.face_regressor.expr_out(tokens[:, 2]),
            cam_trans=torch.cat([cam[:, :2], t_z[:, None]], 1),
            lhand_box=lhand_box,
            rhand_box=rhand_box,
            face_box=face_box,
            joint_img=torch.cat([body_joints, lhand_joints, rhand_joints], 1),
        )
