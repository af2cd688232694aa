"""3-D retargeting maths: the driver's SMPL-X and MANO motion on the reference's body, placed in
the reference's picture (synthetic models; the driver and the reference differ in shape, camera
and placement)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from body_models import write_smplx
from conftest import GOLDEN, need
from scipy.spatial.transform import Rotation

from realisdance_cli.bodies import mano_layer, smplx_model, smplx_vertices
from realisdance_cli.errors import UserError
from realisdance_cli.retargeting.body import (
    FEET,
    LEFT_WRIST,
    LEGS,
    NECK_AND_SHOULDERS,
    RIGHT_WRIST,
    GroundContact,
    RetargetedBody,
    dancer,
    retarget_body,
    smplx_joints,
)
from realisdance_cli.retargeting.hands import body_to_hand_camera, mano_points, retarget_hands
from realisdance_cli.smoothing import smooth_stream
from realisdance_cli.track import STREAMS, Stream

REF_SIZE, DRIVER_SIZE = (512, 512), (480, 640)  # (height, width)
REF_BETAS = np.array([-0.6, 0.5, 1.0, 0, 0, 0, 0, 0, 0, 0])
DRIVER_BETAS = np.array([0.4, 0.0, -0.5, 0, 0, 0, 0, 0, 0, 0])
DRIVER_CAMERA = (np.array([1500.0, 1500.0]), np.array([330.0, 235.0]))  # the dance's fx, fy and cx, cy
DRIVER_GROUND = 1.0  # camera y (down) of the driver's floor
FRAMES, STILL, JUMP, EMPTY = 80, range(15), range(40, 53), 70
AMPLITUDE = 0.3  # radians: how far the dance's joints turn from the reference's pose
UPRIGHT = Rotation.from_rotvec([np.pi, 0, 0])  # SMPL-X's y up -> the camera's y down
BODY_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)  # joints 0-21


def hand_focal(size: tuple[int, int]) -> float:
    return 5000 / 256 * max(size)  # HaMeR's full-frame focal


def global_rotations(global_orient: np.ndarray, body_pose: np.ndarray) -> np.ndarray:
    """(N, 22, 3, 3) camera-frame rotations of SMPL-X's body joints from (N, 3) root and (N, 21, 3)
    body axis-angles: each joint's rotation composed down the kinematic tree."""
    local = np.concatenate([np.asarray(global_orient)[:, None], np.asarray(body_pose)], axis=1)
    matrices = Rotation.from_rotvec(local.reshape(-1, 3).astype(np.float64)).as_matrix()
    matrices = matrices.reshape(len(local), len(BODY_PARENTS), 3, 3)
    chained = matrices.copy()
    for joint, parent in enumerate(BODY_PARENTS[1:], start=1):
        chained[:, joint] = chained[:, parent] @ matrices[:, joint]
    return chained


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    """The synthetic SMPL-X with one more shape direction: beta 2 stretches the legs only, so the
    two bodies differ in proportions, not just in size (betas 0 and 1 scale and lift the whole)."""
    path = write_smplx(tmp_path_factory.mktemp("smplx") / "SMPLX_NEUTRAL.npz")
    arrays = dict(np.load(path))
    below_pelvis = np.minimum(arrays["v_template"][:, 1] + 0.3, 0.0)
    arrays["shapedirs"][:, 1, 2] = 0.1 * below_pelvis
    np.savez(path, **arrays)
    return smplx_model(path)


@pytest.fixture(scope="module")
def layer():
    return mano_layer(need(GOLDEN / "hamer" / "mano" / "MANO_RIGHT.pkl"))


def person(betas, orient: Rotation, body_pose, transl, focal, princpt, box=(0, 0, 200, 400)) -> dict:
    """One SMPL-X person's stream fields (no person axis)."""
    fields = {name: np.zeros(spec.shape, np.float32) for name, spec in STREAMS["smplx"].items()}
    fields.update(
        global_orient=orient.as_rotvec(),
        body_pose=np.asarray(body_pose).reshape(21, 3),
        betas=betas,
        transl=transl,
        focal=focal,
        princpt=princpt,
        bbox=box,
        valid=np.array(True),
    )
    fields["expression"][:] = 0.3
    return {name: np.asarray(value, STREAMS["smplx"][name].dtype) for name, value in fields.items()}


