"""DWPose extraction: golden equality, `rdance extract` on real videos, resuming, empty frames."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import (
    GOLDEN,
    assert_user_error,
    golden_dwpose,
    golden_dwpose_names,
    need,
    rdance,
    start_rdance,
    write_video,
)
from onnx_models import gated_detector

from realisdance_cli.extractors.dwpose.solution import DWPose
from realisdance_cli.original import load_dwpose_pkl, to_original_pose
from realisdance_cli.track import Track

DW = GOLDEN / "dwpose"


# Raw network outputs (scores, the detector's box regression) may differ from the golden values by a
# float32 ulp on another processor (golden README, "Portability"); arg-max positions stay exact.
FLOAT32 = {"rtol": 1e-6, "atol": 1e-7}


def assert_pose_equal(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key in ("hands", "faces"):
        assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key]), key
    np.testing.assert_allclose(
        got["hands_score"], want["hands_score"], **FLOAT32, strict=True, err_msg="hands_score"
    )
    for key in ("candidate", "subset"):
        assert np.array_equal(got["bodies"][key], want["bodies"][key]), key
    assert (got["H"], got["W"]) == (want["H"], want["W"])


NAMES = golden_dwpose_names() or [pytest.param("absent", marks=pytest.mark.skip("no golden DWPose cases"))]


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    return {"det": need(DW / "yolox_tiny.onnx"), "pose": need(DW / "dwpose_tiny.onnx")}


@pytest.mark.parametrize("batch", [1, 16])
@pytest.mark.parametrize("name", NAMES)
def test_golden_keypoints_are_exact(models: dict[str, Path], name: str, batch: int) -> None:
    want, boxes = golden_dwpose(name)
    bgr = cv2.imread(str(DW / f"{name}.png"))
    model = DWPose(models["det"], models["pose"], batch=batch, device="cpu")
    (result,) = model([np.ascontiguousarray(bgr[:, :, ::-1])])
    assert result["box"].dtype == np.float64
    np.testing.assert_allclose(result["box"], boxes, **FLOAT32, strict=True)
    height, width = bgr.shape[:2]
    assert_pose_equal(to_original_pose(result["keypoints"], result["scores"], height, width), want)


@pytest.mark.parametrize("name", NAMES)
def test_rdance_extract_on_a_video_of_the_golden_frame(
    models: dict[str, Path], tmp_path: Path, name: str
) -> None:
    rgb = cv2.imread(str(DW / f"{name}.png"))[:, :, ::-1]
    video = write_video(tmp_path / f"{name}.mp4", [rgb] * 3, fps=25)
    done = rdance(
        "extract",
        video,
        "--dwpose-det",
        models["det"],
        "--dwpose-pose",
        models["pose"],
        "--only",
        "dwpose",
        "--chunk",
        "2",
    )
    assert done.returncode == 0, done.stderr
    assert "3 with a person" in done.stdout
    track_dir = tmp_path / f"{name}.rdance"
    assert rdance("track", "export", track_dir, "--out", tmp_path / "out.pkl").returncode == 0
    frames = load_dwpose_pkl(tmp_path / "out.pkl")
    assert len(frames) == 3
    for frame in frames:
        assert_pose_equal(frame, golden_dwpose(name)[0])
    track = Track.open(track_dir)
    assert track.source.fps == 25 and track.state("dwpose").options == {"rgb": False, "max_people": 1}
    assert set(track.state("dwpose").weights) == {"dwpose-det", "dwpose-pose"}


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 frames of the golden person sliding across a 640x360 frame."""
    folder = tmp_path_factory.mktemp("clip")
    person = cv2.resize(cv2.imread(str(need(DW / "person_960x540.png")))[:, :, ::-1], (160, 288))
    frames = []
    for index in range(40):
        canvas = np.full((360, 640, 3), 30, np.uint8)
        canvas[36:324, 20 + 10 * index : 180 + 10 * index] = person
        frames.append(canvas)
    return write_video(folder / "clip.mp4", frames, fps=30, lossless=False)


