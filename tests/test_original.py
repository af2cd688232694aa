"""The original release's DWPose `.pkl`: safe loading, exact import and export."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FIXTURES, assert_user_error, golden_dwpose, golden_dwpose_names, need, rdance

from realisdance_cli.errors import UserError
from realisdance_cli.original import (
    COORDINATE_LIMIT,
    export_dwpose_pkl,
    from_original_pose,
    import_dwpose_pkl,
    load_dwpose_pkl,
    poses_to_stream,
    save_dwpose_pkl,
    to_original_pose,
)
from realisdance_cli.renderers.skeleton import draw_pose
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
    assert "363" in done.stdout and "1080x1920 (height x width)" in done.stdout and "29.97" in done.stdout
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
        ({"bodies": 1}, "is not a DWPose pose dict (missing 'hands', 'H', 'W')"),
        ("poses", "non-empty list of frames or one picture's pose dict"),
        ([{"bodies": 1, "hands": np.zeros((0, 21, 2)), "H": 4, "W": 4}], "frame 0: bodies should be a dict"),
        ([{"bodies": {"candidate": 0, "subset": 0}, "hands": 0, "H": 0, "W": 4}], "frame 0: H should be"),
        ([[1, 2]], "frame 0 is not a DWPose pose dict (it is a list)"),
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


# ------------------------------------------------------------------ one picture's pose dict
# The original's stage-1 image data pickles one pose dict per picture, not a list of frames.


def test_a_picture_pose_dict_round_trips_byte_for_byte(tmp_path: Path) -> None:
    picture = tmp_path / "photo.pkl"
    save_dwpose_pkl(picture, dancer_pkl_frames(1, 256, 192)[0])
    done = rdance("track", "import", picture, "--out", tmp_path / "photo.rdance")
    assert done.returncode == 0, done.stderr
    assert "one picture" in done.stdout
    meta = json.loads((tmp_path / "photo.rdance" / "meta.json").read_text())
    assert meta["source"]["frame_count"] == 1
    assert meta["streams"]["dwpose"]["options"]["pkl_layout"] == "single"
    done = rdance("track", "export", tmp_path / "photo.rdance", "--out", tmp_path / "back.pkl")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "back.pkl").read_bytes() == picture.read_bytes()
    # --list asks for the video layout instead: the same dict as a one-frame list.
    done = rdance("track", "export", tmp_path / "photo.rdance", "--list", "--out", tmp_path / "list.pkl")
    assert done.returncode == 0, done.stderr
    (frame,) = pickle.loads((tmp_path / "list.pkl").read_bytes())
    assert_same_pose(frame, pickle.loads(picture.read_bytes()))


def test_official_frame_as_a_picture_round_trips_byte_for_byte(tmp_path: Path) -> None:
    """Frame 0 of the official sample, pickled alone as the original writes its files (Python 3's
    default protocol 4, the sample's own header)."""
    official = need(FIXTURES / "dwpose_1.pkl")
    assert official.read_bytes()[:2] == b"\x80\x04"
    frame = pickle.loads(official.read_bytes())[0]
    picture = tmp_path / "frame0.pkl"
    picture.write_bytes(pickle.dumps(frame, protocol=4))
    track = import_dwpose_pkl(picture, tmp_path / "frame0.rdance")
    assert track.source.frame_count == 1
    export_dwpose_pkl(Track.open(track.path), tmp_path / "back.pkl")
    assert (tmp_path / "back.pkl").read_bytes() == picture.read_bytes()
    assert_same_pose(pickle.loads((tmp_path / "back.pkl").read_bytes()), frame)


def test_single_writes_one_frame_as_a_picture_and_refuses_more(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "one.pkl", dancer_pkl_frames(1, 64, 48))
    save_dwpose_pkl(tmp_path / "three.pkl", dancer_pkl_frames(3, 64, 48))
    for name in ("one", "three"):
        done = rdance("track", "import", tmp_path / f"{name}.pkl", "--out", tmp_path / f"{name}.rdance")
        assert done.returncode == 0, done.stderr
    # A one-frame list stays a list by default; --single makes it one picture's dict.
    done = rdance("track", "export", tmp_path / "one.rdance", "--out", tmp_path / "one.out.pkl")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "one.out.pkl").read_bytes() == (tmp_path / "one.pkl").read_bytes()
    done = rdance("track", "export", tmp_path / "one.rdance", "--single", "--out", tmp_path / "pic.pkl")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "pic.pkl").read_bytes() == pickle.dumps(dancer_pkl_frames(1, 64, 48)[0], protocol=4)
    done = rdance("track", "export", tmp_path / "three.rdance", "--single", "--out", tmp_path / "x.pkl")
    assert_user_error(done, "--single", "3 frames")
    assert not (tmp_path / "x.pkl").exists()


