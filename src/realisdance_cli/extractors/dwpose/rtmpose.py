"""The whole-body pose model (RTMPose with DWPose's weights) through ONNX Runtime, as the original
annotator runs it: the 1.25-padded affine crop at the model's size (288x384), mean/std
normalisation, the SimCC argmax decode and the back-projection to frame pixels. Crops go through
the model in batches when its graph allows a batch axis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from realisdance_cli.extractors.onnx_session import open_session
from realisdance_cli.geometry.crops import box_to_center_scale, center_scale_transform, warp

BOX_PADDING = 1.25
MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])
SIMCC_SPLIT_RATIO = 2.0
POINTS = 133  # COCO-WholeBody

# (value - mean) / std for every uint8 value and channel, computed in float64 like the original and
# then rounded to float32 as ONNX Runtime receives it: a lookup gives the same numbers, faster.
NORMALISED = ((np.arange(256, dtype=np.float64)[:, None] - MEAN) / STD).astype(np.float32)

Placement = tuple[np.ndarray, np.ndarray]  # a crop's centre (2,) and size (2,) in frame pixels


def crop(
    image: np.ndarray,
    box: np.ndarray,
    size: tuple[int, int],
    flip_channels: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The normalised (3, h, w) float32 crop of `size` (w, h) around the (4,) xyxy `box` of an
    (H, W, 3) uint8 image (written into `out` if given), its centre and aspect-fixed scale."""
    width, height = size
    center, scale = box_to_center_scale(box, width / height, BOX_PADDING)
    patch = warp(image, center_scale_transform(center, scale, size), size)
    normalised = np.empty((3, int(height), int(width)), dtype=np.float32) if out is None else out
    for channel in range(3):  # the warp treats channels independently, so flipping after it is exact
        source = 2 - channel if flip_channels else channel
        np.take(NORMALISED[:, channel], patch[:, :, source].astype(np.intp), out=normalised[channel])
    return normalised, center, scale


def decode_simcc(
    simcc_x: np.ndarray, simcc_y: np.ndarray, size: tuple[int, int], center: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (133, 2) float64 in image pixels and scores (133,) float32 of one crop's SimCC
    outputs (133, 2w) and (133, 2h)."""
    x_locs, y_locs = np.argmax(simcc_x, axis=1), np.argmax(simcc_y, axis=1)
    locs = np.stack((x_locs, y_locs), axis=-1).astype(np.float32)
    max_x, max_y = np.amax(simcc_x, axis=1), np.amax(simcc_y, axis=1)
    scores = np.where(max_x > max_y, max_y, max_x)
    locs[scores <= 0.0] = -1
    locs /= SIMCC_SPLIT_RATIO
    keypoints = locs / np.array(size) * scale + center - scale / 2
    return keypoints, scores


class RTMPose:
    """Person boxes of frames -> COCO-WholeBody keypoints (K, 133, 2) in frame pixels and scores
    (K, 133); `bgr` feeds the model BGR, as the original does."""

    def __init__(self, path: Path, *, device: str = "auto", batch: int = 16, bgr: bool = True) -> None:
        self.session, batched = open_session(path, device, batchable=batch > 1)
        self.input_name = self.session.get_inputs()[0].name
        self.batch = batch if batched else 1
        height, width = self.session.get_inputs()[0].shape[2:]
        self.crop_size = (int(width), int(height))
        self.bgr = bgr

    def preprocess(self, jobs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, list[Placement]]:
        """The crops (N, 3, h, w) of (RGB frame, xyxy box) pairs and where each lies in its frame."""
        width, height = self.crop_size
        patches = np.empty((len(jobs), 3, height, width), dtype=np.float32)  # batches are views
        placements = [
            crop(frame, box, self.crop_size, flip_channels=self.bgr, out=patches[index])[1:]
            for index, (frame, box) in enumerate(jobs)
        ]
        return patches, placements

    def inference(self, patches: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each crop's SimCC outputs (x, y), the model run over batches of `patches`."""
        outputs: list[tuple[np.ndarray, np.ndarray]] = []
        for first in range(0, len(patches), self.batch):
            simcc_x, simcc_y = self.session.run(None, {self.input_name: patches[first : first + self.batch]})
            outputs.extend(zip(simcc_x, simcc_y, strict=True))
        return outputs

    def postprocess(
        self, outputs: list[tuple[np.ndarray, np.ndarray]], placements: list[Placement]
    ) -> tuple[np.ndarray, np.ndarray]:
        if not placements:
            return np.zeros((0, POINTS, 2)), np.zeros((0, POINTS))
        decoded = [
            decode_simcc(sx, sy, self.crop_size, center, scale)
            for (sx, sy), (center, scale) in zip(outputs, placements, strict=True)
        ]
        return np.stack([k for k, _ in decoded]), np.stack([s for _, s in decoded])

    def __call__(self, jobs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        patches, placements = self.preprocess(jobs)
        return self.postprocess(self.inference(patches), placements)
