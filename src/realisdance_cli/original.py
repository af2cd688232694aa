"""The original release's DWPose `.pkl` format, read and written exactly.

A `.pkl` is a list with one dict per frame (SPEC section 1): `bodies.candidate` (18N, 2) and
`bodies.subset` (N, 18) for N people, `hands` (2N, 21, 2) with all left hands first, optional
`faces` (N, 68, 2) and `hands_score` (2N, 21), and the frame size `H`, `W`. Coordinates are
divided by the frame size; points with a score under 0.3 are -1, except body points, which keep
their coordinates and are hidden through `subset` instead.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realisdance_cli.errors import UserError
from realisdance_cli.safe_pickle import restricted_load
from realisdance_cli.track import (
    BODY,
    DWPOSE_POINTS,
    FACE,
    LEFT_HAND,
    RIGHT_HAND,
    SourceInfo,
    Stream,
    Track,
    atomic_write_bytes,
    file_sha256,
)
from realisdance_cli.video import as_fraction

SCORE_THRESHOLD = 0.3
OPTIONAL_KEYS = ("faces", "hands_score")


def to_original_pose(
    keypoints: np.ndarray,
    scores: np.ndarray,
    height: int,
    width: int,
    *,
    optional_keys: Sequence[str] = OPTIONAL_KEYS,
) -> dict[str, Any]:
    """One frame's pose dict, with the original's arithmetic step for step.

    `keypoints` (N, 134, 2) are pixels in the 134-point layout, `scores` (N, 134).
    """
    people = keypoints.shape[0]
    candidate = np.array(keypoints, dtype=np.float64)
    candidate[..., 0] /= float(width)
    candidate[..., 1] /= float(height)
    body = candidate[:, BODY].copy().reshape(people * 18, 2)
    index = 18 * np.arange(people)[:, None] + np.arange(18)[None, :]
    subset = np.where(scores[:, BODY] > SCORE_THRESHOLD, index, -1).astype(np.float64)
    candidate[scores < SCORE_THRESHOLD] = -1
    pose: dict[str, Any] = {
        "bodies": {"candidate": body, "subset": subset},
        "hands": np.vstack([candidate[:, LEFT_HAND], candidate[:, RIGHT_HAND]]),
    }
    if "hands_score" in optional_keys:
        pose["hands_score"] = np.vstack([scores[:, LEFT_HAND], scores[:, RIGHT_HAND]]).astype(np.float64)
    if "faces" in optional_keys:
        pose["faces"] = candidate[:, FACE]
    pose["H"], pose["W"] = int(height), int(width)
    return pose


def _to_pixels(normalised: np.ndarray, size: float) -> np.ndarray:
    """Pixels `p` with `p / size == normalised` exactly, so an export gives back the same file."""
    pixels = normalised * size
    for _ in range(8):
        error = pixels / size - normalised
        wrong = np.isfinite(normalised) & (error != 0)
        if not wrong.any():
            break
        pixels[wrong] = np.nextafter(pixels[wrong], np.where(error[wrong] > 0, -np.inf, np.inf))
    return pixels


def _points(normalised: np.ndarray, width: int, height: int) -> np.ndarray:
    pixels = np.empty_like(normalised)
    pixels[..., 0] = _to_pixels(normalised[..., 0], width)
    pixels[..., 1] = _to_pixels(normalised[..., 1], height)
    return pixels


def from_original_pose(pose: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, 134, 2) in pixels and scores (N, 134) from one frame's pose dict.

    Masked points (-1) become NaN with score 0; without `hands_score`, visible points score 1.
    The pose file never stores the feet, so they are NaN.
    """
    width, height = int(pose["W"]), int(pose["H"])
    subset = np.asarray(pose["bodies"]["subset"], np.float64)
    people = subset.shape[0]
    keypoints = np.full((people, DWPOSE_POINTS, 2), np.nan)
    scores = np.zeros((people, DWPOSE_POINTS))
    keypoints[:, BODY] = _points(np.asarray(pose["bodies"]["candidate"], np.float64), width, height).reshape(
        people, 18, 2
    )
    scores[:, BODY] = (subset != -1).astype(np.float64)

    def masked(part: slice, values: np.ndarray, part_scores: np.ndarray | None) -> None:
        missing = np.all(values == -1, axis=-1)
        keypoints[:, part] = np.where(missing[..., None], np.nan, _points(values, width, height))
        scores[:, part] = part_scores if part_scores is not None else (~missing).astype(np.float64)

    hands = np.asarray(pose["hands"], np.float64)
    hand_scores = pose.get("hands_score")
    hand_scores = None if hand_scores is None else np.asarray(hand_scores, np.float64)
    masked(LEFT_HAND, hands[:people], None if hand_scores is None else hand_scores[:people])
    masked(RIGHT_HAND, hands[people:], None if hand_scores is None else hand_scores[people:])
    if "faces" in pose:
        masked(FACE, np.asarray(pose["faces"], np.float64), None)
    return keypoints, scores


