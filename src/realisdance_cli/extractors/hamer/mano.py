"""What HaMeR's MANO wrapper and camera make of the network's outputs: vertices, the 21 OpenPose
hand joints, their projection into the crop, and the crop camera's translation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from realisdance_cli.extractors.hamer.config import HamerConfig
from realisdance_cli.geometry.cameras import project, weak_perspective_translation

FINGERTIP_VERTICES = (744, 320, 443, 554, 671)  # smplx's vertex_ids["mano"]: thumb .. pinky
MANO_TO_OPENPOSE = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)


@dataclass
class HandOutputs:
    vertices: torch.Tensor  # (B, 778, 3) in the crop's (possibly flipped) frame
    keypoints_3d: torch.Tensor  # (B, 21, 3), OpenPose hand order
    keypoints_2d: torch.Tensor  # (B, 21, 2), crop-normalised projection
    cam_t: torch.Tensor  # (B, 3) crop camera translation


def mano_outputs(
    layer: Any, rotations: torch.Tensor, betas: torch.Tensor, cam: torch.Tensor, config: HamerConfig
) -> HandOutputs:
    """The network's (B, 16, 3, 3) rotations, (B, 10) betas and (B, 3) crop cameras through the
    MANO `layer`, as HaMeR's MANO wrapper and camera give them: vertices, the 21 OpenPose joints
    (16 skeleton joints plus 5 fingertip vertices), their projection, and the crop camera's
    translation."""
    rotations, betas, cam = rotations.float(), betas.float(), cam.float()
    out = layer(global_orient=rotations[:, :1], hand_pose=rotations[:, 1:], betas=betas)
    tips = out.vertices[:, list(FINGERTIP_VERTICES)]
    joints = torch.cat([out.joints, tips], dim=1)[:, list(MANO_TO_OPENPOSE)]
    cam_t = weak_perspective_translation(cam, config.focal_length, config.image_size)
    projected = project(joints + cam_t[:, None], config.focal_length / config.image_size)
    return HandOutputs(out.vertices, joints, projected, cam_t)
