"""The DWPose solution: YOLOX finds the people of each frame, RTMPose their whole-body keypoints,
and the 133 COCO-WholeBody points become the track's 134-point layout (the neck added, the body
in OpenPose order), as the original annotator returns them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from realisdance_cli.extractors.dwpose.rtmpose import RTMPose
from realisdance_cli.extractors.dwpose.yolox import YOLOX

NECK_SCORE = 0.3  # the neck is known when both shoulders score over this
# 133 COCO-WholeBody points + the neck inserted at 17 -> OpenPose body-18 order (SPEC section 1).
MMPOSE_ORDER = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3]
OPENPOSE_ORDER = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]


def to_openpose(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, 133, 2) COCO-WholeBody keypoints and (K, 133) scores -> (K, 134, 2) and (K, 134) with
    the neck, body in OpenPose order (float64)."""
    info = np.concatenate((keypoints, scores[..., None]), axis=-1)
    neck = np.mean(info[:, [5, 6]], axis=1)
    neck[:, 2:4] = np.logical_and(info[:, 5, 2:4] > NECK_SCORE, info[:, 6, 2:4] > NECK_SCORE).astype(int)
    info = np.insert(info, 17, neck, axis=1)
    info[:, OPENPOSE_ORDER] = info[:, MMPOSE_ORDER]
    return info[..., :2], info[..., 2]


class DWPose:
    """Frames (RGB) -> per frame the DWPose records of its people, largest first: `keypoints`
    (K, 134, 2) pixels, `scores` (K, 134), `box` (K, 4) xyxy. The models see BGR by default, like
    the original's."""

    def __init__(
        self,
        detector: Path,
        pose_model: Path,
        *,
        device: str = "auto",
        max_people: int = 1,
        rgb: bool = False,
        batch: int = 16,
    ) -> None:
        self.detector = YOLOX(detector, device=device, max_people=max_people, bgr=not rgb)
        self.pose = RTMPose(pose_model, device=device, batch=batch, bgr=not rgb)

    def __call__(self, frames_rgb: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        boxes = [self.detector(frame) for frame in frames_rgb]
        jobs = [
            (frame, box) for frame, frame_boxes in zip(frames_rgb, boxes, strict=True) for box in frame_boxes
        ]
        keypoints, scores = to_openpose(*self.pose(jobs))
        results, used = [], 0
        for frame_boxes in boxes:
            count = len(frame_boxes)
            results.append(
                {
                    "keypoints": keypoints[used : used + count],
                    "scores": scores[used : used + count],
                    "box": frame_boxes,
                }
            )
            used += count
        return results
