"""The driver's body motion on the reference's body: SMPL-X articulation kept, shape and placement new.

Every frame keeps the driver's joint rotations (root, body, jaw, eyes, hands) and expression and
takes the reference's betas, so the retargeted skeleton has the reference's bone lengths and the
driver's pose. Where it stands (`placement`):

- "reference": in the reference picture's camera. The first driven frame's anchor (the pelvis) is
  where the reference's is, so a driver whose first frame has the reference's pose gives exactly
  the reference's mesh; the driver's anchor motion relative to that frame follows, scaled by the
  ratio of leg lengths (hip-knee-ankle of the rest-pose skeletons, reference / driver) so strides
  fit the new legs. Foot points that touch the driver's ground touch the reference's ground line
  (its lowest foot point) through a smooth vertical correction (`ground_correction`).
- "driver": the driver's camera and anchor positions, only the shape changes; feet are corrected
  to the driver's own ground the same way (a new shape has other leg lengths).
- `upper_body` (with "reference"): for a half-body reference the anchor is the neck and shoulders
  and the scale the ratio of torso lengths (pelvis to neck); no ground correction, so the lower
  body stays out of the picture as the reference's does.

Camera frame: x right, y down, z forward (SMPLer-X's `transl`, `focal`, `princpt`). Functions take
and return NumPy arrays with the shapes in their docstrings, smplx style.

Known limit: the root's rotation is the driver's in its camera's frame, and "down" is the
camera's y. A dance filmed with a tilted camera (a phone held at 15 degrees) therefore leans by
that tilt on the reference's body, and its ground line is the tilted camera's; nothing here
estimates the floor's plane to undo it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from realisdance_cli.errors import UserError
from realisdance_cli.geometry.cameras import project
from realisdance_cli.track import STREAMS, Stream

PLACEMENTS = ("reference", "driver")
# SMPL-X's joints named here, as smplx numbers its outputs.
PELVIS = (0,)
NECK_AND_SHOULDERS = (12, 16, 17)
LEGS = ((1, 4, 7), (2, 5, 8))  # hip, knee, ankle: left, right
TORSO = ((0, 3, 6, 9, 12),)  # pelvis, spine 1-3, neck
FEET = (60, 61, 62, 63, 64, 65)  # big toe, small toe, heel: left, then right (surface points)
LEFT_WRIST, RIGHT_WRIST = 20, 21
GROUND_PERCENTILE = 90.0  # the driver's ground: this percentile of each frame's lowest foot point
POSE_CHUNK = 64  # people posed per call of the model
DEFAULT_FRAME_RATE = 30.0  # frames per second of a driver that does not record its own
NO_MOTION = "the driving track has no person in any frame; there is no motion to retarget."
_ARTICULATION = (  # the model's inputs besides the shape
    "global_orient", "body_pose", "left_hand_pose", "right_hand_pose",
    "jaw_pose", "leye_pose", "reye_pose", "expression",
)  # fmt: skip


@dataclass(frozen=True)
class GroundContact:
    """When a driver's foot point touches its ground, and how smooth the correction is."""

    height: float = 0.05  # metres: at most this far above the ground
    speed: float = 0.6  # metres per second: at most this fast
    sigma: float = 0.1  # seconds: the Gaussian that smooths the correction over time


@dataclass(frozen=True)
class RetargetedBody:
    """One person per frame at most: `smplx` the retargeted body in the output camera, `driver` the
    driver's person it was made from (the same offsets). `joints` / `driver_joints` (N, 144, 3) are
    their camera-frame SMPL-X joints (smplx's `joints` plus `transl`), one row per stream item.
    `scale` is the factor the driver's motion was scaled by."""

    smplx: Stream
    joints: np.ndarray
    driver: Stream
    driver_joints: np.ndarray
    scale: float


