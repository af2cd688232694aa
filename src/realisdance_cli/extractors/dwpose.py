"""DWPose: YOLOX person boxes, then RTMPose whole-body keypoints, through ONNX Runtime.

Every step follows the original annotator (SPEC section 1) down to the array dtypes, so the
keypoints equal the original's: letterbox with 114 padding, YOLOX grid decode, class-aware NMS
with the +1 area convention, person boxes scoring over 0.3, the largest box (RealisDance's
change; `max_people` keeps more, largest first), the 1.25-padded affine crop at 288x384, mean/std
normalisation, SimCC argmax decode, back-projection, the neck, and the OpenPose reorder.

Unlike the original, which runs one crop per call, the crops of many frames go through the pose
model together when its graph allows a batch axis, and a frame without a person stays empty
instead of being estimated on the whole picture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realisdance_cli.extractors.onnx_session import open_session

DETECTOR_SIZE = (640, 640)  # (h, w)
STRIDES = (8, 16, 32)
NMS_IOU = 0.45
NMS_SCORE = 0.1
PERSON_SCORE = 0.3
BOX_PADDING = 1.25
MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])
SIMCC_SPLIT_RATIO = 2.0
# 133 COCO-WholeBody points + the neck inserted at 17 -> OpenPose body-18 order (SPEC section 1).
MMPOSE_ORDER = [17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3]
OPENPOSE_ORDER = [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17]


def _grid_and_strides() -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for stride in STRIDES:
        h, w = DETECTOR_SIZE[0] // stride, DETECTOR_SIZE[1] // stride
        xv, yv = np.meshgrid(np.arange(w), np.arange(h))
        grid = np.stack((xv, yv), 2).reshape(1, -1, 2)
        grids.append(grid)
        strides.append(np.full((*grid.shape[:2], 1), stride))
    return np.concatenate(grids, 1), np.concatenate(strides, 1)


GRID, GRID_STRIDES = _grid_and_strides()


# (value - mean) / std for every uint8 value and channel, computed in float64 like the original and
# then rounded to float32 as ONNX Runtime receives it: a lookup gives the same numbers, faster.
NORMALISED = ((np.arange(256, dtype=np.float64)[:, None] - MEAN) / STD).astype(np.float32)


def letterbox(image: np.ndarray, flip_channels: bool = False) -> tuple[np.ndarray, float]:
    """The detector input (1, 3, 640, 640) float32 and the resize ratio.

    Resizing treats channels independently, so flipping RGB<->BGR after it (on the small picture)
    gives exactly the original's numbers at a fraction of the cost.
    """
    ratio = min(DETECTOR_SIZE[0] / image.shape[0], DETECTOR_SIZE[1] / image.shape[1])
    size = (int(image.shape[1] * ratio), int(image.shape[0] * ratio))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    padded = cv2.copyMakeBorder(
        resized,
        0,
        DETECTOR_SIZE[0] - size[1],
        0,
        DETECTOR_SIZE[1] - size[0],
        cv2.BORDER_CONSTANT,
        value=(114,) * 3,
    )
    planes = cv2.split(padded)
    tensor = np.empty((1, 3, *DETECTOR_SIZE), dtype=np.float32)
    for channel, plane in enumerate(planes[::-1] if flip_channels else planes):
        tensor[0, channel] = plane
    return tensor, ratio


class GreedyNMS:
    """The original's greedy NMS (+1 pixel areas, IoU <= threshold survives), evaluated lazily.

    Greedy NMS keeps a box exactly when no kept box of a better score overlaps it by more than the
    threshold. Asking that only for the boxes we want (the largest), and for the better-scored
    boxes they overlap, gives the full pass's answer with a fraction of the work when thousands of
    boxes survive the score threshold (random or badly trained detectors). Boxes are held in score
    order (the original's `argsort()[::-1]`, ties included), so "better" is a prefix.
    """

    def __init__(self, boxes: np.ndarray, scores: np.ndarray, threshold: float) -> None:
        self.order = scores.argsort()[::-1]
        ranked = boxes[self.order]
        self.x1, self.y1, self.x2, self.y2 = (np.ascontiguousarray(ranked[:, k]) for k in range(4))
        self.areas = (self.x2 - self.x1 + 1) * (self.y2 - self.y1 + 1)
        self.threshold = threshold
        self._kept: dict[int, bool] = {}

    def suppressors(self, rank: int) -> np.ndarray:
        """Ranks of the better boxes overlapping box `rank` by more than the threshold, best first."""
        x1, y1, x2, y2 = self.x1[:rank], self.y1[:rank], self.x2[:rank], self.y2[:rank]
        xx1 = np.maximum(self.x1[rank], x1)
        yy1 = np.maximum(self.y1[rank], y1)
        xx2 = np.minimum(self.x2[rank], x2)
        yy2 = np.minimum(self.y2[rank], y2)
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        overlap = inter / (self.areas[rank] + self.areas[:rank] - inter)
        return np.flatnonzero(overlap > self.threshold)

    def kept(self, rank: int) -> bool:
        """Whether the full greedy pass keeps box `rank` (an explicit stack instead of recursion)."""
        stack = [rank]
        pending: dict[int, list[int]] = {}
        while stack:
            current = stack[-1]
            if current in self._kept:
                stack.pop()
                continue
            if current not in pending:
                pending[current] = self.suppressors(current).tolist()
            undecided, suppressed = None, False
            for other in pending[current]:
                status = self._kept.get(other)
                if status is None:
                    undecided = other
                    break
                if status:
                    suppressed = True
                    break
            if undecided is not None:
                stack.append(undecided)
                continue
            self._kept[current] = not suppressed
            stack.pop()
        return self._kept[rank]


def person_boxes(output: np.ndarray, ratio: float, max_people: int) -> np.ndarray:
    """Person boxes (K, 4) float64 xyxy from the raw YOLOX output (1, 8400, 85), largest first.

    Class-aware NMS treats classes independently, so running it for the person class alone keeps
    exactly the person boxes the original's all-class pass keeps.
    """
    raw = np.asarray(output[0], dtype=np.float32)
    scores = raw[:, 4] * raw[:, 5]
    # Greedy NMS visits boxes from the best score down, so a box scoring <= 0.3 can only suppress
    # boxes after it, which also score <= 0.3 and are dropped anyway: the person boxes kept from
    # the boxes over 0.3 alone are exactly those the original keeps from the boxes over 0.1.
    candidates = np.flatnonzero(scores > max(NMS_SCORE, PERSON_SCORE))
    if candidates.size == 0:
        return np.zeros((0, 4))
    predictions = raw[candidates, :4]
    scores = scores[candidates]
    # Computed in float64 and stored in float32, as the original's in-place update does.
    xy = ((predictions[:, :2] + GRID[0][candidates]) * GRID_STRIDES[0][candidates]).astype(np.float32)
    wh = (np.exp(predictions[:, 2:4]) * GRID_STRIDES[0][candidates]).astype(np.float32)
    boxes = np.empty((len(candidates), 4), dtype=np.float32)
    boxes[:, :2] = xy - wh / 2.0
    boxes[:, 2:] = xy + wh / 2.0
    boxes /= ratio
    return largest_kept(boxes, scores, max_people)


def largest_kept(boxes: np.ndarray, scores: np.ndarray, count: int) -> np.ndarray:
    """The `count` largest boxes (float64) the greedy NMS keeps, largest first.

    The original keeps the NMS survivors in score order and RealisDance takes the largest; ties
    in area go to the better score, as argmax's first occurrence over that order does.
    """
    nms = GreedyNMS(boxes, scores, NMS_IOU)
    ranked = boxes[nms.order].astype(np.float64)
    areas = (ranked[:, 2] - ranked[:, 0]) * (ranked[:, 3] - ranked[:, 1])
    chosen: list[int] = []
    while len(chosen) < count:
        rank = int(np.argmax(areas))
        if areas[rank] == -np.inf:  # every box looked at
            break
        areas[rank] = -np.inf
        if nms.kept(rank):
            chosen.append(rank)
    return ranked[chosen].reshape(-1, 4)


def crop(
    image: np.ndarray,
    box: np.ndarray,
    size: tuple[int, int],
    flip_channels: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The normalised (3, h, w) float32 crop around `box` (written into `out` if given), its centre
    and aspect-fixed scale."""
    width, height = size
    x0, y0, x1, y1 = (np.array([value]) for value in box)
    center = np.hstack([x0 + x1, y0 + y1]) * 0.5
    scale = np.hstack([x1 - x0, y1 - y0]) * BOX_PADDING
    aspect = width / height
    w, h = scale[:1], scale[1:]
    scale = np.where(w > h * aspect, np.hstack([w, w / aspect]), np.hstack([h * aspect, h]))
    src = np.zeros((3, 2), dtype=np.float32)
    src[0, :] = center
    src[1, :] = center + np.array([0.0, scale[0] * -0.5])
    src[2, :] = _third_point(src[0, :], src[1, :])
    dst = np.zeros((3, 2), dtype=np.float32)
    dst[0, :] = [width * 0.5, height * 0.5]
    dst[1, :] = np.array([width * 0.5, height * 0.5]) + np.array([0.0, width * -0.5])
    dst[2, :] = _third_point(dst[0, :], dst[1, :])
    warp = cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32))
    patch: np.ndarray = np.asarray(
        cv2.warpAffine(image, warp, (int(width), int(height)), flags=cv2.INTER_LINEAR)
    )
    normalised = np.empty((3, int(height), int(width)), dtype=np.float32) if out is None else out
    for channel in range(3):  # the warp treats channels independently, so flipping after it is exact
        source = 2 - channel if flip_channels else channel
        np.take(NORMALISED[:, channel], patch[:, :, source].astype(np.intp), out=normalised[channel])
    return normalised, center, scale


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    direction = a - b
    return b + np.r_[-direction[1], direction[0]]


