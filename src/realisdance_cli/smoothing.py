"""Temporal smoothing of pose tracks (`render-poses --smooth`): a One-Euro filter.

The One-Euro filter (Casiez et al., CHI 2012) is a low-pass filter whose cut-off rises with the
signal's speed: still poses lose their jitter, fast moves keep their timing. Here it is
- confidence-aware: each step towards a new measurement is scaled by its confidence (a keypoint's
  score; a SMPL-X person's or MANO hand's validity), so unsure points move the estimate less;
- on the rotation manifold for joint rotations: the step is taken along the geodesic from the
  estimate to the measurement (log/exp maps of SO(3)), never per axis-angle component, which
  would break near the +-pi wrap and between equivalent axis-angle vectors.
Keypoints are filtered in units of the frame's longer side, so one setting fits any resolution.
People are matched from frame to frame by their slot (largest first, as stored), hands by side.

A frame without a usable measurement is a gap: the person or hand absent, an invalid item
(SMPLer-X's skipped person, HaMeR's rejected hand: confidence 0), a keypoint missing (NaN) or
scored 0. The filter holds its estimate and speed through it and takes the next measurement over
the longer interval, as the One-Euro filter does with uneven timestamps: a detector's dropout of a
frame or two leaves the smoothing as it was. (Filtering a gap as a step to the origin, or
restarting at every gap, would leave the next frames barely smoothed while the speed settles.) A
gap longer than `max_gap` restarts the filter: by then the person may be anywhere, and a restart
is what the interval-aware filter nearly does anyway. A gap's own items keep the held estimate;
before the first measurement they are kept as they are.
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
    max_gap: float = 0.5  # s: a longer stretch without measurements restarts the filter

    @staticmethod
    def alpha(cutoff: np.ndarray | float, dt: np.ndarray | float) -> np.ndarray:
        tau = 1.0 / (2 * np.pi * np.asarray(cutoff))
        return 1.0 / (1.0 + tau / dt)


def smooth_vectors(values: np.ndarray, fps: float, confidence: np.ndarray, params: OneEuro) -> np.ndarray:
    """One-Euro over time (axis 0) of `values` (T, ..., D); `confidence` (T, ...) in [0, 1]. Each
    measurement updates the speed and moves the estimate by its confidence; NaN or confidence 0 is
    a gap, which changes neither (see the module's docstring)."""
    dt = 1.0 / fps
    out = np.array(values, dtype=np.float64)
    estimate = np.full(out.shape[1:], np.nan)  # NaN: no estimate yet
    speed = np.zeros(out.shape[1:])
    frames = np.ones((*out.shape[1:-1], 1))  # frames since the last measurement, this one included
    for t in range(len(out)):
        weight = np.where(np.isnan(out[t]).any(-1), 0.0, np.clip(confidence[t], 0.0, 1.0))[..., None]
        seen = weight > 0
        restart = seen & (np.isnan(estimate).any(-1, keepdims=True) | ((frames - 1) * dt > params.max_gap))
        estimate = np.where(restart, out[t], estimate)
        speed = np.where(restart, 0.0, speed)
        interval = frames * dt
        step = np.where(seen, out[t] - estimate, 0.0)
        speed = speed + seen * OneEuro.alpha(params.d_cutoff, interval) * (step / interval - speed)
        cutoff = params.min_cutoff + params.beta * np.linalg.norm(speed, axis=-1, keepdims=True)
        estimate = estimate + weight * OneEuro.alpha(cutoff, interval) * step
        frames = np.where(seen, 1.0, frames + 1)
        out[t] = np.where(np.isnan(estimate), values[t], estimate)
    return out


def smooth_rotations(matrices: np.ndarray, fps: float, confidence: np.ndarray, params: OneEuro) -> np.ndarray:
    """One-Euro over time of rotation matrices (T, J, 3, 3) on SO(3); `confidence` (T,), 0 a gap
    (a not-valid frame holds no rotation, only the identity), as in `smooth_vectors`."""
    dt = 1.0 / fps
    joints = matrices.shape[1]
    out = np.array(matrices, dtype=np.float64)
    estimate: Rotation | None = None
    speed = np.zeros((joints, 3))
    frames = 1  # frames since the last measurement, this one included
    for t in range(len(out)):
        weight = float(np.clip(confidence[t], 0.0, 1.0))
        if weight > 0 and (estimate is None or (frames - 1) * dt > params.max_gap):
            estimate, speed, frames = Rotation.from_matrix(out[t].reshape(-1, 3, 3)), np.zeros((joints, 3)), 1
            continue  # a (re)start: the measurement as it is
        if estimate is None:
            continue
        if weight > 0:
            interval = frames * dt
            step = (estimate.inv() * Rotation.from_matrix(out[t].reshape(-1, 3, 3))).as_rotvec()  # geodesic
            speed = speed + OneEuro.alpha(params.d_cutoff, interval) * (step / interval - speed)
            cutoff = params.min_cutoff + params.beta * np.linalg.norm(speed, axis=-1, keepdims=True)
            estimate = estimate * Rotation.from_rotvec(weight * OneEuro.alpha(cutoff, interval) * step)
            frames = 1
        else:
            frames += 1
        out[t] = estimate.as_matrix().reshape(joints, 3, 3)
    return out


def _spread(values: np.ndarray, present: np.ndarray, fill: float | np.ndarray) -> np.ndarray:
    """`values` (N, ...) of the `present` frames (T,) bool, spread over all T frames with `fill`
    (broadcasting against one frame) where absent: float64 (T, ...)."""
    out = np.empty((len(present), *values.shape[1:]))
    out[:] = fill
    out[present] = values
    return out


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


def smooth_stream(stream: Stream, fps: float, *, frame_size: int = 1) -> Stream:
    """A smoothed copy of a DWPose, SMPL-X or MANO stream (scores, validity and boxes kept)."""
    fields = {name: np.array(values) for name, values in stream.fields.items()}
    per_frame = np.repeat(np.arange(stream.frame_count), stream.items_per_frame())
    slot_in_frame = np.arange(len(per_frame)) - stream.offsets[per_frame]
    pick = fields["is_right"].astype(int) if stream.kind == "mano" else slot_in_frame
    for index in _slots(stream, pick):
        seen = np.flatnonzero(index >= 0)
        if not len(seen):
            continue
        span = index[seen[0] : seen[-1] + 1]  # the frames from the first to the last item, -1: absent
        present, rows = span >= 0, span[span >= 0]
        if stream.kind == "dwpose":
            points = _spread(fields["keypoints"][rows] / frame_size, present, np.nan)
            smoothed = smooth_vectors(points, fps, _spread(fields["scores"][rows], present, 0.0), KEYPOINTS)
            fields["keypoints"][rows] = smoothed[present] * frame_size
            continue
        confidence = _spread(fields["valid"][rows].astype(float), present, 0.0)
        rotations = ("global_orient", "hand_pose") if stream.kind == "mano" else SMPLX_ROTATIONS
        for name in rotations:
            values = fields[name][rows]
            if stream.kind == "mano":
                matrices = values.reshape(len(rows), -1, 3, 3)
            else:
                matrices = (
                    Rotation.from_rotvec(values.reshape(-1, 3)).as_matrix().reshape(len(rows), -1, 3, 3)
                )
            smoothed = smooth_rotations(_spread(matrices, present, np.eye(3)), fps, confidence, PARAMETERS)[
                present
            ]
            if stream.kind == "smplx":
                smoothed = Rotation.from_matrix(smoothed.reshape(-1, 3, 3)).as_rotvec()
            fields[name][rows] = smoothed.reshape(values.shape)
        for name in VECTORS[stream.kind]:
            unit = frame_size if name in PIXELS else 1
            measured = _spread(fields[name][rows] / unit, present, np.nan)
            fields[name][rows] = smooth_vectors(measured, fps, confidence, PARAMETERS)[present] * unit
    return Stream(stream.kind, stream.offsets, fields)
