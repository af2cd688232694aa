"""The driver's HaMeR hands on the retargeted body: finger articulation kept, wrists on its wrists.

Each retargeted frame takes, per side, the driver's hand whose wrist is seen where the chosen
driver person's wrist is, and keeps its `hand_pose` and orientation (the retargeted body keeps the
driver's joint rotations, so its wrists are turned as the driver's were). The shape is the
reference's hand betas for that side when HaMeR found the reference's hand, else the driver's.

Cameras. The hand stream keeps HaMeR's camera, the one the hand video is drawn with: focal `focal`
(HaMeR's rule: proportional to the frame's longer side, several times the body camera's, nearly
orthographic) and the principal point at the frame's centre (W/2, H/2). A MANO hand is a metric,
rigid mesh, so to be drawn where the body camera (fx, fy, cx, cy) sees the wrist P = (X, Y, Z)
and as large, the wrist goes to the point P' of the hand camera at depth Z' = Z f / fx on the ray
of the same pixel (u, v): P' = ((u - W/2) Z' / f, (v - H/2) Z' / f, Z') (`body_to_hand_camera`).
Then f / Z' = fx / Z: a step across the wrist covers the same pixels in both pictures. The rest of
the hand follows rigidly and is seen nearly orthographically, as HaMeR draws every hand (the body
camera would foreshorten a hand far off its axis a little more). `hand_to_body_camera` is the
inverse; the returned `keypoints` are the hand's points mapped back, so projected through the body
camera they land exactly where the hand video draws them (the skeleton is made from them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from realisdance_cli.bodies import mano_points
from realisdance_cli.geometry.cameras import full_frame_focal, project
from realisdance_cli.retargeting.body import LEFT_WRIST, RIGHT_WRIST, RetargetedBody
from realisdance_cli.track import Stream

MATCH_RADIUS = 1.0  # a driver hand's wrist is the body's within this many times its box's longer side


@dataclass(frozen=True)
class RetargetedHands:
    """`mano`: the hands in the hand stream's conventions, frames as the body's. `keypoints`
    (M, 21, 3): each hand's 21 points in OpenPose hand order (MANO joints and fingertips, left
    hands mirrored back) in the body's camera frame (see the module's docstring)."""

    mano: Stream
    keypoints: np.ndarray

    def points(self, index: int) -> dict[str, np.ndarray]:
        """Frame `index`'s hand points by side, "left" / "right" -> (21, 3), as the skeleton takes."""
        lo, hi = int(self.mano.offsets[index]), int(self.mano.offsets[index + 1])
        sides = self.mano.fields["is_right"][lo:hi]
        return {"right" if right else "left": self.keypoints[lo + i] for i, right in enumerate(sides)}


def body_to_hand_camera(
    points: np.ndarray, focal: np.ndarray, princpt: np.ndarray, hand_focal: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """(..., 3) body-camera points (camera `focal` (..., 2) fx, fy, `princpt` (..., 2)) -> (..., 3)
    points of the hand camera (focal `hand_focal` (...), principal point at the centre of a `size`
    (height, width) frame) seen at the same pixels, at depth z * hand_focal / fx."""
    height, width = size
    hand_focal = np.asarray(hand_focal, np.float64)[..., None]
    pixels = project(points, focal, princpt)
    depth = points[..., 2:] * hand_focal / focal[..., :1]
    return np.concatenate([(pixels - (width / 2.0, height / 2.0)) * depth / hand_focal, depth], axis=-1)


def hand_to_body_camera(
    points: np.ndarray, focal: np.ndarray, princpt: np.ndarray, hand_focal: np.ndarray, size: tuple[int, int]
) -> np.ndarray:
    """The inverse of `body_to_hand_camera` (same arguments, `points` in the hand camera)."""
    height, width = size
    hand_focal = np.asarray(hand_focal, np.float64)[..., None]
    pixels = project(points, hand_focal, (width / 2.0, height / 2.0))
    depth = points[..., 2:] * focal[..., :1] / hand_focal
    return np.concatenate([(pixels - princpt) * depth / focal, depth], axis=-1)


def match_hand(hand_pixels: np.ndarray, radii: np.ndarray, wrist_pixel: np.ndarray) -> int | None:
    """Index of the hand whose wrist pixel (K, 2) is nearest `wrist_pixel` (2,) and within its
    radius (K,) of it, or None."""
    distance = np.linalg.norm(hand_pixels - wrist_pixel, axis=1)
    close = distance <= radii
    if not close.any():
        return None
    return int(np.argmin(np.where(close, distance, np.inf)))


def reference_hand_betas(reference_mano: Mapping[str, np.ndarray] | None) -> dict[bool, np.ndarray]:
    """The reference picture's hand shapes by side (True: right), (10,) each: per side the valid hand
    with the largest box; a side HaMeR did not find takes the other side's (one person's two hands
    share a shape: MANO's left hand is its right mirrored). None found: empty."""
    if reference_mano is None:
        return {}
    valid = np.asarray(reference_mano["valid"], bool)
    box = np.asarray(reference_mano["box"], np.float64)
    area = np.nan_to_num((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]), nan=0.0)
    shapes = {}
    for right in (False, True):
        side = valid & (np.asarray(reference_mano["is_right"], bool) == right)
        if side.any():
            shapes[right] = np.asarray(reference_mano["betas"], np.float32)[
                np.argmax(np.where(side, area, -1))
            ]
    if len(shapes) == 1:
        (only,) = shapes.values()
        shapes = {False: only, True: only}
    return shapes