def largest_person(people: Mapping[str, np.ndarray]) -> int | None:
    """Index of the valid person with the largest box (`bbox` w * h) among a frame's SMPL-X people
    (fields with a leading person axis), or None when there is none."""
    area = np.asarray(people["bbox"], np.float64)[:, 2:].prod(axis=1)
    usable = np.asarray(people["valid"], bool) & np.isfinite(area) & (area > 0)
    if not usable.any():
        return None
    return int(np.argmax(np.where(usable, area, -np.inf)))


def smplx_joints(
    model: Any, people: Mapping[str, np.ndarray], advance: Callable[[int], None] | None = None
) -> np.ndarray:
    """(N, J, 3) float64 camera-frame joints (smplx's `joints` plus `transl`; J = 144 for
    `bodies.smplx_model`) of N SMPL-X people given as stream fields with a leading person axis;
    `advance(n)` is told of each n people posed."""
    import torch

    count = len(people["betas"])
    names = {name: int(np.prod(STREAMS["smplx"][name].shape)) for name in (*_ARTICULATION, "betas")}
    chunks = []
    with torch.no_grad():
        for start in range(0, count, POSE_CHUNK):
            part = slice(start, min(start + POSE_CHUNK, count))
            inputs = {
                name: torch.as_tensor(np.asarray(people[name][part], np.float32).reshape(-1, width))
                for name, width in names.items()
            }
            chunks.append(model(**inputs).joints.numpy().astype(np.float64))
            if advance is not None:
                advance(part.stop - part.start)
    joints = np.concatenate(chunks) if chunks else np.zeros((0, 144, 3))
    return joints + np.asarray(people["transl"], np.float64)[:, None, :]


