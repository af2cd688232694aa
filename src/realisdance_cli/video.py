"""Video in through PyAV: RGB uint8 frames, exact frame counts, frame rates as exact fractions.

Sources are a video file (anything FFmpeg reads), a folder of images, or one image. Frames are
streamed one at a time; nothing holds a whole video in memory. A selection picks frames by start,
stride and count, or resamples them to a constant frame rate as the original RealisDance-DiT does.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any, TypeVar

import av
import cv2
import numpy as np

from realisdance_cli.errors import UserError
from realisdance_cli.pictures import read_picture
from realisdance_cli.track import FPS_RANGE

T = TypeVar("T")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif", ".m4v"})
DEFAULT_IMAGE_FPS = Fraction(30)


def as_fraction(fps: float | Fraction | str, what: str = "the frame rate") -> Fraction:
    """Frame rates as exact fractions: 29.97 becomes 30000/1001, "25/2" becomes 25/2; out of
    range, one sentence naming it as `what` (the option that gave it)."""
    low, high = FPS_RANGE
    try:
        value = Fraction(fps) if isinstance(fps, (Fraction, str)) else Fraction(fps).limit_denominator(1001)
    except (ValueError, OverflowError, ZeroDivisionError):  # NaN, inf, "abc", "1/0"
        value = None
    if value is None or not low <= value <= high:
        raise UserError(f"{what} must be between {float(low)} and {high}, got {fps}.")
    if not isinstance(fps, (Fraction, str)):
        for base in (24, 30, 48, 60, 120):  # 23.976, 29.97, 59.94... mean the NTSC rates
            ntsc = Fraction(base * 1000, 1001)
            if abs(fps - float(ntsc)) < 0.005:
                value = ntsc
    return value


def resampled_indices(
    length: int, source_fps: float | Fraction, fps: float | Fraction, num_frames: int = 0, start: int = 0
) -> list[int]:
    """The source frames a video of `length` frames at `source_fps` shows at `fps`: the original
    RealisDance-DiT's rule (inference.py `load_video`), kept exactly so its results reproduce.

    The clip is stretched over at least `num_frames` frames (a short video repeats frames), spread
    evenly from the first frame to the last and rounded half to even, as NumPy does; `start` counts
    frames of that resampled sequence, and at most `num_frames` of it are kept (0: all of it). The
    rate ratio is computed in floats, as the original does with decord's average rate. One
    addition: the sequence never has fewer than one frame, where the original would keep none.
    """
    normed = max(_resampled_count(length, source_fps, fps), num_frames)
    every: list[int] = np.linspace(0, length - 1, normed).round().astype(int).tolist()
    return every[start : start + num_frames] if num_frames else every[start:]


def resampled_rate(length: int, source_fps: Fraction, fps: Fraction, num_frames: int = 0) -> Fraction:
    """The rate at which `resampled_indices`' frames last as long as the clip they show: `fps`,
    or faster where a clip too short for `num_frames` was stretched over them (so the motion keeps
    its speed and its sound stays in time)."""
    normed = _resampled_count(length, source_fps, fps)
    return fps if num_frames <= normed else Fraction(num_frames) * source_fps / length


def _resampled_count(length: int, source_fps: float | Fraction, fps: float | Fraction) -> int:
    """How many frames a clip of `length` frames at `source_fps` has at `fps` (at least one)."""
    return max(round(length / float(source_fps) * float(fps)), 1)


@dataclass(frozen=True)
class Selection:
    """Which source frames to use: from `start`, every `stride`-th, at most `max_frames`.

    With `fps` the frames are instead resampled to that rate by the original RealisDance-DiT's
    rule (`resampled_indices`): `start` then counts resampled frames, and frames may repeat."""

    start: int = 0
    stride: int = 1
    max_frames: int | None = None
    fps: Fraction | None = None

    def __post_init__(self) -> None:
        if self.start < 0:
            raise UserError(f"--start must be 0 or more, got {self.start}.")
        if self.stride < 1:
            raise UserError(f"--stride must be 1 or more, got {self.stride}.")
        if self.max_frames is not None and self.max_frames < 1:
            raise UserError(f"--max-frames must be 1 or more, got {self.max_frames}.")
        if self.fps is not None and not self.fps > 0:
            raise UserError(f"--fps must be more than 0, got {self.fps}.")
        if self.fps is not None and self.stride != 1:
            raise UserError(f"--fps resamples the frames itself, so --stride must stay 1, got {self.stride}.")

    def rate(self, source_frames: int, source_fps: Fraction) -> Fraction:
        """The frame rate of the selected frames, at which they last as long as the source frames
        they show (`fps`, or faster where it stretches a short clip over `max_frames`)."""
        if self.fps is None:
            return source_fps / self.stride
        return resampled_rate(max(source_frames, 1), source_fps, self.fps, self.max_frames or 0)

    def count(self, source_frames: int, source_fps: Fraction | None = None) -> int:
        if self.fps is not None:
            return len(self.indices(source_frames, source_fps))
        available = max(0, -(-(source_frames - self.start) // self.stride))
        return available if self.max_frames is None else min(available, self.max_frames)

    def indices(self, source_frames: int, source_fps: Fraction | None = None) -> Sequence[int]:
        """The source frame of each selected frame, in order: non-decreasing, repeats only with
        `fps`, which needs the source's rate."""
        if self.fps is None:
            return range(self.start, self.start + self.count(source_frames) * self.stride, self.stride)
        if source_fps is None:
            raise ValueError("resampling to a frame rate needs the source's frame rate")
        if source_frames < 1:
            return []
        return resampled_indices(source_frames, source_fps, self.fps, self.max_frames or 0, self.start)


