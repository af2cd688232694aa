"""`rdance animate` and `rdance weights convert` end to end, with the tiny golden network."""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
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

from realisdance_cli.video import FrameSource, read_frames

pytestmark = pytest.mark.slow
SIZE = "64x64"
# crf 0 is lossless: libx264's lossy decisions vary from run to run on tiny frames, ours must not.
FAST = ("--size", SIZE, "--steps", "2", "--context", "8", "--stride", "1", "--crf", "0")


@pytest.fixture(scope="module")
def weights_root(animator_weights: Path) -> Path:
    return animator_weights


def _pose_folder(folder: Path, frames: int, fps: int = 24) -> Path:
    rng = np.random.default_rng(frames)
    for name in ("dwpose", "hamer", "smpl"):
        pictures = [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(frames)]
        write_video(folder / f"{name}.mp4", pictures, fps)
    return folder


@pytest.fixture(scope="module")
def poses(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pose_folder(tmp_path_factory.mktemp("poses"), 12)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    picture = cv2.imread(str(need(FIXTURES / "dit_ref.png")))
    path = tmp_path_factory.mktemp("ref") / "ref.png"
    cv2.imwrite(str(path), picture)
    return path


def test_animate_writes_the_video_and_grid_reproducibly(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    out = tmp_path / "dance.mp4"
    args = (reference, poses, *FAST, "--weights", weights_root, "--out", out)
    done = rdance("animate", *args, "--grid", "--stride", "2")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stdout.split())  # what --stride 2 left of the 12 pose frames, said
    assert f"wrote {out}: 6 frames, 64x64 (height x width), 12 fps, 0.5 s" in said
    assert f"wrote {tmp_path / 'dance_grid.mp4'}: 6 frames, 64x320 (height x width), 12 fps, 0.5 s" in said
    info = FrameSource(out).info
    assert (info.frame_count, info.width, info.height) == (6, 64, 64)
    assert info.fps == Fraction(12)  # the pose videos' 24 fps over stride 2
    grid = FrameSource(tmp_path / "dance_grid.mp4").info
    assert (grid.frame_count, grid.width, grid.height) == (6, 5 * 64, 64)
    # The result is finished (and put in place) before the grid: a stop between keeps the result.
    assert out.stat().st_mtime_ns < (tmp_path / "dance_grid.mp4").stat().st_mtime_ns
    frames = read_frames(out)
    assert len({f.tobytes() for f in frames}) == 6  # it moves
    assert not list(tmp_path.glob(".*partial*"))

    again = rdance("animate", *args, "--stride", "2", "--force")
    assert again.returncode == 0, again.stderr
    assert all(np.array_equal(a, b) for a, b in zip(frames, read_frames(out), strict=True))
    other = rdance("animate", *args, "--stride", "2", "--force", "--seed", "7")
    assert other.returncode == 0, other.stderr
    assert not np.array_equal(frames[0], read_frames(out)[0])


def test_a_forced_run_killed_between_its_renames_never_leaves_the_earlier_grid(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    """`--force --grid` killed once its result is in place: the earlier grid (of another seed)
    used to stay beside the new result as if it showed it. Now it is gone by then."""
    out = tmp_path / "dance.mp4"
    args = ["animate", reference, poses, *FAST, "--weights", weights_root, "--out", out, "--grid"]
    assert rdance(*args).returncode == 0
    names = (out.name, "dance_grid.mp4")
    earlier = file_identities(tmp_path, names)

    returncode = killed_at_the_first_new_file(tmp_path, [*args, "--force", "--seed", "7"], earlier)
    assert returncode == -signal.SIGKILL  # stopped, not finished
    left = file_identities(tmp_path, names)
    assert left[out.name] != earlier[out.name]  # the new result is kept
    assert left["dance_grid.mp4"] != earlier["dance_grid.mp4"], "the earlier grid beside the new result"


def test_original_pkl_can_stand_in_for_the_skeleton_video(
    weights_root: Path, reference: Path, tmp_path: Path
) -> None:
    pkl = need(FIXTURES / "dwpose_1.pkl")
    folder = _pose_folder(tmp_path, 363)  # the .pkl's frame count
    out = tmp_path / "from_pkl.mp4"
    done = rdance(
        "animate", reference, *FAST, "--weights", weights_root, "--out", out,
        "--dwpose", pkl, "--hamer", folder / "hamer.mp4", "--smpl", folder / "smpl.mp4",
        "--stride", "60", "--max-frames", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert FrameSource(out).info.frame_count == 3


def test_converted_pipeline_folder_is_used_and_gives_the_same_video(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    before = tmp_path / "before.mp4"
    args = (reference, poses, *FAST, "--max-frames", "4")
    assert rdance("animate", *args, "--weights", weights_root, "--out", before).returncode == 0
    root = tmp_path / "weights"
    root.mkdir()
    for entry in weights_root.iterdir():
        (root / entry.name).symlink_to(entry.resolve())
    (root / "realisdance").unlink()
    (root / "realisdance").mkdir()
    (root / "realisdance" / "stage_2_hamer_release.ckpt").symlink_to(
        GOLDEN / "animator" / "realisdance_tiny.ckpt"
    )
    done = rdance("weights", "convert", "--weights", root)
    assert done.returncode == 0, done.stderr
    assert (root / "realisdance" / "pipeline" / "model_index.json").is_file()
    again = rdance("weights", "convert", "--weights", root)
    assert again.returncode == 2 and "already exists; pass --force to replace it" in again.stderr
    half = tmp_path / "half"  # the fp16 variant's files only (animate failed to find fp32 ones)
    assert rdance("weights", "convert", "--fp16", "--out", half, "--weights", root).returncode == 0
    for entry in root.iterdir():  # the pipeline folder needs neither the base model nor DINOv2
        if entry.name != "realisdance":
            entry.unlink()
    (root / "realisdance" / "stage_2_hamer_release.ckpt").unlink()
    after = tmp_path / "after.mp4"
    done = rdance("animate", *args, "--weights", root, "--out", after)
    assert done.returncode == 0, done.stderr
    for a, b in zip(read_frames(before), read_frames(after), strict=True):
        # float32 rounding apart (test_pipeline_api), which YUV 4:2:0 turns into 2 levels at most
        difference = np.abs(a.astype(int) - b)
        assert difference.max() <= 2 and difference.mean() < 0.05
    from_half = rdance("animate", *args, "--checkpoint", half, "--out", tmp_path / "half.mp4")
    assert from_half.returncode == 0, from_half.stderr
    for a, b in zip(read_frames(before), read_frames(tmp_path / "half.mp4"), strict=True):
        assert np.abs(a.astype(int) - b).mean() < 2  # fp16 weights, computed in fp32 on the CPU


def test_mismatched_pose_videos_are_refused(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    short = _pose_folder(tmp_path, 5)
    done = rdance(
        "animate", reference, poses, "--hamer", short / "hamer.mp4", *FAST, "--weights", weights_root,
        "--out", tmp_path / "x.mp4",
    )  # fmt: skip
    assert_user_error(done, "same number of frames", "dwpose 12, hamer 5, smpl 12")
    assert not (tmp_path / "x.mp4").exists()


def test_a_black_pose_video_is_said_once(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    """A render-poses folder whose smpl.mp4 is black throughout (its stream found nobody; an older
    render-poses said nothing of it) animates, and the user is told that it guides nothing."""
    folder = tmp_path / "poses"
    folder.mkdir()
    for name in ("dwpose", "hamer"):
        shutil.copy(poses / f"{name}.mp4", folder)
    write_video(folder / "smpl.mp4", [np.zeros((48, 80, 3), np.uint8)] * 12, 24, lossless=False)
    done = rdance("animate", reference, folder, *FAST, "--weights", weights_root, "--out", tmp_path / "x.mp4")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert (
        f"{folder / 'smpl.mp4'} is black in every frame used: animate's result follows no SMPL-X pose from it"
        in said
    )
    assert said.count("is black") == 1


def test_missing_weights_are_all_named_before_the_poses_are_read(
    poses: Path, reference: Path, tmp_path: Path
) -> None:
    """Said first: a long dance's pose videos are not decoded (nor a track retargeted) for nothing
    (here a damaged video that reading would have refused)."""
    damaged = shutil.copytree(poses, tmp_path / "poses")
    (damaged / "hamer.mp4").write_bytes(b"not a video")
    done = rdance(
        "animate", reference, damaged, *FAST, "--weights", tmp_path / "empty", "--out", tmp_path / "x.mp4"
    )
    assert_user_error(done, "missing weights", "Realistic Vision", "DINOv2", "RealisDance network")
    assert "rdance weights download realisdance" in done.stderr
    done = rdance(
        "animate", reference, damaged, "--model", "dit", "--prompt", "a dance", "--weights",
        tmp_path / "empty", "--out", tmp_path / "x.mp4",
    )  # fmt: skip
    assert_user_error(done, "missing weights", "RealisDance-DiT")
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--size", "60x64"), "multiple of 8"),
        (("--context", "40"), "--context must be 1 to 32"),
        (("--schedule", "loop"), "--schedule must be"),
        (("--steps", "0"), "--steps must be 1 or more, got 0"),  # 0 is not "the default"
        (("--steps", "100000"), "--steps must be 1 to 1000, got 100000"),  # the scheduler's, once loaded
        (("--stride", "0"), "--stride must be 1 or more, got 0"),
        (("--max-frames", "-1"), "--max-frames must be 1 or more (0 for all), got -1"),
        (("--out", "x.gif"), "--out must name an .mp4 file (the video is H.264 in MP4), got x.gif"),
    ],
)
def test_bad_options_are_one_sentence(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path, args: tuple, message: str
) -> None:
    if "100000" not in args:  # options that need no network are said before an existing output
        (tmp_path / "x.mp4").write_bytes(b"an earlier video")
    done = rdance("animate", reference, poses, "--weights", weights_root, "--out", tmp_path / "x.mp4", *args)
    assert_user_error(done, message)


def test_an_existing_video_is_refused_before_any_work(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    (tmp_path / "x_grid.mp4").write_bytes(b"an earlier grid")
    done = rdance(
        "animate", reference, poses, *FAST, "--weights", weights_root, "--out", tmp_path / "x.mp4", "--grid"
    )
    assert_user_error(done, "x_grid.mp4 already exists; pass --force to replace it.")
    assert (tmp_path / "x_grid.mp4").read_bytes() == b"an earlier grid"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x_grid.mp4"]


def test_folder_without_pose_videos_says_how_to_make_them(
    weights_root: Path, reference: Path, tmp_path: Path
) -> None:
    done = rdance("animate", reference, tmp_path, *FAST, "--weights", weights_root)
    assert_user_error(done, "dwpose.mp4 not found", "rdance render-poses")


def test_default_output_names_a_pose_folder_given_as_a_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rdance animate me.png .` inside the poses folder: named after it (it made `me_.mp4`)."""
    from realisdance_cli.animation import PoseInputs, default_out

    (tmp_path / "dance").mkdir()
    monkeypatch.chdir(tmp_path / "dance")
    assert default_out(Path("me.png"), PoseInputs(Path("."))) == Path("me_dance.mp4")
    assert default_out(Path("me.png"), PoseInputs(Path("../dance"))) == Path("me_dance.mp4")


def _rewrite(path: Path, change: Callable[[dict], object]) -> None:
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


# Damage a reviewer found to give tracebacks in `rdance animate`, and the folder then named.
DAMAGED_BASE = {
    "unet config a list": (
        "base/rv51/unet",
        lambda root: (root / "base/rv51/unet/config.json").write_text("[1, 2]"),
    ),
    "no training timesteps": (
        "base/rv51/scheduler",
        lambda root: _rewrite(
            root / "base/rv51/scheduler/scheduler_config.json", lambda c: c.update(num_train_timesteps=0)
        ),
    ),
    "vae config cut": ("base/rv51/vae", lambda root: (root / "base/rv51/vae/config.json").write_text('{"a')),
    # Built block by block for minutes before anything failed: refused by the number alone.
    "a billion layers per block": (
        "base/rv51/unet",
        lambda root: _rewrite(
            root / "base/rv51/unet/config.json", lambda c: c.update(layers_per_block=10**9)
        ),
    ),
}
DAMAGE_REASONS = {
    "a billion layers per block": "(config.json says layers_per_block is 1000000000, more than any real",
}


@pytest.mark.parametrize("damage", list(DAMAGED_BASE))
def test_a_damaged_base_folder_is_one_sentence(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path, damage: str
) -> None:
    """Loading names the damaged folder and how to find and fetch the file, never a traceback."""
    root = shutil.copytree(weights_root, tmp_path / "weights")  # links followed: copies to damage
    folder, make = DAMAGED_BASE[damage]
    make(root)
    out = tmp_path / "x.mp4"
    done = rdance("animate", reference, poses, *FAST, "--weights", root, "--out", out, timeout=120)
    assert_user_error(
        done,
        f"cannot load {root / folder}, it is damaged {DAMAGE_REASONS.get(damage, '')}",
        "`rdance weights check` names",
    )
    assert not out.exists()


def test_loading_is_said_first_and_verbose_names_the_device_and_the_weights(
    weights_root: Path, poses: Path, reference: Path, tmp_path: Path
) -> None:
    """The networks' loading (seconds of imports and reading) used to pass without a word before
    the first denoising line; -v said nothing of the device or of the files loaded."""
    args = ("animate", reference, poses, *FAST, "--max-frames", "2", "--weights", weights_root)
    done = rdance(*args, "--out", tmp_path / "plain.mp4")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("loading RealisDance (MB) 0/"), done.stderr
    assert lines.index(next(line for line in lines if line.startswith("denoising "))) > 1
    assert "INFO" not in done.stderr

    verbose = rdance("-v", *args, "--out", tmp_path / "verbose.mp4")
    assert verbose.returncode == 0, verbose.stderr
    said = verbose.stderr.splitlines()
    checkpoint = weights_root / "realisdance" / "stage_2_hamer_release.ckpt"
    for line in (
        "INFO realisdance_cli.devices: networks run on cpu (auto: PyTorch sees no CUDA GPU) in fp32 "
        "(its default there)",
        "INFO realisdance_cli.animation: no converted pipeline folder: the pipeline is built from the "
        "original checkpoint (`rdance weights convert` makes one, which loads faster)",
        f"INFO realisdance_cli.progress: loaded DINOv2 from {weights_root / 'dinov2-large'}",
        f"INFO realisdance_cli.progress: loaded the RealisDance network from {checkpoint}",
        f"INFO realisdance_cli.progress: loaded the base model's VAE from {weights_root / 'base/rv51/vae'}",
    ):
        assert line in said, verbose.stderr
    assert said.index(line) < said.index(next(line for line in said if line.startswith("denoising ")))

    quiet = rdance("-q", *args, "--out", tmp_path / "quiet.mp4")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
