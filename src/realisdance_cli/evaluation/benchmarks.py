"""The test sets `rdance eval run` animates and scores, read from the layouts their authors ship.

- RealisDance-Val (the authors' batch layout): `ref/<id>.png`, `smpl/<id>.mp4`, `hamer/<id>.mp4`,
  optional `prompt/<id>.txt`, and the truth in `gt/<id>.mp4` (or `video/<id>.mp4`).
- DisCo's TikTok test set: one `*_images.tsv` of `key<TAB>base64 image` lines. Its frames are
  decoded once into the cache folder, since every metric reads them again.
- Plain frames: a folder of `<id>/*.png` (or `<id>/images/*.png`, the raw TikTok dataset).

Videos without their own reference picture are animated from their first frame (DisCo's rule).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realisdance_cli.dit.job import read_prompt
from realisdance_cli.errors import UserError
from realisdance_cli.evaluation.inputs import is_video, listing
from realisdance_cli.files import atomic_folder, atomic_write_bytes, folder_lock, write_failure
from realisdance_cli.pictures import check_pixel_count
from realisdance_cli.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, FrameSource

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# DisCo's keys: a prefix, the video id (starting with a digit, maybe with underscores, as in the
# self-collected `TiktokDance_203_006_1x1_00348.jpg`), the frame number, an extension.
_DISCO_KEY = re.compile(r"(?:[^_\d][^_]*_)*(?P<video>\d[\w-]*)_(?P<frame>\d+)(?:\.[A-Za-z]+)?")
_INDEX = "index.json"


@dataclass(frozen=True)
class Sample:
    """One video of a test set: its truth, the picture to animate, and the set's own poses/prompt."""

    name: str
    truth: Path
    reference: Path
    smpl: Path | None = None
    hamer: Path | None = None
    prompt: str | None = None


@dataclass(frozen=True)
class Benchmark:
    kind: str  # "realisdance-val" | "disco-tiktok" | "frames"
    root: Path
    samples: list[Sample]  # sorted by name


def open_benchmark(path: Path, cache: Path, *, prompts: bool = True) -> Benchmark:
    """Recognise the layout and list its samples; `cache` is a folder this function may write
    (the frames decoded from DisCo's TSV), reused on later calls. `prompts` off: a set's prompt
    files are neither checked nor read (only RealisDance-DiT takes them; a broken one must not
    stop a run of another model)."""
    if not path.exists():
        raise UserError(f"{path} does not exist.")
    if path.is_file():
        if path.suffix.lower() == ".tsv":
            return _disco(path, cache)
        raise UserError(_unknown(path))
    if (path / "ref").is_dir():
        return _realisdance_val(path, prompts)
    tables = sorted(path.glob("*_images.tsv"))
    if len(tables) > 1:
        names = ", ".join(table.name for table in tables)
        raise UserError(f"{path} holds several DisCo image tables ({names}); give the one to use.")
    if tables:
        return _disco(tables[0], cache)
    return _frames(path)


def shard(samples: list[Sample], index: int, count: int) -> list[Sample]:
    """Shard `index` of `count` (0-based): every count-th sample, so that shards run on different
    machines share the work evenly and together cover each sample exactly once."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist (0 <= index < count)")
    return samples[index::count]


def parse_shard(text: str) -> tuple[int, int]:
    """`--shard i/n` (1-based, as users count: 1/4 .. 4/4) as the 0-based (index, count)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise UserError(f"--shard takes i/n with 1 <= i <= n (for example 1/4), not {text!r}.")
    return int(match[1]) - 1, int(match[2])


def _unknown(path: Path) -> str:
    return (
        f"{path} is not a test set: expected RealisDance-Val (ref/, smpl/, hamer/, gt/ folders), "
        "a DisCo TikTok *_images.tsv (or a folder holding one), or a folder of per-video frame "
        "folders (<id>/*.png or <id>/images/*.png)."
    )


def _files(folder: Path, suffixes: Iterable[str]) -> dict[str, Path]:
    """id -> file for the files of `folder` with one of `suffixes` (none when it does not exist)."""
    wanted = frozenset(suffixes)
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for item in sorted(folder.iterdir()):
        if item.name.startswith(".") or not item.is_file() or item.suffix.lower() not in wanted:
            continue
        if item.stem in found:
            raise UserError(
                f"{folder} holds two files for {item.stem} ({found[item.stem].name}, {item.name})."
            )
        found[item.stem] = item
    return found


