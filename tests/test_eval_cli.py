"""`rdance eval`: generated videos scored against the truth by the real command, with random-weight
feature networks of the exact released structure and the tiny DWPose.

What a user relies on: the numbers (SSIM and PSNR equal an independent computation on the
protocol's frames, identical videos score perfectly, a worse video scores worse), the files
(scores.json/.md/.svg), resuming without measuring again, and one sentence for each bad input.
"""

from __future__ import annotations

import json
import shutil
import time
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import GOLDEN, assert_user_error, need, rdance, start_rdance, write_video
from eval_models import write_eval_networks
from onnx_models import confident_pose_model, gated_detector
from skimage.metrics import structural_similarity

from realisdance_cli.evaluation import metrics, report
from realisdance_cli.evaluation.protocol import PROTOCOLS
from realisdance_cli.video import read_frames


@pytest.fixture(scope="module")
def eval_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every evaluation network at its registry path with random weights (`write_eval_networks`),
    the tiny golden DINOv2 and DWPose, its pose model sure of every point."""
    root = tmp_path_factory.mktemp("eval-weights")
    torch.manual_seed(0)
    write_eval_networks(root)
    links = {
        "dwpose/yolox_l.onnx": GOLDEN / "dwpose" / "yolox_tiny.onnx",
        "dinov2-large": GOLDEN / "animator" / "tiny_dinov2",
    }
    for relative, target in links.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).symlink_to(need(target))
    confident_pose_model(
        need(GOLDEN / "dwpose" / "dwpose_tiny.onnx"), root / "dwpose" / "dw-ll_ucoco_384.onnx"
    )
    return root


def dance(
    count: int, height: int = 120, width: int = 96, noise: float = 0.0, seed: int = 0
) -> list[np.ndarray]:
    """A person (the DWPose golden photo) sliding through a portrait window: frames where the tiny
    DWPose finds a person and points, which change from frame to frame."""
    person = cv2.imread(str(need(GOLDEN / "dwpose" / "person_960x540.png")))[:, :, ::-1]
    person = cv2.resize(person, (135, 240))
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        top, left = 20 + 2 * index, 10 + index
        frame = cv2.resize(person[top : top + 200, left : left + 120], (width, height)).astype(np.float64)
        frame += rng.normal(0, noise, frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def fitted(path: Path) -> np.ndarray:
    return PROTOCOLS["disco"].fit_frames(np.stack(read_frames(path)))


@pytest.fixture(scope="module")
def scored(eval_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """One 17-frame video (two 16-frame windows: the fewest FID-VID and FVD take) scored with
    every metric."""
    folder = tmp_path_factory.mktemp("eval")
    write_video(folder / "truth" / "clip.mp4", dance(17))
    write_video(folder / "ours" / "clip.mp4", dance(17, noise=12, seed=1))
    done = rdance(
        "eval", folder / "ours", folder / "truth", "--weights", eval_weights, "--out", folder / "out"
    )
    assert done.returncode == 0, done.stderr
    return folder, folder / "out", json.loads((folder / "out" / "scores.json").read_text())


def test_every_metric_is_scored_and_written(scored: tuple[Path, Path, dict]) -> None:
    _, out, result = scored
    overall = result["methods"]["ours"]["overall"]
    for column in ("ssim", "psnr", "lpips", "fid", "fid-vid", "fvd", "pck_body", "pck_hands", "pck_face"):
        assert isinstance(overall[column], float), (column, overall[column])
    for column in ("lpips", "fid", "fid-vid", "fvd"):
        assert overall[column] > 0, column
    assert 0 < overall["identity"] <= 1
    assert overall["flicker"] > 0 and overall["truth/flicker"] > 0
    assert result["protocol"]["name"] == "disco" and result["inputs"]["metrics"][-1] == "smoothness"
    table = (out / "scores.md").read_text()
    assert "| ours |" in table and "| clip |" in table and "FVD" in table
    svg = ET.parse(out / "scores.svg").getroot()
    lines = svg.findall(".//{http://www.w3.org/2000/svg}polyline")
    assert {line.find("{http://www.w3.org/2000/svg}title").text for line in lines} == {"ours", "truth"}
    curves = result["curves"]["ours"]
    assert len(curves["pose_error"]) == 17 and len(curves["flicker"]) == 16


def test_ssim_and_psnr_equal_scikit_image_on_the_protocol_frames(scored: tuple[Path, Path, dict]) -> None:
    """DisCo's SSIM: grey frames (OpenCV's conversion), scikit-image's defaults, 8-bit range; PSNR
    over the colour channels; both on the 256 x 256 centre squares."""
    folder, _, result = scored
    ours, truth = fitted(folder / "ours" / "clip.mp4"), fitted(folder / "truth" / "clip.mp4")
    assert ours.shape == (17, 256, 256, 3)
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in (*ours, *truth)]
    ssim = np.mean([structural_similarity(a, b) for a, b in zip(grey[:17], grey[17:], strict=True)])
    mse = ((ours.astype(np.float64) - truth) ** 2).mean(axis=(1, 2, 3))
    psnr = np.mean(20 * np.log10(255 / np.sqrt(mse)))
    video = result["methods"]["ours"]["clip"]
    assert video["ssim"] == pytest.approx(ssim, abs=1e-6)
    assert video["psnr"] == pytest.approx(psnr, abs=1e-6)
    assert video["ssim"] < 0.99 and video["psnr"] < 60  # the noise is seen


def test_a_second_run_resumes_without_measuring_again(
    scored: tuple[Path, Path, dict], eval_weights: Path
) -> None:
    folder, out, result = scored
    records = sorted((out / "records").rglob("*.npz"))
    assert len(records) == 2  # the truth's and the method's
    stamps = [path.stat().st_mtime_ns for path in records]
    done = rdance("eval", folder / "ours", folder / "truth", "--weights", eval_weights, "--out", out)
    assert done.returncode == 0, done.stderr
    assert [path.stat().st_mtime_ns for path in records] == stamps
    assert json.loads((out / "scores.json").read_text()) == result


@pytest.fixture(scope="module")
def compared(eval_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, list]:
    """Two methods on two videos, the cheap metrics: "same" is the truth itself; "noisy" is noisy,
    and its first video is longer and of another size than its truth. Also returned: the command."""
    folder = tmp_path_factory.mktemp("compare")
    for name, seed in (("a", 0), ("b", 3)):
        truth = write_video(folder / "truth" / f"{name}.mp4", dance(12, seed=seed))
        (folder / "same").mkdir(exist_ok=True)
        shutil.copy(truth, folder / "same" / f"{name}.mp4")
    write_video(folder / "noisy" / "a.mp4", dance(14, height=100, width=80, noise=25, seed=1))
    write_video(folder / "noisy" / "b.mp4", dance(12, noise=25, seed=2))
    command = ["eval", folder / "same", folder / "noisy", folder / "truth", "--metrics"]
    command += ["ssim,psnr,pose,smoothness", "--weights", eval_weights, "--out", folder / "out"]
    done = rdance(*command)
    assert done.returncode == 0, done.stderr
    return done.stderr, json.loads((folder / "out" / "scores.json").read_text()), command


def test_identical_videos_score_perfectly(compared: tuple[str, dict, list]) -> None:
    _, result, _ = compared
    same = result["methods"]["same"]["overall"]
    assert same["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert same["psnr"] == metrics.IDENTICAL_PSNR  # DisCo's value for identical frames
    assert same["pose_error"] == 0.0
    assert same["body/pck@0.05"] == 1.0 and same["body/missing"] == 0.0  # the tiny DWPose finds points
    assert same["jitter"] == same["truth/jitter"] and same["flicker"] == same["truth/flicker"]


def test_a_worse_video_scores_worse(compared: tuple[str, dict, list]) -> None:
    _, result, _ = compared
    same, noisy = (result["methods"][m]["overall"] for m in ("same", "noisy"))
    assert noisy["ssim"] < same["ssim"] and noisy["psnr"] < 30
    assert noisy["pose_error"] > 0 and noisy["pck_body"] < 1.0
    assert noisy["flicker"] > noisy["truth/flicker"]  # noise changes every pixel every frame


def test_lengths_and_sizes_that_differ_are_said_and_handled_by_the_protocol(
    compared: tuple[str, dict, list],
) -> None:
    stderr, result, _ = compared
    said = " ".join(stderr.split())
    assert "a: the generated video has 14 frames and the truth 12; the first 12 of each are compared." in said
    assert (
        "a: the generated video is 80x100 and the truth 96x120; both fitted to 256x256 as the disco" in said
    )
    assert len(result["curves"]["noisy"]["flicker"]) == 11  # 12 frames compared


def test_bad_inputs_are_one_sentence_before_any_work(eval_weights: Path, tmp_path: Path) -> None:
    truth = tmp_path / "truth"
    write_video(truth / "a.mp4", dance(10))
    write_video(tmp_path / "ours" / "b.mp4", dance(10))
    (tmp_path / "empty").mkdir()
    out = ["--weights", eval_weights, "--out", tmp_path / "out"]
    assert_user_error(rdance("eval", tmp_path / "empty", truth, *out), "holds no videos")
    assert_user_error(rdance("eval", tmp_path / "ours", truth, *out), "without a truth of the same name", "b")
    assert_user_error(
        rdance("eval", truth, truth, "--metrics", "fvd", *out),
        "FVD needs at least 2 clips of 16 frames per method; these videos give 0",
    )
    assert_user_error(rdance("eval", truth, truth, "--metrics", "sharpness", *out), "--metrics takes")
    assert_user_error(rdance("eval", truth, truth, "--protocol", "tiktok", *out), "--protocol must be")
    assert_user_error(rdance("eval", truth, *out), "at least one GENERATED")
    assert_user_error(
        rdance("eval", truth, truth, "--truth-fps", "30", *out),
        "--truth-fps gives the frame rate of truth frame folders, but",
        "holds only video files",
    )
    assert_user_error(rdance("eval", truth, truth, "--truth-fps", "0", *out), "--truth-fps must be between")
    assert_user_error(
        rdance("eval", truth, truth, "--metrics", "fid", "--out", tmp_path / "out"),
        "missing weights",
        "InceptionV3",
    )
    assert not (tmp_path / "out").exists()


def test_too_few_frames_for_a_set_metric_leave_it_out_when_not_named(
    eval_weights: Path, tmp_path: Path
) -> None:
    truth = write_video(tmp_path / "truth.mp4", dance(6))
    done = rdance(
        "eval", truth, truth, "--weights", eval_weights, "--out", tmp_path / "out", "--metrics", "ssim,fid"
    )
    assert done.returncode == 0, done.stderr
    assert "FID from 6 frames (fewer than its 2048 features) is biased upward" in " ".join(
        done.stderr.split()
    )
    assert_user_error(
        rdance(
            "eval",
            truth,
            truth,
            "--weights",
            eval_weights,
            "--out",
            tmp_path / "other",
            "--metrics",
            "fid-vid",
        ),
        "FID-VID needs at least 2 clips of 16 frames per method; these videos give 0",
    )
    done = rdance("eval", truth, truth, "--weights", eval_weights, "--out", tmp_path / "all")
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert (
        "FVD needs at least 2 clips of 16 frames per method; these videos give 0, so it is left out." in said
    )
    assert (
        "fvd" not in json.loads((tmp_path / "all" / "scores.json").read_text())["methods"]["truth"]["overall"]
    )


def test_another_evaluation_is_never_replaced_silently(eval_weights: Path, tmp_path: Path) -> None:
    first = write_video(tmp_path / "first.mp4", dance(6))
    second = write_video(tmp_path / "second.mp4", dance(6, seed=5, noise=5))
    out = ["--weights", eval_weights, "--out", tmp_path / "out", "--metrics", "ssim"]
    assert rdance("eval", first, first, *out).returncode == 0
    kept = (tmp_path / "out" / "scores.json").read_text()
    assert_user_error(rdance("eval", second, first, *out), "holds the evaluation of other videos", "--force")
    assert (tmp_path / "out" / "scores.json").read_text() == kept
    assert rdance("eval", second, first, *out, "--force").returncode == 0
    assert json.loads((tmp_path / "out" / "scores.json").read_text())["inputs"]["generated"] == {
        "second": str(second.resolve())
    }


def test_uint8_wrap_psnr_is_discos_first_code() -> None:
    """By hand: differences 255 - 1 = 254 and 1 - 255 = 2 (mod 256), squared 254² = 64516 = 4 and
    4 (mod 256), so the "MSE" is 4 whatever the true error; PSNR 20 log10(255 / 2)."""
    a = np.full((1, 2, 2, 3), 255, np.uint8)
    b = np.ones_like(a)
    b[0, 0, 0] = 255
    wrapped = metrics.psnr_8bit_wrapped(a, b)
    expected_mse = (3 * 0 + 9 * 4) / 12
    assert wrapped[0] == pytest.approx(20 * np.log10(255 / np.sqrt(expected_mse)), abs=1e-12)
    assert metrics.psnr_8bit_wrapped(a, a)[0] == metrics.IDENTICAL_PSNR
    assert wrapped[0] > 24.07 > metrics.psnr(a / 255, b / 255)


def test_the_disco_fit_is_torchvisions_centre_square() -> None:
    """A portrait 120 x 96 frame keeps rows 12..108 (offset rounded down), then Pillow's bilinear."""
    from PIL import Image

    disco = PROTOCOLS["disco"]
    frame = np.random.default_rng(0).integers(0, 256, (1, 121, 96, 3), dtype=np.uint8)
    assert disco.window(121, 96) == (0, 12, 96, 96)
    expected = np.asarray(Image.fromarray(frame[0, 12:108]).resize((256, 256), Image.Resampling.BILINEAR))
    assert np.array_equal(disco.fit_frames(frame)[0], expected)
    mapped = disco.map_points(np.array([[48.0, 60.0], [0.0, 12.0], [48.0, 5.0]]), 121, 96)
    assert np.allclose(mapped[:2], [[128, 128], [0, 0]])
    assert np.isnan(mapped[2]).all()  # above the kept square: not seen, not scored
    assert [(c.start, c.stop) for c in disco.clips(18)] == [(0, 16), (1, 17), (2, 18)]


