"""Training samples from a manifest of videos and their three pose videos, like the original's
`VideoDataset`: clips of `frames` frames every `stride`-th, one random crop at the target aspect
shared by the frames and all three pose videos, and a reference frame (random or the first) of the
same video with its DINOv2 crop. Only the frames of a clip are decoded.

A manifest is JSON lines: `{"video", "dwpose", "hamer", "smpl", "frames", "fps", "width",
"height"}`, paths relative to the manifest's folder. For stage 1 a line may name a picture instead
(`"image"`, with single-picture pose renders, as `rdance dataset build` writes for a folder of
photos), and any line may name its own `"reference"` picture (another photo of the same person;
by default the reference is a frame of the same video). Entries whose files are missing, unreadable
or of another frame count or size than the video are reported (the first ten by line) and left
out; a clip that fails to decode later is replaced by the next entry's, so one bad file never
stops a long run.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from realisdance_cli.animation import PoseFrames
from realisdance_cli.animator.processing import SIZE, clip_input, fit
from realisdance_cli.conditions import POSE_NAMES
from realisdance_cli.errors import UserError, counted
from realisdance_cli.files import read_text
from realisdance_cli.video import FrameSource, Selection

MANIFEST_KIND = "a JSON-lines manifest (one JSON object per line, see README)"


@dataclass(frozen=True)
class Entry:
    video: Path
    poses: tuple[Path, Path, Path]  # dwpose, hamer, smpl
    frames: int
    reference: Path | None = None  # a picture of the same person; default: a frame of `video`


@dataclass(frozen=True)
class ClipSampling:
    frames: int = 16  # 1 for stage 1
    stride: int = 4
    size: tuple[int, int] = SIZE  # height, width of the training pictures
    clip_size: tuple[int, int] = (320, 240)  # height, width of the reference's DINOv2 input
    ref_mode: Literal["random", "first"] = "random"

    @property
    def span(self) -> int:
        """Source frames a clip covers; shorter videos are left out of the manifest."""
        return (self.frames - 1) * self.stride + 1


LEFT_OUT_SHOWN = 10  # lines named one by one; the rest are counted (a broken set has thousands)


def _frame_count(path: Path) -> int:
    return FrameSource(path).info.frame_count


def _paths(line: str) -> dict[str, str]:
    """A manifest line's paths by key (`video` for `image` too), each checked to be text."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise UserError(f"a line must be a JSON object, this one is a {type(record).__name__}")
    picture = "video" if "video" in record else "image"
    if picture not in record:
        raise UserError('a line needs a "video" (or "image") path')
    keys = (picture, *POSE_NAMES, *(["reference"] if "reference" in record else []))
    for key in keys:
        if key not in record:
            raise UserError(f'a line needs a "{key}" path')
        if not isinstance(record[key], str):
            raise UserError(f'"{key}" must be a path in quotes, not {record[key]!r}')
    return {"video" if key == picture else key: record[key] for key in keys}


def _entry(line: str, folder: Path, minimum_frames: int) -> Entry:
    """One manifest line as an entry, or the reason it cannot be one: its files must be readable,
    and the pose videos of the video's frame count and size (a crop box is shared by all)."""
    paths = {key: folder / name for key, name in _paths(line).items()}
    named = ("video", *POSE_NAMES)
    infos = {key: FrameSource(paths[key]).info for key in named}
    counts = {key: info.frame_count for key, info in infos.items()}
    if len(set(counts.values())) != 1:
        raise UserError(f"frame counts differ: {counts}")
    video = infos["video"]
    for key in POSE_NAMES:
        if (infos[key].height, infos[key].width) != (video.height, video.width):
            raise UserError(
                f"{key} is {infos[key].height}x{infos[key].width}, the video {video.height}x{video.width} "
                "(height x width); render the pose videos at the video's size"
            )
    if counts["video"] < minimum_frames:
        raise UserError(f"{counted(counts['video'], 'frame')}, a clip needs {minimum_frames}")
    reference = paths.get("reference")
    if reference is not None:
        _frame_count(reference)
    poses = (paths["dwpose"], paths["hamer"], paths["smpl"])
    return Entry(paths["video"], poses, counts["video"], reference)


def _report_left_out(path: Path, reasons: list[str]) -> None:
    """The first left-out lines one warning each, then how many more."""
    for reason in reasons[:LEFT_OUT_SHOWN]:
        warnings.warn(reason, stacklevel=3)
    if len(reasons) > LEFT_OUT_SHOWN:
        warnings.warn(f"{path}: and {len(reasons) - LEFT_OUT_SHOWN} more lines of it left out.", stacklevel=3)