def chain_length(joints: np.ndarray, chains: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """(N,) mean over `chains` of the summed bone lengths along each chain of joints (N, J, 3)."""
    lengths = [
        np.linalg.norm(np.diff(joints[:, list(chain)], axis=1), axis=-1).sum(axis=1) for chain in chains
    ]
    return np.mean(lengths, axis=0)


def driver_ground(feet_y: np.ndarray) -> float:
    """The driver's ground height (camera y, down) from its foot points' heights (N, P): the
    GROUND_PERCENTILE percentile of each frame's lowest point, so jumps and a few wild frames do not
    move it."""
    return float(np.percentile(feet_y.max(axis=1), GROUND_PERCENTILE))


def foot_contact(
    frames: np.ndarray, feet: np.ndarray, ground: float, contact: GroundContact, frame_rate: float
) -> np.ndarray:
    """(N, P) bool: which of the foot points (N, P, 3) of the frames `frames` (N,) touch `ground`:
    at most `contact.height` above it and moving at most `contact.speed` across the picture (x and
    y: a monocular estimate's depth jitters by centimetres from frame to frame), the frames being
    `frame_rate` per second apart."""
    near = ground - feet[..., 1] <= contact.height
    if len(frames) < 2:
        return near
    seconds = frames.astype(np.float64) / frame_rate
    speed = np.linalg.norm(np.gradient(feet[..., :2], seconds, axis=0), axis=-1)
    return near & (speed <= contact.speed)


def ground_correction(
    frames: np.ndarray,
    driver_feet: np.ndarray,
    new_feet_y: np.ndarray,
    ground: float,
    target_ground: float,
    scale: float,
    contact: GroundContact,
    frame_rate: float,
) -> np.ndarray:
    """(N,) downward shifts that put the retargeted feet on `target_ground`.

    `frames` (N,) increasing frame numbers, `driver_feet` (N, P, 3) the driver's foot points over
    its `ground`, `new_feet_y` (N, P) the heights of the same points on the retargeted body. At a
    frame where some driver points touch the ground, the lowest of those points on the new body
    should be `scale` times as high above `target_ground` as the driver's lowest touching point was
    above its ground. Those per-frame shifts are interpolated over the frames between, held before
    the first and after the last, and smoothed by a Gaussian of `contact.sigma` seconds (frames
    `frame_rate` per second apart): a low-pass, so the correction never adds frame-to-frame jitter
    to the root, only slow drift. No contact at all: no shift.
    """
    touching = foot_contact(frames, driver_feet, ground, contact, frame_rate)
    touched = touching.any(axis=1)
    if not touched.any():
        return np.zeros(len(frames))
    touching = touching[touched]
    lowest_driver = np.where(touching, driver_feet[touched, :, 1], -np.inf).max(axis=1)
    lowest_new = np.where(touching, new_feet_y[touched], -np.inf).max(axis=1)
    wanted = target_ground - scale * (ground - lowest_driver) - lowest_new
    timeline = np.arange(frames[0], frames[-1] + 1)
    shift = np.interp(timeline, frames[touched], wanted)
    if contact.sigma > 0:
        shift = gaussian_filter1d(shift, contact.sigma * frame_rate, mode="nearest")
    return shift[frames - frames[0]]


def check_placement(placement: str, upper_body: bool) -> None:
    """One sentence for a placement `retarget_body` cannot do, named as `rdance retarget`'s flags."""
    if placement not in PLACEMENTS:
        raise UserError(f"--placement must be {' or '.join(PLACEMENTS)}, got {placement!r}.")
    if upper_body and placement != "reference":
        raise UserError("--upper-body follows the reference picture; it needs --placement reference.")


def retarget_body(
    driver: Stream,
    reference: Mapping[str, np.ndarray],
    model: Any,
    placement: str = "reference",
    upper_body: bool = False,
    contact: GroundContact | None = None,
    frame_rate: float = DEFAULT_FRAME_RATE,
    advance: Callable[[int], None] | None = None,
) -> RetargetedBody:
    """The driver's SMPL-X stream re-posed on the reference's body (see the module's docstring).

    `driver` holds one or more people per frame; the dancer is the largest valid person of the
    first frame with one, followed from frame to frame by box position (`_chosen_people`), and
    frames without a valid person stay empty. `reference` is one person: the SMPL-X
    fields without the person axis (e.g. `{k: v[i] for k, v in stream.frame(0).items()}`). `model`
    is `bodies.smplx_model`. `contact` tunes the ground correction (default `GroundContact()`);
    `frame_rate` is the driver's frames per second. `advance(n)`, when given, is told of every n
    people posed (twice the driver's frames with the dancer in all).
    The first frame with a person is the motion's frame 0.
    """
    check_placement(placement, upper_body)
    frames, items = _chosen_people(driver)
    if not len(frames):
        raise UserError(NO_MOTION)
    ref = _one_person(reference)
    drv = {name: values[items] for name, values in driver.fields.items()}
    new = dict(drv)
    new["betas"] = np.repeat(ref["betas"], len(items), axis=0)
    if placement == "reference":
        new["focal"] = np.repeat(ref["focal"], len(items), axis=0)
        new["princpt"] = np.repeat(ref["princpt"], len(items), axis=0)
    driver_joints = smplx_joints(model, drv, advance)
    posed = smplx_joints(model, {**new, "transl": np.zeros_like(drv["transl"])}, advance)
    anchor = NECK_AND_SHOULDERS if upper_body else PELVIS
    driver_anchor = driver_joints[:, list(anchor)].mean(axis=1)
    if placement == "driver":
        scale, origin, ref_joints = 1.0, driver_anchor[0], None
    else:
        chains = TORSO if upper_body else LEGS
        ref_length = chain_length(smplx_joints(model, _at_rest(ref["betas"])), chains)[0]
        scale = float(
            ref_length / np.median(chain_length(smplx_joints(model, _at_rest(drv["betas"])), chains))
        )
        ref_joints = smplx_joints(model, ref)[0]
        origin = ref_joints[list(anchor)].mean(axis=0)
    transl = origin + scale * (driver_anchor - driver_anchor[0]) - posed[:, list(anchor)].mean(axis=1)
    if not upper_body:
        ground = driver_ground(driver_joints[:, FEET, 1])
        target = ground if ref_joints is None else float(ref_joints[list(FEET), 1].max())
        new_feet_y = posed[:, FEET, 1] + transl[:, 1:2]
        transl[:, 1] += ground_correction(
            frames,
            driver_joints[:, FEET],
            new_feet_y,
            ground,
            target,
            scale,
            contact or GroundContact(),
            frame_rate,
        )
    new["transl"] = transl = transl.astype(np.float32)  # as stored, so `joints` are the stream's
    joints = posed + transl[:, None]
    new["bbox"] = _boxes(joints, new["focal"], new["princpt"])
    new["valid"] = np.ones(len(items), bool)
    offsets = np.zeros(driver.frame_count + 1, np.int64)
    offsets[frames + 1] = 1
    offsets = np.cumsum(offsets)
    return RetargetedBody(
        Stream("smplx", offsets, new), joints, Stream("smplx", offsets.copy(), drv), driver_joints, scale
    )


def _chosen_people(driver: Stream) -> tuple[np.ndarray, np.ndarray]:
    """(frames with the dancer, the stream item of the dancer in each): the largest valid person
    of the first frame that has one, then in each frame the valid person whose box centre is
    nearest the dancer's last box (so another person who grows larger never takes over)."""
    frames, items = [], []
    last: np.ndarray | None = None  # the dancer's last box centre
    for index in range(driver.frame_count):
        people = driver.frame(index)
        person = largest_person(people)
        if person is None:
            continue
        boxes = np.asarray(people["bbox"], np.float64)
        centres = boxes[:, :2] + boxes[:, 2:] / 2
        if last is not None:
            usable = np.asarray(people["valid"], bool) & np.isfinite(centres).all(axis=1)
            distance = np.where(usable, np.linalg.norm(centres - last, axis=1), np.inf)
            person = int(np.argmin(distance))
        last = centres[person]
        frames.append(index)
        items.append(int(driver.offsets[index]) + person)
    return np.array(frames, np.int64), np.array(items, np.int64)


def dancer(driver: Stream) -> Stream:
    """The driver's SMPL-X stream with only the dancer (`_chosen_people`) in each frame: what to
    smooth, so that another person never passes for the dancer in a slot."""
    frames, items = _chosen_people(driver)
    offsets = np.zeros(driver.frame_count + 1, np.int64)
    offsets[frames + 1] = 1
    return Stream(
        "smplx", np.cumsum(offsets), {name: values[items] for name, values in driver.fields.items()}
    )


def _one_person(reference: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference person's fields with a person axis of length one."""
    person = {}
    for name, spec in STREAMS["smplx"].items():
        value = np.asarray(reference[name], spec.dtype)
        if value.shape != spec.shape:
            raise ValueError(f"the reference's {name} must have shape {spec.shape}, got {value.shape}")
        person[name] = value[None]
    return person


def _at_rest(betas: np.ndarray) -> dict[str, np.ndarray]:
    """People (N,) of shapes `betas` (N, 10) in the rest pose at the origin."""
    count = len(betas)
    people = {name: np.zeros((count, *STREAMS["smplx"][name].shape), np.float32) for name in _ARTICULATION}
    return {**people, "betas": betas, "transl": np.zeros((count, 3))}


def _boxes(joints: np.ndarray, focal: np.ndarray, princpt: np.ndarray) -> np.ndarray:
    """(N, 4) x, y, w, h of the projected joints (N, J, 3) in front of the camera (NaN: none)."""
    pixels = project(joints, focal[:, None], princpt[:, None])
    in_front = np.isfinite(pixels[..., :1])
    low = np.where(in_front, pixels, np.inf).min(axis=1)
    high = np.where(in_front, pixels, -np.inf).max(axis=1)
    box = np.concatenate([low, high - low], axis=1)
    box[~in_front.any(axis=(1, 2))] = np.nan
    return box