def _realisdance_val(root: Path, prompts: bool) -> Benchmark:
    references = _files(root / "ref", IMAGE_SUFFIXES)
    if not references:
        raise UserError(f"{root / 'ref'} holds no reference pictures ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    truth_folder = next((root / name for name in ("gt", "video") if (root / name).is_dir()), None)
    if truth_folder is None:
        raise UserError(f"RealisDance-Val needs its ground-truth videos in {root / 'gt'} (<id>.mp4).")
    parts = {
        "smpl": _files(root / "smpl", {".mp4"}),
        "hamer": _files(root / "hamer", {".mp4"}),
        truth_folder.name: _files(truth_folder, VIDEO_SUFFIXES),
    }
    if prompts and (root / "prompt").is_dir():
        parts["prompt"] = _files(root / "prompt", {".txt"})
    gaps = []
    for folder, found in parts.items():
        if lacking := sorted(set(references) - set(found)):
            suffix = ".txt" if folder == "prompt" else ".mp4"
            gaps.append(
                f"{listing(lacking)} {'has' if len(lacking) == 1 else 'have'} no {folder}/<id>{suffix}"
            )
    if gaps:
        raise UserError(f"RealisDance-Val {root} is incomplete: {'; '.join(gaps)}.")
    prompt_files = parts.get("prompt", {})
    samples = [
        Sample(
            name=name,
            truth=parts[truth_folder.name][name],
            reference=reference,
            smpl=parts["smpl"][name],
            hamer=parts["hamer"][name],
            prompt=read_prompt(prompt_files[name]) if name in prompt_files else None,
        )
        for name, reference in sorted(references.items())
    ]
    return Benchmark("realisdance-val", root, samples)


def _frames(root: Path) -> Benchmark:
    samples, empty = [], []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        truth = next((folder for folder in (child, child / "images") if is_video(folder)), None)
        if truth is None:
            empty.append(child.name)
        else:
            samples.append(Sample(child.name, truth, FrameSource(truth).images[0]))
    if not samples:
        raise UserError(_unknown(root))
    if empty:
        raise UserError(
            f"{root} holds per-video frame folders, but {listing(empty)} hold no frames "
            "(<id>/*.png or <id>/images/*.png)."
        )
    return Benchmark("frames", root, samples)


# DisCo's TSV ----------------------------------------------------------------------------------


def _disco(table: Path, cache: Path) -> Benchmark:
    """Samples whose frames are `cache/<table>-<version>/<video>/<frame>.png`. The subfolder is
    named after the table's name, size and time, so frames of an older table are never taken for
    a newer one; `index.json` there lists the frames once all are decoded, so later calls (one
    per shard) do not read the table again."""
    stat = table.stat()
    version = hashlib.sha256(f"{table.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()
    folder = cache / f"{table.stem}-{version[:12]}"
    with folder_lock(folder, "the decoded test set", wait=True):
        frames = _read_index(folder)
        if frames is None:
            try:
                frames = _decode(table, folder)
                atomic_write_bytes(folder / _INDEX, json.dumps(frames, indent=1).encode())
            except OSError as err:
                if (failure := write_failure(err)) is None:
                    raise
                raise failure from None
    samples = [
        Sample(video, folder / video, folder / video / names[0]) for video, names in sorted(frames.items())
    ]
    if not samples:
        raise UserError(f"{table} holds no images (lines of key<TAB>base64 image).")
    return Benchmark("disco-tiktok", table, samples)


def _read_index(folder: Path) -> dict[str, list[str]] | None:
    """video -> frame files of a finished decoding (None when there is none, or a folder went)."""
    try:
        frames = json.loads((folder / _INDEX).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(frames, dict) or not all((folder / video).is_dir() for video in frames):
        return None
    return frames


def _decode(table: Path, folder: Path) -> dict[str, list[str]]:
    """video -> its frame files in frame order, writing each video's folder at once (a folder
    left by an interrupted run is whole, and is kept)."""
    frames: dict[str, list[str]] = {}
    for video, lines in itertools.groupby(_lines(table), key=lambda line: line[0]):
        if video in frames:
            raise UserError(
                f"{table}: the frames of video {video} are not on consecutive lines; sort the table "
                "by key (sort -k1,1) and try again."
            )
        target = folder / video
        if target.is_dir():
            frames[video] = _frame_names(table, video, (frame for _, frame, _, _ in lines))
            continue
        with atomic_folder(target) as partial:
            written = []
            for _, frame, data, number in lines:
                _write_frame(partial / f"{frame}.png", data, table, number)
                written.append(frame)
            frames[video] = _frame_names(table, video, written)
    return frames


def _frame_names(table: Path, video: str, frames: Iterable[str]) -> list[str]:
    ordered = sorted(frames, key=int)
    for first, second in itertools.pairwise(ordered):
        if int(first) == int(second):
            raise UserError(f"{table} holds frame {second} of video {video} twice.")
    return [f"{frame}.png" for frame in ordered]


def _lines(table: Path) -> Iterator[tuple[str, str, bytes, int]]:
    """(video, frame, base64 image, line number) of each line, read one line at a time (the
    tables are gigabytes)."""
    with table.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            key, tab, data = line.rstrip(b"\r\n").partition(b"\t")
            if not key.strip() and not data.strip():
                continue
            name = key.decode("utf-8", "replace").strip()
            match = _DISCO_KEY.fullmatch(name) if tab else None
            if match is None:
                shown = name if len(name) <= 60 else f"{name[:60]}..."
                raise UserError(
                    f"{table} line {number}: {shown!r} is not a frame key followed by a tab and the image "
                    "(DisCo's keys read like TiktokDance_00001_0002.png)."
                )
            yield match["video"], match["frame"], data, number


def _write_frame(path: Path, data: bytes, table: Path, number: int) -> None:
    """One frame as PNG: PNG images as they are, others decoded as the package reads images
    (EXIF orientation applied) and written losslessly."""
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except binascii.Error:
        raise UserError(f"{table} line {number}: the image is not base64.") from None
    if raw.startswith(_PNG_SIGNATURE):
        path.write_bytes(raw)
        return
    check_pixel_count(raw, f"{table} line {number}")
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR) if raw else None
    if image is None:
        raise UserError(f"{table} line {number}: the image is not one OpenCV can decode.")
    if not cv2.imwrite(str(path), image):
        raise OSError(f"OpenCV could not write {path}")
