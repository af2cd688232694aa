"""Nothing is lost or mixed: locked tracks, resumable merges, full disks and read-only folders."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_user_error, rdance, start_rdance
from hub_server import HubServer
from test_dwpose import models, moving_clip, stream_arrays, wait_for_progress

from realisdance_cli.files import FILE_MODE
from realisdance_cli.original import save_dwpose_pkl
from realisdance_cli.synthetic import dancer_pkl_frames
from realisdance_cli.track import Stream, Track

__all__ = ["models", "moving_clip"]  # fixtures shared with the DWPose tests


def _dwpose_args(models: dict[str, Path]) -> list[str | Path]:
    return ["--dwpose-det", models["det"], "--dwpose-pose", models["pose"], "--only", "dwpose"]


def _can_mount() -> bool:
    try:
        done = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


needs_mount = pytest.mark.skipif(
    not shutil.which("unshare") or not _can_mount(),
    reason="needs `unshare -rm` (a private mount namespace) to make a small or read-only disk",
)


def rdance_on(folder: Path, mount: str, *args: str | os.PathLike[str]) -> subprocess.CompletedProcess:
    """`rdance ARGS` in a private mount namespace where `folder` is `mount`: "full" (a 16 KiB
    tmpfs) or "read-only" (the folder itself, remounted read-only)."""
    setup = {
        "full": 'mount -t tmpfs -o size=16k tmpfs "$0"',
        "read-only": 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0"',
    }[mount]
    command = [
        "unshare", "-rm", "sh", "-c", f'{setup} && shift && exec "$@"', str(folder), "--",
        sys.executable, "-m", "realisdance_cli", *map(str, args),
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


@pytest.mark.slow
def test_a_second_extraction_of_one_track_is_refused_while_the_first_runs(
    models: dict[str, Path], moving_clip: Path, tmp_path: Path
) -> None:
    common = [*_dwpose_args(models), "--chunk", "4"]
    alone = rdance("extract", moving_clip, "--out", tmp_path / "alone.rdance", *common)
    assert alone.returncode == 0, alone.stderr

    shared = tmp_path / "shared.rdance"
    first = start_rdance("extract", moving_clip, "--out", shared, *common)
    wait_for_progress(shared, first, frames=4)
    first.send_signal(signal.SIGSTOP)  # the first run is certainly still holding the track
    try:
        second = rdance("extract", moving_clip, "--out", shared, *common)
        again_forced = rdance("extract", moving_clip, "--out", shared, *common, "--force")
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert_user_error(second, f"the pose track {shared} is in use by another process (process {first.pid})")
    assert_user_error(again_forced, "in use by another process")
    want, got = stream_arrays(tmp_path / "alone.rdance"), stream_arrays(shared)
    assert set(got) == set(want) and all(np.array_equal(got[k], want[k]) for k in want)
    assert (
        Track.open(shared).state("dwpose").options
        == Track.open(tmp_path / "alone.rdance").state("dwpose").options
    )


@pytest.mark.slow
def test_a_stream_saved_in_chunks_but_not_merged_resumes(
    models: dict[str, Path], moving_clip: Path, tmp_path: Path
) -> None:
    """Killed (or out of disk) right before the merge: every chunk is saved, the merge is left."""
    whole = tmp_path / "whole.rdance"
    assert rdance("extract", moving_clip, "--out", whole, *_dwpose_args(models)).returncode == 0
    stopped = tmp_path / "stopped.rdance"
    shutil.copytree(whole, stopped)
    track = Track.open(stopped)
    stream, state = track.load("dwpose"), track.state("dwpose")
    track.discard("dwpose")
    track.begin("dwpose", weights=state.weights, options=state.options)
    for start in range(0, stream.frame_count, 32):  # the chunks as the extraction saved them
        frames = range(start, min(start + 32, stream.frame_count))
        track.append("dwpose", Stream.from_frames("dwpose", [stream.frame(i) for i in frames]))
    assert not Track.open(stopped).has("dwpose")

    resumed = rdance("extract", moving_clip, "--out", stopped, *_dwpose_args(models))
    assert resumed.returncode == 0, resumed.stderr
    want, got = stream_arrays(whole), stream_arrays(stopped)
    assert all(np.array_equal(got[k], want[k]) for k in want)
    assert not (stopped / "dwpose.parts").exists()


def test_an_early_failure_leaves_no_track_behind(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not a video at all")
    assert_user_error(rdance("extract", video, "--only", "dwpose"), str(video))
    assert_user_error(rdance("extract", tmp_path, "--only", "dwpose"))  # a folder without images
    assert_user_error(rdance("extract", video, "--dtype", "fp8"), "--dtype")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@needs_mount
def test_a_full_disk_is_one_sentence_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(48, 512, 384))
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "poses"
    done = rdance_on(
        disk, "full", "render-poses", tmp_path / "dance.pkl", "--fps", "24", "--out", out, "--lossless"
    )
    assert_user_error(done, f"cannot write {out / 'dwpose.mp4'}: the disk is full", "elsewhere (--out)")
    assert not any(disk.rglob("*.mp4"))  # neither a video nor a temporary one

    done = rdance_on(disk, "full", "track", "import", tmp_path / "dance.pkl", "--out", disk / "d.rdance")
    assert done.returncode in (0, 2) and "Traceback" not in done.stderr, done.stderr


@needs_mount
def test_a_read_only_folder_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(4, 64, 48))
    locked = tmp_path / "locked"
    locked.mkdir()
    done = rdance_on(
        locked, "read-only", "render-poses", tmp_path / "dance.pkl", "--fps", "24", "--out", locked
    )
    assert_user_error(done, "read-only file system", "write elsewhere (--out)")
    done = rdance_on(
        locked, "read-only", "track", "import", tmp_path / "dance.pkl", "--out", locked / "d.rdance"
    )
    assert_user_error(done, "read-only file system")
    with HubServer({("yzd-v/DWPose", "main"): {"yolox_l.onnx": b"some bytes"}}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        done = rdance_on(locked, "read-only", "weights", "download", "dwpose-det", "--weights", locked)
    assert_user_error(done, "read-only file system; write elsewhere (--weights)")  # not "run again"
    assert hub.requests  # the hub was asked: it is the write that failed
    assert not any(locked.iterdir())


def test_an_odd_video_size_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(3, 64, 48))
    done = rdance("render-poses", tmp_path / "dance.pkl", "--fps", "24", "--size", "64x47")
    assert_user_error(done, "even", "got 64x47")
    assert not (tmp_path / "dance_poses").exists()


def _train_args(tmp_path: Path, steps: int = 2) -> list[str | Path]:
    from test_training import CASE, _tiny_run_inputs

    root, manifest, motion = _tiny_run_inputs(tmp_path)
    return [
        "train", manifest, "--stage", "2", "--stage1", CASE / "realisdance_tiny.ckpt", "--motion", motion,
        "--steps", str(steps), "--frames", "4", "--frame-stride", "2", "--size", "64x48", "--lr", "1e-3",
        "--weights", root, "--checkpoint-every", "1", "--validate-every", "0", "--log-with", "none",
    ]  # fmt: skip


@pytest.mark.slow
def test_training_is_reproducible_and_a_run_folder_is_never_overwritten(tmp_path: Path) -> None:
    """Stage 2 twice with one seed: the same weights bit for bit. Run again, the same command
    finds the run finished; other settings stop with one sentence and leave the run as it was."""
    from safetensors.torch import load_file

    args = _train_args(tmp_path)
    for left in ("logs/events.out.tfevents.old", "state.partial/random_states_0.pkl"):  # stopped early
        (tmp_path / "b" / left).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "b" / left).write_text("from a run stopped before its first checkpoint")
    first, second = (rdance(*args, "--out", tmp_path / name) for name in ("a", "b"))
    assert not (tmp_path / "b" / "logs").exists() and not (tmp_path / "b" / "state.partial").exists()
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    weights = [load_file(tmp_path / name / "stage2.safetensors") for name in ("a", "b")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    for name in ("stage2.safetensors", "stage2.ckpt"):  # like every other output, whoever wrote it
        assert (tmp_path / "a" / name).stat().st_mode & 0o777 == FILE_MODE

    def contents() -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in (tmp_path / "a").rglob("*") if p.is_file() and p.name != ".lock"}

    saved = contents()
    again = rdance(*args, "--out", tmp_path / "a")
    assert again.returncode == 0 and "already holds all 2 steps" in again.stdout, again.stderr
    more = [*args[: args.index("--steps") + 1], "3", *args[args.index("--steps") + 2 :]]
    assert_user_error(
        rdance(*more, "--out", tmp_path / "a"), "holds a run saved at step 2 with other settings (steps)",
        "--resume", "--force",
    )  # fmt: skip
    assert contents() == saved
    assert_user_error(rdance(*args, "--out", tmp_path / "c", "--resume"), "holds no saved state to resume")
    assert_user_error(rdance(*args, "--out", tmp_path / "a", "--resume", "--force"), "contradict")


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    """`atomic_folder` (what `weights convert` writes a pipeline folder with): a failed writer
    leaves the old folder as it was and no temporary beside it; a finished one replaces it."""
    from realisdance_cli.files import atomic_folder

    target = tmp_path / "pipeline"
    with atomic_folder(target) as partial:
        (partial / "model_index.json").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target) as partial:
        (partial / "model_index.json").write_text("new, half written")
        raise RuntimeError("stopped")
    assert (target / "model_index.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["pipeline"]
    with atomic_folder(target) as partial:
        (partial / "model_index.json").write_text("new")
    assert (target / "model_index.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["pipeline"]


WRITER = """
import os, sys, time
from pathlib import Path
from realisdance_cli.files import AtomicFile, atomic_folder