@dataclass(frozen=True)
class VideoInfo:
    """What a source holds, after rotation and frame selection."""

    path: Path
    width: int
    height: int
    fps: Fraction  # of the selected frames: source fps / stride, or the resampled rate
    frame_count: int  # selected frames
    source_fps: Fraction
    source_frame_count: int
    rotation: int  # degrees counter-clockwise applied to decoded frames
    has_audio: bool


def _natural_key(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def image_files(folder: Path) -> list[Path]:
    """A folder's pictures in frame order (frame 2 before frame 10): the frames of an image folder."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)


# AVColorSpace values OpenCV's I420 conversion (BT.601, limited range) is right for.
_BT601_SPACES = frozenset({2, 5, 6})  # unspecified, BT470BG, SMPTE170M
_LIMITED_RANGES = frozenset({0, 1})  # unspecified, MPEG


def _to_rgb(frame: Any) -> np.ndarray:
    """RGB uint8 of a decoded frame. FFmpeg's default YUV->RGB path is off by up to 3 levels;
    OpenCV's BT.601 conversion is exact to +-1, so 4:2:0 BT.601 frames (ours, most files) use it."""
    if (
        frame.format.name == "yuv420p"
        and frame.colorspace in _BT601_SPACES
        and frame.color_range in _LIMITED_RANGES
        and frame.width % 2 == 0
        and frame.height % 2 == 0
    ):
        return cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")


def _rotate(frame: np.ndarray, rotation: int) -> np.ndarray:
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(frame, k=turns)) if turns else frame


