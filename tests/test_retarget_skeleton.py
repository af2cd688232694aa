"""The retargeted body's DWPose skeleton: SMPL-X joints (and MANO hands) projected into the track's
134-point layout, missing where DWPose would not see them, drawing as the original skeleton."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from smplx.joint_names import JOINT_NAMES

from realisdance_cli.bodies import smplx_model
from realisdance_cli.geometry.cameras import project
from realisdance_cli.original import stream_to_poses, to_original_pose
from realisdance_cli.renderers.skeleton import draw_pose
from realisdance_cli.retargeting.skeleton import SMPLX_TO_DWPOSE, dwpose_frame, dwpose_stream, smplx_keypoints
from realisdance_cli.track import BODY, FACE, LEFT_HAND, RIGHT_HAND

HEIGHT, WIDTH = 480, 360
FOCAL = np.array([600.0, 610.0])
PRINCPT = np.array([180.0, 230.0])
NECK, RIGHT_SHOULDER, LEFT_SHOULDER = 1, 2, 5
FACING_CAMERA = np.diag([1.0, -1.0, -1.0])  # SMPL-X's y-up, +z-facing body turned towards a y-down camera

BODY_NAMES = [
    "nose", None, "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
]  # fmt: skip
FEET_NAMES = ["left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel"]
CONTOUR_NAMES = [f"right_contour_{i}" for i in range(1, 9)] + ["contour_middle"]
CONTOUR_NAMES += [f"left_contour_{i}" for i in range(8, 0, -1)]
FINGERS = ("thumb", "index", "middle", "ring", "pinky")


def hand_names(side: str) -> list[str]:
    return [f"{side}_wrist"] + [
        f"{side}_{finger}{part}" for finger in FINGERS for part in ("1", "2", "3", "")
    ]


def pinhole(points: np.ndarray, focal: np.ndarray = FOCAL, princpt: np.ndarray = PRINCPT) -> np.ndarray:
    """The projection written out independently of the module under test."""
    points = np.asarray(points, np.float64)
    return np.stack(
        [
            focal[0] * points[..., 0] / points[..., 2] + princpt[0],
            focal[1] * points[..., 1] / points[..., 2] + princpt[1],
        ],
        axis=-1,
    )


def facing_camera(body: np.ndarray, offset: tuple[float, float, float]) -> np.ndarray:
    """Body-frame points (SMPL-X: y up, the subject's left +x, facing +z) turned towards the camera
    and moved to `offset` in the camera frame."""
    return body @ FACING_CAMERA.T + offset


def named_body() -> np.ndarray:
    """144 distinct body-frame joints: each name's side decides its x, its index its height."""
    side = [0.2 if n.startswith("left") else -0.2 if n.startswith("right") else 0.0 for n in JOINT_NAMES]
    return np.stack([side, 1.0 - 0.01 * np.arange(144), np.full(144, 0.1)], axis=1)


def named_cloud() -> np.ndarray:
    """The named joints of a person facing the camera 3 m away."""
    return facing_camera(named_body(), (0.0, 0.0, 3.0))


@pytest.fixture(scope="module")
def posed_joints(smplx_file: Path) -> np.ndarray:
    """Camera-frame joints (3, 144, 3) of the synthetic SMPL-X body in three poses, facing the
    camera 3.5 m away, wholly inside the picture."""
    import torch

    model = smplx_model(smplx_file, batch_size=3)
    rng = np.random.default_rng(3)
    with torch.no_grad():
        out = model(
            global_orient=torch.tensor([[np.pi, 0.0, 0.0]] * 3, dtype=torch.float32),
            body_pose=torch.tensor(rng.normal(0, 0.2, (3, 63)), dtype=torch.float32),
            left_hand_pose=torch.tensor(rng.normal(0, 0.2, (3, 45)), dtype=torch.float32),
            jaw_pose=torch.tensor(rng.normal(0, 0.1, (3, 3)), dtype=torch.float32),
        )
    joints = out.joints.numpy().astype(np.float64) + np.array([0.05, 0.1, 3.5])
    assert joints.shape == (3, 144, 3)
    return joints


def test_mapping_follows_smplx_joint_names() -> None:
    names = [None if index < 0 else JOINT_NAMES[index] for index in SMPLX_TO_DWPOSE]
    assert len(names) == 134
    assert names[BODY] == BODY_NAMES
    assert names[18:24] == FEET_NAMES
    assert names[FACE] == CONTOUR_NAMES + list(JOINT_NAMES[76:127])
    assert names[LEFT_HAND] == hand_names("left")
    assert names[RIGHT_HAND] == hand_names("right")
    # The 51 static landmarks are iBUG-68 points 17-67: spot-check where each feature starts.
    face = names[FACE]
    starts = {
        17: "right_eye_brow1", 26: "left_eye_brow1", 27: "nose1", 33: "nose_middle", 36: "right_eye1",
        45: "left_eye1", 48: "right_mouth_1", 51: "mouth_top", 57: "mouth_bottom", 60: "right_lip_1",
        62: "lip_top", 67: "right_lip_3",
    }  # fmt: skip
    assert {point: face[point] for point in starts} == starts


def test_named_points_land_where_they_belong() -> None:
    joints = named_cloud()
    person = dwpose_frame(joints, FOCAL, PRINCPT, (HEIGHT, WIDTH))
    points, scores = person["keypoints"], person["scores"]
    assert np.all(scores == 1.0) and np.isfinite(points).all()
    others = np.arange(134) != NECK
    np.testing.assert_allclose(points[others], pinhole(joints[SMPLX_TO_DWPOSE[others]]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(points[NECK], (points[LEFT_SHOULDER] + points[RIGHT_SHOULDER]) / 2, atol=1e-9)
    # Facing the camera, the subject's left is on the picture's right.
    for left, right in [(5, 2), (6, 3), (7, 4), (11, 8), (13, 10), (15, 14), (17, 16), (18, 21)]:
        assert points[left, 0] > points[right, 0], (left, right)
    assert points[LEFT_HAND, 0].min() > points[RIGHT_HAND, 0].max()
    assert points[FACE][16, 0] > points[FACE][0, 0]  # the jaw line runs from the subject's right


def test_skeleton_is_the_projection_of_the_joints(posed_joints: np.ndarray) -> None:
    for joints in posed_joints:
        person = dwpose_frame(joints, FOCAL, PRINCPT, (HEIGHT, WIDTH))
        chosen = joints[SMPLX_TO_DWPOSE]
        expected = pinhole(chosen)
        expected[NECK] = (expected[LEFT_SHOULDER] + expected[RIGHT_SHOULDER]) / 2
        assert np.all(person["scores"] == 1.0)
        np.testing.assert_allclose(person["keypoints"], expected, rtol=0, atol=1e-6)
        body = expected[:24]
        np.testing.assert_allclose(person["box"], [*body.min(0), *body.max(0)], rtol=0, atol=1e-6)
    # The 3-D points themselves: the chosen joints, the neck between the shoulders.
    keypoints3d = smplx_keypoints(posed_joints)
    assert keypoints3d.shape == (3, 134, 3)
    np.testing.assert_array_equal(keypoints3d[:, 2:], posed_joints[:, SMPLX_TO_DWPOSE[2:]])
    np.testing.assert_allclose(keypoints3d[:, NECK], posed_joints[:, [16, 17]].mean(1), atol=1e-12)


def test_points_behind_the_camera_or_outside_the_picture_are_missing(posed_joints: np.ndarray) -> None:
    joints = posed_joints[0].copy()
    joints[55, 2] = -0.5  # the nose behind the camera
    joints[59, 2] = 0.0  # the left ear in the camera's plane
    # The right wrist exactly on the right edge (outside: pixels span [0, W)), the right elbow
    # exactly on the left edge (inside), the left shoulder below the picture.
    joints[21] = [(WIDTH - PRINCPT[0]) / FOCAL[0], 0.0, 1.0]
    joints[19] = [-PRINCPT[0] / FOCAL[0], 0.0, 1.0]
    joints[16] = [0.0, 1.0, 1.0]
    joints[66:71, 2] = -1.0  # the left fingertips behind the camera
    person = dwpose_frame(joints, FOCAL, PRINCPT, (HEIGHT, WIDTH))
    points, scores = person["keypoints"], person["scores"]
    missing = [0, 17, 4, LEFT_SHOULDER, NECK, *np.arange(92, 113)[[4, 8, 12, 16, 20]]]
    # The right wrist also starts the right hand.
    missing.append(113)
    assert np.isnan(points[missing]).all() and np.all(scores[missing] == 0.0)
    present = np.setdiff1d(np.arange(134), missing)
    assert np.isfinite(points[present]).all() and np.all(scores[present] == 1.0)
    assert points[3, 0] == 0.0  # the right elbow, on the left edge
    # The original's pose dict marks them as DWPose does: -1 (body points through `subset`).
    pose = to_original_pose(points[None], scores[None], HEIGHT, WIDTH)
    subset = pose["bodies"]["subset"][0]
    assert np.all(subset[[0, 1, 4, 5, 17]] == -1) and np.all(subset[[2, 3, 6]] >= 0)
    assert np.all(pose["hands"][0][[4, 8, 12, 16, 20]] == -1) and np.all(pose["hands"][1][0] == -1)
    assert np.all(pose["hands"][0][[0, 1, 2, 3]] >= 0)


def test_a_body_wholly_behind_the_camera_has_no_points_and_no_box(posed_joints: np.ndarray) -> None:
    person = dwpose_frame(posed_joints[0] * [1, 1, -1], FOCAL, PRINCPT, (HEIGHT, WIDTH))
    assert np.isnan(person["keypoints"]).all() and not person["scores"].any()
    assert np.isnan(person["box"]).all()


def test_mano_hands_replace_the_smplx_hands_in_openpose_order(posed_joints: np.ndarray) -> None:
    joints = posed_joints[1]
    rng = np.random.default_rng(5)
    left = joints[20] + rng.normal(0, 0.05, (21, 3))
    right = joints[21] + rng.normal(0, 0.05, (21, 3))
    both = dwpose_frame(joints, FOCAL, PRINCPT, (HEIGHT, WIDTH), {"left": left, "right": right})
    np.testing.assert_allclose(both["keypoints"][LEFT_HAND], pinhole(left), rtol=0, atol=1e-6)
    np.testing.assert_allclose(both["keypoints"][RIGHT_HAND], pinhole(right), rtol=0, atol=1e-6)
    # One hand given: the other stays SMPL-X's; the body and face never change.
    only_left = dwpose_frame(joints, FOCAL, PRINCPT, (HEIGHT, WIDTH), {"left": left, "right": None})
    smplx_only = dwpose_frame(joints, FOCAL, PRINCPT, (HEIGHT, WIDTH))
    np.testing.assert_array_equal(only_left["keypoints"][LEFT_HAND], both["keypoints"][LEFT_HAND])
    np.testing.assert_array_equal(only_left["keypoints"][:92], smplx_only["keypoints"][:92])
    np.testing.assert_array_equal(only_left["keypoints"][RIGHT_HAND], smplx_only["keypoints"][RIGHT_HAND])
    # A hand whose points are unknown (NaN) is missing, not drawn at the origin.
    lost = dwpose_frame(joints, FOCAL, PRINCPT, (HEIGHT, WIDTH), {"right": np.full((21, 3), np.nan)})
    assert np.isnan(lost["keypoints"][RIGHT_HAND]).all() and not lost["scores"][RIGHT_HAND].any()
    with pytest.raises(ValueError, match="21, 3"):
        dwpose_frame(joints, FOCAL, PRINCPT, (HEIGHT, WIDTH), {"left": left[:16]})


def test_project_is_a_pinhole_camera_blind_behind_it() -> None:
    points = np.array([[0.5, -0.25, 2.0], [0.0, 0.0, 1e-4], [1.0, 1.0, -3.0]])
    pixels = project(points, FOCAL, PRINCPT)
    np.testing.assert_array_equal(pixels[0], [600 * 0.25 + 180, 610 * -0.125 + 230])
    assert np.isnan(pixels[1:]).all()
    with pytest.raises(ValueError, match="use_face_contour"):
        smplx_keypoints(np.zeros((127, 3)))
    with pytest.raises(ValueError, match="one person"):
        dwpose_frame(np.ones((2, 144, 3)), FOCAL, PRINCPT, (HEIGHT, WIDTH))


def test_stream_holds_one_person_per_given_frame_with_per_frame_cameras(posed_joints: np.ndarray) -> None:
    focals = np.array([FOCAL, FOCAL * 0.9, FOCAL * 1.1])
    stream = dwpose_stream([posed_joints[0], None, posed_joints[2]], focals, PRINCPT, (HEIGHT, WIDTH))
    assert stream.kind == "dwpose" and stream.frame_count == 3
    assert list(stream.items_per_frame()) == [1, 0, 1]
    last = dwpose_frame(posed_joints[2], focals[2], PRINCPT, (HEIGHT, WIDTH))
    for name, value in last.items():
        np.testing.assert_array_equal(stream.frame(2)[name][0], value)


def stick_figure() -> np.ndarray:
    """144 camera-frame joints of a person in a T-pose facing the camera 3.5 m away, in proportion
    (the synthetic SMPL-X model's joints are scattered inside a blob, so they draw no figure)."""
    body = {name: np.zeros(3) for name in JOINT_NAMES[:76]}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for name, (x, y, z) in {
            "hip": (0.1, -0.08, 0.0), "knee": (0.11, -0.5, 0.0), "ankle": (0.12, -0.9, 0.0),
            "shoulder": (0.18, 0.45, 0.0), "elbow": (0.45, 0.45, 0.0), "wrist": (0.7, 0.45, 0.0),
            "eye": (0.035, 0.66, 0.08), "ear": (0.08, 0.63, 0.0),
            "big_toe": (0.1, -0.95, 0.15), "small_toe": (0.16, -0.95, 0.12), "heel": (0.12, -0.95, -0.05),
        }.items():  # fmt: skip
            body[f"{side}_{name}"] = np.array([sign * x, y, z])
        for rank, finger in enumerate(FINGERS):
            for step, part in enumerate(("1", "2", "3", "")):
                reach = 0.72 + 0.025 * (step + 1)
                body[f"{side}_{finger}{part}"] = np.array([sign * reach, 0.49 - 0.02 * rank, 0.0])
    body["nose"] = np.array([0.0, 0.62, 0.1])
    joints = named_body()  # the face landmarks stay where they are: the skeleton draws none
    joints[:76] = [body[name] for name in JOINT_NAMES[:76]]
    return facing_camera(joints, (0.0, -0.1, 3.5))


def test_the_skeleton_draws_as_a_normal_skeleton() -> None:
    from realisdance_cli.renderers.skeleton import BODY_COLOURS, HAND_EDGES, LIMBS

    stream = dwpose_stream([stick_figure(), None], FOCAL, PRINCPT, (HEIGHT, WIDTH))
    poses = stream_to_poses(stream, HEIGHT, WIDTH)
    picture = draw_pose(poses[0], HEIGHT, WIDTH)
    points = stream.frame(0)["keypoints"][0]
    assert np.all(stream.frame(0)["scores"][0] == 1.0)
    # Every limb is drawn between its joints, dimmed to 60 % of its colour, and every hand edge.
    for (a, b), colour in zip(LIMBS[:17], BODY_COLOURS, strict=False):
        x, y = ((points[a - 1] + points[b - 1]) / 2).astype(int)
        np.testing.assert_array_equal(picture[y, x], (np.array(colour) * 0.6).astype(np.uint8), str((a, b)))
    for hand in (points[LEFT_HAND], points[RIGHT_HAND]):
        for a, b in HAND_EDGES:
            x, y = ((hand[a] + hand[b]) / 2).astype(int)
            assert picture[y, x].any(), (a, b)
    # Nothing beyond the person; a frame with nobody is black.
    lit = picture.any(axis=2)
    (x0, y0), (x1, y1) = points.min(0).astype(int) - 12, points.max(0).astype(int) + 12
    lit[max(y0, 0) : y1, max(x0, 0) : x1] = False
    assert not lit.any()
    assert not draw_pose(poses[1], HEIGHT, WIDTH).any()


def test_the_retargeted_body_draws_where_it_is(posed_joints: np.ndarray) -> None:
    stream = dwpose_stream([posed_joints[0]], FOCAL, PRINCPT, (HEIGHT, WIDTH))
    picture = draw_pose(stream_to_poses(stream, HEIGHT, WIDTH)[0], HEIGHT, WIDTH)
    points = stream.frame(0)["keypoints"][0]
    lit = picture.any(axis=2)
    for x, y in points[np.r_[BODY, LEFT_HAND, RIGHT_HAND]].astype(int):
        assert lit[y - 2 : y + 3, x - 2 : x + 3].any(), (x, y)  # a joint circle at every point
    (x0, y0), (x1, y1) = points.min(0).astype(int) - 12, points.max(0).astype(int) + 12
    lit[max(y0, 0) : y1, max(x0, 0) : x1] = False
    assert not lit.any()
