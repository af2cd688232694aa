"""Chaos: `extract`, `render-poses`, `track import` and `train` killed at random points (SIGKILL,
SIGINT, SIGTERM), several times each, then run again to the end: the result equals an
uninterrupted run's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import rdance, start_rdance
from test_dwpose import models, moving_clip, stream_arrays
from test_nothing_lost import _dwpose_args, _train_args

from realisdance_cli.original import save_dwpose_pkl
from realisdance_cli.synthetic import dancer_pkl_frames
from realisdance_cli.track import Track
from realisdance_cli.video import FrameSource

__all__ = ["models", "moving_clip"]  # fixtures shared with the DWPose tests

pytestmark = pytest.mark.slow
SIGNALS = (signal.SIGKILL, signal.SIGINT, signal.SIGKILL)


def holds_lock(folder: Path, pid: int) -> bool:
    """Whether process `pid` holds `folder`'s lock (so it has started its work there)."""
    try:
        return (folder / ".lock").read_text() == str(pid)
    except OSError:
        return False


def interrupt(
    folder: Path,
    args: Sequence[str | os.PathLike[str]],
    how: signal.Signals,
    ready: Callable[[], bool],
    delay: float,
) -> subprocess.CompletedProcess:
    """Runs `rdance ARGS`, and once it holds the lock of `folder` and `ready()` holds, waits
    `delay` seconds and sends `how` (unless the run has finished by then)."""
    child = start_rdance(*args)
    deadline = time.monotonic() + 300
    while child.poll() is None and not (holds_lock(folder, child.pid) and ready()):
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.01)
    time.sleep(delay)
    if child.poll() is None:
        child.send_signal(how)
    stdout, stderr = child.communicate(timeout=300)
    assert "Traceback" not in stderr, stderr
    if how == signal.SIGINT and child.returncode == 130:
        assert stderr.strip().splitlines()[-1].startswith("interrupted"), stderr
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


def _frames_done(track: Path) -> int:
    try:
        return json.loads((track / "meta.json").read_text())["streams"]["dwpose"]["frames_done"]
    except (OSError, ValueError, KeyError):
        return 0


def test_extraction_killed_again_and_again_resumes_to_the_same_arrays(
    models: dict[str, Path], moving_clip: Path, tmp_path: Path
) -> None:
    common = [*_dwpose_args(models), "--chunk", "4"]
    assert rdance("extract", moving_clip, "--out", tmp_path / "whole.rdance", *common).returncode == 0
    rng = np.random.default_rng(13)
    track = tmp_path / "stopped.rdance"
    for how in SIGNALS:
        target = _frames_done(track) + int(rng.integers(1, 8))  # of 40 frames, about 60 a second
        delay = float(rng.uniform(0, 0.05))
        stopped = interrupt(
            track,
            ["extract", moving_clip, "--out", track, *common],
            how,
            lambda target=target: _frames_done(track) >= target,
            delay,
        )
        assert stopped.returncode in (-signal.SIGKILL, 130), stopped.stderr  # stopped, not finished
        if how == signal.SIGINT:
            assert "run the same command again to resume" in " ".join(stopped.stderr.split())
    done = rdance("extract", moving_clip, "--out", track, *common)
    assert done.returncode == 0, done.stderr
    want, got = stream_arrays(tmp_path / "whole.rdance"), stream_arrays(track)
    assert set(got) == set(want) and all(np.array_equal(got[k], want[k]) for k in want)
    assert not (track / "dwpose.parts").exists() and not list(track.glob(".*partial*"))


def test_render_poses_killed_again_and_again_writes_the_same_video(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(200, 384, 288))
    args = ["render-poses", tmp_path / "dance.pkl", "--fps", "24", "--lossless", "--face"]
    assert rdance(*args, "--out", tmp_path / "whole").returncode == 0
    rng = np.random.default_rng(7)
    out = tmp_path / "stopped"
    for how in SIGNALS:
        stopped = interrupt(out, [*args, "--out", out], how, lambda: True, float(rng.uniform(0, 0.2)))
        assert stopped.returncode in (-signal.SIGKILL, 130), stopped.stderr  # stopped, not finished
        if how == signal.SIGINT:
            said = " ".join(stopped.stderr.split())
            assert "no output was left half-written" in said and "resume" not in said
        assert not (out / "dwpose.mp4").exists()  # whole, or not at all
    done = rdance(*args, "--out", out)
    assert done.returncode == 0, done.stderr
    for want, got in zip(
        FrameSource(tmp_path / "whole" / "dwpose.mp4"), FrameSource(out / "dwpose.mp4"), strict=True
    ):
        assert np.array_equal(want, got)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "dwpose.mp4"]  # no temporary left


def test_track_import_stopped_again_and_again_imports_the_same_track(tmp_path: Path) -> None:
    """Stopped while it writes the track, an import left one the same command refused ("already
    exists; pass --force"); it now replaces what a stopped import of the same file left."""
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(1000, 64, 48))
    args = ["track", "import", tmp_path / "dance.pkl", "--fps", "24"]
    whole = tmp_path / "whole.rdance"
    assert rdance(*args, "--out", whole).returncode == 0
    rng = np.random.default_rng(5)
    out = tmp_path / "stopped.rdance"
    for how in (signal.SIGKILL, signal.SIGINT, signal.SIGTERM):
        delay = float(rng.uniform(0, 0.2))
        stopped = interrupt(out, [*args, "--out", out], how, (out / "meta.json").exists, delay)
        assert stopped.returncode in (-signal.SIGKILL, 130, 143), stopped.stderr  # stopped, not finished
    done = rdance(*args, "--out", out)
    assert done.returncode == 0, done.stderr
    assert Track.open(out).load("dwpose").equals(Track.open(whole).load("dwpose"))
    assert (out / "meta.json").read_text() == (whole / "meta.json").read_text()
    assert sorted(p.name for p in out.iterdir()) == [".lock", "dwpose.npz", "meta.json"]


def _saved_step(run: Path) -> int:
    for name in ("state", "state.old"):
        try:
            return json.loads((run / name / "step.json").read_text())["step"]
        except (OSError, ValueError):
            continue
    return 0


def test_training_killed_again_and_again_ends_with_the_same_weights_and_loss(tmp_path: Path) -> None:
    """Stage 2, 5 steps with a checkpoint after each: stopped after random checkpoints (SIGKILL
    while it may be writing the next, SIGINT), the same command resumes it to the same end."""
    from safetensors.torch import load_file

    args = _train_args(tmp_path, steps=5)
    whole = rdance(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    run = tmp_path / "stopped"
    rng = np.random.default_rng(3)
    for how in SIGNALS[:2]:
        target = _saved_step(run) + 1
        stopped = interrupt(
            run,
            [*args, "--out", run],
            how,
            lambda target=target: _saved_step(run) >= target,
            float(rng.uniform(0, 0.2)),
        )
        assert stopped.returncode in (-signal.SIGKILL, 130), stopped.stderr  # stopped, not finished
        if how == signal.SIGINT:
            assert "run the same command again to resume" in " ".join(stopped.stderr.split())
    done = rdance(*args, "--out", run)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("last loss ")[1][:6] == whole.stdout.split("last loss ")[1][:6]
    want, got = load_file(tmp_path / "whole" / "stage2.safetensors"), load_file(run / "stage2.safetensors")
    assert want.keys() == got.keys() and all(np.array_equal(want[k].numpy(), got[k].numpy()) for k in want)