class FrameSource:
    """Frames of a video file, an image folder or one image, as RGB uint8 (H, W, 3) arrays.

    >>> source = FrameSource("dance.mp4", Selection(stride=4, max_frames=80))
    >>> source.info.fps, source.info.frame_count
    >>> for frame in source: ...
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        selection: Selection | None = None,
        *,
        image_fps: Fraction = DEFAULT_IMAGE_FPS,
    ) -> None:
        self.path = Path(path)
        self.selection = selection or Selection()
        if not self.path.exists():
            raise UserError(f"{self.path} does not exist.")
        if self.path.is_dir():
            self._images = image_files(self.path)
            if not self._images:
                raise UserError(f"{self.path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}).")
        elif self.path.suffix.lower() in IMAGE_SUFFIXES:
            self._images = [self.path]
        else:
            self._images = []
        self.info = self._probe_images(image_fps) if self._images else self._probe_video()

    @property
    def images(self) -> list[Path]:
        """The image files in frame order (empty for a video file)."""
        return list(self._images)

    def _probe_images(self, fps: Fraction) -> VideoInfo:
        first = read_picture(self._images[0])
        count = self.selection.count(len(self._images), fps)
        if count == 0:
            raise UserError(f"{self.path}: --start {self.selection.start} is past the last image.")
        return VideoInfo(
            path=self.path,
            width=first.shape[1],
            height=first.shape[0],
            fps=self.selection.rate(len(self._images), fps),
            frame_count=count,
            source_fps=fps,
            source_frame_count=len(self._images),
            rotation=0,
            has_audio=False,
        )

    def _open(self) -> Any:
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as err:
            raise UserError(f"{self.path} is not a video FFmpeg can read ({err}).") from None
        if not container.streams.video:
            container.close()
            raise UserError(f"{self.path} has no video stream.")
        return container

    @staticmethod
    def _stream(container: Any) -> Any:
        """The video stream a player shows: FFmpeg's best (the default one, not cover art)."""
        return container.streams.best("video")

    def _probe_video(self) -> VideoInfo:
        with self._open() as container:
            stream = self._stream(container)
            total = self._frame_count(container, stream)
            fps = stream.average_rate or stream.guessed_rate or stream.base_rate
            if not total or not fps:
                raise UserError(f"{self.path} holds no video frames.")
            container.seek(0)
            first = self._first_frame(container)
            rotation = first.rotation
            height, width = (
                (first.height, first.width) if rotation % 180 == 0 else (first.width, first.height)
            )
            has_audio = bool(container.streams.audio)
        fps = Fraction(fps)
        low, high = FPS_RANGE  # below: resampled to 16 fps, 3 frames "at 1/20000000 fps" took gigabytes
        if not low <= fps <= high:
            bound = f"less than {float(low)}" if fps < low else f"more than {high}"
            raise UserError(
                f"{self.path} claims {float(fps):.3g} frames per second, {bound}: its timing is damaged; "
                "encode it again (e.g. ffmpeg -i IN -r 25 OUT.mp4)."
            )
        count = self.selection.count(total, fps)
        if count == 0:
            rate = self.selection.fps
            frames = f"{total}" if rate is None else f"{Selection(fps=rate).count(total, fps)} at {rate} fps"
            raise UserError(f"{self.path}: --start {self.selection.start} is past the last frame ({frames}).")
        return VideoInfo(
            path=self.path,
            width=width,
            height=height,
            fps=self.selection.rate(total, fps),
            frame_count=count,
            source_fps=fps,
            source_frame_count=total,
            rotation=rotation,
            has_audio=has_audio,
        )

    @staticmethod
    def _frame_count(container: Any, stream: Any) -> int:
        """The frames a player shows: the header's count less those an edit list hides (a cut
        made with `-c copy` keeps them in the file), or the packets when the header has no count.
        Reading every packet takes 0.6 s for 900 MB, less than hashing the file; a truncated
        file keeps its header's count, so decoding says it is truncated."""
        shown = hidden = 0
        for packet in container.demux(stream):
            if packet.size:
                hidden += packet.is_discard
                shown += not packet.is_discard
        return stream.frames - hidden if stream.frames else shown

    def _first_frame(self, container: Any) -> Any:
        try:
            for frame in container.decode(self._stream(container)):
                return frame
        except av.error.FFmpegError as err:
            raise UserError(f"{self.path} is corrupt: its first frame cannot be decoded ({err}).") from None
        raise UserError(f"{self.path} holds no decodable video frames.")

    def __len__(self) -> int:
        return self.info.frame_count

    def __iter__(self) -> Iterator[np.ndarray]:
        wanted = self.selection.indices(self.info.source_frame_count, self.info.source_fps)
        if self._images:
            previous, frame = -1, np.empty(0, np.uint8)
            for index in wanted:
                if index == previous:
                    yield frame.copy()  # a repeat: read once, and no two frames share memory
                    continue
                previous, frame = index, self._checked(read_picture(self._images[index]), self._images[index])
                yield frame
            return
        yield from self._decode(wanted)

    def _checked(self, frame: np.ndarray, where: Path) -> np.ndarray:
        if frame.shape[:2] != (self.info.height, self.info.width):
            raise UserError(
                f"{where} is {frame.shape[1]}x{frame.shape[0]}, but the first image is "
                f"{self.info.width}x{self.info.height}; all frames must have one size."
            )
        return frame

    def _decode(self, wanted: Sequence[int]) -> Iterator[np.ndarray]:
        """The frames at the non-decreasing source indices `wanted`, each source frame decoded and
        converted once however often it repeats."""
        delivered = 0
        stored = (self.info.width, self.info.height)[:: 1 if self.info.rotation % 180 == 0 else -1]
        with self._open() as container:
            stream = self._stream(container)
            stream.thread_type = "AUTO"
            try:
                for index, frame in enumerate(container.decode(stream)):
                    if index != wanted[delivered]:
                        continue
                    if (frame.width, frame.height) != stored:  # forged: 64x64 said, 16000x16000 held
                        raise UserError(
                            f"{self.path}: frame {index} is {frame.width}x{frame.height}, but the first is "
                            f"{stored[0]}x{stored[1]}; a video whose frames change size is not supported."
                        )
                    picture = _rotate(_to_rgb(frame), self.info.rotation)
                    yield picture
                    delivered += 1
                    while delivered < len(wanted) and wanted[delivered] == index:
                        yield picture.copy()  # a repeat: no two frames share memory
                        delivered += 1
                    if delivered == len(wanted):
                        return
            except av.error.FFmpegError as err:
                raise UserError(
                    f"{self.path} is corrupt: decoding failed after frame {delivered} ({err})."
                ) from None
        if delivered < len(wanted):
            raise UserError(
                f"{self.path} ended after {delivered} of the {len(wanted)} frames it announces; "
                "the file is truncated or corrupt."
            )


def prefetched(items: Iterator[T], depth: int = 8) -> Iterator[T]:
    """`items` produced by a background thread, up to `depth` ahead, so decoding overlaps the
    caller's work (PyAV, OpenCV and ONNX Runtime release the GIL). Errors surface in the caller."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put(("item", item), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put(("end", None))
        except BaseException as err:
            queue.put(("error", err))

    worker = threading.Thread(target=produce, daemon=True, name="frame-prefetch")
    worker.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        with contextlib.suppress(Empty):
            while True:
                queue.get_nowait()
        worker.join(timeout=5)


def read_frames(path: str | os.PathLike[str], selection: Selection | None = None) -> list[np.ndarray]:
    """All selected frames in memory: for short clips and tests; use `FrameSource` otherwise."""
    return list(FrameSource(path, selection))