def axis(people: list[dict]) -> dict:
    return {name: np.stack([p[name] for p in people]) for name in people[0]}


@pytest.fixture(scope="module")
def reference(model) -> dict:
    pose = np.random.default_rng(1).normal(0, 0.15, (21, 3))
    return person(
        REF_BETAS,
        Rotation.from_rotvec([0, 0.3, 0]) * UPRIGHT,
        pose,
        (0.3, 0.2, 3.5),
        (1100, 1100),
        (260, 250),
    )


def on_ground(model, people: list[dict], lift: np.ndarray) -> list[dict]:
    """`people` with the y of their translation set so their lowest foot point is `lift` (F,)
    above DRIVER_GROUND."""
    feet_y = smplx_joints(model, axis(people))[:, FEET, 1].max(axis=1)
    for p, y, up in zip(people, feet_y, lift, strict=True):
        p["transl"][1] += DRIVER_GROUND - up - y
    return people


def dance(model, reference: dict) -> Stream:
    """80 frames: still in the reference's pose (frames 0-14), then it turns, the legs and arms move
    and the body drifts sideways and back, its lowest foot point on the floor but for a jump of 8 cm
    (frames 40-52); frame 70 has nobody, frame 12 a second, smaller person far off."""
    rng = np.random.default_rng(2)
    direction = rng.normal(0, 1, (21, 3))
    t = np.arange(FRAMES)
    moving = np.clip(t - STILL.stop + 1, 0, None) / (FRAMES - STILL.stop)
    lift = np.where(np.isin(t, JUMP), 0.08 * np.sin(np.pi * (t - JUMP.start + 1) / (len(JUMP) + 1)), 0.0)
    people = [
        person(
            DRIVER_BETAS,
            Rotation.from_rotvec([0, 0.3 + 0.2 * m, 0]) * UPRIGHT,
            reference["body_pose"] + AMPLITUDE * np.sin(np.pi * m) * direction,
            (-0.4 + 0.2 * m, 0.0, 5.0 + 0.3 * m),
            *DRIVER_CAMERA,
        )
        for m in moving
    ]
    people = on_ground(model, people, lift)
    stranger = person(REF_BETAS, UPRIGHT, np.zeros(63), (2.5, 0.5, 9.0), *DRIVER_CAMERA, (0, 0, 50, 90))
    frames = [axis([p, stranger]) if i == 12 else axis([p]) for i, p in enumerate(people)]
    frames[EMPTY] = {}
    return Stream.from_frames("smplx", frames)


@pytest.fixture(scope="module")
def driver(model, reference) -> Stream:
    return dance(model, reference)


@pytest.fixture(scope="module")
def retargeted(model, driver, reference) -> RetargetedBody:
    return retarget_body(driver, reference, model)


def rest_joints(model, betas) -> np.ndarray:
    zero = {name: np.zeros((1, *spec.shape), np.float32) for name, spec in STREAMS["smplx"].items()}
    return smplx_joints(model, {**zero, "betas": np.asarray(betas, np.float32)[None]})[0]


