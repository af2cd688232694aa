"""`rdance animate --model dit` end to end: the tiny golden RealisDance-DiT models in the release's
layout, the authors' demo pose videos (scaled down), the real command in a child process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, assert_user_error, need, rdance, write_video

from realisdance_cli.video import FrameSource, read_frames

pytestmark = pytest.mark.slow
FAST = ("--max-res", str(64 * 48), "--steps", "2", "--crf", "0")
PROMPT = ("--prompt", "a person dancing")
ALL_FRAMES = ("--max-frames", "0")


@pytest.fixture(scope="module")
def weights_root(dit_weights: Path) -> Path:
    return dit_weights


@pytest.fixture(scope="module")
def poses(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The authors' demo SMPL-CS and HaMeR videos (24 fps), the first 40 frames at 192x108, as a
    render-poses folder."""
    folder = tmp_path_factory.mktemp("poses")
    for name in ("smpl", "hamer"):
        frames = FrameSource(need(FIXTURES / f"dit_{name}.mp4")).__iter__()
        small = [cv2.resize(next(frames), (192, 108), interpolation=cv2.INTER_AREA) for _ in range(40)]
        write_video(folder / f"{name}.mp4", small, 24)
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    picture = cv2.imread(str(need(FIXTURES / "dit_ref.png")))
    path = tmp_path_factory.mktemp("ref") / "ref.png"
    cv2.imwrite(str(path), cv2.resize(picture, (192, 108), interpolation=cv2.INTER_AREA))
    return path


