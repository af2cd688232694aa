"""The original release's DWPose `.pkl`: safe loading, exact import and export."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, assert_user_error, golden_dwpose, golden_dwpose_names, need, rdance

from realisdance_cli.errors import UserError
from realisdance_cli.original import (
    export_dwpose_pkl,
    from_original_pose,
    import_dwpose_pkl,
    load_dwpose_pkl,
    save_dwpose_pkl,
    to_original_pose,
)
from realisdance_cli.safe_pickle import UnsafePickleError, restricted_load
from realisdance_cli.synthetic import dancer_pkl_frames
from realisdance_cli.track import Track


def assert_same_pose(got: object, want: object, where: str = "") -> None:
    """Same key sets, types, shapes, dtypes and values (bit for bit)."""
    assert type(got) is type(want), where
    if isinstance(want, dict):
        assert set(got) == set(want), where  # type: ignore[arg-type]
        for key in want:
            assert_same_pose(got[key], want[key], f"{where}.{key}")  # type: ignore[index]
    elif isinstance(want, np.ndarray):
        assert got.shape == want.shape and got.dtype == want.dtype, where  # type: ignore[attr-defined]
        assert np.array_equal(got, want), where
    else:
        assert got == want, where


def test_official_pkl_round_trips_exactly(tmp_path: Path) -> None:
    original = need(FIXTURES / "dwpose_1.pkl")
    track = import_dwpose_pkl(original, tmp_path / "dance.rdance", fps=30)
    out = export_dwpose_pkl(Track.open(track.path), tmp_path / "again.pkl")
    want = load_dwpose_pkl(original)
    got = load_dwpose_pkl(out)
    assert len(got) == len(want) == track.source.frame_count
    people = {pose["bodies"]["subset"].shape[0] for pose in want}
    assert people == {1, 2, 3}  # the older variant: several people per frame
    for index, (a, b) in enumerate(zip(got, want, strict=True)):
        assert_same_pose(a, b, f"frame {index}")


def test_via_the_command_line(tmp_path: Path) -> None:
    original = need(FIXTURES / "dwpose_1.pkl")
    done = rdance("track", "import", original, "--out", tmp_path / "d.rdance", "--fps", "29.97")
    assert done.returncode == 0, done.stderr
    done = rdance("track", "info", tmp_path / "d.rdance")
    assert done.returncode == 0
    assert "363" in done.stdout and "1920x1080" in done.stdout and "29.97" in done.stdout
    assert "1/1.13/3 people" in done.stdout or "people" in done.stdout
    done = rdance("track", "export", tmp_path / "d.rdance", "--out", tmp_path / "d.pkl")
    assert done.returncode == 0, done.stderr
    assert_user_error(
        rdance("track", "export", tmp_path / "d.rdance", "--out", tmp_path / "d.pkl"), "--force"
    )
    assert (
        rdance("track", "export", tmp_path / "d.rdance", "--out", tmp_path / "d.pkl", "--force").returncode
        == 0
    )
    for a, b in zip(load_dwpose_pkl(tmp_path / "d.pkl"), load_dwpose_pkl(original), strict=True):
        assert_same_pose(a, b)


def test_golden_pose_dicts_survive_the_track(tmp_path: Path) -> None:
    names = golden_dwpose_names()
    if not names:
        pytest.skip("no golden DWPose cases")
    for name in names:
        want, _ = golden_dwpose(name)
        save_dwpose_pkl(tmp_path / f"{name}.pkl", [want])
        track = import_dwpose_pkl(tmp_path / f"{name}.pkl", tmp_path / f"{name}.rdance")
        (got,) = load_dwpose_pkl(export_dwpose_pkl(track, tmp_path / f"{name}.out.pkl"))
        assert_same_pose(got, want, name)


def test_export_follows_the_original_arithmetic() -> None:
    """Hidden body points keep their coordinates, other hidden points become -1, the subset
    holds 18 * person + joint, and coordinates are divided by the frame size."""
    keypoints = np.random.default_rng(0).uniform(0, 500, (2, 134, 2))
    scores = np.full((2, 134), 0.9)
    scores[0, 3] = 0.1  # a hidden body point
    scores[1, 100] = 0.2  # a hidden left-hand point
    scores[0, 30] = 0.29  # a hidden face point
    pose = to_original_pose(keypoints, scores, height=400, width=600)
    assert pose["bodies"]["candidate"].shape == (36, 2)
    assert np.array_equal(pose["bodies"]["candidate"][3], keypoints[0, 3] / [600, 400])
    assert pose["bodies"]["subset"][0, 3] == -1 and pose["bodies"]["subset"][1, 5] == 23
    assert np.array_equal(pose["hands"][1, 8], [-1, -1])  # person 1's left hand is row 1
    assert np.array_equal(pose["hands"][2], keypoints[0, 113:] / [600, 400])  # right hands follow
    assert np.array_equal(pose["faces"][0, 6], [-1, -1])
    assert pose["hands_score"][1, 8] == 0.2
    back, back_scores = from_original_pose(pose)
    visible = scores >= 0.3
    visible[:, :18] = True  # body coordinates survive even when hidden
    visible[:, 18:24] = False  # the pose file has no feet
    # p / W loses which of a few neighbouring doubles p was; the file is what must survive.
    assert np.allclose(back[visible], keypoints[visible], rtol=1e-15, atol=0)
    assert np.isnan(back[~visible]).all()
    assert np.array_equal(back_scores[:, 92:], scores[:, 92:])
    again = to_original_pose(back, back_scores, height=400, width=600)
    for key in ("hands", "faces", "hands_score"):
        assert np.array_equal(again[key], pose[key])
    assert np.array_equal(again["bodies"]["candidate"], pose["bodies"]["candidate"])


def test_frames_with_nobody_export_empty_arrays() -> None:
    pose = to_original_pose(np.zeros((0, 134, 2)), np.zeros((0, 134)), 100, 100)
    assert pose["bodies"]["candidate"].shape == (0, 2)
    assert pose["bodies"]["subset"].shape == (0, 18)
    assert pose["hands"].shape == (0, 21, 2) and pose["faces"].shape == (0, 68, 2)


def test_synthetic_dancer_round_trips_byte_for_byte(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(10, 256, 192))
    track = import_dwpose_pkl(tmp_path / "dance.pkl", tmp_path / "dance.rdance", fps=24)
    export_dwpose_pkl(track, tmp_path / "back.pkl")
    assert (tmp_path / "back.pkl").read_bytes() == (tmp_path / "dance.pkl").read_bytes()


class Exploit:
    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))

    def __init__(self, marker: Path) -> None:
        self.marker = marker


def test_a_pickle_that_imports_os_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps([{"bodies": Exploit(marker)}]))
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
        restricted_load(evil)
    done = rdance("track", "import", evil, "--out", tmp_path / "evil.rdance")
    assert_user_error(done, "system", "refusing to load it")
    assert not marker.exists()
    assert not (tmp_path / "evil.rdance").exists()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "non-empty list of frames"),
        ({"bodies": 1}, "non-empty list of frames"),
        ([{"hands": np.zeros((2, 21, 2)), "H": 1, "W": 1}], "missing 'bodies'"),
        (
            [
                {
                    "bodies": {"candidate": np.zeros((18, 2)), "subset": np.zeros((1, 18))},
                    "hands": np.zeros((3, 21, 2)),
                    "H": 4,
                    "W": 4,
                }
            ],
            "hands should have shape (2, 21, 2)",
        ),
    ],
)
def test_malformed_pose_files_are_explained(tmp_path: Path, payload: object, message: str) -> None:
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UserError) as caught:
        load_dwpose_pkl(path)
    assert message in str(caught.value)


def test_corrupt_and_missing_files_via_the_command_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(b"\x80\x04garbage")
    assert_user_error(rdance("track", "import", corrupt), "not a readable pickle file")
    assert_user_error(rdance("track", "import", tmp_path / "nope.pkl"), "cannot read")
    assert_user_error(rdance("track", "info", tmp_path), "not a pose track")