def stream_arrays(track_dir: Path) -> dict[str, np.ndarray]:
    with np.load(track_dir / "dwpose.npz") as data:
        return {name: data[name] for name in data.files}


def wait_for_progress(track_dir: Path, child: subprocess.Popen, frames: int = 1) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        meta = track_dir / "meta.json"
        if meta.exists():
            state = json.loads(meta.read_text())["streams"].get("dwpose", {})
            if state.get("frames_done", 0) >= frames:
                return
        time.sleep(0.02)
    raise AssertionError("the extraction never recorded a chunk")


def stop_part_way(
    args: list[str | os.PathLike[str]], track_dir: Path, how: signal.Signals
) -> tuple[subprocess.Popen, str]:
    """Runs `rdance ARGS` and sends `how` once the track holds a chunk; the process and its
    stderr. A run that finishes before the signal reaches it (a machine busy with other work
    can let it) is started again, at most three times."""
    for _ in range(3):
        shutil.rmtree(track_dir, ignore_errors=True)
        child = start_rdance(*args)
        try:
            wait_for_progress(track_dir, child, frames=4)
        except AssertionError:
            if child.wait(timeout=60) != 0:
                raise  # it failed: not a race
        if child.poll() is None:
            child.send_signal(how)
        _, stderr = child.communicate(timeout=60)
        if child.returncode != 0:
            return child, stderr
    raise AssertionError("the extraction finished before the signal three times")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_a_stopped_extraction_resumes_to_the_same_arrays(
    models: dict[str, Path], moving_clip: Path, tmp_path: Path, how: signal.Signals
) -> None:
    common = [
        "--dwpose-det",
        models["det"],
        "--dwpose-pose",
        models["pose"],
        "--only",
        "dwpose",
        "--chunk",
        "4",
    ]
    whole = rdance("extract", moving_clip, "--out", tmp_path / "whole.rdance", *common)
    assert whole.returncode == 0, whole.stderr

    stopped = tmp_path / "stopped.rdance"
    child, stderr = stop_part_way(["extract", moving_clip, "--out", stopped, *common], stopped, how)
    if how != signal.SIGKILL:  # Ctrl-C, or a scheduler's stop (it ended silently): one sentence
        assert child.returncode == 128 + how and "Traceback" not in stderr, stderr
        assert "interrupted; finished parts are kept; run the same command again to resume" in " ".join(
            stderr.split()
        )
    state = Track.open(stopped).state("dwpose")
    assert 4 <= state.frames_done < 40 and not state.complete

    resumed = rdance("extract", moving_clip, "--out", stopped, *common)
    assert resumed.returncode == 0, resumed.stderr
    want, got = stream_arrays(tmp_path / "whole.rdance"), stream_arrays(stopped)
    assert set(got) == set(want)
    for name in want:
        assert got[name].dtype == want[name].dtype and np.array_equal(got[name], want[name]), name
    assert not (stopped / "dwpose.parts").exists()


def test_frames_with_nobody_stay_empty(models: dict[str, Path], tmp_path: Path) -> None:
    detector = gated_detector(tmp_path / "det.onnx", [(320, 240, 160, 320)])
    bright = np.full((240, 320, 3), 255, np.uint8)
    black = np.zeros((240, 320, 3), np.uint8)
    frames = [bright, black, bright, bright, black, black]
    video = write_video(tmp_path / "gaps.mp4", frames, fps=24)
    done = rdance(
        "extract", video, "--dwpose-det", detector, "--dwpose-pose", models["pose"], "--only", "dwpose"
    )
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "3 with a person" in out and "3 with nobody: 1, 4, 5" in out
    stream = Track.open(tmp_path / "gaps.rdance").load("dwpose")
    assert stream.items_per_frame().tolist() == [1, 0, 1, 1, 0, 0]
    # The letterbox halves this 320x240 frame: the box comes back in frame pixels.
    assert np.allclose(stream.frame(0)["box"], [[120, 40, 200, 200]], atol=1e-3)
    info = rdance("track", "info", tmp_path / "gaps.rdance")
    assert "3: 1, 4, 5" in " ".join(info.stdout.split())


