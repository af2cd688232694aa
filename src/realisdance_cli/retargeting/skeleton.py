"""The DWPose skeleton of a body given in 3-D, made from its joints instead of re-detected.

A retargeted body exists only as SMPL-X parameters (and MANO hands); detecting a skeleton on a
rendering of it would drift from the body the SMPL-X and hand videos show. Projecting the same 3-D
joints through the same camera keeps the three pose videos in agreement.

SMPL-X joints, as `smplx.SMPLX(use_face_contour=True)` outputs them (144; smplx.joint_names):
  0-54     the kinematic skeleton (body 0-21, jaw 22, eyeballs 23-24, left hand 25-39, right 40-54)
  55-59    vertices: nose, right eye, left eye, right ear, left ear
  60-65    vertices: left big toe, small toe, heel, then right big toe, small toe, heel
  66-75    vertices: fingertips, left thumb, index, middle, ring, pinky, then the right ones
  76-126   the 51 static face landmarks: iBUG-68 points 17-67 in their order (brows, nose, eyes, mouth)
  127-143  the 17 dynamic contour landmarks: iBUG-68 points 0-16 (jaw line from the subject's right)
The 134-point layout is the track's (track.py, SPEC section 1): OpenPose body-18 with the neck at 1,
6 feet, 68 face landmarks (iBUG order), 21 left-hand then 21 right-hand points (OpenPose order:
wrist, then thumb, index, middle, ring, pinky, four points each, the tip last).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

from realisdance_cli.geometry.cameras import project
from realisdance_cli.track import DWPOSE_POINTS, LEFT_HAND, RIGHT_HAND, Stream

SMPLX_JOINTS = 144  # with use_face_contour=True
HAND_POINTS = 21

NECK = 1  # DWPose makes it from the 2-D shoulders (SPEC section 1); so do we
RIGHT_SHOULDER, LEFT_SHOULDER = 2, 5  # in the 134-point layout
_SMPLX_LEFT_SHOULDER, _SMPLX_RIGHT_SHOULDER = 16, 17
PERSON = slice(0, 24)  # body-18 and feet: what the person's box is made from

# SMPL-X joint behind each of the 134 points; the neck (-1) is the midpoint of the shoulders.
_BODY18 = (
    55,  # nose (vertex)
    -1,  # neck
    17, 19, 21,  # right shoulder, elbow, wrist
    16, 18, 20,  # left shoulder, elbow, wrist
    2, 5, 8,  # right hip, knee, ankle
    1, 4, 7,  # left hip, knee, ankle
    56, 57, 58, 59,  # right eye, left eye, right ear, left ear (vertices, not the eyeballs 23-24)
)  # fmt: skip
_FEET = (60, 61, 62, 63, 64, 65)  # COCO-WholeBody's order is SMPL-X's
_FACE = (*range(127, 144), *range(76, 127))  # contour first, as iBUG-68 numbers it
# SMPL-X's hand joints run index, middle, pinky, ring, thumb (three each, as MANO's do); OpenPose's
# fingers run thumb, index, middle, ring, pinky, each ending at its fingertip vertex.
_LEFT_FINGERS = ((37, 66), (25, 67), (28, 68), (34, 69), (31, 70))  # (first joint, tip)
_RIGHT_FINGERS = ((52, 71), (40, 72), (43, 73), (49, 74), (46, 75))


def _hand(wrist: int, fingers: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    return (wrist, *(joint for first, tip in fingers for joint in (first, first + 1, first + 2, tip)))


SMPLX_TO_DWPOSE = np.array(
    [*_BODY18, *_FEET, *_FACE, *_hand(20, _LEFT_FINGERS), *_hand(21, _RIGHT_FINGERS)], dtype=np.int64
)

HandPoints = Mapping[str, np.ndarray]  # "left" / "right" -> (21, 3) camera-frame points


def smplx_keypoints(joints: ArrayLike, hands: HandPoints | None = None) -> np.ndarray:
    """The 134 DWPose points in 3-D, (..., 134, 3) float64, from SMPL-X joints (..., 144, 3).

    `joints` is the `joints` output of smplx's SMPL-X model built with `use_face_contour=True`
    (bodies.smplx_model), in the camera frame (the model's output plus `transl`). The neck is the
    midpoint of the shoulders. `hands` may replace either hand: `hands["left"]` / `hands["right"]`,
    (..., 21, 3) camera-frame points in OpenPose hand order, which is the order of HaMeR's
    `pred_keypoints_3d` (bodies.hand_joints: 16 MANO joints and 5 fingertip vertices through
    MANO_TO_OPENPOSE), left hands mirrored back into the camera frame; when a hand was placed on its
    own, its MANO points are what the hand video shows, so they win over SMPL-X's hand joints.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.shape[-2:] != (SMPLX_JOINTS, 3):
        raise ValueError(
            f"SMPL-X joints must have shape (..., {SMPLX_JOINTS}, 3) (smplx with use_face_contour=True), "
            f"got {joints.shape}"
        )
    points = joints[..., SMPLX_TO_DWPOSE, :]
    points[..., NECK, :] = (joints[..., _SMPLX_LEFT_SHOULDER, :] + joints[..., _SMPLX_RIGHT_SHOULDER, :]) / 2
    for side, part in (("left", LEFT_HAND), ("right", RIGHT_HAND)):
        if hands is not None and hands.get(side) is not None:
            hand = np.asarray(hands[side], dtype=np.float64)
            if hand.shape[-2:] != (HAND_POINTS, 3):
                raise ValueError(f"the {side} hand's points must have shape (..., 21, 3), got {hand.shape}")
            points[..., part, :] = hand
    return points


def dwpose_frame(
    joints3d: ArrayLike,
    focal: ArrayLike,
    princpt: ArrayLike,
    size: tuple[int, int],
    hands3d: HandPoints | None = None,
) -> dict[str, np.ndarray]:
    """One person's DWPose stream fields, as DWPose would report the projected body.

    `joints3d` (144, 3) camera-frame SMPL-X joints, `hands3d` optional MANO hand points (see
    `smplx_keypoints`), `focal` / `princpt` the camera (see `geometry.cameras.project`), `size`
    the picture's (height, width). Returns `keypoints` (134, 2) pixels, `scores` (134,) and `box`
    (4,) x0, y0, x1, y1. A point behind the camera or outside the picture is missing, as DWPose
    marks a point it did not find: NaN with score 0 (the `.pkl` export writes -1); every other
    point scores 1.
    The neck is the midpoint of the projected shoulders, present when both are (DWPose's rule).
    The box bounds the present body and feet points (NaN when there are none).
    """
    height, width = size
    keypoints = project(smplx_keypoints(joints3d, hands3d), focal, princpt)
    if keypoints.shape != (DWPOSE_POINTS, 2):
        raise ValueError(f"one person's SMPL-X joints must have shape (144, 3), got {np.shape(joints3d)}")
    keypoints[NECK] = (keypoints[LEFT_SHOULDER] + keypoints[RIGHT_SHOULDER]) / 2
    x, y = keypoints[:, 0], keypoints[:, 1]
    with np.errstate(invalid="ignore"):
        present = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    present[NECK] = present[LEFT_SHOULDER] & present[RIGHT_SHOULDER]
    keypoints[~present] = np.nan
    person = keypoints[PERSON][present[PERSON]]
    box = np.concatenate([person.min(axis=0), person.max(axis=0)]) if len(person) else np.full(4, np.nan)
    return {"keypoints": keypoints, "scores": present.astype(np.float64), "box": box}


def dwpose_stream(
    joints3d: Sequence[np.ndarray | None],
    focal: ArrayLike,
    princpt: ArrayLike,
    size: tuple[int, int],
    hands3d: Sequence[HandPoints | None] | None = None,
) -> Stream:
    """The DWPose stream of one body over F frames: frame i holds the person of `joints3d[i]`
    ((144, 3) camera-frame SMPL-X joints), or nobody where it is None. `focal` / `princpt` are
    one camera, (2,), or one per frame, (F, 2); `hands3d[i]` optional MANO hand points for frame i
    (see `smplx_keypoints`); `size` the picture's (height, width)."""
    frames = len(joints3d)
    focals = np.broadcast_to(np.asarray(focal, np.float64), (frames, 2))
    centres = np.broadcast_to(np.asarray(princpt, np.float64), (frames, 2))
    hands: Sequence[HandPoints | None] = [None] * frames if hands3d is None else hands3d
    if len(hands) != frames:
        raise ValueError(f"hands3d has {len(hands)} frames, joints3d {frames}")
    records: list[dict[str, np.ndarray]] = []
    for joints, frame_focal, frame_centre, frame_hands in zip(joints3d, focals, centres, hands, strict=True):
        if joints is None:
            records.append({})
            continue
        person = dwpose_frame(joints, frame_focal, frame_centre, size, frame_hands)
        records.append({name: value[None] for name, value in person.items()})
    return Stream.from_frames("dwpose", records)
