"""SMPLer-X on the people of this run's DWPose stream -> `smplx` records for the pose track.

The original ran a separate mmdet Faster R-CNN to find the person; this run's DWPose already has
each person's box (from YOLOX), so it is reused. Boxes narrower than 50 or shorter than 150 pixels
are skipped as in RealisDance's script (kept in the track with `valid` false), the rest are grown
as SMPLer-X's `process_bbox` grows them and cut from the BGR frame at 512x384.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from realisdance_cli.conditions import MIN_PERSON_BOX
from realisdance_cli.extractors.estimator import Estimator
from realisdance_cli.extractors.smplerx.config import SmplerXConfig
from realisdance_cli.extractors.smplerx.network import SmplerX
from realisdance_cli.geometry.cameras import crop_camera_in_frame
from realisdance_cli.geometry.crops import fit_box, patch_transform, warp

BOX_RATIO = 1.25  # SMPLer-X's `process_bbox` growth


@dataclass(frozen=True)
class PersonBox:
    box: np.ndarray  # (4,) xywh of DWPose's person box
    processed: np.ndarray | None  # (4,) float32 xywh grown for the crop; None: skipped


@dataclass
class PersonCrop:
    pixels: np.ndarray  # (3, H, W) float32 BGR in [0, 1]
    box: np.ndarray  # (4,) xywh of the processed box it shows


def process_box(box_xywh: np.ndarray, width: int, height: int, config: SmplerXConfig) -> np.ndarray | None:
    """SMPLer-X's `process_bbox` of a (4,) xywh box in a width x height frame: clipped, grown to
    the crop's aspect, then x1.25 -> (4,) float32 xywh, or None without area in the frame."""
    aspect = config.input_img_shape[1] / config.input_img_shape[0]
    return fit_box(box_xywh, width, height, aspect, BOX_RATIO)


def crop_person(frame_bgr: np.ndarray, box_xywh: np.ndarray, config: SmplerXConfig) -> np.ndarray:
    """(3, H, W) float32 in [0, 1]: the processed box warped to the crop size, no normalisation."""
    x, y, w, h = (float(v) for v in box_xywh)
    out_h, out_w = config.input_img_shape
    patch = warp(frame_bgr, patch_transform(x + 0.5 * w, y + 0.5 * h, w, h, out_w, out_h), (out_w, out_h))
    return np.ascontiguousarray(patch.astype(np.float32).transpose(2, 0, 1)) / 255


def _xywh(box_xyxy: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box_xyxy
    return np.array([x0, y0, abs(x1 - x0), abs(y1 - y0)])


# The network's outputs as `smplx` stream fields.
FIELDS = {
    "global_orient": "root_pose",
    "body_pose": "body_pose",
    "left_hand_pose": "lhand_pose",
    "right_hand_pose": "rhand_pose",
    "jaw_pose": "jaw_pose",
    "betas": "shape",
    "expression": "expression",
    "transl": "cam_trans",
}


class BodyEstimator(Estimator[PersonBox, PersonCrop]):
    """SMPLer-X on every person DWPose found: SMPL-X parameters and the full-frame camera."""

    stream = "smplx"
    model: SmplerX

    def find(self, frame_rgb: np.ndarray, pose: dict[str, np.ndarray]) -> list[PersonBox]:
        height, width = frame_rgb.shape[:2]
        people = []
        for box in map(_xywh, pose["box"]):
            width_ok, height_ok = box[2] >= MIN_PERSON_BOX[0], box[3] >= MIN_PERSON_BOX[1]
            big_enough = bool(np.isfinite(box).all() and width_ok and height_ok)
            processed = process_box(box, width, height, self.model.config) if big_enough else None
            people.append(PersonBox(box, processed))
        return people

    def describe(self, frame_rgb: np.ndarray, item: PersonBox) -> dict[str, Any]:
        return {
            "bbox": item.box if item.processed is None else item.processed,
            "valid": item.processed is not None,
        }

    def preprocess(self, frame_rgb: np.ndarray, item: PersonBox) -> PersonCrop:
        assert item.processed is not None  # only valid people are cropped
        return PersonCrop(
            crop_person(frame_rgb[:, :, ::-1], item.processed, self.model.config), item.processed
        )

    def name_outputs(self, outputs: Any) -> dict[str, torch.Tensor]:
        return {name: getattr(outputs, output) for name, output in FIELDS.items()}

    def postprocess(
        self, outputs: dict[str, torch.Tensor], crops: list[PersonCrop], known: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        config = self.model.config
        cameras = [
            crop_camera_in_frame(config.focal, config.princpt, config.input_body_shape, crop.box)
            for crop in crops
        ]
        return {name: values.numpy() for name, values in outputs.items()} | {
            "focal": np.stack([focal for focal, _ in cameras]),
            "princpt": np.stack([princpt for _, princpt in cameras]),
        }
