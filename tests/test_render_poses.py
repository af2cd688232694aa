"""`rdance render-poses`: the skeleton video, frame for frame."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    FIXTURES,
    GOLDEN,
    assert_user_error,
    file_identities,
    killed_at_the_first_new_file,
    need,
    rdance,
    write_video,
)
from test_mesh_videos import HEIGHT, WIDTH, hand, new_track

from realisdance_cli.original import import_dwpose_pkl, poses_to_stream, save_dwpose_pkl
from realisdance_cli.renderers.skeleton import draw_pose
from realisdance_cli.synthetic import dancer_pkl_frames
from realisdance_cli.track import SourceInfo, Stream, Track
from realisdance_cli.video import FrameSource


def test_lossless_video_equals_the_pictures(tmp_path: Path) -> None:
    poses = dancer_pkl_frames(12, 256, 192)
    save_dwpose_pkl(tmp_path / "dance.pkl", poses)
    done = rdance("render-poses", tmp_path / "dance.pkl", "--fps", "24", "--lossless", "--face")
    assert done.returncode == 0, done.stderr
    video = tmp_path / "dance_poses" / "dwpose.mp4"
    source = FrameSource(video)
    assert source.info.frame_count == 12 and source.info.fps == 24
    for pose, frame in zip(poses, source, strict=True):
        assert np.array_equal(frame, draw_pose(pose, 256, 192, face=True))


def test_track_videos_go_into_the_track_with_its_rate_and_size(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(10, 128, 96))
    track = import_dwpose_pkl(tmp_path / "dance.pkl", tmp_path / "dance.rdance", fps=12.5)
    done = rdance("render-poses", track.path)
    assert done.returncode == 0, done.stderr
    info = FrameSource(track.path / "dwpose.mp4").info
    assert (info.frame_count, info.fps, info.width, info.height) == (10, 12.5, 96, 128)
    done = rdance("render-poses", track.path, "--size", "64x48", "--fps", "5", "--out", tmp_path / "small")
    assert done.returncode == 0, done.stderr
    info = FrameSource(tmp_path / "small" / "dwpose.mp4").info
    assert (info.frame_count, info.fps, info.width, info.height) == (10, 5, 48, 64)
    done = rdance("render-poses", track.path, "--size", "32x24", "--out", tmp_path / "small")
    assert done.returncode == 0, done.stderr  # pose videos are made again at will, and it is said
    assert f"replacing the earlier dwpose.mp4 in {tmp_path / 'small'}" in " ".join(done.stderr.split())
    assert FrameSource(tmp_path / "small" / "dwpose.mp4").info.width == 24


def test_the_next_command_names_the_pose_folder_quoted(tmp_path: Path) -> None:
    """render-poses says what to run next once the folder holds every video animate reads."""
    save_dwpose_pkl(tmp_path / "my dance.pkl", dancer_pkl_frames(2, 64, 48))
    track = import_dwpose_pkl(tmp_path / "my dance.pkl", tmp_path / "my dance.rdance", fps=10)
    done = rdance("render-poses", track.path)
    assert done.returncode == 0 and "next:" not in done.stdout  # animate needs hamer.mp4 and smpl.mp4 too
    for name in ("hamer", "smpl"):
        write_video(track.path / f"{name}.mp4", [np.zeros((64, 48, 3), np.uint8)] * 2, fps=10)
    done = rdance("render-poses", track.path)
    assert f"next: rdance animate PICTURE '{track.path}'" in " ".join(done.stdout.split())


def test_empty_frames_are_black(tmp_path: Path) -> None:
    keypoints = np.random.default_rng(0).uniform(20, 100, (1, 134, 2))
    person = {"keypoints": keypoints, "scores": np.ones((1, 134)), "box": np.zeros((1, 4))}
    nobody = {"keypoints": np.zeros((0, 134, 2)), "scores": np.zeros((0, 134)), "box": np.zeros((0, 4))}
    track = Track.create(
        tmp_path / "t.rdance", SourceInfo("x.mp4", "0" * 64, width=128, height=128, frame_count=3, fps=None)
    )
    track.write("dwpose", Stream.from_frames("dwpose", [person, nobody, person]), weights={}, options={})
    assert_user_error(rdance("render-poses", track.path), "--fps")
    done = rdance("render-poses", track.path, "--fps", "10", "--lossless")
    assert done.returncode == 0, done.stderr
    frames = list(FrameSource(track.path / "dwpose.mp4"))
    assert len(frames) == 3
    assert frames[0].any() and not frames[1].any() and frames[2].any()


def test_official_pose_file_renders_at_the_source_size(tmp_path: Path) -> None:
    original = need(FIXTURES / "dwpose_1.pkl")
    done = rdance("render-poses", original, "--fps", "30", "--size", "96x160", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    info = FrameSource(tmp_path / "dwpose.mp4").info
    assert (info.frame_count, info.width, info.height) == (363, 160, 96)


def test_bad_options(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "d.pkl", dancer_pkl_frames(2, 64, 64))
    assert_user_error(rdance("render-poses", tmp_path / "d.pkl", "--fps", "5", "--size", "big"), "--size")
    assert_user_error(rdance("render-poses", tmp_path / "d.pkl", "--fps", "5", "--only", "smpl"), "smpl")
    assert_user_error(rdance("render-poses", tmp_path / "nothing"), f"{tmp_path / 'nothing'} does not exist.")
    (tmp_path / "a_file").write_text("mine")
    done = rdance("render-poses", tmp_path / "d.pkl", "--fps", "5", "--out", tmp_path / "a_file")
    assert_user_error(done, f"the output folder {tmp_path / 'a_file'} is a file, not a folder")
    assert not (tmp_path / "d_poses").exists()


def test_an_odd_sized_source_renders_at_the_even_size_below(tmp_path: Path) -> None:
    """A 77x101 source (phones make them): the H.264 videos are 76x100, said in a warning; it
    stopped asking the user to work out an even --size."""
    save_dwpose_pkl(tmp_path / "d.pkl", dancer_pkl_frames(2, 77, 101))
    done = rdance("render-poses", tmp_path / "d.pkl", "--fps", "5", "--out", tmp_path / "poses")
    assert done.returncode == 0, done.stderr
    assert "the videos are 76x100, the source 77x101" in " ".join(done.stderr.split())
    info = FrameSource(tmp_path / "poses" / "dwpose.mp4").info
    assert (info.height, info.width, info.frame_count) == (76, 100, 2)


def test_videos_kept_beside_at_another_size_are_said(tmp_path: Path) -> None:
    """`--only dwpose --size` into a folder of pose videos left a set animate refuses, unsaid."""
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(3, 128, 96))
    out = tmp_path / "poses"
    assert rdance("render-poses", tmp_path / "dance.pkl", "--fps", "12", "--out", out).returncode == 0
    smpl = write_video(out / "smpl.mp4", [np.zeros((128, 96, 3), np.uint8)] * 3)  # as render-poses makes it
    done = rdance("render-poses", tmp_path / "dance.pkl", "--fps", "12", "--out", out, "--size", "64x48")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert f"{out} keeps smpl.mp4 128x96 beside the new 64x48 videos (height x width)" in said, said
    assert smpl.is_file()  # kept, only said
    again = rdance("render-poses", tmp_path / "dance.pkl", "--fps", "12", "--out", out, "--size", "128x96")
    assert "keeps" not in again.stderr


VIDEOS = ("dwpose.mp4", "hamer.mp4")


@pytest.mark.slow
def test_a_render_killed_between_its_renames_leaves_no_mixed_set(tmp_path: Path) -> None:
    """Rendered again with --smooth and killed once its first video was in place: the others were
    the earlier unsmoothed ones, a set `animate` ran on. Now the earlier videos are gone by then
    (missing videos are said by animate), and a rerun makes the whole new set."""
    frames = 12
    track = new_track(tmp_path / "t.rdance", frames)
    track.write("dwpose", poses_to_stream(dancer_pkl_frames(frames, HEIGHT, WIDTH)), weights={}, options={})
    hands = [hand(True, (0.01 * index, 0.0, 40.0)) for index in range(frames)]
    track.write("mano", Stream.from_frames("mano", hands), weights={}, options={})
    mano = need(GOLDEN / "hamer" / "mano" / "MANO_RIGHT.pkl")
    args = ["render-poses", track.path, "--lossless", "--size", "192x160", "--mano-model", mano]
    assert rdance(*args).returncode == 0
    earlier = file_identities(track.path, VIDEOS)

    returncode = killed_at_the_first_new_file(track.path, [*args, "--smooth"], earlier)
    assert returncode == -signal.SIGKILL  # stopped, not finished
    left = {
        name: "missing" if inode is None else "earlier" if inode == earlier[name] else "new"
        for name, inode in file_identities(track.path, VIDEOS).items()
    }
    assert not {"earlier", "new"} <= set(left.values()), left

    done = rdance(*args, "--smooth")
    assert done.returncode == 0, done.stderr
    assert all(
        inode not in (None, earlier[name]) for name, inode in file_identities(track.path, VIDEOS).items()
    )
    assert {FrameSource(track.path / name).info.frame_count for name in VIDEOS} == {frames}
    assert not list(track.path.glob(".*partial*"))