@pytest.mark.parametrize("size", [(2, 3000), (3000, 2)])
def test_a_sliver_of_a_picture_is_extracted(models: dict[str, Path], tmp_path: Path, size) -> None:
    """The detector's letterbox shrank its short side to 0 pixels: an OpenCV traceback (also from
    `rdance retarget`, which extracts its reference picture)."""
    picture = tmp_path / "sliver.png"
    cv2.imwrite(str(picture), np.full((*size, 3), 128, np.uint8))
    done = rdance(
        "extract", picture, "--dwpose-det", models["det"], "--dwpose-pose", models["pose"], "--only", "dwpose"
    )
    assert done.returncode == 0, done.stderr
    track = Track.open(tmp_path / "sliver.rdance")
    assert track.has("dwpose") and (track.source.height, track.source.width) == size


def test_max_people_keeps_the_largest_first(models: dict[str, Path], tmp_path: Path) -> None:
    detector = gated_detector(
        tmp_path / "det.onnx", [(100, 200, 60, 120), (400, 240, 200, 400), (560, 300, 80, 160)]
    )
    video = write_video(tmp_path / "crowd.mp4", [np.full((480, 640, 3), 255, np.uint8)] * 2)
    common = ["--dwpose-det", detector, "--dwpose-pose", models["pose"], "--only", "dwpose"]
    assert rdance("extract", video, *common).returncode == 0
    one = Track.open(tmp_path / "crowd.rdance").load("dwpose")
    assert one.items_per_frame().tolist() == [1, 1]
    assert np.allclose(one.frame(0)["box"], [[300, 40, 500, 440]], atol=1e-3)
    done = rdance("extract", video, *common, "--max-people", "2")  # other options: starts over
    assert done.returncode == 0, done.stderr
    two = Track.open(tmp_path / "crowd.rdance").load("dwpose")
    assert two.items_per_frame().tolist() == [2, 2]
    assert np.allclose(two.frame(1)["box"], [[300, 40, 500, 440], [520, 220, 600, 380]], atol=1e-3)


def test_rgb_option_changes_the_input_and_is_recorded(models: dict[str, Path], tmp_path: Path) -> None:
    rgb = cv2.imread(str(need(DW / "person_960x540.png")))[:, :, ::-1]
    video = write_video(tmp_path / "p.mp4", [rgb], fps=1)
    common = ["--dwpose-det", models["det"], "--dwpose-pose", models["pose"], "--only", "dwpose"]
    assert rdance("extract", video, *common, "--out", tmp_path / "bgr.rdance").returncode == 0
    assert rdance("extract", video, *common, "--rgb", "--out", tmp_path / "rgb.rdance").returncode == 0
    bgr_track, rgb_track = Track.open(tmp_path / "bgr.rdance"), Track.open(tmp_path / "rgb.rdance")
    assert rgb_track.state("dwpose").options["rgb"] is True
    assert not np.array_equal(
        bgr_track.load("dwpose").fields["keypoints"], rgb_track.load("dwpose").fields["keypoints"]
    )
    model = DWPose(models["det"], models["pose"], rgb=True, device="cpu")
    (result,) = model([rgb])
    assert np.array_equal(rgb_track.load("dwpose").fields["keypoints"], result["keypoints"])


def test_image_folder_and_single_image(models: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"{index:04d}.png"), cv2.imread(str(need(DW / "person_960x540.png"))))
    common = ["--dwpose-det", models["det"], "--dwpose-pose", models["pose"], "--only", "dwpose"]
    done = rdance("extract", folder, *common, "--fps", "12")
    assert done.returncode == 0, done.stderr
    track = Track.open(tmp_path / "frames.rdance")
    assert track.source.frame_count == 3 and track.source.fps == 12
    done = rdance("extract", folder / "0001.png", *common)
    assert done.returncode == 0, done.stderr
    single = Track.open(tmp_path / "frames" / "0001.rdance").load("dwpose")
    assert np.array_equal(single.fields["keypoints"][0], track.load("dwpose").fields["keypoints"][1])


