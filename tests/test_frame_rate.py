"""Frames resampled to a target rate by the original RealisDance-DiT's rule: its golden cases, and
real H.264 files and image folders delivering exactly those frames, repeats included."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import GOLDEN, need

from realisdance_cli.errors import UserError
from realisdance_cli.video import FrameSource, Selection, as_fraction, resampled_indices
from realisdance_cli.video_writer import VideoWriter

TARGET = Fraction(16)  # the original's default rate


def original_rule(length: int, ori_fps: float, fps: float, num_frames: int, start_index: int) -> list[int]:
    """The original's three lines (inference.py `load_video`), as they are written there."""
    normed_video_length = max(round(length / ori_fps * fps), num_frames)
    batch_index_all = np.linspace(0, length - 1, normed_video_length).round().astype(int).tolist()
    return batch_index_all[start_index : start_index + num_frames]


def test_every_golden_case_is_exact() -> None:
    cases = json.loads(need(GOLDEN / "dit" / "frame_index.json").read_text())
    assert cases
    for case in cases:
        length, fps, count, start = case["length"], case["fps"], case["num_frames"], case["start_index"]
        assert resampled_indices(length, fps, TARGET, count, start) == case["indices"], case
        # As FrameSource does it: the source rate as an exact fraction (29.97 is 30000/1001).
        selection = Selection(start=start, max_frames=count, fps=TARGET)
        assert list(selection.indices(length, as_fraction(fps))) == case["indices"], case
        assert selection.count(length, as_fraction(fps)) == len(case["indices"])


def painted_video(path: Path, count: int, fps: Fraction | int) -> Path:
    """A lossless H.264 file whose frame k is painted with value k: a frame names its source."""
    with VideoWriter(path, fps, lossless=True) as writer:
        for k in range(count):
            writer.write(np.full((32, 48, 3), k, np.uint8))
    return path


def sources(frames: FrameSource) -> list[int]:
    return [int(frame[0, 0, 0]) for frame in frames]


@pytest.mark.parametrize(
    ("count", "fps", "selection"),
    [
        (90, 60, Selection(start=3, max_frames=10, fps=TARGET)),  # fewer frames: every 3rd or 4th
        (45, Fraction(30000, 1001), Selection(fps=TARGET)),  # max_frames None: all resampled frames
        (20, 24, Selection(max_frames=33, fps=TARGET)),  # shorter than asked: frames repeat
        (20, 24, Selection(start=30, max_frames=33, fps=TARGET)),  # start counts resampled frames
    ],
)
def test_a_video_delivers_exactly_the_original_frames(
    tmp_path: Path, count: int, fps: Fraction | int, selection: Selection
) -> None:
    source = FrameSource(painted_video(tmp_path / "clip.mp4", count, fps), selection)
    expected = original_rule(count, float(fps), 16, selection.max_frames or 0, selection.start)
    if selection.max_frames is None:  # the original always asks for a count; here: all of them
        expected = original_rule(count, float(fps), 16, round(count / float(fps) * 16), selection.start)
    stretched = selection.max_frames and selection.max_frames > round(count / float(fps) * 16)
    # Frames stretched over more than the clip has at 16 fps play faster, so they last as long.
    lasting = Fraction(selection.max_frames or 0) * Fraction(fps) / count  # as long as the clip
    assert source.info.fps == (lasting if stretched else TARGET)
    assert source.info.frame_count == len(source) == len(expected)
    frames = list(source)
    assert sources(frames) == expected
    repeats = [i for i in range(1, len(expected)) if expected[i] == expected[i - 1]]
    assert bool(repeats) == (count == 20)
    assert not any(np.shares_memory(frames[i], frames[i - 1]) for i in repeats)


def test_an_image_folder_repeats_frames_too(tmp_path: Path) -> None:
    for k in range(10):
        cv2.imwrite(str(tmp_path / f"f{k}.png"), np.full((8, 8, 3), k, np.uint8))
    source = FrameSource(tmp_path, Selection(max_frames=12, fps=TARGET), image_fps=Fraction(24))
    # 10 pictures at 24 per second (7 at 16) stretched over 12 play at 12 / (10 / 24) = 28.8 per second.
    assert (source.info.fps, source.info.frame_count, source.info.source_fps) == (Fraction(144, 5), 12, 24)
    assert sources(source) == original_rule(10, 24.0, 16, 12, 0) == [0, 1, 2, 2, 3, 4, 5, 6, 7, 7, 8, 9]


def test_start_past_the_resampled_frames_is_refused(tmp_path: Path) -> None:
    path = painted_video(tmp_path / "clip.mp4", 20, 24)  # 13 frames at 16 per second
    with pytest.raises(UserError, match="past the last frame"):
        FrameSource(path, Selection(start=13, fps=TARGET))


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: Selection(fps=Fraction(0)), "--fps must be more than 0, got 0."),
        (lambda: Selection(fps=Fraction(-16)), "--fps must be more than 0, got -16."),
        (lambda: Selection(stride=2, fps=TARGET), "--stride must stay 1, got 2."),
    ],
)
def test_bad_rates_are_one_sentence(make, fragment: str) -> None:
    with pytest.raises(UserError) as caught:
        make()
    message = str(caught.value)
    assert message.endswith(fragment) and message.count(". ") == 0