def test_hands_in_3d_through_hamer(eval_weights: Path, extraction_weights: Path, tmp_path: Path) -> None:
    """With HaMeR's and MANO's files there, HaMeR runs on both videos' DWPose hand boxes: the truth
    against itself has no 3-D hand error and no missing hand; a video without a person lacks
    every hand the truth has (the detector finds people only in pictures with a bright pixel)."""
    root = tmp_path / "weights"
    root.mkdir()
    for entry in eval_weights.iterdir():
        if entry.name != "dwpose":
            (root / entry.name).symlink_to(entry)
    for name in ("hamer", "mano"):
        (root / name).symlink_to(extraction_weights / name)
    (root / "dwpose").mkdir()
    gated_detector(root / "dwpose" / "yolox_l.onnx", [(256, 320, 300, 560)])
    (root / "dwpose" / "dw-ll_ucoco_384.onnx").symlink_to(eval_weights / "dwpose" / "dw-ll_ucoco_384.onnx")
    truth = write_video(tmp_path / "truth.mp4", dance(6))
    blank = write_video(tmp_path / "blank.mp4", [np.zeros((120, 96, 3), np.uint8)] * 6)
    done = rdance(
        "eval", truth, blank, truth, "--metrics", "hands3d", "--weights", root, "--out", tmp_path / "out"
    )
    assert done.returncode == 0, done.stderr
    methods = json.loads((tmp_path / "out" / "scores.json").read_text())["methods"]
    same, blank_scores = methods["truth"]["overall"], methods["blank"]["overall"]
    assert same["hands3d"] == pytest.approx(0.0, abs=1e-9), same
    assert same["hands3d/missing"] == 0.0, same
    assert blank_scores["hands3d"] is None and blank_scores["hands3d/missing"] == 1.0, blank_scores
    assert "hands 3-D (mm)" in (tmp_path / "out" / "scores.md").read_text()