@pytest.mark.slow
def test_bad_inputs_are_one_clear_sentence(models: dict[str, Path], tmp_path: Path) -> None:
    common = ["--dwpose-det", models["det"], "--dwpose-pose", models["pose"], "--only", "dwpose"]
    assert_user_error(rdance("extract", tmp_path / "missing.mp4", *common), "does not exist")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(5000))
    assert_user_error(rdance("extract", corrupt, *common), "corrupt.mp4")
    video = write_video(tmp_path / "ok.mp4", [np.zeros((64, 64, 3), np.uint8)])
    broken_model = tmp_path / "broken.onnx"
    broken_model.write_bytes(b"not onnx")
    assert_user_error(
        rdance(
            "extract",
            video,
            "--dwpose-det",
            broken_model,
            "--dwpose-pose",
            models["pose"],
            "--only",
            "dwpose",
        ),
        "not a usable ONNX",
    )
    missing = rdance("extract", video, "--weights", tmp_path / "no-weights")
    assert_user_error(missing, "yolox_l.onnx", "rdance weights download dwpose")
    assert_user_error(rdance("extract", video, *common, "--only", "openpose"), "openpose")
    assert_user_error(rdance("extract", video, "--stride", "0", *common), "--stride")
    assert not (tmp_path / "ok.rdance" / "dwpose.npz").exists()


def test_a_track_of_another_video_is_not_mixed_in(models: dict[str, Path], tmp_path: Path) -> None:
    common = ["--dwpose-det", models["det"], "--dwpose-pose", models["pose"], "--only", "dwpose"]
    first = write_video(tmp_path / "a.mp4", [np.zeros((64, 64, 3), np.uint8)] * 2)
    second = write_video(tmp_path / "b.mp4", [np.full((64, 64, 3), 9, np.uint8)] * 3)
    assert rdance("extract", first, *common, "--out", tmp_path / "t.rdance").returncode == 0
    assert_user_error(rdance("extract", second, *common, "--out", tmp_path / "t.rdance"), "--force")
    assert rdance("extract", second, *common, "--out", tmp_path / "t.rdance", "--force").returncode == 0
    assert Track.open(tmp_path / "t.rdance").source.frame_count == 3


def original_person_boxes(boxes: np.ndarray, scores: np.ndarray, count: int) -> np.ndarray:
    """The original's steps as written: full greedy NMS over every box, keep order, then the
    largest boxes (argmax takes the first of equal areas, so ties go to the better score)."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        best = order[0]
        keep.append(best)
        xx1, yy1 = np.maximum(x1[best], x1[order[1:]]), np.maximum(y1[best], y1[order[1:]])
        xx2, yy2 = np.minimum(x2[best], x2[order[1:]]), np.minimum(y2[best], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        overlap = inter / (areas[best] + areas[order[1:]] - inter)
        order = order[np.where(overlap <= 0.45)[0] + 1]
    kept = boxes[keep].astype(np.float64)
    sizes = (kept[:, 2] - kept[:, 0]) * (kept[:, 3] - kept[:, 1])
    return kept[np.argsort(-sizes, kind="stable")[:count]]


@pytest.mark.parametrize("seed", range(12))
def test_lazy_nms_picks_what_the_full_greedy_pass_picks(seed: int) -> None:
    from realisdance_cli.extractors.dwpose.yolox import largest_kept

    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 600))
    centres = rng.uniform(0, 300, (count, 2))
    sizes = rng.uniform(5, 120, (count, 2))
    if seed % 3 == 0:
        sizes[: count // 2] = sizes[0]  # many equal areas
    boxes = np.hstack([centres - sizes / 2, centres + sizes / 2]).astype(np.float32)
    scores = rng.uniform(0.31, 1.0, count).astype(np.float32)
    if seed % 2 == 0:
        scores = np.round(scores, 1)  # many tied scores
    for wanted in (1, 3, count):
        got = largest_kept(boxes, scores, wanted)
        assert got.dtype == np.float64
        assert np.array_equal(got, original_person_boxes(boxes, scores, wanted))