def read_manifest(path: Path, minimum_frames: int = 1) -> list[Entry]:
    """The usable entries of a manifest; the unusable ones are reported (warnings) and left out."""
    entries, left_out = [], []
    for number, line in enumerate(read_text(path, MANIFEST_KIND).splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(_entry(line, path.parent, minimum_frames))
        except (UserError, ValueError) as error:  # ValueError: not JSON, a path with a NUL in it
            left_out.append(f"{path}:{number} left out: {error}")
    _report_left_out(path, left_out)
    if not entries:
        raise UserError(f"{path} has no usable entry.")
    return entries


def _read(path: Path, start: int, stride: int, count: int) -> np.ndarray:
    frames = list(FrameSource(path, Selection(start=start, stride=stride, max_frames=count)))
    if len(frames) != count:
        raise UserError(f"{path} ended after {len(frames)} of {count} frames")
    return np.stack(frames)


def crop_box(
    height: int, width: int, size: tuple[int, int], rng: np.random.Generator | None = None
) -> tuple[int, int, int, int]:
    """The largest box of the target aspect at a random place (the centre without `rng`):
    (top, left, box height, box width)."""
    target_h, target_w = size
    box_h = min(height, round(width * target_h / target_w))
    box_w = min(width, round(box_h * target_w / target_h))
    if rng is None:
        return (height - box_h) // 2, (width - box_w) // 2, box_h, box_w
    return int(rng.integers(0, height - box_h + 1)), int(rng.integers(0, width - box_w + 1)), box_h, box_w


def _cropped(pictures: np.ndarray, box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    top, left, box_h, box_w = box
    return np.stack(
        [
            cv2.resize(p[top : top + box_h, left : left + box_w], size[::-1], interpolation=cv2.INTER_AREA)
            for p in pictures
        ]
    )


def _reference(
    entry: Entry, box: tuple[int, int, int, int], sampling: ClipSampling, rng: np.random.Generator | None
) -> np.ndarray:
    """The entry's own reference picture (fitted to the size), else a frame of its video in the
    clip's crop: a random one, or the first (`ref_mode` first, or no `rng`)."""
    if entry.reference is not None:
        return fit(_read(entry.reference, 0, 1, 1)[0], sampling.size)
    index = int(rng.integers(0, entry.frames)) if sampling.ref_mode == "random" and rng is not None else 0
    return _cropped(_read(entry.video, index, 1, 1), box, sampling.size)[0]


class ClipDataset(torch.utils.data.Dataset):
    """Item i: `pixels` (3, F, H, W) in [-1, 1], the three pose videos (3, F, H, W) in [0, 1],
    `reference` (3, H, W) in [-1, 1] and `reference_clip` (3, h, w) ImageNet-normalised. The
    randomness of item i depends only on (seed, epoch, i), so a resumed run sees the same clips."""

    def __init__(self, entries: list[Entry], sampling: ClipSampling, seed: int = 0) -> None:
        self.entries, self.sampling, self.seed = entries, sampling, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        for attempt in range(len(self.entries)):
            entry = self.entries[(index + attempt) % len(self.entries)]
            try:
                return self._sample(entry, np.random.default_rng((self.seed, self.epoch, index, attempt)))
            except UserError as error:
                warnings.warn(f"skipping {entry.video}: {error}", stacklevel=2)
        raise UserError("no entry of the manifest could be decoded.")

    def _sample(self, entry: Entry, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        s = self.sampling
        start = int(rng.integers(0, entry.frames - s.span + 1))
        pixels = _read(entry.video, start, s.stride, s.frames)
        box = crop_box(pixels.shape[1], pixels.shape[2], s.size, rng)
        reference = _reference(entry, box, s, rng)

        def video(pictures: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(_cropped(pictures, box, s.size)).permute(3, 0, 1, 2).float() / 255

        sample = {
            "pixels": video(pixels) * 2 - 1,
            "reference": torch.from_numpy(reference).permute(2, 0, 1).float() / 127.5 - 1,
            "reference_clip": clip_input(reference, s.clip_size),
        }
        for name, path in zip(POSE_NAMES, entry.poses, strict=True):
            sample[name] = video(_read(path, start, s.stride, s.frames))
        return sample


@dataclass(frozen=True)
class ValidationClip:
    """A clip to animate during training: the reference, the poses and the true frames, fitted."""

    name: str
    reference: np.ndarray  # (H, W, 3) uint8
    poses: PoseFrames
    truth: np.ndarray  # (F, H, W, 3) uint8


def validation_clip(entry: Entry, sampling: ClipSampling, frames: int = 16) -> ValidationClip:
    """The entry's first `frames` frames (fewer if it is shorter) at the sampling stride, centre
    crop, the reference as `ref_mode` first would take it: the same clip at every validation."""
    count = min(frames, (entry.frames - 1) // sampling.stride + 1)
    truth = _read(entry.video, 0, sampling.stride, count)
    box = crop_box(truth.shape[1], truth.shape[2], sampling.size)
    poses = {
        name: _cropped(_read(path, 0, sampling.stride, count), box, sampling.size)
        for name, path in zip(POSE_NAMES, entry.poses, strict=True)
    }
    fps = FrameSource(entry.video, Selection(stride=sampling.stride)).info.fps
    reference = _reference(entry, box, sampling, None)
    truth = _cropped(truth, box, sampling.size)
    return ValidationClip(entry.video.stem, reference, PoseFrames(poses, fps), truth)
