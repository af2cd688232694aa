"""A procedurally animated dancer: pose data the project makes itself, for the demo and tests.

    python -m realisdance_cli.synthetic --frames 48 --out demo/out/dance.pkl

writes an original-format DWPose `.pkl` of a figure that sways, swings its arms and steps, with
hands and a face, so every command can be tried without third-party data.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from realisdance_cli.original import save_dwpose_pkl, to_original_pose
from realisdance_cli.track import DWPOSE_POINTS, FACE, LEFT_HAND, RIGHT_HAND

log = logging.getLogger(__name__)

# OpenPose body-18 rest pose in units of body height, origin at the neck, y down.
REST_BODY = np.array(
    [
        [0.00, -0.12],  # nose
        [0.00, 0.00],  # neck
        [-0.10, 0.00],  # right shoulder
        [-0.14, 0.17],  # right elbow
        [-0.16, 0.32],  # right wrist
        [0.10, 0.00],  # left shoulder
        [0.14, 0.17],  # left elbow
        [0.16, 0.32],  # left wrist
        [-0.06, 0.32],  # right hip
        [-0.07, 0.55],  # right knee
        [-0.07, 0.78],  # right ankle
        [0.06, 0.32],  # left hip
        [0.07, 0.55],  # left knee
        [0.07, 0.78],  # left ankle
        [-0.03, -0.15],  # right eye
        [0.03, -0.15],  # left eye
        [-0.06, -0.13],  # right ear
        [0.06, -0.13],  # left ear
    ]
)


def _rotate(points: np.ndarray, pivot: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return pivot + (points - pivot) @ np.array([[c, s], [-s, c]])


def _hand(wrist: np.ndarray, direction: float, size: float, spread: float) -> np.ndarray:
    """21 hand points: the wrist, then four joints along each of five fanned fingers."""
    points = [wrist]
    for finger in range(5):
        angle = direction + (finger - 2) * spread
        for joint in range(1, 5):
            reach = size * (0.35 + 0.16 * joint) * (0.8 if finger == 0 else 1.0)
            points.append(wrist + reach * np.array([np.sin(angle), np.cos(angle)]))
    return np.array(points)


def _face(nose: np.ndarray, size: float) -> np.ndarray:
    """68 points on an oval around the nose (jaw, brows, nose, eyes, mouth collapsed to rings)."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    rings = np.where(np.arange(68) < 17, 1.0, np.where(np.arange(68) < 48, 0.6, 0.35))
    return nose + size * rings[:, None] * np.stack([0.8 * np.cos(angles), np.sin(angles)], axis=1)


def dancer_frame(
    t: float, height: int, width: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (1, 134, 2) in pixels and scores (1, 134) of the dancer at time `t` seconds."""
    scale = 0.8 * height
    neck = np.array(
        [width / 2 + 0.08 * width * np.sin(1.3 * t), 0.18 * height + 0.02 * height * np.sin(2.6 * t)]
    )
    body = REST_BODY * scale + neck
    sway = 0.15 * np.sin(1.3 * t)
    body = _rotate(body, body[1], sway)
    body[[3, 4]] = _rotate(body[[3, 4]], body[2], 1.1 * np.sin(2.0 * t) - 0.3)
    body[[6, 7]] = _rotate(body[[6, 7]], body[5], -1.1 * np.sin(2.0 * t + 1.0) + 0.3)
    body[[4]] = _rotate(body[[4]], body[3], 0.8 * np.sin(3.0 * t))
    body[[9, 10]] = _rotate(body[[9, 10]], body[8], 0.35 * np.sin(2.6 * t))
    body[[12, 13]] = _rotate(body[[12, 13]], body[11], -0.35 * np.sin(2.6 * t))
    keypoints = np.full((DWPOSE_POINTS, 2), np.nan)
    keypoints[:18] = body
    keypoints[18:24] = body[[13, 13, 13, 10, 10, 10]] + np.array([[8, 12], [16, 10], [-6, 4]] * 2)
    keypoints[FACE] = _face(body[0], 0.06 * scale)
    keypoints[LEFT_HAND] = _hand(body[7], -0.3 * np.sin(2.0 * t), 0.07 * scale, 0.25 + 0.1 * np.sin(4 * t))
    keypoints[RIGHT_HAND] = _hand(body[4], 0.3 * np.sin(2.0 * t), 0.07 * scale, 0.25 + 0.1 * np.cos(4 * t))
    scores = rng.uniform(0.5, 1.0, DWPOSE_POINTS)
    unsure = rng.random(DWPOSE_POINTS) < 0.05
    unsure[:24] = False  # the body and feet stay whole; a few face and hand points are hidden
    scores[unsure] = rng.uniform(0.0, 0.3)
    return keypoints[None], scores[None]


def dancer_pkl_frames(
    frames: int, height: int = 768, width: int = 576, fps: float = 24.0, seed: int = 0
) -> list:
    """Original-format pose dicts of `frames` frames of the dancer."""
    rng = np.random.default_rng(seed)
    poses = []
    for index in range(frames):
        keypoints, scores = dancer_frame(index / fps, height, width, rng)
        poses.append(to_original_pose(keypoints, scores, height, width))
    return poses


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", default="768x576", help="HxW of the frame")
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    height, width = (int(v) for v in args.size.lower().split("x"))
    save_dwpose_pkl(args.out, dancer_pkl_frames(args.frames, height, width, args.fps, args.seed))
    log.info("wrote %d frames of a synthetic dancer to %s", args.frames, args.out)


if __name__ == "__main__":
    main()
