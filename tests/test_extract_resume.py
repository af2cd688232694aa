"""What `rdance extract` keeps and what it makes again when it meets a track: --force for some
stages, other weight files, another frame rate for an image folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
from conftest import assert_user_error, rdance, write_video
from test_mesh_videos import small_person_track

from realisdance_cli.files import file_sha256
from realisdance_cli.track import Track


def test_force_starts_over_only_the_stages_asked_for(extraction_weights: Path, tmp_path: Path) -> None:
    """`--force --only hamer` makes the hands again and keeps the rest (it deleted the whole track
    and the videos rendered into it, then stopped for want of DWPose boxes), but not the video of
    the old hands, which animate would read; asked where no DWPose boxes would be, it stops before
    touching anything."""
    video = write_video(tmp_path / "clip.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2, fps=25)
    weights = ["--weights", extraction_weights, "--device", "cpu"]
    assert rdance("extract", video, *weights, "--only", "dwpose,hamer").returncode == 0
    out = tmp_path / "clip.rdance"
    for name in ("dwpose", "hamer"):
        (out / f"{name}.mp4").write_bytes(b"a rendered video")
    dwpose = (out / "dwpose.npz").read_bytes()

    again = rdance("extract", video, *weights, "--only", "hamer", "--force")
    assert again.returncode == 0, again.stderr
    assert "hamer: done, 2 frames" in again.stdout
    assert f"removed {out / 'hamer.mp4'}: it showed the earlier mano stream" in " ".join(again.stderr.split())
    assert (out / "dwpose.npz").read_bytes() == dwpose and (out / "dwpose.mp4").exists()
    assert not (out / "hamer.mp4").exists()
    assert Track.open(out).has("mano")

    other = write_video(tmp_path / "other.mp4", [np.full((64, 64, 3), 9, np.uint8)] * 3, fps=25)
    refused = rdance("extract", other, *weights, "--only", "hamer", "--force", "--out", out)
    assert_user_error(refused, "DWPose", "--only dwpose,hamer")
    assert (out / "dwpose.npz").read_bytes() == dwpose and Track.open(out).source.frame_count == 2
    assert_user_error(rdance("extract", other, *weights, "--only", "hamer"), "--only dwpose,hamer")
    mpeg = tmp_path / "clip.mpg"  # any file but a picture is a video
    mpeg.write_bytes(video.read_bytes())
    rate = rdance("extract", mpeg, *weights, "--only", "dwpose", "--fps", "12", "--out", out)  # was ignored
    assert rate.returncode == 0 and "--fps is for image folders; a video keeps its own" in rate.stderr
    assert_user_error(  # what differs, not the path the user just gave
        rdance("extract", video, *weights, "--only", "dwpose", "--max-frames", "1"),
        "holds 2 frames from frame 0 every 1 of this source; this run asks for 1 from 0 every 1",
        "--force",
    )
    assert_user_error(
        rdance("extract", other, *weights, "--only", "dwpose", "--out", out), "was made from another source"
    )
    assert not (tmp_path / "other.rdance").exists()  # no empty track folder is left


def test_dwpose_made_again_takes_what_was_made_from_its_boxes(
    extraction_weights: Path, tmp_path: Path
) -> None:
    """DWPose made again with other options: the hands and bodies made from its old boxes stayed
    "complete" (render-poses and animate used them), and so did the pose videos in the track."""
    video = write_video(tmp_path / "clip.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2, fps=25)
    weights = ["--weights", extraction_weights, "--device", "cpu"]
    assert rdance("extract", video, *weights).returncode == 0
    out = tmp_path / "clip.rdance"
    for name in ("dwpose", "hamer", "smpl"):
        (out / f"{name}.mp4").write_bytes(b"a rendered video")

    again = rdance("extract", video, *weights, "--only", "dwpose", "--rgb")
    assert again.returncode == 0, again.stderr
    said = " ".join(again.stderr.split())
    for stream, stage in (("mano", "hamer"), ("smplx", "smplerx")):
        assert f"removed the {stream} stream, made from the earlier DWPose boxes; " in said
        assert f"`rdance extract {video.resolve()} --only {stage} --out {out}` makes it again" in said
    track = Track.open(out)
    assert track.has("dwpose") and track.state("dwpose").options["rgb"] is True
    assert not track.has("mano") and not track.has("smplx")
    assert not any((out / f"{name}.mp4").exists() for name in ("dwpose", "hamer", "smpl"))

    # all three stages: the others are made anew from the new boxes, without a word about them
    assert rdance("extract", video, *weights, "--rgb").returncode == 0
    full = rdance("extract", video, *weights)
    assert full.returncode == 0, full.stderr
    assert "made from the earlier DWPose boxes" not in full.stderr
    track = Track.open(out)
    assert track.state("mano").options["dwpose"]["rgb"] is False
    assert track.state("smplx").options["dwpose"]["rgb"] is False


def test_a_finished_stream_is_made_again_with_other_weight_files(
    extraction_weights: Path, tmp_path: Path
) -> None:
    """The weights folder's pose model replaced by another: the finished DWPose stream is made
    again with it (it stayed "already done" with the old model's poses)."""
    root = tmp_path / "weights"
    shutil.copytree(extraction_weights / "dwpose", root / "dwpose")
    video = write_video(tmp_path / "clip.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2, fps=25)
    common = ["extract", video, "--weights", root, "--only", "dwpose"]
    assert "dwpose: done" in rdance(*common).stdout
    assert "dwpose: already done" in rdance(*common).stdout

    pose_file = root / "dwpose" / "dw-ll_ucoco_384.onnx"
    model = onnx.load(pose_file)
    model.doc_string = "another release"
    onnx.save(model, pose_file)
    again = rdance(*common)
    assert again.returncode == 0, again.stderr
    assert "dwpose: done" in again.stdout
    weights = Track.open(tmp_path / "clip.rdance").state("dwpose").weights
    assert weights["dwpose-pose"] == file_sha256(pose_file)[:16]
    mistyped = rdance(*common, "--dwpose-pose", tmp_path / "typo.onnx")  # said, finished or not
    assert_user_error(mistyped, f"{tmp_path / 'typo.onnx'} does not exist")


def test_an_image_folder_resumed_at_another_frame_rate_takes_it(
    extraction_weights: Path, tmp_path: Path
) -> None:
    """The frame rate of a folder of pictures is the user's word and no stream depends on it: a
    later --fps is kept (the first one stayed, silently, for render-poses and smoothing)."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / f"{index:04d}.png"), np.zeros((32, 32, 3), np.uint8))
    common = ["extract", folder, "--weights", extraction_weights, "--only", "dwpose"]
    assert rdance(*common, "--fps", "25").returncode == 0
    again = rdance(*common, "--fps", "10")
    assert again.returncode == 0, again.stderr
    assert "dwpose: already done" in again.stdout and "10 fps" in again.stderr
    assert Track.open(tmp_path / "frames.rdance").source.fps == 10


def test_an_image_folder_without_fps_says_the_rate_it_takes(extraction_weights: Path, tmp_path: Path) -> None:
    """A folder of pictures records no frame rate: the 30 fps it gets (which render-poses, animate's
    resampling and the sound's timing follow) is said once, with --fps, which silences it."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index:04d}.png"), np.zeros((32, 32, 3), np.uint8))
    common = ["extract", folder, "--weights", extraction_weights, "--only", "dwpose"]
    done = rdance(*common)
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert (
        f"warning: {folder} is a folder of images, which records no frame rate: taken as 30 fps (--fps"
        in said
    )
    assert said.count("records no frame rate") == 1
    assert Track.open(tmp_path / "frames.rdance").source.fps == 30
    given = rdance("-v", *common, "--fps", "25", "--out", tmp_path / "given.rdance")
    assert given.returncode == 0, given.stderr
    assert "frame rate" not in given.stderr and Track.open(tmp_path / "given.rdance").source.fps == 25
    said = " ".join(given.stderr.split())  # -v: the weight files each stage runs with
    detector, pose = (
        extraction_weights / "dwpose" / name for name in ("yolox_l.onnx", "dw-ll_ucoco_384.onnx")
    )
    assert f"dwpose: weights dwpose-det {detector}, dwpose-pose {pose}" in said, said


def test_a_person_too_small_for_smplx_is_not_called_nobody(tmp_path: Path) -> None:
    """SMPLer-X is given no person box under 50x150 px: its empty frames are said to be that, not
    nobody (DWPose found a person in each), which a bigger person in the video cures."""
    video, _ = small_person_track(tmp_path)
    done = rdance("extract", video, "--only", "smplerx", "--device", "cpu", "--weights", tmp_path / "none")
    assert done.returncode == 0, done.stderr
    assert (
        "smplerx: already done, 3 frames, 0 with a person; 3 with a person too small for SMPL-X "
        "(box under 50x150 px): 0, 1, 2"
    ) in " ".join(done.stdout.split())
    assert "nobody" not in done.stdout
    assert f"next: rdance render-poses '{tmp_path / 'my dance.rdance'}'" in " ".join(done.stdout.split())
