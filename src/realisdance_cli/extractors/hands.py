"""DWPose hand keypoints -> hand boxes -> HaMeR -> MANO records for the pose track.

Boxes are made as RealisDance's `hamer-main/inference_video.py` makes them: left hand = points
92-112 of the 134-point layout, right = 113-133; a hand is used when more than 6 of its 42
coordinates are known (a point scoring under 0.3 is unknown), and its box spans the known points.
Every hand of a chunk of frames goes through the network in batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from realisdance_cli.devices import run_batched
from realisdance_cli.extractors.hamer import Hamer, HandCrop, cam_crop_to_full, crop_hand, full_focal
from realisdance_cli.original import SCORE_THRESHOLD
from realisdance_cli.track import LEFT_HAND, RIGHT_HAND

MIN_KNOWN_COORDINATES = 6
SIDES = ((False, LEFT_HAND), (True, RIGHT_HAND))


@dataclass(frozen=True)
class HandBox:
    box: np.ndarray  # x0, y0, x1, y1 in pixels
    right: bool

    @property
    def usable(self) -> bool:
        """A box with no extent cannot be cropped (the original would fail on it)."""
        return bool(self.box[2] > self.box[0] or self.box[3] > self.box[1])


def hand_boxes(keypoints: np.ndarray, scores: np.ndarray) -> list[HandBox]:
    """The hands of one frame's people (keypoints (K, 134, 2), scores (K, 134)), left first."""
    boxes = []
    for person_points, person_scores in zip(keypoints, scores, strict=True):
        for right, side in SIDES:
            points = person_points[side]
            known = (person_scores[side] >= SCORE_THRESHOLD) & np.isfinite(points).all(axis=1)
            if 2 * int(known.sum()) > MIN_KNOWN_COORDINATES:
                seen = points[known]
                boxes.append(HandBox(np.concatenate([seen.min(axis=0), seen.max(axis=0)]), right))
    return boxes


class HandEstimator:
    """Frames (RGB) and their DWPose records -> per-frame `mano` stream records."""

    def __init__(self, model: Hamer, device: torch.device, dtype: torch.dtype, batch: int = 16) -> None:
        self.model = model.to(device)
        self.device, self.dtype, self.batch = device, dtype, batch

    def _predict(self, crops: list[HandCrop]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pixels = torch.from_numpy(np.stack([c.pixels for c in crops]))
        parts = [
            [t.float().cpu() for t in out]
            for out in run_batched(self.model, pixels, self.batch, self.device, self.dtype)
        ]
        rotations, betas, cam = (torch.cat(p) for p in zip(*parts, strict=True))
        return rotations, betas, cam

    def __call__(self, frames_rgb: list[np.ndarray], poses: list[dict[str, np.ndarray]]) -> list[dict]:
        config = self.model.config
        jobs = [
            (index, hand)
            for index, pose in enumerate(poses)
            for hand in hand_boxes(pose["keypoints"], pose["scores"])
        ]
        usable = [(i, hand) for i, hand in jobs if hand.usable]
        crops = [crop_hand(frames_rgb[i][:, :, ::-1], hand.box, hand.right, config) for i, hand in usable]
        count = len(jobs)
        record = {
            "is_right": np.array([hand.right for _, hand in jobs], bool),
            "global_orient": np.tile(np.eye(3, dtype=np.float32), (count, 1, 1, 1)),
            "hand_pose": np.tile(np.eye(3, dtype=np.float32), (count, 15, 1, 1)),
            "betas": np.zeros((count, 10), np.float32),
            "cam_crop": np.zeros((count, 3), np.float32),
            "cam_t_full": np.zeros((count, 3), np.float32),
            "focal": np.array([full_focal(config, *frames_rgb[i].shape[1::-1]) for i, _ in jobs], np.float32),
            "box": np.array([hand.box for _, hand in jobs], np.float32).reshape(count, 4),
            "valid": np.array([hand.usable for _, hand in jobs], bool),
        }
        if crops:
            rotations, betas, cam = self._predict(crops)
            cam[:, 1] *= torch.tensor([1.0 if hand.right else -1.0 for _, hand in usable])
            sizes = torch.tensor([frames_rgb[i].shape[1::-1] for i, _ in usable], dtype=torch.float32)
            full = cam_crop_to_full(
                cam,
                torch.from_numpy(np.stack([c.center for c in crops])).float(),
                torch.tensor([c.size for c in crops], dtype=torch.float32),
                sizes,
                torch.from_numpy(record["focal"][record["valid"]]),
            )
            where = record["valid"]
            record["global_orient"][where] = rotations[:, :1].numpy()
            record["hand_pose"][where] = rotations[:, 1:].numpy()
            record["betas"][where] = betas.numpy()
            record["cam_crop"][where] = cam.numpy()
            record["cam_t_full"][where] = full.numpy()
            record["valid"][where] = np.isfinite(full.numpy()).all(axis=1)
        owners = np.array([i for i, _ in jobs], np.int64)
        return [{name: values[owners == i] for name, values in record.items()} for i in range(len(poses))]