target, kind = Path(sys.argv[1]), sys.argv[2]
if kind == "file":
    writing = AtomicFile(target)
    writing.path.write_bytes(b"half")
    print(writing.path, flush=True)
else:
    with atomic_folder(target) as partial:
        (partial / "weights.bin").write_bytes(b"half")
        print(partial, flush=True)
        time.sleep(600)
time.sleep(600)
"""


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_killed_writers_temporary_is_swept_and_a_living_ones_kept(tmp_path: Path, kind: str) -> None:
    """Temporaries beside an output (a stopped `animate`'s video, a stopped `weights convert`'s
    pipeline folder) are removed by the next write of that output, unless their writer still lives."""
    from realisdance_cli.files import atomic_folder, atomic_write_bytes

    target = tmp_path / "out.mp4"

    def start() -> tuple[subprocess.Popen, Path]:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), kind], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        return writer, Path(writer.stdout.readline().strip())

    def write() -> None:
        if kind == "file":
            atomic_write_bytes(target, b"whole")
        else:
            with atomic_folder(target) as partial:
                (partial / "weights.bin").write_bytes(b"whole")

    living, living_partial = start()
    killed, killed_partial = start()
    try:
        killed.kill()
        killed.wait()
        assert killed_partial.exists()
        write()
        assert not killed_partial.exists()
        assert living_partial.exists()  # still being written
        write()
        assert living_partial.exists()
    finally:
        living.kill()
        living.wait()
    write()
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["out.mp4"]
    whole = target.read_bytes() if kind == "file" else (target / "weights.bin").read_bytes()
    assert whole == b"whole"


CLAIMER = """
import sys, time
from pathlib import Path
from realisdance_cli.files import claimed_output

