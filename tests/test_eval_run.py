"""`rdance eval run`: a RealisDance-Val-shaped test set (the authors' demo pose videos, scaled down)
animated by the tiny RealisDance-DiT and scored, by real processes: two shards at once, a resumed
run, and `torchrun` with two processes, all giving the same videos and table."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, GOLDEN, assert_user_error, need, rdance, start_rdance, write_video

from realisdance_cli.video import FrameSource, Selection, read_frames

pytestmark = pytest.mark.slow
FAST = ("--model", "dit", "--size", "48x80", "--steps", "2", "--max-frames", "5", "--metrics", "ssim,psnr")


@pytest.fixture(scope="module")
def weights_root(dit_weights: Path) -> Path:
    return dit_weights


@pytest.fixture(scope="module")
def val(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two test videos in RealisDance-Val's layout; their truth is their SMPL-CS video (the same
    frames and timing as the poses, which is what matters here)."""
    root = tmp_path_factory.mktemp("RealisDance-Val")
    sources = {name: list(FrameSource(need(FIXTURES / f"dit_{name}.mp4"))) for name in ("smpl", "hamer")}
    picture = cv2.imread(str(need(FIXTURES / "dit_ref.png")))
    for number, first in (("0001", 0), ("0002", 6)):
        for name, frames in sources.items():
            small = [
                cv2.resize(f, (160, 90), interpolation=cv2.INTER_AREA) for f in frames[first : first + 12]
            ]
            write_video(root / name / f"{number}.mp4", small, 24)
            if name == "smpl":
                write_video(root / "gt" / f"{number}.mp4", small, 24)
        (root / "ref").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "ref" / f"{number}.png"), cv2.resize(picture, (160, 90)))
        (root / "prompt").mkdir(exist_ok=True)
        (root / "prompt" / f"{number}.txt").write_text("A person dances\n in a studio.\n")
    return root


def frames(path: Path) -> np.ndarray:
    return np.stack(read_frames(path))


