"""YOLOX person detection through ONNX Runtime, as the original annotator runs it: letterbox with
114 padding, the grid decode, class-aware NMS with the +1 area convention, person boxes scoring
over 0.3, and the largest box (RealisDance's change; `max_people` keeps more, largest first)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from realisdance_cli.extractors.onnx_session import open_session

INPUT_SIZE = (640, 640)  # (h, w)
STRIDES = (8, 16, 32)
NMS_IOU = 0.45
NMS_SCORE = 0.1
PERSON_SCORE = 0.3


def _grid_and_strides() -> tuple[np.ndarray, np.ndarray]:
    grids, strides = [], []
    for stride in STRIDES:
        h, w = INPUT_SIZE[0] // stride, INPUT_SIZE[1] // stride
        xv, yv = np.meshgrid(np.arange(w), np.arange(h))
        grid = np.stack((xv, yv), 2).reshape(1, -1, 2)
        grids.append(grid)
        strides.append(np.full((*grid.shape[:2], 1), stride))
    return np.concatenate(grids, 1), np.concatenate(strides, 1)


GRID, GRID_STRIDES = _grid_and_strides()


def letterbox(image: np.ndarray, flip_channels: bool = False) -> tuple[np.ndarray, float]:
    """The detector input (1, 3, 640, 640) float32 of an (H, W, 3) uint8 image, and the resize ratio.

    Resizing treats channels independently, so flipping RGB<->BGR after it (on the small picture)
    gives exactly the original's numbers at a fraction of the cost.
    """
    ratio = min(INPUT_SIZE[0] / image.shape[0], INPUT_SIZE[1] / image.shape[1])
    # At least a pixel: a sliver of a picture (3000x2) would otherwise shrink to nothing.
    size = (max(1, int(image.shape[1] * ratio)), max(1, int(image.shape[0] * ratio)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR).astype(np.uint8)
    padded = cv2.copyMakeBorder(
        resized,
        0,
        INPUT_SIZE[0] - size[1],
        0,
        INPUT_SIZE[1] - size[0],
        cv2.BORDER_CONSTANT,
        value=(114,) * 3,
    )
    planes = cv2.split(padded)
    tensor = np.empty((1, 3, *INPUT_SIZE), dtype=np.float32)
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


class YOLOX:
    """An (H, W, 3) uint8 RGB frame -> its person boxes (K, 4) xyxy, largest first; `bgr` feeds
    the model BGR, as the original does."""

    def __init__(self, path: Path, *, device: str = "auto", max_people: int = 1, bgr: bool = True) -> None:
        self.session, _ = open_session(path, device)
        self.input_name = self.session.get_inputs()[0].name
        self.max_people = max_people
        self.bgr = bgr

    def preprocess(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """The letterboxed input (1, 3, 640, 640) and its resize ratio."""
        return letterbox(frame_rgb, flip_channels=self.bgr)

    def inference(self, tensor: np.ndarray) -> np.ndarray:
        """The raw output (1, 8400, 85)."""
        (output,) = self.session.run(None, {self.input_name: tensor})
        return np.asarray(output)

    def postprocess(self, output: np.ndarray, ratio: float) -> np.ndarray:
        return person_boxes(output, ratio, self.max_people)

    def __call__(self, frame_rgb: np.ndarray) -> np.ndarray:
        tensor, ratio = self.preprocess(frame_rgb)
        return self.postprocess(self.inference(tensor), ratio)