def test_dit_animates_at_16_fps_with_the_grid_reproducibly(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dance.mp4"
    args = (reference, poses, "--model", "dit", *PROMPT, *FAST, "--weights", weights_root, "--out", out)
    done = rdance("animate", *args, "--max-frames", "9", "--grid")
    assert done.returncode == 0, done.stderr
    assert all(bar in done.stderr for bar in ("denoising", "decoding", "encoding"))
    info = FrameSource(out).info
    # 192x108 has the aspect of 64x36 pixels: 3072 pixels of it round to 48x80 (multiples of 16).
    assert (info.frame_count, info.height, info.width, info.fps) == (9, 48, 80, Fraction(16))
    grid = FrameSource(tmp_path / "dance_grid.mp4").info
    assert (grid.frame_count, grid.height, grid.width) == (9, 48, 4 * 80)  # reference, smpl, hamer, result
    frames = read_frames(out)
    assert len({frame.tobytes() for frame in frames}) == 9  # it moves

    again = rdance("animate", *args, "--max-frames", "9", "--force")
    assert again.returncode == 0, again.stderr
    assert all(np.array_equal(a, b) for a, b in zip(frames, read_frames(out), strict=True))
    other = rdance("animate", *args, "--max-frames", "9", "--force", "--seed", "7")
    assert other.returncode == 0, other.stderr
    assert not np.array_equal(frames[0], read_frames(out)[0])


def test_a_dance_shorter_than_the_frames_asked_keeps_its_speed(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    """Six frames at 24 fps (a quarter of a second, four frames at 16 fps) stretched over nine, as
    the original does: they play at 36 fps, so the video lasts as long as the dance (and its
    sound keeps time), and the user is told."""
    short = tmp_path / "short"
    short.mkdir()
    for name in ("smpl", "hamer"):
        write_video(short / f"{name}.mp4", read_frames(poses / f"{name}.mp4")[:6], 24)
    out = tmp_path / "short.mp4"
    done = rdance(
        "animate", reference, short, "--model", "dit", *PROMPT, *FAST, "--max-frames", "9",
        "--weights", weights_root, "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = FrameSource(out).info
    assert (info.frame_count, info.fps) == (9, Fraction(36))
    said = " ".join(done.stderr.split())
    assert "the dance has 4 frames at 16 fps, fewer than the 9 asked" in said
    assert "play at 36 fps" in said


def test_a_black_pose_video_is_said_once(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    """The authors' SMPL-CS video with a HaMeR video black throughout (a dance without a hand
    found): it animates, and the user is told that the hands are guided by nothing."""
    black = write_video(tmp_path / "hamer.mp4", [np.zeros((108, 192, 3), np.uint8)] * 40, 24, lossless=False)
    done = rdance(
        "animate", reference, "--smpl", poses / "smpl.mp4", "--hamer", black, "--model", "dit", *PROMPT,
        *FAST, "--max-frames", "5", "--weights", weights_root, "--out", tmp_path / "x.mp4",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert f"{black} is black in every frame used: animate's result follows no MANO pose from it" in said
    assert said.count("is black") == 1


def test_dit_makes_long_videos_from_explicit_files_and_a_prompt_file(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("a person\n  dancing on the stage\n")
    out = tmp_path / "long.mp4"
    done = rdance(
        "-q", "animate", reference, "--model", "dit", "--smpl", poses / "smpl.mp4",
        "--hamer", poses / "hamer.mp4", "--prompt-file", prompt, *FAST, "--max-frames", "0",
        "--context", "13", "--overlap", "4",
        "--teacache", "--weights", weights_root, "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # -q: no bars, not even the libraries' (the release's shards load quietly)
    # 40 frames at 24 fps are 27 at 16 fps; 25 of them (4k+1) in windows of 13.
    assert FrameSource(out).info.frame_count == 25


def test_dit_bad_input_is_one_sentence(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    common = ("--weights", weights_root, "--out", tmp_path / "x.mp4", *FAST)
    assert_user_error(rdance("animate", reference, poses, "--model", "dit", *common), "needs a --prompt")
    no_smpl = tmp_path / "no_smpl"
    no_smpl.mkdir()
    (no_smpl / "hamer.mp4").write_bytes((poses / "hamer.mp4").read_bytes())
    assert_user_error(
        rdance("animate", reference, no_smpl, "--model", "dit", *PROMPT, *common),
        "smpl.mp4 not found",
        "rdance render-poses",
    )
    short = tmp_path / "short"
    short.mkdir()
    write_video(short / "smpl.mp4", read_frames(poses / "smpl.mp4")[:20], 24)
    (short / "hamer.mp4").write_bytes((poses / "hamer.mp4").read_bytes())
    assert_user_error(
        rdance("animate", reference, short, "--model", "dit", *PROMPT, *common),
        "the pose videos must have the same number of frames, got smpl 20, hamer 40.",
    )
    assert_user_error(
        rdance("animate", reference, poses, "--model", "dit", *PROMPT, "--stride", "2", *common),
        "--stride is not for --model dit.",
    )
    assert_user_error(  # a flag that is off when given
        rdance("animate", reference, poses, "--model", "dit", *PROMPT, "--no-channels-last", *common),
        "--no-channels-last is not for --model dit.",
    )
    assert_user_error(
        rdance("animate", reference, poses, *PROMPT, *common), "--prompt, --max-res are not for --model sd."
    )
    assert_user_error(
        rdance("animate", reference, poses, "--model", "dit", *PROMPT, "--context", "10", *common),
        "--context must be 4k+1",
    )
    for flag, value, message in (
        ("--fps", "0", "--fps must be 1 or more, got 0"),  # 0 is not "the default"
        ("--fps", "1001", "--fps must be at most 1000, got 1001"),  # was refused when written, at the end
        ("--max-res", "0", "--max-res must be 256 to 16777216 pixels of area, got 0"),
        ("--max-res", "100000000", "--max-res must be 256 to 16777216 pixels of area"),
        ("--teacache-thresh", "0", "--teacache-thresh must be more than 0, got 0.0"),
        ("--teacache-thresh", "nan", "--teacache-thresh must be more than 0, got nan"),
        ("--guidance", "nan", "--guidance must be a number of 1 or more (1 turns guidance off), got nan"),
        ("--guidance", "0.5", "--guidance must be a number of 1 or more (1 turns guidance off), got 0.5"),
        ("--size", "48x80", "--size and --max-res both set the video's size; give one of them."),
    ):
        assert_user_error(
            rdance("animate", reference, poses, "--model", "dit", *PROMPT, *common, flag, value), message
        )
    assert_user_error(
        rdance(
            "animate",
            reference,
            poses,
            "--model",
            "dit",
            *PROMPT,
            "--offload",
            "group",
            "--device",
            "cpu",
            *common,
        ),
        "--offload group moves models to a CUDA GPU",
    )
    # Sizes, frame rates and --start that the pipeline would refuse only after the model loads.
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "smpl.mp4").write_bytes((poses / "smpl.mp4").read_bytes())
    write_video(slow / "hamer.mp4", read_frames(poses / "hamer.mp4"), 12)
    assert_user_error(
        rdance("animate", reference, slow, "--model", "dit", *PROMPT, *common, "--max-frames", "0"),
        "the pose videos must have the same frame rate, got smpl 24, hamer 12 "
        "(at 16 fps they have smpl 27, hamer 53 frames).",
    )
    assert_user_error(
        rdance("animate", reference, poses, "--model", "dit", *PROMPT, *common, "--start", "30", *ALL_FRAMES),
        "--start 30 is past the last frame (27 at 16 fps).",
    )
    still = tmp_path / "still"  # one frame stretched over 81 would play at 1944 fps: refused when written
    still.mkdir()
    for name in ("smpl", "hamer"):
        write_video(still / f"{name}.mp4", read_frames(poses / f"{name}.mp4")[:1], 24)
    assert_user_error(
        rdance("animate", reference, still, "--model", "dit", *PROMPT, *common),
        "stretched over the 81 frames asked, the dance (1 at 16 fps) would play at 1944 fps, more than a "
        "video can have (1000); give --max-frames 41 or fewer, or 0 for its own frames.",
    )
    thin = tmp_path / "thin"
    thin.mkdir()
    for name in ("smpl", "hamer"):
        write_video(thin / f"{name}.mp4", [np.zeros((8, 400, 3), np.uint8)] * 5)
    assert_user_error(
        rdance("animate", reference, thin, "--model", "dit", *PROMPT, *common),
        "the pose videos (8x400, height x width) are too narrow for --max-res 3072",
    )
    assert_user_error(
        rdance("animate", reference, poses, "--model", "dit", *PROMPT, "--size", "63x64", "--out",
               tmp_path / "x.mp4", "--weights", weights_root),
        "--size must be a multiple of 16 on both sides for --model dit, got 63x64",
    )  # fmt: skip
    assert_user_error(
        rdance("animate", reference, poses, "--model", "dit", *PROMPT, *common, "--guidance", "1",
               "--negative-prompt", "blurry"),
        "--negative-prompt takes effect only with --guidance above 1.",
    )  # fmt: skip
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "smpl.mp4").write_bytes((poses / "smpl.mp4").read_bytes())
    write_video(mixed / "hamer.mp4", [np.zeros((160, 96, 3), np.uint8)] * 40, 24)
    assert_user_error(
        rdance("animate", reference, mixed, "--model", "dit", *PROMPT, *common),
        "the pose videos must have the same size, got smpl 108x192, hamer 160x96 (height x width).",
    )
    sliver = tmp_path / "sliver.png"
    cv2.imwrite(str(sliver), np.full((4, 400, 3), 128, np.uint8))
    assert_user_error(
        rdance("animate", sliver, poses, "--model", "dit", *PROMPT, *common),
        "the reference picture (4x400, height x width) is too narrow for a 48x80 video",
    )
    # Release folders that are missing, incomplete or damaged.
    dit = ("animate", reference, poses, "--model", "dit", *PROMPT, "--out", tmp_path / "x.mp4", *FAST)
    assert_user_error(rdance(*dit, "--checkpoint", tmp_path / "nope"), "nope does not exist.")
    partial = tmp_path / "partial-weights"
    shutil.copytree(weights_root / "realisdance-dit", partial / "realisdance-dit")
    (partial / "realisdance-dit/transformer/config.json").unlink()
    assert_user_error(
        rdance(*dit, "--weights", partial),
        "realisdance-dit is not a whole RealisDance-DiT folder: it lacks transformer/config.json; "
        f"run `rdance weights download dit --weights {partial}`.",  # into the folder it was given
    )
    assert_user_error(
        rdance(*dit, "--checkpoint", partial / "realisdance-dit"),
        "it lacks transformer/config.json; give the folder of the release (theFoxofSky/RealisDance-DiT).",
    )
    damaged = tmp_path / "damaged"
    shutil.copytree(weights_root / "realisdance-dit", damaged)
    (damaged / "vae/config.json").write_text('{"_class_name": ')
    assert_user_error(rdance(*dit, "--checkpoint", damaged), f"cannot load {damaged / 'vae'}, it is damaged")
    (damaged / "scheduler/scheduler_config.json").write_text('{"_class_name": ')
    assert_user_error(
        rdance(*dit, "--checkpoint", damaged),
        f"cannot load {damaged / 'scheduler'}, it is damaged (scheduler_config.json is not valid JSON",
    )
    # more steps than the scheduler was trained with: said before the poses are read
    assert_user_error(rdance(*dit, "--weights", weights_root, "--steps", "1001"), "--steps must be 1 to 1000")
    launched = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}  # as torchrun starts each process
    assert_user_error(
        rdance("animate", reference, poses, "--out", tmp_path / "x.mp4", env=launched),
        "animates a video in one process",
    )
    assert_user_error(
        rdance("animate", reference, poses, "--model", "dit", *PROMPT, *common, "--retarget", env=launched),
        "--retarget runs in one process",
    )
    missing = tmp_path / "empty-weights"
    assert_user_error(
        rdance("animate", reference, poses, "--model", "dit", *PROMPT, *FAST, "--weights", missing),
        "realisdance-dit",
        "rdance weights download",
    )


def test_dit_under_torchrun_splits_the_work_and_makes_the_same_video(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    """Two CPU processes (gloo, Ulysses attention over the tiny model's two heads) make the video
    one process makes; only the first writes it."""
    args = ("animate", reference, poses, "--model", "dit", *PROMPT, *FAST, "--max-frames", "9")
    single = rdance(*args, "--weights", weights_root, "--out", tmp_path / "one.mp4")
    assert single.returncode == 0, single.stderr
    job = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "realisdance_cli", *map(str, args), "--weights", str(weights_root),
            "--out", str(tmp_path / "two.mp4"),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr[-3000:]
    assert job.stdout.count("wrote") == 1
    one, two = read_frames(tmp_path / "one.mp4"), read_frames(tmp_path / "two.mp4")
    assert len(one) == len(two) == 9
    assert max(np.abs(a.astype(int) - b.astype(int)).max() for a, b in zip(one, two, strict=True)) <= 1