@pytest.fixture(scope="module")
def sharded(val: Path, weights_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two shards started together on one folder."""
    out = tmp_path_factory.mktemp("run") / "val_dit"
    jobs = [
        start_rdance("eval", "run", val, *FAST, "--weights", weights_root, "--out", out, "--shard", shard)
        for shard in ("1/2", "2/2")
    ]
    for process in jobs:
        _, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
    return out


def test_shards_animate_their_share_and_the_last_one_merges_the_table(sharded: Path, val: Path) -> None:
    result = json.loads((sharded / "scores.json").read_text())
    rows = result["methods"]["dit"]
    assert set(rows) == {"0001", "0002", "overall"}
    assert result["inputs"]["model"] == "dit" and result["inputs"]["kind"] == "realisdance-val"
    for name in ("0001", "0002"):
        video = FrameSource(sharded / "videos" / f"{name}.mp4").info
        assert (video.frame_count, video.height, video.width, video.fps) == (5, 48, 80, Fraction(16))
        # The truth is cut to the frames the model animated: resampled to 16 fps, the first 5.
        expected = np.stack(
            list(FrameSource(val / "gt" / f"{name}.mp4", Selection(fps=Fraction(16), max_frames=5)))
        )
        assert np.array_equal(frames(sharded / "truth" / f"{name}.mp4"), expected)
        assert 0 < rows[name]["ssim"] < 1 and rows[name]["psnr"] > 0


def test_a_second_run_animates_nothing_and_keeps_the_table(
    sharded: Path, val: Path, weights_root: Path
) -> None:
    videos = sorted((sharded / "videos").glob("*.mp4"))
    stamps = [path.stat().st_mtime_ns for path in videos]
    table = (sharded / "scores.json").read_text()
    record = json.loads((sharded / "run.json").read_text())
    animation = record["animation"]  # as rdance wrote it before the model's settings sat in "model"
    animation |= {"dit": animation.pop("model"), "stride": 4, "max_frames": 80, "channels_last": True}
    (sharded / "run.json").write_text(json.dumps(record | {"animation": animation | {"sampling": None}}))
    done = rdance("eval", "run", val, *FAST, "--weights", weights_root, "--out", sharded)
    assert done.returncode == 0, done.stderr
    assert [path.stat().st_mtime_ns for path in videos] == stamps
    assert json.loads((sharded / "scores.json").read_text()) == json.loads(table)
    assert "dit" in done.stdout and "scores.md (per video)" in done.stdout  # the table, printed


def test_torchrun_processes_share_the_set_and_make_the_same_videos(
    sharded: Path, val: Path, weights_root: Path, tmp_path: Path
) -> None:
    """Two CPU processes (one video each) give the videos and table of the two shards."""
    job = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "realisdance_cli", "eval", "run", str(val), *FAST, "--weights", str(weights_root),
            "--out", str(tmp_path / "two"),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert job.returncode == 0, job.stderr[-3000:]
    for name in ("0001", "0002"):
        assert np.array_equal(
            frames(tmp_path / "two" / "videos" / f"{name}.mp4"), frames(sharded / "videos" / f"{name}.mp4")
        )
    ours = json.loads((tmp_path / "two" / "scores.json").read_text())["methods"]
    assert ours == json.loads((sharded / "scores.json").read_text())["methods"]


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a folder by its relative path (lock files aside: they name their last holder)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != ".lock"
    }


def test_a_forced_run_of_other_settings_never_touches_a_run_at_work(
    val: Path, weights_root: Path, tmp_path: Path
) -> None:
    """A --force of 3 steps while a run of 2 steps is animating (frozen after its first video) is
    refused in one sentence and removes or rewrites nothing: it once deleted the first video and
    labelled run.json with 3 steps before giving up on the shard, so the first run left a table
    short of a video and a later run of 3 steps reused videos of 2."""
    out = tmp_path / "run"
    unstepped = (*FAST[:4], *FAST[6:], "--weights", weights_root, "--out", out)
    first = start_rdance("eval", "run", val, *unstepped, "--steps", "2")
    deadline = time.monotonic() + 300
    while first.poll() is None and not (out / "videos" / "0001.mp4").exists():
        assert time.monotonic() < deadline, "the first run never animated a video"
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)  # it holds its shard, one video done and one to go
    try:
        before = _files(out)
        forced = rdance("eval", "run", val, *unstepped, "--steps", "3", "--force")
        after = _files(out)
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=600)
    assert "videos/0001.mp4" in before
    assert sorted(after) == sorted(before) and after == before  # nothing removed, nothing rewritten
    assert first.returncode == 0, stderr[-3000:]
    assert_user_error(
        forced, f"--force would replace the run in {out}, but its shard", f"(process {first.pid})"
    )
    for record in (json.loads((out / "run.json").read_text()), json.loads((out / "scores.json").read_text())):
        animation = record.get("inputs", record)["animation"]
        assert animation["model"]["steps"] == 2
    assert set(json.loads((out / "scores.json").read_text())["methods"]["dit"]) == {"0001", "0002", "overall"}
    assert_user_error(rdance("eval", "run", val, *unstepped, "--steps", "3"), "steps 2 (now 3)")


def test_bad_runs_are_one_sentence(val: Path, weights_root: Path, sharded: Path, tmp_path: Path) -> None:
    common = ("--weights", weights_root, "--out", tmp_path / "out")
    assert_user_error(rdance("eval", "run", tmp_path, *FAST, *common), "is not a test set")
    assert_user_error(rdance("eval", "run", val, *FAST, "--shard", "3/2", *common), "--shard takes i/n")
    assert_user_error(
        rdance("eval", "run", val, *FAST, "--max-frames", "-1", *common),
        "--max-frames must be 0 (all) or more",
    )
    other_steps = (*FAST[:4], "--steps", "3", *FAST[6:])  # the folder holds a run of 2 steps
    assert_user_error(
        rdance("eval", "run", val, *other_steps, "--weights", weights_root, "--out", sharded),
        "holds the run of dit on",
        "steps 2 (now 3)",
        "pass --force to replace it",
    )
    (val / "prompt" / "0002.txt").rename(tmp_path / "0002.txt")
    try:
        assert_user_error(rdance("eval", "run", val, *FAST, *common), "0002")
    finally:
        (tmp_path / "0002.txt").rename(val / "prompt" / "0002.txt")
    assert not (tmp_path / "out" / "videos").exists()


def sd_weights(animator_weights: Path, extraction_weights: Path, root: Path) -> Path:
    """One weights folder for SD-1.5 and the extraction of the poses a test set lacks."""
    root.mkdir()
    for source in (animator_weights, extraction_weights):
        for entry in source.iterdir():
            (root / entry.name).symlink_to(entry)
    return root


def person() -> np.ndarray:
    """The DWPose golden photo at 90x160 (BGR): a person the tiny extractors find."""
    return cv2.resize(cv2.imread(str(need(GOLDEN / "dwpose" / "person_960x540.png"))), (90, 160))


def test_sd_on_discos_tiktok_table_first_run(
    animator_weights: Path, extraction_weights: Path, tmp_path: Path
) -> None:
    """DisCo's TikTok table (key<TAB>base64 PNG lines) on a first run: decoded into the run's cache,
    which does not keep the run from claiming its folder; each video animated and measured once,
    the progress counting each video once."""
    from realisdance_cli.animation import AnimateOptions, SDOptions
    from realisdance_cli.animator.sampling import SamplingOptions
    from realisdance_cli.evaluation.job import EvalOptions
    from realisdance_cli.evaluation.run import RunOptions, run_benchmark

    root = sd_weights(animator_weights, extraction_weights, tmp_path / "weights")
    lines = []
    for video, shift in (("00001", 0), ("00002", 20)):
        for frame in range(1, 4):
            picture = np.roll(person(), shift + 3 * frame, axis=1)
            encoded = base64.b64encode(cv2.imencode(".png", picture)[1].tobytes())
            lines.append(f"TiktokDance_{video}_{frame:04d}.png\t".encode() + encoded + b"\n")
    table = tmp_path / "TiktokDance" / "new10val_images.tsv"
    table.parent.mkdir()
    table.write_bytes(b"".join(lines))
    options = RunOptions(
        animation=AnimateOptions(
            size=(64, 64), weights_root=root, model=SDOptions(sampling=SamplingOptions(steps=2))
        ),
        evaluation=EvalOptions(metrics=["ssim", "psnr"], weights_root=root),
    )
    reported: list[tuple[str, int, int | None]] = []
    result = run_benchmark(
        table,
        tmp_path / "run",
        options,
        progress=lambda task, done, total: reported.append((task, done, total)),
    )
    assert result is not None and set(result["methods"]["sd"]) == {"00001", "00002", "overall"}
    assert result["inputs"]["kind"] == "disco-tiktok"
    for task in ("animating test videos", "scoring videos"):
        assert [(done, total) for name, done, total in reported if name == task] == [(0, 2), (1, 2), (2, 2)]
    for name in ("00001", "00002"):
        assert FrameSource(tmp_path / "run" / "videos" / f"{name}.mp4").info.frame_count == 3


def test_sd_on_a_set_of_frame_folders_makes_the_poses_from_the_truth(
    animator_weights: Path, extraction_weights: Path, tmp_path: Path
) -> None:
    """The raw TikTok layout (<id>/images/*.png, no poses): the truth is extracted and rendered
    into the three pose videos SD-1.5 takes, the first frame is the reference, and every frame is
    animated and scored (DisCo's protocol)."""
    root = sd_weights(animator_weights, extraction_weights, tmp_path / "weights")
    person_picture = person()
    images = tmp_path / "tiktok" / "00335" / "images"
    images.mkdir(parents=True)
    for index in range(9):
        cv2.imwrite(str(images / f"{index + 1:04d}.png"), np.roll(person_picture, 3 * index, axis=1))
    out = tmp_path / "run"
    done = rdance(
        "eval", "run", tmp_path / "tiktok", "--model", "sd", "--size", "64x64", "--steps", "2",
        "--metrics", "ssim,psnr", "--weights", root, "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("dwpose", "smpl", "hamer"):
        info = FrameSource(out / "pose-videos" / "00335" / f"{name}.mp4").info
        assert (info.frame_count, info.height, info.width) == (9, 160, 90)
    info = FrameSource(out / "videos" / "00335.mp4").info
    assert (info.frame_count, info.height, info.width) == (9, 64, 64)  # every frame, as DisCo scores
    truth = frames(out / "truth" / "00335.mp4")
    assert np.array_equal(truth, np.stack(read_frames(images)))
    overall = json.loads((out / "scores.json").read_text())["methods"]["sd"]["overall"]
    assert overall["ssim"] < 1 and overall["psnr"] > 0


def test_settings_and_weights_are_checked_before_the_folder_is_claimed(val: Path, tmp_path: Path) -> None:
    """A wrong setting or a missing model is one sentence, and run.json is not written: the next
    run, with the setting put right, is not refused as a run of other settings."""
    frame_folders = tmp_path / "tiktok"
    for index in range(3):
        folder = frame_folders / "00001" / "images"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{index + 1:04d}.png"), np.full((32, 32, 3), 40 * index, np.uint8))
    empty = tmp_path / "no-weights"
    empty.mkdir()
    out = tmp_path / "out"
    common = ("--metrics", "ssim", "--weights", empty, "--out", out)
    sd = ("eval", "run", frame_folders, "--model", "sd")
    assert_user_error(rdance(*sd, "--steps", "-3", *common), "--steps")
    assert_user_error(rdance(*sd, "--size", "64x65", *common), "--size")
    assert_user_error(rdance(*sd, "--steps", "2", *common), "missing weights")
    assert_user_error(rdance("eval", "run", val, *FAST[:-2], *common), "RealisDance-DiT")
    assert not (out / "run.json").exists()
