"""Temporal smoothing of pose tracks (`render-poses --smooth`): a One-Euro filter.

The One-Euro filter (Casiez et al., CHI 2012) is a low-pass filter whose cut-off rises with the
signal's speed: still poses lose their jitter, fast moves keep their timing. Here it is
- confidence-aware: each step towards a new measurement is scaled by its confidence (a keypoint's
  score; a SMPL-X person's or MANO hand's validity), so unsure points move the estimate less;
- on the rotation manifold for joint rotations: the step is taken along the geodesic from the
  estimate to the measurement (log/exp maps of SO(3)), never per axis-angle component, which
  would break near the +-pi wrap and between equivalent axis-angle vectors.
Keypoints are filtered in units of the frame's longer side, so one setting fits any resolution.
People are matched from frame to frame by their slot (largest first, as stored), hands by side;
a frame without the person or hand restarts that filter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from realisdance_cli.track import Stream


@dataclass(frozen=True)
class OneEuro:
    min_cutoff: float = 1.0  # Hz: the cut-off when still (lower: smoother)
    beta: float = 2.0  # how fast the cut-off grows with speed (higher: less lag on fast moves)
    d_cutoff: float = 1.0  # Hz: the cut-off of the speed estimate

    @staticmethod
    def alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
        tau = 1.0 / (2 * np.pi * np.asarray(cutoff))
        return 1.0 / (1.0 + tau / dt)


def smooth_vectors(values: np.ndarray, fps: float, confidence: np.ndarray, params: OneEuro) -> np.ndarray:
    """One-Euro over time (axis 0) of `values` (T, ..., D); `confidence` (T, ...) in [0, 1]; NaN
    measurements are skipped."""
    dt = 1.0 / fps
    out = np.array(values, dtype=np.float64)
    estimate = np.full(out.shape[1:], np.nan)  # NaN: no estimate yet (start, or after a gap)
    speed = np.zeros(out.shape[1:])
    for t in range(len(out)):
        measured = out[t]
        weight = np.where(np.isnan(measured).any(-1), 0.0, np.clip(confidence[t], 0.0, 1.0))[..., None]
        measured = np.where(np.isnan(measured), 0.0, measured)
        fresh = np.isnan(estimate).any(-1, keepdims=True) & (weight > 0)
        estimate = np.where(fresh, measured, estimate)
        speed = np.where(fresh, 0.0, speed)
        step = np.where(np.isnan(estimate), 0.0, measured - estimate)
        speed = speed + OneEuro.alpha(params.d_cutoff, dt) * (step / dt - speed)
        cutoff = params.min_cutoff + params.beta * np.linalg.norm(speed, axis=-1, keepdims=True)
        estimate = estimate + weight * OneEuro.alpha(cutoff, dt) * step
        out[t] = np.where(np.isnan(estimate), values[t], estimate)
    return out


def smooth_rotations(matrices: np.ndarray, fps: float, confidence: np.ndarray, params: OneEuro) -> np.ndarray:
    """One-Euro over time of rotation matrices (T, J, 3, 3) on SO(3); `confidence` (T,). As in
    `smooth_vectors`, the estimate starts at the first frame with any confidence (a not-valid
    frame holds no rotation, only the identity); frames before it are kept as they are."""
    dt = 1.0 / fps
    count, joints = matrices.shape[:2]
    out = np.array(matrices, dtype=np.float64)
    sure = np.flatnonzero(np.clip(confidence, 0.0, 1.0) > 0)
    if not len(sure):
        return out
    estimate = Rotation.from_matrix(out[sure[0]].reshape(-1, 3, 3))
    speed = np.zeros((joints, 3))
    for t in range(int(sure[0]) + 1, count):
        measured = Rotation.from_matrix(out[t].reshape(-1, 3, 3))
        step = (estimate.inv() * measured).as_rotvec()  # the geodesic to the measurement
        speed = speed + OneEuro.alpha(params.d_cutoff, dt) * (step / dt - speed)
        cutoff = params.min_cutoff + params.beta * np.linalg.norm(speed, axis=-1, keepdims=True)
        weight = float(np.clip(confidence[t], 0.0, 1.0))
        estimate = estimate * Rotation.from_rotvec(weight * OneEuro.alpha(cutoff, dt) * step)
        out[t] = estimate.as_matrix().reshape(joints, 3, 3)
    return out


def _runs(present: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of consecutive True frames."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], present.astype(int), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _slots(stream: Stream, pick: np.ndarray) -> list[np.ndarray]:
    """Per slot, the item index in each frame (-1 where the frame has no such item).
    `pick[i]` is the slot of item `i`."""
    slots = []
    for slot in range(int(pick.max()) + 1 if len(pick) else 0):
        index = np.full(stream.frame_count, -1)
        for frame in range(stream.frame_count):
            items = np.arange(stream.offsets[frame], stream.offsets[frame + 1])
            chosen = items[pick[items] == slot]
            if len(chosen):
                index[frame] = chosen[0]
        slots.append(index)
    return slots


# Tuned on noisy synthetic tracks (benchmarks/smoothing.py): keypoints in units of the frame's
# longer side move faster than joints turn in radians, so they need a larger beta.
KEYPOINTS = OneEuro(min_cutoff=1.0, beta=20.0)
PARAMETERS = OneEuro(min_cutoff=1.0, beta=2.0)
SMPLX_ROTATIONS = (
    "global_orient",
    "body_pose",
    "left_hand_pose",
    "right_hand_pose",
    "jaw_pose",
    "leye_pose",
    "reye_pose",
)
# Vectors filtered linearly; SMPLer-X's camera follows the person box, so it jitters with it.
VECTORS = {"smplx": ("betas", "expression", "transl", "focal", "princpt"), "mano": ("betas", "cam_t_full")}
PIXELS = frozenset({"focal", "princpt"})  # filtered in units of the frame's longer side


def smooth_stream(
    stream: Stream,
    fps: float,
    *,
    frame_size: int = 1,
    keypoints: OneEuro = KEYPOINTS,
    parameters: OneEuro = PARAMETERS,
) -> Stream:
    """A smoothed copy of a DWPose, SMPL-X or MANO stream (scores, validity and boxes kept)."""
    fields = {name: np.array(values) for name, values in stream.fields.items()}
    per_frame = np.repeat(np.arange(stream.frame_count), stream.items_per_frame())
    slot_in_frame = np.arange(len(per_frame)) - stream.offsets[per_frame]
    pick = fields["is_right"].astype(int) if stream.kind == "mano" else slot_in_frame
    for index in _slots(stream, pick):
        for start, end in _runs(index >= 0):
            rows = index[start:end]
            if stream.kind == "dwpose":
                points = fields["keypoints"][rows] / frame_size
                smoothed = smooth_vectors(points, fps, fields["scores"][rows], keypoints)
                fields["keypoints"][rows] = smoothed * frame_size
                continue
            confidence = fields["valid"][rows].astype(float)
            rotations = ("global_orient", "hand_pose") if stream.kind == "mano" else SMPLX_ROTATIONS
            for name in rotations:
                values = fields[name][rows]
                if stream.kind == "mano":
                    matrices = values.reshape(len(rows), -1, 3, 3)
                else:
                    matrices = (
                        Rotation.from_rotvec(values.reshape(-1, 3)).as_matrix().reshape(len(rows), -1, 3, 3)
                    )
                smoothed = smooth_rotations(matrices, fps, confidence, parameters)
                if stream.kind == "smplx":
                    smoothed = Rotation.from_matrix(smoothed.reshape(-1, 3, 3)).as_rotvec()
                fields[name][rows] = smoothed.reshape(values.shape)
            for name in VECTORS[stream.kind]:
                unit = frame_size if name in PIXELS else 1
                fields[name][rows] = (
                    smooth_vectors(fields[name][rows] / unit, fps, confidence, parameters) * unit
                )
    return Stream(stream.kind, stream.offsets, fields)