def _expected_shapes(people: int, key: str) -> tuple[int, ...]:
    return {
        "candidate": (18 * people, 2),
        "hands": (2 * people, 21, 2),
        "faces": (people, 68, 2),
        "hands_score": (2 * people, 21),
    }[key]


def load_dwpose_pkl(path: Path) -> list[dict[str, Any]]:
    """The frames of an original DWPose `.pkl`, loaded safely and checked."""
    frames = restricted_load(path)
    if not isinstance(frames, list) or not frames:
        raise UserError(f"{path} is not a DWPose pose file: it should hold a non-empty list of frames.")
    optional = {key for key in OPTIONAL_KEYS if isinstance(frames[0], dict) and key in frames[0]}
    for number, pose in enumerate(frames):
        where = f"{path} frame {number}"
        try:
            subset = pose["bodies"]["subset"]
            arrays = {"candidate": pose["bodies"]["candidate"], "hands": pose["hands"]}
            arrays.update({key: pose[key] for key in optional})
            int(pose["H"]), int(pose["W"])
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{where} is not a DWPose pose dict (missing {err}).") from None
        if not isinstance(subset, np.ndarray) or subset.ndim != 2 or subset.shape[1] != 18:
            raise UserError(f"{where}: bodies.subset must be an (N, 18) array.")
        if optional != {key for key in OPTIONAL_KEYS if key in pose}:
            raise UserError(f"{where} has other optional keys than frame 0 ({sorted(optional)}).")
        for key, array in arrays.items():
            expected = _expected_shapes(subset.shape[0], key)
            if not isinstance(array, np.ndarray) or array.shape != expected:
                shape = getattr(array, "shape", type(array).__name__)
                raise UserError(f"{where}: {key} should have shape {expected}, got {shape}.")
    return frames


def save_dwpose_pkl(path: Path, frames: list[dict[str, Any]]) -> None:
    buffer = io.BytesIO()
    pickle.dump(frames, buffer, protocol=4)
    atomic_write_bytes(path, buffer.getvalue())


def import_dwpose_pkl(pkl: Path, out: Path, *, fps: float | None = None, overwrite: bool = False) -> Track:
    """An original `.pkl` as a pose track (a DWPose stream, no SMPL-X or MANO)."""
    frames = load_dwpose_pkl(pkl)
    sizes = {(int(pose["H"]), int(pose["W"])) for pose in frames}
    if len(sizes) != 1:
        raise UserError(f"{pkl} mixes frame sizes {sorted(sizes)}; a track has one size.")
    ((height, width),) = sizes
    stream = poses_to_stream(frames)
    source = SourceInfo(
        path=str(pkl.resolve()),
        sha256=file_sha256(pkl),
        width=width,
        height=height,
        frame_count=len(frames),
        fps=None if fps is None else as_fraction(fps),
    )
    track = Track.create(out, source, overwrite=overwrite)
    optional = [key for key in OPTIONAL_KEYS if key in frames[0]]
    track.write("dwpose", stream, weights={}, options={"origin": "import", "pkl_keys": optional})
    return track


def poses_to_stream(poses: list[dict[str, Any]]) -> Stream:
    """Original pose dicts as a DWPose stream (pixels; the boxes, never stored there, unknown)."""
    records = []
    for pose in poses:
        keypoints, scores = from_original_pose(pose)
        records.append(
            {"keypoints": keypoints, "scores": scores, "box": np.full((len(keypoints), 4), np.nan)}
        )
    return Stream.from_frames("dwpose", records)


def stream_to_poses(
    stream: Stream, height: int, width: int, optional_keys: Sequence[str] = OPTIONAL_KEYS
) -> list[dict[str, Any]]:
    """A DWPose stream as original pose dicts, one per frame."""
    frames = []
    for index in range(stream.frame_count):
        people = stream.frame(index)
        frames.append(
            to_original_pose(
                people["keypoints"], people["scores"], height, width, optional_keys=optional_keys
            )
        )
    return frames


def track_to_original(track: Track, stream: Stream | None = None) -> list[dict[str, Any]]:
    """The DWPose stream of `track` (or `stream`, a processed copy of it) as original pose dicts."""
    optional = track.state("dwpose").options.get("pkl_keys", list(OPTIONAL_KEYS))
    stream = track.load("dwpose") if stream is None else stream
    return stream_to_poses(stream, track.source.height, track.source.width, optional)


def export_dwpose_pkl(track: Track, out: Path) -> Path:
    save_dwpose_pkl(out, track_to_original(track))
    return out