def decode_simcc(
    simcc_x: np.ndarray, simcc_y: np.ndarray, size: tuple[int, int], center: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (133, 2) float64 in image pixels and scores (133,) float32 for one crop."""
    x_locs, y_locs = np.argmax(simcc_x, axis=1), np.argmax(simcc_y, axis=1)
    locs = np.stack((x_locs, y_locs), axis=-1).astype(np.float32)
    max_x, max_y = np.amax(simcc_x, axis=1), np.amax(simcc_y, axis=1)
    scores = np.where(max_x > max_y, max_y, max_x)
    locs[scores <= 0.0] = -1
    locs /= SIMCC_SPLIT_RATIO
    keypoints = locs / np.array(size) * scale + center - scale / 2
    return keypoints, scores


def to_openpose(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, 133) COCO-WholeBody -> (K, 134) with the neck, body in OpenPose order (float64)."""
    info = np.concatenate((keypoints, scores[..., None]), axis=-1)
    neck = np.mean(info[:, [5, 6]], axis=1)
    neck[:, 2:4] = np.logical_and(info[:, 5, 2:4] > PERSON_SCORE, info[:, 6, 2:4] > PERSON_SCORE).astype(int)
    info = np.insert(info, 17, neck, axis=1)
    info[:, OPENPOSE_ORDER] = info[:, MMPOSE_ORDER]
    return info[..., :2], info[..., 2]


class DWPose:
    """Person detection + whole-body keypoints for frames (BGR by default, like the original)."""

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
        self.detector, _ = open_session(detector, device)
        self.pose, batched = open_session(pose_model, device, batchable=batch > 1)
        self.batch = batch if batched else 1
        height, width = self.pose.get_inputs()[0].shape[2:]
        self.crop_size = (int(width), int(height))
        self.max_people = max_people
        self.rgb = rgb

    def detect(self, frame_rgb: np.ndarray) -> np.ndarray:
        """Person boxes (K, 4) of one frame, largest first."""
        tensor, ratio = letterbox(frame_rgb, flip_channels=not self.rgb)
        (output,) = self.detector.run(None, {self.detector.get_inputs()[0].name: tensor})
        return person_boxes(output, ratio, self.max_people)

    def __call__(self, frames_rgb: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Per frame: `keypoints` (K, 134, 2) pixels, `scores` (K, 134), `box` (K, 4)."""
        boxes = [self.detect(frame) for frame in frames_rgb]
        jobs = [
            (frame, box) for frame, frame_boxes in zip(frames_rgb, boxes, strict=True) for box in frame_boxes
        ]
        width, height = self.crop_size
        patches = np.empty((len(jobs), 3, height, width), dtype=np.float32)  # batches are views
        placements = [  # each crop's (centre, scale)
            crop(frame, box, self.crop_size, flip_channels=not self.rgb, out=patches[index])[1:]
            for index, (frame, box) in enumerate(jobs)
        ]
        keypoints, scores = self._estimate(patches, placements)
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

    def _estimate(
        self, patches: np.ndarray, placements: list[tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints of every crop: the pose model over batches of `patches`, then the decode with
        each crop's (centre, scale)."""
        if not placements:
            return np.zeros((0, 134, 2)), np.zeros((0, 134))
        name = self.pose.get_inputs()[0].name
        outputs: list[Any] = []
        for first in range(0, len(patches), self.batch):
            simcc_x, simcc_y = self.pose.run(None, {name: patches[first : first + self.batch]})
            outputs.extend(zip(simcc_x, simcc_y, strict=True))
        decoded = [
            decode_simcc(sx, sy, self.crop_size, center, scale)
            for (sx, sy), (center, scale) in zip(outputs, placements, strict=True)
        ]
        keypoints = np.stack([k for k, _ in decoded])
        scores = np.stack([s for _, s in decoded])
        return to_openpose(keypoints, scores)