def test_bones_are_the_reference_s_and_rotations_the_driver_s(model, driver, reference, retargeted) -> None:
    body, chosen = retargeted.smplx, retargeted.driver
    assert body.items_per_frame().tolist() == [int(i != EMPTY) for i in range(FRAMES)]
    assert np.allclose(chosen.frame(12)["bbox"], driver.frame(12)["bbox"][0])  # the larger person
    for name in ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose", "expression"):
        assert np.array_equal(body.fields[name], chosen.fields[name]), name
    assert np.array_equal(
        body.fields["betas"], np.repeat(reference["betas"][None], len(body.fields["betas"]), 0)
    )
    rest = rest_joints(model, REF_BETAS)
    children = np.arange(1, len(BODY_PARENTS))
    parents = np.array(BODY_PARENTS[1:])
    posed_bones = retargeted.joints[:, children] - retargeted.joints[:, parents]
    rest_bones = rest[children] - rest[parents]
    assert np.abs(np.linalg.norm(posed_bones, axis=-1) - np.linalg.norm(rest_bones, axis=-1)).max() < 1e-5
    # Each bone is the reference's rest bone turned by the driver's rotation of its parent joint.
    turned = np.einsum(
        "nbij,bj->nbi",
        global_rotations(chosen.fields["global_orient"], chosen.fields["body_pose"])[:, parents],
        rest_bones,
    )
    assert np.abs(posed_bones - turned).max() < 1e-5
    driver_bones = retargeted.driver_joints[:, children] - retargeted.driver_joints[:, parents]
    assert np.abs(np.linalg.norm(driver_bones, axis=-1) - np.linalg.norm(rest_bones, axis=-1)).max() > 0.01


def silhouette(vertices: np.ndarray, faces: np.ndarray, focal, princpt, size) -> np.ndarray:
    pixels = vertices[:, :2] / vertices[:, 2:] * focal + princpt
    mask = np.zeros(size, np.uint8)
    cv2.fillPoly(mask, list(np.round(pixels[faces] * 16).astype(np.int32)), 1, shift=4)
    return mask.astype(bool)


def test_frame_zero_is_the_reference_body(model, reference, retargeted) -> None:
    first = retargeted.smplx.frame(0)
    mesh = smplx_vertices(model, first)[0]
    wanted = smplx_vertices(model, {name: value[None] for name, value in reference.items()})[0]
    assert np.abs(mesh - wanted).max() < 1e-5
    assert np.array_equal(first["focal"][0], reference["focal"])
    assert np.array_equal(first["princpt"][0], reference["princpt"])
    drawn = silhouette(mesh, model.faces, first["focal"][0], first["princpt"][0], REF_SIZE)
    seen = silhouette(wanted, model.faces, reference["focal"], reference["princpt"], REF_SIZE)
    assert seen.sum() > 5000
    assert (drawn & seen).sum() / (drawn | seen).sum() >= 0.95


def touching_frames() -> np.ndarray:
    return np.array([i for i in range(FRAMES) if i not in JUMP and i != EMPTY])