def retarget_hands(
    driver_mano: Stream,
    body: RetargetedBody,
    reference_mano: Mapping[str, np.ndarray] | None,
    layer: Any,
    *,
    driver_size: tuple[int, int],
    size: tuple[int, int],
    smooth: Callable[[Stream], Stream] | None = None,
) -> RetargetedHands:
    """The driver's hands on the retargeted `body` (see the module's docstring).

    `driver_mano` is the driver track's MANO stream (frames as `body`'s), `reference_mano` the
    reference picture's MANO frame (fields with a leading hand axis) or None, `layer` is
    `bodies.mano_layer`. `driver_size` and `size` are the (height, width) of the driver's frames
    and of the output frames (the reference picture's, or the driver's for placement "driver"):
    each fixes its hand camera's principal point, and the output focal is the driver's scaled to
    the output's longer side, as HaMeR's rule makes it. A driver hand belongs to a side of the
    chosen person when its wrist, projected with its camera, lies within `MATCH_RADIUS` times its
    box's longer side of that person's projected SMPL-X wrist (the nearest such hand). `smooth`
    (e.g. `smoothing.smooth_stream`) steadies the matched hands, one per side, before they are placed.
    """
    if driver_mano.frame_count != body.smplx.frame_count:
        raise ValueError(
            f"the MANO stream has {driver_mano.frame_count} frames, the body {body.smplx.frame_count}"
        )
    hands = driver_mano.fields
    wrists = mano_points(layer, hands)[:, 0] + hands["cam_t_full"]
    height, width = driver_size
    hand_pixels = project(wrists, hands["focal"][:, None], (width / 2.0, height / 2.0))  # NaN: no camera
    radii = MATCH_RADIUS * np.maximum(
        hands["box"][:, 2] - hands["box"][:, 0], hands["box"][:, 3] - hands["box"][:, 1]
    )
    driver_cam = body.driver.fields
    body_pixels = project(
        body.driver_joints[:, [LEFT_WRIST, RIGHT_WRIST]],
        driver_cam["focal"][:, None],
        driver_cam["princpt"][:, None],
    )
    chosen, people, counts = [], [], np.zeros(body.smplx.frame_count, np.int64)
    for frame in range(body.smplx.frame_count):
        if body.smplx.offsets[frame + 1] == body.smplx.offsets[frame]:
            continue
        person = int(body.smplx.offsets[frame])
        lo, hi = int(driver_mano.offsets[frame]), int(driver_mano.offsets[frame + 1])
        for right in (False, True):
            candidates = np.flatnonzero(hands["valid"][lo:hi] & (hands["is_right"][lo:hi] == right)) + lo
            found = match_hand(hand_pixels[candidates], radii[candidates], body_pixels[person, int(right)])
            if found is not None:
                chosen.append(int(candidates[found]))
                people.append(person)
                counts[frame] += 1
    matched = Stream(
        "mano", np.concatenate([[0], np.cumsum(counts)]), {k: v[chosen] for k, v in hands.items()}
    )
    if smooth is not None:
        matched = smooth(matched)
    return _placed(
        matched.fields,
        np.array(people, np.int64),
        counts,
        body,
        reference_mano,
        layer,
        driver_size,
        size,
    )


def _placed(
    hands: Mapping[str, np.ndarray],
    people: np.ndarray,
    counts: np.ndarray,
    body: RetargetedBody,
    reference_mano: Mapping[str, np.ndarray] | None,
    layer: Any,
    driver_size: tuple[int, int],
    size: tuple[int, int],
) -> RetargetedHands:
    """The driver's matched hands (M of them), reshaped and placed at the wrists of the body's
    stream items `people` (M,); `counts` (F,) hands per frame."""
    is_right = hands["is_right"].astype(bool)
    wrist = np.where(is_right, RIGHT_WRIST, LEFT_WRIST)
    shapes = reference_hand_betas(reference_mano)
    betas = [shapes.get(bool(right), own) for right, own in zip(is_right, hands["betas"], strict=True)]
    out = {
        "is_right": is_right,
        "global_orient": hands["global_orient"],
        "hand_pose": hands["hand_pose"],
        "betas": np.array(betas, np.float32).reshape(-1, 10),
    }
    own = mano_points(layer, out)
    camera = body.smplx.fields
    focal, princpt = camera["focal"][people].astype(np.float64), camera["princpt"][people].astype(np.float64)
    height, width = size
    # The driver's focal is HaMeR's for a crop as large as the driver's longer side: rescaled.
    hand_focal = full_frame_focal(hands["focal"], max(driver_size), width, height).astype(np.float32)
    target = body_to_hand_camera(body.joints[people, wrist], focal, princpt, hand_focal, size)
    cam_t = (target - own[:, 0]).astype(np.float32)  # as stored, so `keypoints` are the stream's
    placed = own + cam_t[:, None]
    pixels = project(placed, hand_focal[:, None, None], (width / 2.0, height / 2.0))
    out.update(
        cam_crop=np.full((len(people), 3), np.nan),  # placed, not seen: no crop camera
        cam_t_full=cam_t,
        focal=hand_focal,
        box=np.concatenate([pixels.min(axis=1), pixels.max(axis=1)], axis=1),
        valid=np.ones(len(people), bool),
    )
    keypoints = hand_to_body_camera(placed, focal[:, None], princpt[:, None], hand_focal[:, None], size)
    return RetargetedHands(Stream("mano", np.concatenate([[0], np.cumsum(counts)]), out), keypoints)
