"""The top-level functions as Python users call them: paths as strings or `Path`s alike, and a
track that says what it holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import numbered_frames, write_video

from realisdance_cli import (
    AnimateOptions,
    EvalOptions,
    RenderOptions,
    RunOptions,
    Track,
    UserError,
    animate,
    evaluate,
    render_poses,
    run_benchmark,
)
from realisdance_cli.original import import_dwpose_pkl, save_dwpose_pkl
from realisdance_cli.synthetic import dancer_pkl_frames


def test_evaluate_takes_paths_as_strings_and_one_set_alone(tmp_path: Path) -> None:
    """The README's call, `evaluate(["ours/"], "truth/", ...)`, failed on `str.resolve`."""
    frames = numbered_frames(3)
    write_video(tmp_path / "truth" / "a.mp4", frames)
    write_video(tmp_path / "ours" / "a.mp4", frames)
    options = EvalOptions(metrics=["ssim", "psnr"])
    as_text = evaluate([f"{tmp_path}/ours/"], f"{tmp_path}/truth/", f"{tmp_path}/eval", options)
    alone = evaluate(tmp_path / "ours", tmp_path / "truth", tmp_path / "eval", options)
    assert as_text["methods"] == alone["methods"]
    assert (tmp_path / "eval" / "scores.json").is_file()


def test_animate_and_run_benchmark_take_paths_as_strings(tmp_path: Path) -> None:
    """A pose folder as text stands for `PoseInputs(folder=...)`; both say what is missing in
    one sentence (they failed on `str.sources` and `str.name`)."""
    with pytest.raises(UserError, match=r"ref\.png does not exist"):
        animate(str(tmp_path / "ref.png"), str(tmp_path / "poses"), str(tmp_path / "x.mp4"), AnimateOptions())
    with pytest.raises(UserError, match="missing"):
        run_benchmark(str(tmp_path / "missing"), None, RunOptions())


def test_a_track_opens_from_text_says_what_it_holds_and_stands_for_its_path(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(4, 64, 48))
    import_dwpose_pkl(tmp_path / "dance.pkl", tmp_path / "dance.rdance", fps=12)
    track = Track.open(str(tmp_path / "dance.rdance"))
    assert repr(track) == (
        f"Track({str(tmp_path / 'dance.rdance')!r}, 4 frames of 64x48 (height x width) at 12 fps; "
        "streams: dwpose finished)"
    )
    assert repr(track.load("dwpose")) == (
        "Stream('dwpose', 4 frames, 4 items: keypoints (4, 134, 2) float64, scores (4, 134) float64, "
        "box (4, 4) float64)"
    )
    assert os.fspath(track) == str(tmp_path / "dance.rdance")
    videos = render_poses(track, tmp_path / "videos", RenderOptions())
    assert [path.name for path in videos] == ["dwpose.mp4"]
