"""`--smooth`: the One-Euro filter steadies noisy tracks without dragging them off the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from realisdance_cli.original import save_dwpose_pkl, to_original_pose
from realisdance_cli.smoothing import KEYPOINTS, PARAMETERS, smooth_rotations, smooth_stream, smooth_vectors
from realisdance_cli.synthetic import dancer_frame
from realisdance_cli.track import STREAMS, Stream
from realisdance_cli.video import read_frames

FPS = 30.0


def acceleration(x: np.ndarray) -> float:
    return float(np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean())


def noisy_dancer(frames: int, noise: float = 3.0) -> tuple[np.ndarray, Stream]:
    rng = np.random.default_rng(0)
    truth = np.stack([dancer_frame(t / FPS, 768, 576, rng)[0][0] for t in range(frames)])
    noisy = truth + np.random.default_rng(1).normal(0, noise, truth.shape)
    records = [{"keypoints": k[None], "scores": np.ones((1, 134)), "box": np.zeros((1, 4))} for k in noisy]
    return truth, Stream.from_frames("dwpose", records)


def test_keypoint_jitter_falls_and_accuracy_holds() -> None:
    truth, stream = noisy_dancer(150)
    smoothed = smooth_stream(stream, FPS, frame_size=768)
    before, after = stream.fields["keypoints"][:, :18], smoothed.fields["keypoints"][:, :18]
    assert acceleration(after) < acceleration(before) / 2
    error = lambda x: np.linalg.norm(x - truth[:, :18], axis=-1).mean()  # noqa: E731
    assert error(after) < error(before)
    assert np.array_equal(smoothed.fields["scores"], stream.fields["scores"])


def test_unsure_points_barely_move_the_estimate() -> None:
    values = np.zeros((20, 1, 2))
    values[10] = 0.5  # an outlier...
    confidence = np.ones((20, 1))
    confidence[10] = 0.0  # ...that the detector was unsure of
    smoothed = smooth_vectors(values, FPS, confidence, KEYPOINTS)
    assert np.abs(smoothed).max() == 0.0


def still_tracks(frames: int = 60) -> tuple[Stream, Stream]:
    """A person standing still, measured with noise: DWPose (3 pixels, 640-pixel frames) and
    SMPL-X (0.05 rad on every body joint, 2 cm on the translation)."""
    rng = np.random.default_rng(0)
    points = 300.0 + rng.normal(0, 3, (frames, 134, 2))
    dwpose = [{"keypoints": k[None], "scores": np.ones((1, 134)), "box": np.zeros((1, 4))} for k in points]
    people = []
    for _ in range(frames):
        person = {name: np.zeros((1, *spec.shape), spec.dtype) for name, spec in STREAMS["smplx"].items()}
        person["body_pose"][:] = 0.3 + rng.normal(0, 0.05, (1, 21, 3))
        person["transl"][:] = np.array([0.0, 0.0, 5.0]) + rng.normal(0, 0.02, (1, 3))
        person["valid"][:] = True
        people.append(person)
    return Stream.from_frames("dwpose", dwpose), Stream.from_frames("smplx", people)


def steadiness(stream: Stream, frames: slice) -> dict[str, float]:
    """RMS distance from the still truth over `frames`, per smoothed field."""
    if stream.kind == "dwpose":
        return {"keypoints": float(np.sqrt(np.mean((stream.fields["keypoints"][frames] - 300) ** 2)))}
    truth = {"body_pose": 0.3, "transl": np.array([0.0, 0.0, 5.0])}
    return {name: float(np.sqrt(np.mean((stream.fields[name][frames] - truth[name]) ** 2))) for name in truth}


def test_a_short_gap_leaves_the_smoothing_as_it_was() -> None:
    """A frame without a usable measurement (a missing point, an absent person, SMPLer-X's skipped
    person) is bridged: the frames after it are as steady as without the gap (a gap taken as a
    measurement left them nearly raw for about ten frames)."""
    dwpose, smplx = still_tracks()
    after = slice(31, 41)
    gaps: dict[str, Stream] = {}
    missing = {name: values.copy() for name, values in dwpose.fields.items()}
    missing["keypoints"][30], missing["scores"][30] = np.nan, 0.0
    gaps["missing points"] = Stream("dwpose", dwpose.offsets, missing)
    frames = [dwpose.frame(i) for i in range(dwpose.frame_count)]
    gaps["no person"] = Stream.from_frames("dwpose", [*frames[:30], {}, *frames[31:]])
    skipped = {name: values.copy() for name, values in smplx.fields.items()}
    for values in skipped.values():
        values[30] = 0  # SMPLer-X's skipped person: neutral values, not valid
    gaps["skipped person"] = Stream("smplx", smplx.offsets, skipped)
    for case, gappy in gaps.items():
        plain = dwpose if gappy.kind == "dwpose" else smplx
        raw = steadiness(plain, after)
        steady = steadiness(smooth_stream(plain, 24.0, frame_size=640), after)
        bridged = steadiness(smooth_stream(gappy, 24.0, frame_size=640), after)
        for name, value in bridged.items():
            assert steady[name] < 0.6 * raw[name], (case, name)
            assert value < 1.1 * steady[name], (case, name, value, steady[name], raw[name])


def test_a_long_absence_restarts_the_filter() -> None:
    """Past `max_gap` without the person, the filter starts afresh at the next measurement."""
    _, stream = noisy_dancer(60)
    frames = [stream.frame(i) for i in range(60)]
    absent = range(10, 10 + int(KEYPOINTS.max_gap * FPS) + 1)  # a frame longer than max_gap
    gappy = Stream.from_frames("dwpose", [{} if i in absent else f for i, f in enumerate(frames)])
    smoothed = smooth_stream(gappy, FPS, frame_size=768)
    first = smoothed.offsets[absent.stop]  # the item of the first frame back
    # A fresh start, nothing carried over (equal up to the round trip through frame-size units).
    assert np.allclose(
        smoothed.fields["keypoints"][first], gappy.fields["keypoints"][first], rtol=1e-12, atol=0
    )
    assert not np.array_equal(smoothed.fields["keypoints"][first + 1], gappy.fields["keypoints"][first + 1])
    shorter = Stream.from_frames("dwpose", [{} if i in absent[5:] else f for i, f in enumerate(frames)])
    bridged = smooth_stream(shorter, FPS, frame_size=768)
    first = bridged.offsets[absent.stop]
    assert not np.allclose(bridged.fields["keypoints"][first], shorter.fields["keypoints"][first], rtol=1e-6)


def test_rotations_are_filtered_on_the_manifold() -> None:
    frames = 60
    angles = np.linspace(np.radians(160), np.radians(200), frames)  # turning through 180 degrees
    truth = Rotation.from_rotvec(np.outer(angles, [0, 0, 1]))
    noise = Rotation.from_rotvec(np.random.default_rng(0).normal(0, np.radians(1), (frames, 3)))
    measured = (truth * noise).as_matrix()[:, None]
    smoothed = smooth_rotations(measured, FPS, np.ones(frames), PARAMETERS)[:, 0]
    errors = np.degrees((Rotation.from_matrix(smoothed).inv() * truth).magnitude())
    assert errors.max() < 5
    # Filtering axis-angle components instead drags the estimate through the identity at the wrap.
    rotvecs = Rotation.from_matrix(measured[:, 0]).as_rotvec()[:, None]
    naive = Rotation.from_rotvec(smooth_vectors(rotvecs, FPS, np.ones((frames, 1)), PARAMETERS)[:, 0])
    assert np.degrees((naive.inv() * truth).magnitude()).max() > 90


def test_body_and_hand_parameters(tmp_path: Path) -> None:
    frames = 90
    rng = np.random.default_rng(0)
    t = np.arange(frames) / FPS
    truth = Rotation.from_rotvec(np.stack([0.5 * np.sin(2 * t), 0.3 * np.cos(t), 0.2 * t], 1))
    jolt = Rotation.from_rotvec(rng.normal(0, np.radians(3), (frames, 3)))
    noisy = truth * jolt
    hands = [
        {
            "is_right": np.array([True]),
            "global_orient": noisy[i].as_matrix()[None, None],
            "hand_pose": np.broadcast_to(np.eye(3), (1, 15, 3, 3)).copy(),
            "betas": np.zeros((1, 10)),
            "cam_crop": np.zeros((1, 3)),
            "cam_t_full": np.array([[0.1, 0.0, 40.0]]) + rng.normal(0, 0.05, (1, 3)),
            "focal": np.array([1000.0]),
            "box": np.zeros((1, 4)),
            "valid": np.array([True]),
        }
        for i in range(frames)
    ]
    stream = Stream.from_frames("mano", hands)
    smoothed = smooth_stream(stream, FPS, frame_size=640)
    error = lambda m: np.degrees((Rotation.from_matrix(m[:, 0]).inv() * truth).magnitude()).mean()  # noqa: E731
    assert error(smoothed.fields["global_orient"]) < error(stream.fields["global_orient"])
    assert acceleration(smoothed.fields["cam_t_full"]) < acceleration(stream.fields["cam_t_full"]) / 2
    assert np.array_equal(smoothed.fields["valid"], stream.fields["valid"])


def test_render_poses_smooth(tmp_path: Path) -> None:
    from conftest import rdance

    _, stream = noisy_dancer(20)
    poses = [
        to_original_pose(stream.frame(i)["keypoints"], stream.frame(i)["scores"], 768, 576) for i in range(20)
    ]
    save_dwpose_pkl(tmp_path / "d.pkl", poses)
    assert rdance("track", "import", tmp_path / "d.pkl", "--fps", "30").returncode == 0
    plain = rdance("render-poses", tmp_path / "d.rdance", "--lossless", "--out", tmp_path / "plain")
    steady = rdance(
        "render-poses", tmp_path / "d.rdance", "--lossless", "--smooth", "--out", tmp_path / "steady"
    )
    assert plain.returncode == 0 and steady.returncode == 0, steady.stderr
    a, b = read_frames(tmp_path / "plain" / "dwpose.mp4"), read_frames(tmp_path / "steady" / "dwpose.mp4")
    assert len(a) == len(b) == 20
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[10], b[10])  # same start, steadier after
    from_pkl = rdance(
        "render-poses", tmp_path / "d.pkl", "--fps", "30", "--lossless", "--smooth", "--out", tmp_path / "pkl"
    )
    assert from_pkl.returncode == 0, from_pkl.stderr
    c = read_frames(tmp_path / "pkl" / "dwpose.mp4")
    assert all(np.array_equal(x, y) for x, y in zip(b, c, strict=True))  # a .pkl smooths like its track


def test_rotations_start_at_the_first_valid_frame() -> None:
    """A not-valid first frame holds the identity, not a rotation: the filter must not start there,
    just as `smooth_vectors` waits for the first confident measurement."""
    turned = Rotation.from_rotvec([0.0, 0.0, 1.5]).as_matrix()
    matrices = np.stack([np.eye(3), np.eye(3)] + [turned] * 4)[:, None]
    confidence = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    smoothed = smooth_rotations(matrices, FPS, confidence, PARAMETERS)
    angles = Rotation.from_matrix(smoothed[:, 0]).magnitude()
    np.testing.assert_allclose(angles, [0, 0, 1.5, 1.5, 1.5, 1.5], atol=1e-12)
    rotvecs = Rotation.from_matrix(matrices[:, 0]).as_rotvec()[:, None]
    linear = smooth_vectors(rotvecs, FPS, confidence[:, None], PARAMETERS)[:, 0]
    np.testing.assert_allclose(np.linalg.norm(linear, axis=-1), angles, atol=1e-12)  # the same start
    unsure = smooth_rotations(matrices, FPS, np.zeros(6), PARAMETERS)
    assert np.array_equal(unsure, matrices)  # nothing to start from: kept as measured