# ---------------------------------------------------------------------- damaged pose files


def _pose_frames() -> list[dict[str, Any]]:
    return dancer_pkl_frames(3, 64, 48)


def _array(pose: dict[str, Any], key: str) -> np.ndarray:
    return pose["bodies"][key.split(".")[1]] if key.startswith("bodies.") else pose[key]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("bodies.candidate", np.nan),
        ("bodies.subset", np.nan),
        ("hands", np.inf),
        ("faces", -np.inf),
        ("hands_score", np.nan),
        ("hands", 1e300),
        ("bodies.subset", 40.0),  # a row of bodies.candidate that is not there
    ],
)
def test_impossible_values_are_refused_naming_frame_and_key(tmp_path: Path, key: str, value: float) -> None:
    frames = _pose_frames()
    _array(frames[1], key).flat[3] = value
    save_dwpose_pkl(tmp_path / "bad.pkl", frames)
    with pytest.raises(UserError) as caught:
        load_dwpose_pkl(tmp_path / "bad.pkl")
    message = str(caught.value)
    assert "frame 1" in message and f"{key}[" in message and "\n" not in message
    single = tmp_path / "bad_picture.pkl"
    save_dwpose_pkl(single, frames[1])
    with pytest.raises(UserError, match=rf"{key}\["):
        load_dwpose_pkl(single)


def test_nan_coordinates_are_refused_by_import_and_render_poses(tmp_path: Path) -> None:
    frames = _pose_frames()
    frames[2]["hands"][0, 3, 0] = np.nan
    bad = tmp_path / "nan.pkl"
    save_dwpose_pkl(bad, frames)
    assert_user_error(
        rdance("track", "import", bad, "--out", tmp_path / "nan.rdance"), "frame 2", "hands[0, 3, 0]"
    )
    assert not (tmp_path / "nan.rdance").exists()
    done = rdance("render-poses", bad, "--fps", "10", "--out", tmp_path / "poses")
    assert_user_error(done, "frame 2", "hands[0, 3, 0]", "nan")
    assert not (tmp_path / "poses" / "dwpose.mp4").exists()


def test_far_coordinates_are_kept_up_to_the_limit(tmp_path: Path) -> None:
    """Hidden body points keep their real coordinates, which may lie outside the picture; only
    values no detector gives (a flipped exponent, say) are refused."""
    frames = _pose_frames()
    frames[0]["bodies"]["candidate"][0] = [-3.5, COORDINATE_LIMIT]
    save_dwpose_pkl(tmp_path / "far.pkl", frames)
    track = import_dwpose_pkl(tmp_path / "far.pkl", tmp_path / "far.rdance")
    export_dwpose_pkl(track, tmp_path / "back.pkl")
    assert (tmp_path / "back.pkl").read_bytes() == (tmp_path / "far.pkl").read_bytes()
    frames[0]["bodies"]["candidate"][0, 1] = np.nextafter(COORDINATE_LIMIT, np.inf)
    save_dwpose_pkl(tmp_path / "farther.pkl", frames)
    done = rdance("render-poses", tmp_path / "farther.pkl", "--fps", "10", "--out", tmp_path / "poses")
    assert_user_error(done, "frame 0", "bodies.candidate[0, 1]", "frame sizes away")


def _loads_cleanly_or_refuses(path: Path) -> str:
    """'ok' when the file reads, draws and converts; 'refused' for a one-sentence UserError."""
    try:
        frames = load_dwpose_pkl(path)
    except UserError as err:
        assert "\n" not in str(err) and str(err).endswith("."), str(err)
        return "refused"
    for pose in frames:
        draw_pose(pose, int(pose["H"]), int(pose["W"]), face=True)
    poses_to_stream(frames)
    return "ok"