with claimed_output(Path(sys.argv[1])):
    print("claimed", flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize("name", ["dance.mp4", "take[1]*.mp4"])  # the second: no glob pattern
def test_an_output_claimed_by_a_living_process_is_refused_and_a_killed_ones_is_not(
    tmp_path: Path, name: str
) -> None:
    """What `animate` holds from before its hours of denoising to the video's writing."""
    from realisdance_cli.errors import UserError
    from realisdance_cli.files import claimed_output, folder_lock

    target = Path(os.path.relpath(tmp_path / name))  # as the default output is: relative
    claimer = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, str(target)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert claimer.stdout is not None and claimer.stdout.readline().strip() == "claimed"
        with folder_lock(tmp_path, "the folder"):  # its sweep leaves a living writer's claim
            pass
        with pytest.raises(UserError, match="is being written by another process"), claimed_output(target):
            pass
    finally:
        claimer.kill()
        claimer.wait()
    with claimed_output(target):  # the killed one's claim is no obstacle
        target.write_bytes(b"video")
    with pytest.raises(UserError, match="already exists; pass --force to replace it"), claimed_output(target):
        pass
    with claimed_output(target, force=True):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", name]  # the lock file stays


HOLDER = """
import sys, time
from pathlib import Path
from realisdance_cli.track import Track

with Track.lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_an_import_never_replaces_a_track_another_process_writes(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(4, 64, 48))
    out = tmp_path / "dance.rdance"
    assert rdance("track", "import", tmp_path / "dance.pkl", "--out", out).returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = rdance("track", "import", tmp_path / "dance.pkl", "--out", out, "--force")
        assert_user_error(done, "the pose track", "is in use by another process")
    finally:
        holder.kill()
        holder.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"} == {
        name: data for name, data in before.items() if name != ".lock"
    }


@pytest.mark.slow
def test_an_import_of_a_living_process_is_not_taken_for_a_stopped_one(tmp_path: Path) -> None:
    """The same command replaces what a stopped import left, but never an unfinished import whose
    process lives (here paused midway): that one holds the track and finishes it."""
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(400, 64, 48))
    out = tmp_path / "dance.rdance"
    args = ["track", "import", tmp_path / "dance.pkl", "--out", out]
    first = start_rdance(*args)
    while first.poll() is None and not (out / "meta.json").exists():
        time.sleep(0.002)
    first.send_signal(signal.SIGSTOP)
    try:
        assert not Track.open(out).has("dwpose")  # paused before its poses were written
        second, forced = rdance(*args), rdance(*args, "--force")
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert_user_error(second, f"the pose track {out} is in use by another process (process {first.pid})")
    assert_user_error(forced, "in use by another process")
    assert Track.open(out).has("dwpose")


@pytest.mark.slow
def test_readers_of_a_track_being_written_are_told_to_wait(tmp_path: Path) -> None:
    """What a reader finds unfinished while another process writes the track is its work in
    progress: export and render-poses said to extract it again. A folder an import empties for
    `--force` (no meta.json yet) is the same."""
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(400, 64, 48))
    out = tmp_path / "dance.rdance"
    first = start_rdance("track", "import", tmp_path / "dance.pkl", "--out", out)
    while first.poll() is None and not (out / "meta.json").exists():
        time.sleep(0.002)
    first.send_signal(signal.SIGSTOP)
    try:
        assert not Track.open(out).has("dwpose")  # paused before its poses were written
        readers = [
            rdance("track", "export", out, "--out", tmp_path / "back.pkl"),
            rdance("render-poses", out, "--out", tmp_path / "videos"),
        ]
    finally:
        first.send_signal(signal.SIGCONT)
    first.communicate(timeout=300)
    for done in readers:
        assert_user_error(done, f"{out} is being written by another process (process {first.pid}); wait")

    emptied = tmp_path / "emptied.rdance"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(emptied)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        done = rdance("track", "export", emptied, "--out", tmp_path / "none.pkl")
    finally:
        holder.kill()
        holder.wait()
    assert_user_error(done, f"{emptied} is being written by another process (process {holder.pid})")
    assert_user_error(rdance("track", "export", emptied, "--out", tmp_path / "none.pkl"), "not a pose track")


def test_a_track_named_dot_exports_beside_itself(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "source.pkl", dancer_pkl_frames(4, 64, 48))
    out = tmp_path / "dance.rdance"
    assert rdance("track", "import", tmp_path / "source.pkl", "--out", out).returncode == 0
    done = subprocess.run(
        [sys.executable, "-m", "realisdance_cli", "track", "export", "."],
        cwd=out,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dance.pkl").stat().st_size > 0 and "dance.pkl" in done.stdout


def test_a_files_hash_follows_its_changes(tmp_path: Path) -> None:
    """`file_sha256` hashes a file once per process, and again whenever it changed."""
    import hashlib

    from realisdance_cli.files import file_sha256

    path = tmp_path / "weights.bin"
    path.write_bytes(b"a" * 100)
    assert file_sha256(path) == hashlib.sha256(b"a" * 100).hexdigest()
    stamp = path.stat().st_mtime_ns
    path.write_bytes(b"b" * 100)  # same size, rewritten in place
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))
    assert file_sha256(path) == hashlib.sha256(b"b" * 100).hexdigest()
    other = tmp_path / "other.bin"
    other.write_bytes(b"c" * 100)
    os.utime(other, ns=(stamp + 10**9, stamp + 10**9))
    other.replace(path)  # same size and time, another file
    assert file_sha256(path) == hashlib.sha256(b"c" * 100).hexdigest()


def test_force_never_empties_a_folder_that_is_not_a_track_or_replaces_an_input(tmp_path: Path) -> None:
    save_dwpose_pkl(tmp_path / "dance.pkl", dancer_pkl_frames(4, 64, 48))
    mine = tmp_path / "mydocs"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / "meta.json").write_text("{}")
    done = rdance("track", "import", tmp_path / "dance.pkl", "--out", mine, "--force")
    assert_user_error(
        done, f"{mine} exists and is not a pose track; it is never replaced: choose another --out."
    )
    assert (mine / "notes.txt").read_text() == "mine"

    track = tmp_path / "dance.rdance"
    assert rdance("track", "import", tmp_path / "dance.pkl", "--out", track).returncode == 0
    (tmp_path / "precious").mkdir()
    done = rdance("track", "export", track, "--out", tmp_path / "precious", "--force")
    assert_user_error(done, "precious is a folder; give a file name to write.")

    picture = tmp_path / "me.png"
    picture.write_bytes(b"a picture")
    for out in (picture, track / "dwpose.mp4"):
        done = rdance("animate", picture, track, "--out", out, "--force", "--weights", tmp_path / "none")
        assert_user_error(done, f"--out {out} would replace an input; choose another --out.")
    assert picture.read_bytes() == b"a picture"