def test_a_stopped_first_run_resumes_with_what_it_measured(eval_weights: Path, tmp_path: Path) -> None:
    """Killed after its first video (no table written yet), the same command finishes the rest and
    keeps that video's record as it was."""
    for name in ("a", "b"):
        write_video(tmp_path / "truth" / f"{name}.mp4", dance(10))
        write_video(tmp_path / "ours" / f"{name}.mp4", dance(10, noise=10, seed=4))
    args = ["eval", tmp_path / "ours", tmp_path / "truth", "--metrics", "ssim,lpips"]
    args += ["--weights", eval_weights, "--out", tmp_path / "out"]
    first = tmp_path / "out" / "records" / "methods" / "ours" / "a.npz"
    child = start_rdance(*args)
    deadline = time.monotonic() + 300
    while not first.exists():
        assert child.poll() is None, child.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    child.kill()
    child.communicate()
    assert not (tmp_path / "out" / "scores.json").exists()
    stamp = first.stat().st_mtime_ns
    done = rdance(*args)
    assert done.returncode == 0, done.stderr
    assert first.stat().st_mtime_ns == stamp
    assert set(json.loads((tmp_path / "out" / "scores.json").read_text())["methods"]["ours"]) == {
        "a",
        "b",
        "overall",
    }


def test_clips_from_videos_shorter_than_a_clip_are_none(eval_weights: Path, tmp_path: Path) -> None:
    """FVD over a 10-frame video (no 16-frame window: said) and an 18-frame one (three)."""
    write_video(tmp_path / "truth" / "short.mp4", dance(10))
    write_video(tmp_path / "truth" / "long.mp4", dance(18))
    done = rdance(
        "eval", tmp_path / "truth", tmp_path / "truth", "--metrics", "fvd",
        "--weights", eval_weights, "--out", tmp_path / "out",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    overall = json.loads((tmp_path / "out" / "scores.json").read_text())["methods"]["truth"]["overall"]
    assert overall["fvd"] == pytest.approx(0.0, abs=1e-6)  # the same three clips on both sides
    said = " ".join(done.stderr.split())
    assert "videos shorter than a clip of 16 frames add none to FVD: short." in said


def _ours_scored_against_the_truth(tmp_path: Path, eval_weights: Path) -> str:
    """`rdance eval ours/ truth/` with the cheap metrics into out/; what it said, on one line."""
    done = rdance(
        "eval", tmp_path / "ours", tmp_path / "truth", "--metrics", "ssim,psnr",
        "--weights", eval_weights, "--out", tmp_path / "out",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return " ".join(done.stderr.split())


def test_another_rate_or_shape_compares_the_same_moments_and_region(
    eval_weights: Path, tmp_path: Path
) -> None:
    """A 16 fps video made from a 32 fps truth is compared with the truth resampled by
    RealisDance-DiT's rule; a portrait video made from a square truth with its centre; both said."""
    from realisdance_cli.video import resampled_indices

    truth = dance(20, height=128, width=128)
    write_video(tmp_path / "truth" / "clip.mp4", truth, fps=32)
    picked = resampled_indices(20, Fraction(32), Fraction(16), 0, 0)
    write_video(tmp_path / "ours" / "clip.mp4", [truth[i][:, 16:112] for i in picked], fps=16)
    said = _ours_scored_against_the_truth(tmp_path, eval_weights)
    assert "the truth is resampled to 16 fps" in said and "the truth's centre of the generated shape" in said
    overall = json.loads((tmp_path / "out" / "scores.json").read_text())["methods"]["ours"]["overall"]
    assert overall["ssim"] == pytest.approx(1.0, abs=1e-12) and overall["psnr"] == metrics.IDENTICAL_PSNR


def test_what_is_true_of_several_videos_is_said_once(eval_weights: Path, tmp_path: Path) -> None:
    """A test set at another frame rate than its generated videos: one line names them all, not a
    line per video."""
    truth = dance(8, height=128, width=128)
    for name in ("a", "b"):
        write_video(tmp_path / "truth" / f"{name}.mp4", truth, fps=32)
        write_video(tmp_path / "ours" / f"{name}.mp4", truth[::2], fps=16)
    said = _ours_scored_against_the_truth(tmp_path, eval_weights)
    assert (
        "2 videos (a, b): the generated video runs at 16 fps and the truth at 32; the truth is resampled "
        "to 16 fps"
    ) in said
    assert said.count("runs at 16 fps") == 1


def test_lengths_and_sizes_that_differ_in_many_videos_are_a_line_each(
    eval_weights: Path, tmp_path: Path
) -> None:
    """Six generated videos, each shorter and smaller than its truth by other numbers: a line for
    the lengths and one for the sizes, each counting the videos and listing the first five with
    their numbers, not a line per video."""
    for short, name in enumerate("abcdef", start=1):
        write_video(tmp_path / "truth" / f"{name}.mp4", dance(10))
        write_video(
            tmp_path / "ours" / f"{name}.mp4",
            dance(10 - short, height=120 - 10 * short, width=96 - 8 * short),
        )
    said = _ours_scored_against_the_truth(tmp_path, eval_weights)
    assert (
        "6 videos have other lengths than their truths (generated vs truth frames: a 9 vs 10, b 8 vs 10, "
        "c 7 vs 10, d 6 vs 10, e 5 vs 10 and 1 more); each is compared over the first frames of the shorter."
    ) in said
    assert (
        "6 videos are of other sizes than their truths (generated vs truth: a 88x110 vs 96x120, b 80x100 vs "
        "96x120, c 72x90 vs 96x120, d 64x80 vs 96x120, e 56x70 vs 96x120 and 1 more); both fitted to 256x256 "
        "as the disco protocol does."
    ) in said
    assert said.count("frames and the truth") == 0 and said.count("and the truth 96x120") == 0


def test_counts_of_one_are_said_in_the_singular(tmp_path: Path) -> None:
    """A one-frame video and a single truth left out were "has 1 frames", "the first 1 of each are
    compared" and "1 truth videos have"."""
    truth = dance(3)
    for name in ("a", "b"):
        write_video(tmp_path / "truth" / f"{name}.mp4", truth)
    write_video(tmp_path / "ours" / "a.mp4", truth[:1])
    done = rdance(
        "eval", tmp_path / "ours", tmp_path / "truth", "--metrics", "ssim", "--out", tmp_path / "out"
    )
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "warning: 1 truth video has no generated video and is left out: b." in said
    assert (
        "warning: a: the generated video has 1 frame and the truth 3; the first frame of each is compared."
        in said
    )


def test_an_out_that_is_a_file_is_one_sentence(eval_weights: Path, tmp_path: Path) -> None:
    truth = write_video(tmp_path / "truth.mp4", dance(4))
    (tmp_path / "taken").write_text("mine")
    done = rdance(
        "eval", truth, truth, "--metrics", "ssim", "--weights", eval_weights, "--out", tmp_path / "taken"
    )
    assert_user_error(done, "is a file")
    assert (tmp_path / "taken").read_text() == "mine"


def test_set_metrics_over_different_truth_frames_are_said(eval_weights: Path, tmp_path: Path) -> None:
    truth = write_video(tmp_path / "truth" / "a.mp4", dance(4))
    write_video(tmp_path / "full" / "a.mp4", dance(4, noise=10))
    write_video(tmp_path / "short" / "a.mp4", dance(2, noise=10))
    done = rdance(
        "eval", tmp_path / "full", tmp_path / "short", truth.parent, "--metrics", "ssim,fid",
        "--weights", eval_weights, "--out", tmp_path / "out",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = " ".join(done.stderr.split())
    assert "different numbers of truth frames (full 4, short 2), so FID measures them against" in said


def test_the_printed_table_fits_80_columns(
    scored: tuple[Path, Path, dict], compared: tuple[str, dict, list], eval_weights: Path
) -> None:
    """A row per metric and a column per method (and the truth's smoothness): at 80 columns no
    label or number is cut; the per-video tables are in scores.md, which is said."""
    folder, out, every_metric = scored
    runs = [
        (("eval", folder / "ours", folder / "truth", "--weights", eval_weights, "--out", out), every_metric),
        (compared[2], compared[1]),
    ]
    for command, result in runs:
        done = rdance(*command, env={"COLUMNS": "80"})
        assert done.returncode == 0, done.stderr
        assert "…" not in done.stdout, done.stdout
        overall = {method: rows["overall"] for method, rows in result["methods"].items()}
        first = next(iter(overall.values()))
        overall["truth"] = {key: first[f"truth/{key}"] for key in ("jitter", "flicker")}
        shown = 0
        for key, label, _, spec in report.COLUMNS:
            values = [columns[key] for columns in overall.values() if columns.get(key) is not None]
            assert (label in done.stdout) == bool(values), label
            for value in values:
                assert format(value, spec) in done.stdout, (label, value, done.stdout)
                shown += 1
        assert shown >= 2 * len(overall), done.stdout
        assert all(method in done.stdout for method in overall)
        assert "scores.md (per video)" in done.stdout


def test_the_report_shows_only_what_was_measured(eval_weights: Path, tmp_path: Path) -> None:
    """The notes of the columns present only; scores.svg only with curves to draw (a stale one
    removed), and said only then."""
    truth = write_video(tmp_path / "truth.mp4", dance(4))
    ours = write_video(tmp_path / "ours.mp4", dance(4, noise=10))
    out = tmp_path / "out"
    command = ("eval", ours, truth, "--weights", eval_weights, "--out", out, "--metrics")
    done = rdance(*command, "ssim,smoothness")
    assert done.returncode == 0, done.stderr
    table = (out / "scores.md").read_text()
    assert "Jitter (body points)" in table and "PCK" not in table and "HaMeR" not in table
    assert (out / "scores.svg").exists() and "scores.svg" in done.stdout
    done = rdance(*command, "ssim,psnr")
    assert done.returncode == 0, done.stderr
    assert not (out / "scores.svg").exists() and "scores.svg" not in done.stdout
    table = (out / "scores.md").read_text()
    assert "PSNR" in table and "Jitter" not in table and "PCK" not in table
    stamp = (out / "scores.md").stat().st_mtime_ns
    assert rdance(*command, "ssim,psnr").returncode == 0
    assert (out / "scores.md").stat().st_mtime_ns == stamp  # finished: the same table kept


def write_frames(folder: Path, frames: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{index:04d}.png"), frame[:, :, ::-1])
    return folder


def test_a_truth_of_frame_folders_is_resampled_from_the_rate_truth_fps_gives(
    eval_weights: Path, tmp_path: Path
) -> None:
    """DisCo's truths are frame folders: a 16 fps video made from a 32 fps dance meets the frames it
    was made from once --truth-fps gives the folder's rate (its poses too); without it, frame t
    meets frame t, said. A generated frame folder against a truth of known rate is said too."""
    from realisdance_cli.video import resampled_indices

    truth = dance(20, height=128, width=128)
    picked = [truth[i] for i in resampled_indices(20, Fraction(32), Fraction(16), 0, 0)]
    write_frames(tmp_path / "truth" / "clip", truth)
    write_video(tmp_path / "ours" / "clip.mp4", picked, fps=16)
    write_frames(tmp_path / "frames" / "clip", picked)
    command = (
        "eval",
        tmp_path / "ours",
        tmp_path / "frames",
        tmp_path / "truth",
        "--metrics",
        "ssim,psnr,pose",
    )
    command += ("--weights", eval_weights)

    unknown = rdance(*command, "--out", tmp_path / "unknown")
    assert unknown.returncode == 0, unknown.stderr
    assert (
        "clip: the truth is a frame folder, of no known frame rate, and the generated video runs at 16 "
        "fps; frame t is compared with frame t (--truth-fps gives its rate, to resample it)."
    ) in " ".join(unknown.stderr.split())
    ours = json.loads((tmp_path / "unknown" / "scores.json").read_text())["methods"]["ours"]["overall"]
    assert ours["ssim"] < 0.99

    known = rdance(*command, "--truth-fps", "32", "--out", tmp_path / "known")
    assert known.returncode == 0, known.stderr
    said = " ".join(known.stderr.split())
    assert "clip: the generated video runs at 16 fps and the truth at 32; the truth is resampled" in said
    assert (
        "clip: the generated video is a frame folder, of no known frame rate, and the truth runs at 32 "
        "fps; frame t is compared with frame t."
    ) in said
    ours = json.loads((tmp_path / "known" / "scores.json").read_text())["methods"]["ours"]["overall"]
    assert ours["ssim"] == pytest.approx(1.0, abs=1e-12) and ours["psnr"] == metrics.IDENTICAL_PSNR
    assert ours["pose_error"] == 0.0 and ours["body/missing"] == 0.0


def test_the_usage_names_the_videos() -> None:
    done = rdance("eval", "score", "--help")
    assert done.returncode == 0, done.stderr
    usage = next(line for line in done.stdout.splitlines() if "Usage:" in line)
    assert "GENERATED... TRUTH" in usage, usage
