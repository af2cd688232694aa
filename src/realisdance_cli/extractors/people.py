"""DWPose person boxes -> SMPLer-X -> SMPL-X records for the pose track.

The original ran a separate mmdet Faster R-CNN to find the person; this run's DWPose already has
each person's box (from YOLOX), so it is reused. Boxes narrower than 50 or shorter than 150 pixels
are skipped as in RealisDance's script (kept in the track with `valid` false), the rest go through
`process_bbox` and the 512x384 crop of the BGR frame, all people of a chunk of frames batched.
"""

from __future__ import annotations

import numpy as np
import torch

from realisdance_cli.devices import run_batched
from realisdance_cli.extractors.smplerx import MIN_BOX, SmplerX, crop_person, full_camera, process_box


def _xywh(box_xyxy: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box_xyxy
    return np.array([x0, y0, abs(x1 - x0), abs(y1 - y0)])


class PersonEstimator:
    """Frames (RGB) and their DWPose records -> per-frame `smplx` stream records."""

    def __init__(self, model: SmplerX, device: torch.device, dtype: torch.dtype, batch: int = 16) -> None:
        self.model = model.to(device)
        self.device, self.dtype, self.batch = device, dtype, batch

    def _predict(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {}
        for out in run_batched(self.model, torch.from_numpy(crops), self.batch, self.device, self.dtype):
            named = {
                "global_orient": out.root_pose,
                "body_pose": out.body_pose,
                "left_hand_pose": out.lhand_pose,
                "right_hand_pose": out.rhand_pose,
                "jaw_pose": out.jaw_pose,
                "betas": out.shape,
                "expression": out.expression,
                "transl": out.cam_trans,
            }
            for name, value in named.items():
                parts.setdefault(name, []).append(value.float().cpu().numpy())
        return {name: np.concatenate(values) for name, values in parts.items()}

    def __call__(self, frames_rgb: list[np.ndarray], poses: list[dict[str, np.ndarray]]) -> list[dict]:
        config = self.model.config
        jobs = [(i, _xywh(box)) for i, pose in enumerate(poses) for box in pose["box"]]
        boxes: list[np.ndarray | None] = []
        for i, box in jobs:
            height, width = frames_rgb[i].shape[:2]
            big_enough = bool(np.isfinite(box).all() and box[2] >= MIN_BOX[0] and box[3] >= MIN_BOX[1])
            boxes.append(process_box(box, width, height, config) if big_enough else None)
        usable = [(k, box) for k, box in enumerate(boxes) if box is not None]
        count = len(jobs)
        record: dict[str, np.ndarray] = {
            "global_orient": np.zeros((count, 3), np.float32),
            "body_pose": np.zeros((count, 21, 3), np.float32),
            "left_hand_pose": np.zeros((count, 15, 3), np.float32),
            "right_hand_pose": np.zeros((count, 15, 3), np.float32),
            "jaw_pose": np.zeros((count, 3), np.float32),
            "leye_pose": np.zeros((count, 3), np.float32),
            "reye_pose": np.zeros((count, 3), np.float32),
            "betas": np.zeros((count, 10), np.float32),
            "expression": np.zeros((count, 10), np.float32),
            "transl": np.zeros((count, 3), np.float32),
            "focal": np.zeros((count, 2), np.float32),
            "princpt": np.zeros((count, 2), np.float32),
            "bbox": np.array(
                [b if b is not None else box for b, (_, box) in zip(boxes, jobs, strict=True)], np.float32
            ).reshape(count, 4),
            "valid": np.array([b is not None for b in boxes], bool),
        }
        if usable:
            rows = [k for k, _ in usable]
            crops = np.stack(
                [crop_person(frames_rgb[jobs[k][0]][:, :, ::-1], box, config) for k, box in usable]
            )
            for name, values in self._predict(crops).items():
                record[name][rows] = values.reshape(len(rows), *record[name].shape[1:])
            for k, box in usable:
                record["focal"][k], record["princpt"][k] = full_camera(box, config)
        owners = np.array([i for i, _ in jobs], np.int64)
        return [{name: values[owners == i] for name, values in record.items()} for i in range(len(poses))]