def test_feet_on_the_ground_stay_on_the_reference_ground_line(model, driver, reference, retargeted) -> None:
    ground = smplx_joints(model, {k: v[None] for k, v in reference.items()})[0, list(FEET), 1].max()
    frames = np.flatnonzero(retargeted.smplx.items_per_frame())
    lowest = retargeted.joints[:, FEET, 1].max(axis=1)
    touching = np.isin(frames, touching_frames())
    assert np.abs(lowest[touching] - ground).max() < 0.01
    top = np.isin(frames, [JUMP.start + len(JUMP) // 2])  # the jump's height comes along, scaled
    assert ground - lowest[top] == pytest.approx(0.08 * retargeted.scale, abs=0.01)
    # Scaling the driver's motion alone leaves the feet off the line: the correction does the work.
    off = retarget_body(driver, reference, model, contact=GroundContact(height=-1.0))
    assert np.abs(off.joints[touching][:, FEET, 1].max(axis=1) - ground).max() > 0.015


def jittery_dance(model, reference: dict, rng: np.random.Generator) -> Stream:
    """60 frames standing on the floor with SMPLer-X-like noise on the shape, every joint and the
    root."""
    people = [
        person(
            DRIVER_BETAS + rng.normal(0, 0.05, 10),
            Rotation.from_rotvec([0, 0.3, 0]) * UPRIGHT,
            reference["body_pose"] + rng.normal(0, 0.03, (21, 3)),
            np.array([-0.4, 0.0, 5.0]) + rng.normal(0, 0.003, 3),
            *DRIVER_CAMERA,
        )
        for _ in range(60)
    ]
    on_ground(model, people, np.zeros(60))
    for p, noise in zip(people, rng.normal(0, 0.003, 60), strict=True):
        p["transl"][1] += noise  # the whole body shakes up and down as well
    return Stream.from_frames("smplx", [axis([p]) for p in people])


def test_retargeting_adds_no_jitter(model, reference) -> None:
    driver = jittery_dance(model, reference, np.random.default_rng(3))
    body = retarget_body(driver, reference, model)

    def shake(joints: np.ndarray) -> float:
        """RMS second difference of the pelvis over time, metres per frame squared."""
        return float(np.sqrt((np.diff(joints[:, 0], 2, axis=0) ** 2).sum(-1).mean()))

    driven = shake(body.driver_joints * body.scale)
    assert driven > 0.005
    assert shake(body.joints) <= driven * 1.001


def test_placement_driver_keeps_the_driver_s_camera_and_path(model, driver, reference) -> None:
    body = retarget_body(driver, reference, model, placement="driver")
    assert body.scale == 1.0
    assert np.array_equal(body.smplx.fields["focal"], body.driver.fields["focal"])
    assert np.array_equal(body.smplx.fields["princpt"], body.driver.fields["princpt"])
    pelvis, driver_pelvis = body.joints[:, 0], body.driver_joints[:, 0]
    assert np.abs(pelvis[:, [0, 2]] - driver_pelvis[:, [0, 2]]).max() < 1e-5
    frames = np.flatnonzero(body.smplx.items_per_frame())
    touching = np.isin(frames, touching_frames())
    assert np.abs(body.joints[touching][:, FEET, 1].max(axis=1) - DRIVER_GROUND).max() < 0.01
    with pytest.raises(UserError, match="upper-body"):
        retarget_body(driver, reference, model, placement="driver", upper_body=True)
    with pytest.raises(UserError, match="placement"):
        retarget_body(driver, reference, model, placement="camera")


def test_upper_body_follows_a_half_body_reference(model, reference) -> None:
    close = {
        **reference,
        "transl": np.array([0.05, 0.45, 2.0], np.float32),
        "princpt": np.array([256, 330], np.float32),
    }
    driver = dance(model, close)
    body = retarget_body(driver, close, model, upper_body=True)
    mesh = smplx_vertices(model, body.smplx.frame(0))[0]
    assert np.abs(mesh - smplx_vertices(model, {k: v[None] for k, v in close.items()})[0]).max() < 1e-5
    # The neck and shoulders follow the driver's, scaled; nothing pulls the feet to a ground.
    anchor = body.joints[:, list(NECK_AND_SHOULDERS)].mean(axis=1)
    driven = body.driver_joints[:, list(NECK_AND_SHOULDERS)].mean(axis=1)
    assert np.abs(anchor - anchor[0] - body.scale * (driven - driven[0])).max() < 1e-5
    pixels = body.joints[..., :2] / body.joints[..., 2:] * close["focal"] + close["princpt"]
    top = pixels[:, list(NECK_AND_SHOULDERS), 1]
    assert ((top >= 0) & (top < REF_SIZE[0])).all()
    lowest_foot = pixels[:, list(FEET), 1].max(axis=1)
    assert (lowest_foot > REF_SIZE[0]).all()  # below the picture, as in the reference


def test_a_driver_without_people_is_refused(model, reference) -> None:
    with pytest.raises(UserError, match="no person"):
        retarget_body(Stream.from_frames("smplx", [{}, {}]), reference, model)


def hands_at(layer, rng: np.random.Generator, wrists: np.ndarray, rights, size) -> dict:
    """HaMeR hands (K,) whose wrists are seen 3-4 pixels from where the driver's body camera sees
    the points `wrists` (K, 3), in random orientations, articulations and shapes."""
    count = len(wrists)
    fields = {
        "is_right": np.asarray(rights, bool),
        "global_orient": Rotation.random(count, random_state=rng).as_matrix()[:, None],
        "hand_pose": Rotation.from_rotvec(rng.normal(0, 0.3, (count * 15, 3)))
        .as_matrix()
        .reshape(count, 15, 3, 3),
        "betas": rng.normal(0, 1, (count, 10)),
        "cam_crop": np.zeros((count, 3)),
        "focal": np.full(count, hand_focal(size)),
        "valid": np.ones(count, bool),
    }
    focal, princpt = DRIVER_CAMERA
    targets = wrists + np.array([3.0, -2.0, 0.0]) * wrists[:, 2:] / focal[0]
    own = mano_points(layer, fields)[:, 0]
    fields["cam_t_full"] = (
        body_to_hand_camera(targets, focal[None], princpt[None], fields["focal"], size) - own
    )
    centres = focal * targets[:, :2] / targets[:, 2:] + princpt
    fields["box"] = np.concatenate([centres - 30, centres + 30], axis=1)  # 60 pixels across
    return fields


@pytest.fixture(scope="module")
def driver_hands(layer, retargeted) -> Stream:
    """Each frame: a stranger's right hand 40 cm off the dancer's right, the dancer's left hand
    (but in frame 5), a rejected (invalid) left hand on the dancer's left wrist, the dancer's right."""
    wrists = retargeted.driver_joints[:, [LEFT_WRIST, RIGHT_WRIST]]
    points = np.stack([wrists[:, 1] + (0.4, 0.1, 0.0), wrists[:, 0], wrists[:, 0], wrists[:, 1]], axis=1)
    hands = hands_at(
        layer, np.random.default_rng(4), points.reshape(-1, 3), [1, 0, 0, 1] * len(wrists), DRIVER_SIZE
    )
    hands["valid"][2::4] = False
    frames, person = [], 0
    for index in range(FRAMES):
        if index == EMPTY:
            frames.append({})
            continue
        keep = [0, 2, 3] if index == 5 else [0, 1, 2, 3]
        frames.append({name: values[4 * person :][keep] for name, values in hands.items()})
        person += 1
    return Stream.from_frames("mano", frames)


def test_hands_sit_on_the_body_s_wrists_with_the_driver_s_articulation(
    layer, driver_hands, retargeted
) -> None:
    reference_hand = hands_at(layer, np.random.default_rng(5), np.array([[0.0, 0.0, 3.0]]), [True], REF_SIZE)
    hands = retarget_hands(
        driver_hands, retargeted, reference_hand, layer, driver_size=DRIVER_SIZE, size=REF_SIZE
    )
    mano = hands.mano
    assert mano.items_per_frame().tolist() == [0 if i == EMPTY else 1 if i == 5 else 2 for i in range(FRAMES)]
    assert set(hands.points(5)) == {"right"}
    # The dancer's valid hands are the ones taken: articulation and orientation kept; both have the
    # reference's hand shape (HaMeR found only its right hand, whose shape the left one shares).
    for frame in range(FRAMES):
        theirs, ours = driver_hands.frame(frame), mano.frame(frame)
        for k, right in enumerate(ours["is_right"]):
            source = np.flatnonzero(theirs["valid"] & (theirs["is_right"] == right))[-1]
            assert np.array_equal(ours["hand_pose"][k], theirs["hand_pose"][source])
            assert np.abs(ours["global_orient"][k] - theirs["global_orient"][source]).max() < 1e-6
            assert np.allclose(ours["betas"][k], reference_hand["betas"][0])
    people = np.repeat(np.arange(len(retargeted.joints)), mano.items_per_frame()[mano.items_per_frame() > 0])
    body_wrists = retargeted.joints[people, np.where(mano.fields["is_right"], RIGHT_WRIST, LEFT_WRIST)]
    assert np.linalg.norm(hands.keypoints[:, 0] - body_wrists, axis=-1).max() < 0.01
    # The hand video draws the wrist where the body camera sees it, and as large.
    focal, centre = mano.fields["focal"][:, None], np.array(REF_SIZE[::-1]) / 2
    assert np.allclose(focal, hand_focal(REF_SIZE))
    placed = mano_points(layer, mano.fields) + mano.fields["cam_t_full"][:, None]
    drawn = focal[:, None] * placed[..., :2] / placed[..., 2:] + centre
    camera = retargeted.smplx.fields

    def seen(points: np.ndarray) -> np.ndarray:
        return camera["focal"][people] * points[..., :2] / points[..., 2:] + camera["princpt"][people]

    assert np.abs(drawn[:, 0] - seen(body_wrists)).max() < 0.5
    step = np.array([0.05, 0.05, 0.0])  # across the wrist, at its depth
    across_hand = focal * (placed[:, 0] + step)[:, :2] / placed[:, 0, 2:] + centre - drawn[:, 0]
    across_body = seen(body_wrists + step) - seen(body_wrists)
    assert np.abs(across_hand / across_body - 1).max() < 1e-3
    # The skeleton's hand points project through the body camera onto the drawn hand.
    assert np.abs(seen(np.swapaxes(hands.keypoints, 0, 1)) - np.swapaxes(drawn, 0, 1)).max() < 1e-3


def test_strides_are_scaled_by_the_ratio_of_leg_lengths(model, retargeted) -> None:
    """The scale is the reference's hip-knee-ankle length over the driver's (computed here from the
    rest shapes, not by the code under test), and the root's path across the picture is the
    driver's times that scale."""

    def legs(betas) -> float:
        rest = rest_joints(model, betas)
        return float(
            np.mean([np.linalg.norm(np.diff(rest[list(chain)], axis=0), axis=-1).sum() for chain in LEGS])
        )

    assert legs(REF_BETAS) / legs(DRIVER_BETAS) == pytest.approx(retargeted.scale, rel=1e-4)
    assert abs(retargeted.scale - 1) > 0.005  # far enough from 1 that a missing scale fails the line above
    new, old = retargeted.joints[:, 0, [0, 2]], retargeted.driver_joints[:, 0, [0, 2]]  # pelvis x, z
    assert np.abs((new - new[0]) - retargeted.scale * (old - old[0])).max() < 1e-4


def test_the_dancer_is_followed_when_someone_larger_walks_in(model, driver, reference) -> None:
    """From frame 20 a larger person stands elsewhere in the picture (stored first, as the track
    stores people largest first): the dance stays the first frame's dancer, never jumping over."""
    frames = []
    for index in range(driver.frame_count):
        people = driver.frame(index)
        if index >= 20 and len(people["bbox"]):
            other = {name: values[:1].copy() for name, values in people.items()}
            other["bbox"][:] = (900, 0, 400, 800)  # larger, and far from the dancer's box
            other["transl"][:, 0] += 3.0
            people = {name: np.concatenate([other[name], values]) for name, values in people.items()}
        frames.append(people)
    crowded = retarget_body(Stream.from_frames("smplx", frames), reference, model)
    alone = retarget_body(driver, reference, model)
    assert np.array_equal(crowded.smplx.offsets, alone.smplx.offsets)
    assert np.abs(crowded.joints - alone.joints).max() < 1e-6


def test_hand_points_are_the_mesh_joints_and_fingertips(layer) -> None:
    """The skeleton's hand points and the rendered hand mesh come from one MANO pass: the fingertips
    are mesh vertices, and left hands are mirrored alike (more hands than one pass takes)."""
    from realisdance_cli.bodies import mano_vertices

    count, rng = 300, np.random.default_rng(7)
    hands = {
        "global_orient": Rotation.random(count, random_state=1).as_matrix().astype(np.float32),
        "hand_pose": Rotation.from_rotvec(rng.normal(0, 0.3, (count * 15, 3)))
        .as_matrix()
        .reshape(count, 15, 3, 3)
        .astype(np.float32),
        "betas": rng.normal(0, 1, (count, 10)).astype(np.float32),
        "is_right": rng.random(count) < 0.5,
    }
    points, vertices = mano_points(layer, hands), mano_vertices(layer, hands)
    assert points.shape == (count, 21, 3) and vertices.shape == (count, 778, 3)
    tips = vertices[:, [744, 320, 443, 554, 671]]  # thumb .. pinky
    np.testing.assert_allclose(points[:, [4, 8, 12, 16, 20]], tips, atol=1e-6)
    mirrored = mano_points(layer, {**hands, "is_right": ~hands["is_right"]})
    np.testing.assert_allclose(mirrored, points * [-1.0, 1.0, 1.0], atol=1e-6)


def test_an_imported_reference_track_says_to_give_its_picture(tmp_path) -> None:
    """A reference imported from a DWPose .pkl has no SMPL-X poses: it came from a picture, not a
    video, and retarget takes the picture itself."""
    from realisdance_cli.original import import_dwpose_pkl, save_dwpose_pkl
    from realisdance_cli.retargeting.reference import reference_track
    from realisdance_cli.synthetic import dancer_pkl_frames

    save_dwpose_pkl(tmp_path / "me.pkl", dancer_pkl_frames(1, 64, 48)[0])
    import_dwpose_pkl(tmp_path / "me.pkl", tmp_path / "me.rdance")
    with pytest.raises(
        UserError, match=r"holds no SMPL-X poses; give the picture it was made from"
    ) as refused:
        reference_track(tmp_path / "me.rdance")
    assert "VIDEO" not in str(refused.value)


@pytest.mark.slow
def test_force_resumes_the_unfinished_track_of_the_same_picture(extraction_weights, tmp_path) -> None:
    """--force replaces the retargeting's output, not a reference picture's cached track made from
    that very picture: an unfinished one is resumed, only its missing stage (here HaMeR) is run."""
    from realisdance_cli.extraction import ExtractOptions, extract
    from realisdance_cli.retargeting.reference import REFERENCE_PEOPLE, reference_track

    picture = tmp_path / "me.png"
    cv2.imwrite(str(picture), np.full((96, 80, 3), 120, np.uint8))
    options = ExtractOptions(
        stages=("dwpose", "smplerx"),
        device="cpu",
        weights_root=extraction_weights,
        max_people=REFERENCE_PEOPLE,
    )
    extract(picture, options=options)  # stopped before HaMeR: no MANO stream
    ran: list[str] = []
    track = reference_track(
        picture, "cpu", extraction_weights, force=True, progress=lambda stage, *_: ran.append(stage)
    )
    assert set(ran) == {"hamer"} and track.has("mano")


def test_a_larger_passer_by_never_enters_the_dancer_s_smoothing(driver: Stream) -> None:
    """A larger person in front for ten frames is stored first (largest first); smoothing by slot
    mixed the two (20 degrees of the dancer's root after the passer-by left). The dancer alone,
    then smoothed, is what the dance alone gives."""
    stranger = person(
        REF_BETAS, Rotation.from_rotvec([0, 2.5, 0]) * UPRIGHT, np.full(63, 0.4), (1.5, 0.0, 4.0),
        *DRIVER_CAMERA, (400, 0, 230, 420),
    )  # fmt: skip
    frames = []
    for index in range(driver.frame_count):
        people = driver.frame(index)
        if 20 <= index < 30 and len(people["valid"]):
            people = {name: np.concatenate([axis([stranger])[name], value]) for name, value in people.items()}
        frames.append(people)
    crowd = Stream.from_frames("smplx", frames)
    alone = smooth_stream(dancer(driver), 24.0)
    followed = smooth_stream(dancer(crowd), 24.0)
    assert np.array_equal(followed.offsets, alone.offsets)
    for name in ("global_orient", "body_pose", "transl"):
        assert np.array_equal(followed.fields[name], alone.fields[name])
    by_slot = smooth_stream(crowd, 24.0).fields["global_orient"]  # what --smooth did before
    after = [Rotation.from_rotvec(by_slot[crowd.offsets[f]]) for f in range(30, 36)]
    truth = [Rotation.from_rotvec(alone.fields["global_orient"][alone.offsets[f]]) for f in range(30, 36)]
    assert max(np.degrees((a * b.inv()).magnitude()) for a, b in zip(after, truth, strict=True)) > 3