@pytest.mark.parametrize("single", [False, True], ids=["list", "picture"])
def test_truncated_pose_files_are_refused_in_one_sentence(tmp_path: Path, single: bool) -> None:
    frames = _pose_frames()
    data = pickle.dumps(frames[0] if single else frames, protocol=4)
    cut = tmp_path / "cut.pkl"
    for length in [*range(0, len(data), 37), len(data) - 1]:
        cut.write_bytes(data[:length])
        assert _loads_cleanly_or_refuses(cut) == "refused", length
    cut.write_bytes(data[: len(data) // 2])
    assert_user_error(rdance("track", "import", cut, "--out", tmp_path / "cut.rdance"), "cut short")
    assert_user_error(rdance("render-poses", cut, "--fps", "10", "--out", tmp_path / "poses"), "cut short")


@pytest.mark.parametrize("single", [False, True], ids=["list", "picture"])
def test_bit_flipped_pose_files_are_refused_in_one_sentence(tmp_path: Path, single: bool) -> None:
    """Every flip either gives poses that draw, or one sentence; a sample of single-bit flips."""
    frames = _pose_frames()
    data = pickle.dumps(frames[0] if single else frames, protocol=4)
    flipped = tmp_path / "flipped.pkl"
    rng = np.random.default_rng(13)
    outcomes = set()
    for position, bit in zip(rng.integers(0, len(data), 300), rng.integers(0, 8, 300), strict=True):
        damaged = bytearray(data)
        damaged[position] ^= 1 << bit
        flipped.write_bytes(bytes(damaged))
        outcomes.add(_loads_cleanly_or_refuses(flipped))
    assert outcomes == {"ok", "refused"}


def test_a_flipped_array_type_is_refused_not_carried_along(tmp_path: Path) -> None:
    """A flip in a dtype's pickled flags used to give arrays claiming to hold Python objects, on
    which numpy fails later with tracebacks; the file is refused as damaged."""
    data = pickle.dumps(_pose_frames(), protocol=4)
    flags = data.index(b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t") + 10  # (..., elsize, alignment, flags)
    assert data[flags : flags + 2] == b"K\x00"
    bad = tmp_path / "flags.pkl"
    bad.write_bytes(data[: flags + 1] + b"\x01" + data[flags + 2 :])
    assert_user_error(rdance("track", "import", bad, "--out", tmp_path / "x.rdance"), "array type", "damaged")
    assert not (tmp_path / "x.rdance").exists()


def test_a_flipped_length_is_refused_before_allocating(tmp_path: Path) -> None:
    """MEMOIZE (0x94) one bit away from BYTEARRAY8 (0x96), whose next 8 bytes become a huge length."""
    data = bytearray(pickle.dumps(_pose_frames(), protocol=4))
    memoize = data.index(b"\x94", 11)
    data[memoize] ^= 0x02
    bad = tmp_path / "length.pkl"
    bad.write_bytes(bytes(data))
    assert_user_error(rdance("track", "import", bad, "--out", tmp_path / "x.rdance"), "cut short or damaged")


def test_a_frame_repeated_by_reference_is_refused_before_the_work(tmp_path: Path) -> None:
    """One 400 kB pickle of one frame referenced 200,000 times took 112 s and 1.5 GB to import,
    and the track it wrote was then refused as damaged. It is refused at once; a short static
    pose made the same way (a frame held for a few seconds) still imports."""
    frame = dancer_pkl_frames(1, 576, 768)[0]
    bomb = tmp_path / "bomb.pkl"
    bomb.write_bytes(pickle.dumps([frame] * 200_000))
    done = rdance("track", "import", bomb, "--out", tmp_path / "x.rdance")
    assert_user_error(done, "describe 505.6 MB of poses", "repeated by reference")
    assert not (tmp_path / "x.rdance").exists()
    held = tmp_path / "held.pkl"
    held.write_bytes(pickle.dumps([frame] * 100))
    assert import_dwpose_pkl(held, tmp_path / "held.rdance").source.frame_count == 100


class _Zeros:
    """Pickles as a direct call of `numpy.ndarray(shape)`: zeros of any size from a few bytes."""

    def __init__(self, *shape: int) -> None:
        self.shape = shape

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return np.ndarray, (self.shape,)


def test_an_array_class_called_by_the_pickle_is_refused(tmp_path: Path) -> None:
    """A 150-byte file whose arrays are `ndarray(shape)` calls took gigabytes and a minute to import
    as 300,000 people of zeros; an array only comes as numpy's pickler writes one."""
    people = 300_000
    pose = {
        "bodies": {"candidate": _Zeros(18 * people, 2), "subset": _Zeros(people, 18)},
        "hands": _Zeros(2 * people, 21, 2),
        "H": 64,
        "W": 48,
    }
    bomb = tmp_path / "bomb.pkl"
    bomb.write_bytes(pickle.dumps([pose], protocol=4))
    assert bomb.stat().st_size < 300
    done = rdance("track", "import", bomb, "--fps", "30", "--out", tmp_path / "bomb.rdance")
    assert_user_error(done, "an array is made in a way numpy's pickler never writes", "damaged")
    assert not (tmp_path / "bomb.rdance").exists()
    assert len(restricted_load(_write(tmp_path / "fine.pkl", _pose_frames()))) == 3  # numpy's own arrays


class _Objects:
    """Pickles as numpy's array of Python objects: 16M slots filled from a one-item list."""

    def __reduce__(self) -> tuple[Any, ...]:
        from numpy._core import multiarray

        state = (1, (1 << 24,), np.dtype(object), False, [0])
        return multiarray._reconstruct, (np.ndarray, (0,), b"b"), state


def test_an_array_of_python_objects_is_refused(tmp_path: Path) -> None:
    """A 104-byte file crashed the process (numpy filled 16M object slots from a list of one)."""
    frames = _pose_frames()
    frames[0]["hands"] = _Objects()
    done = rdance("track", "import", _write(tmp_path / "objects.pkl", frames), "--out", tmp_path / "x.rdance")
    assert_user_error(done, "an array claims to hold Python objects", "damaged")


def _write(path: Path, data: object) -> Path:
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path


def _nested(depth: int, width: int) -> list[Any]:
    """A list nested `depth` deep with `width` references to the level below: a few bytes pickled,
    width ** depth elements to print."""
    value: list[Any] = []
    for _ in range(depth):
        value = [value] * width
    return value


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (_nested(40, 10), "got a list."),  # printing it took minutes and gigabytes
        (10**5000, "got a number of thousands of digits."),  # repr itself refuses
        (10**30, "got a number of 31 digits."),  # imported as a frame 10^30 pixels high
        (8193, "got 8193."),  # drawn at its own size, a 16384 frame took 7 GB
        ("1080" * 50, f"got '{'1080' * 10}'."),  # the first 40 characters
    ],
    ids=["nested", "huge", "too-large", "past-the-largest", "text"],
)
def test_frame_sizes_are_bounded_and_shown_short(tmp_path: Path, value: object, shown: str) -> None:
    frames = _pose_frames()
    frames[1]["H"] = value
    done = rdance("track", "import", _write(tmp_path / "size.pkl", frames), "--out", tmp_path / "x.rdance")
    assert_user_error(
        done, "frame 1: H should be the frame size in pixels (a whole number from 1 to 8192), " + shown
    )


def test_a_pose_file_mixing_frame_sizes_is_refused_everywhere(tmp_path: Path) -> None:
    """render-poses --smooth drew the frames of the second size at the first size's scale."""
    frames = _pose_frames()
    frames[2]["H"], frames[2]["W"] = 32, 24
    mixed = _write(tmp_path / "mixed.pkl", frames)
    message = "mixes frame sizes [(32, 24), (64, 48)] (height, width); one video has one size."
    assert_user_error(rdance("track", "import", mixed, "--out", tmp_path / "x.rdance"), message)
    rendered = rdance("render-poses", mixed, "--fps", "30", "--smooth", "--out", tmp_path / "poses")
    assert_user_error(rendered, message)


def test_a_large_source_and_missing_streams_are_said_in_one_sentence(tmp_path: Path) -> None:
    """A track of a 20000-pixel-high picture: a traceback from the skeleton drawing, now the --size
    to give (and of a one-pixel-high one, which the even cut for H.264 made 0 pixels); render-poses
    named only the first missing stream; `track info` of a .pkl said `rdance extract`."""
    tall = _write(tmp_path / "tall.pkl", _pose_frames())
    assert rdance("track", "import", tall, "--fps", "30", "--out", tmp_path / "tall.rdance").returncode == 0
    meta = json.loads((tmp_path / "tall.rdance" / "meta.json").read_text())
    meta["source"]["height"] = 20_000  # as a track extracted from such a picture records it
    (tmp_path / "tall.rdance" / "meta.json").write_text(json.dumps(meta))
    assert_user_error(
        rdance("render-poses", tmp_path / "tall.rdance", "--out", tmp_path / "poses"),
        "the source is 20000x48 (height x width), larger than the videos can be; give --size up to",
    )
    meta["source"]["height"] = 1  # a track of a one-pixel-high picture: an OpenCV traceback
    (tmp_path / "tall.rdance" / "meta.json").write_text(json.dumps(meta))
    assert_user_error(
        rdance("render-poses", tmp_path / "tall.rdance", "--out", tmp_path / "poses"),
        "the source is 1x48 (height x width), too small for H.264's even sides; give --size (2x2 at "
        "least) or --lossless.",
    )
    assert not (tmp_path / "poses").exists()
    assert_user_error(
        rdance("render-poses", tmp_path / "tall.rdance", "--only", "smpl,hamer", "--size", "64x48"),
        "cannot render hamer, smpl: ",
        "has no finished mano or smplx stream",
    )
    assert_user_error(
        rdance("track", "info", tall),
        "is not a pose track (no meta.json); make one with `rdance track import`.",
    )
