"""Video out through PyAV: RGB uint8 frames to an H.264 mp4 at a constant frame rate.

A writer produces its file atomically (a temporary file renamed on success, removed on failure),
with the sound of another file when asked. The encoder's settings are checked here too, so a
command can refuse them before the work whose result they encode.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

from realisdance_cli.audio import copy_audio, open_audio_source
from realisdance_cli.errors import UserError
from realisdance_cli.files import AtomicFile, sync_folder
from realisdance_cli.video import as_fraction


def check_crf(crf: int) -> None:
    """x264's quality scale; checked before the work whose result it encodes."""
    if not 0 <= crf <= 51:
        raise UserError(f"--crf (the H.264 quality) must be between 0 and 51, got {crf}.")


def check_h264_size(height: int, width: int, *, lossless: bool) -> None:
    """H.264 in 4:2:0 needs even sides; say so (in --size's HEIGHTxWIDTH) before any work."""
    if not lossless and (width % 2 or height % 2):
        raise UserError(
            f"H.264 needs an even frame size, got {height}x{width} (height x width); choose an even --size."
        )


class VideoWriter:
    """Writes RGB uint8 frames to an H.264 mp4 at a constant frame rate, atomically.

    `crf` sets the quality (0 best, 51 worst; 18 looks lossless); `lossless=True` stores the RGB
    values exactly (libx264rgb, qp 0: bigger files, not every player shows them). `audio_from`
    copies the sound of a video or sound file, cut to the span `audio_start` .. + the video's
    duration (none when that file is silent there).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float | Fraction | str,
        *,
        crf: int = 18,
        lossless: bool = False,
        preset: str = "medium",
        audio_from: str | os.PathLike[str] | None = None,
        audio_start: float = 0.0,
    ) -> None:
        self.path = Path(path)
        self.fps = as_fraction(fps)
        check_crf(crf)
        self._crf, self._lossless, self._preset = crf, lossless, preset
        self._audio_from = Path(audio_from) if audio_from is not None else None
        self._audio_start = audio_start
        self._file: AtomicFile | None = None
        self._container: Any = None
        self._stream: Any = None
        self._audio: tuple[Any, Any, Any] | None = None  # (source container, source stream, output stream)
        self.frames_written = 0

    def _start(self, width: int, height: int) -> None:
        check_h264_size(height, width, lossless=self._lossless)
        self._file = AtomicFile(self.path, suffix=self.path.suffix or ".mp4")
        self._container = av.open(str(self._file.path), mode="w", format="mp4")
        codec = "libx264rgb" if self._lossless else "libx264"
        stream = self._container.add_stream(codec, rate=self.fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "rgb24" if self._lossless else "yuv420p"
        if not self._lossless:  # say which YUV flavour this is, so players show the right colours
            stream.codec_context.colorspace = 6  # SMPTE 170M (BT.601), what the conversion uses
            stream.codec_context.color_range = 1  # limited (MPEG)
        stream.options = (
            {"qp": "0", "preset": self._preset}
            if self._lossless
            else {"crf": str(self._crf), "preset": self._preset}
        )
        self._stream = stream
        if self._audio_from is not None:
            self._audio = open_audio_source(self._audio_from, self._container)

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 (H, W, 3) frame; every frame must have the first one's size."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        if self._container is None:
            self._start(frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != (self._stream.width, self._stream.height):
            raise ValueError(
                f"frame {self.frames_written} is {frame.shape[1]}x{frame.shape[0]}, "
                f"the video is {self._stream.width}x{self._stream.height}"
            )
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.frames_written  # in units of 1/fps: a constant frame rate
        self._container.mux(self._stream.encode(video_frame))
        self.frames_written += 1

    def finish(self) -> AtomicFile:
        """Complete the file beside its place without moving it there, for `publish_together`;
        `close` does both."""
        if self._container is None:
            raise UserError(f"no frames were written to {self.path}.")
        try:
            self._container.mux(self._stream.encode())
            if self._audio is not None:
                duration = float(self.frames_written / self.fps)
                try:
                    copy_audio(*self._audio, self._container, self._audio_start, duration)
                except av.error.FFmpegError as err:  # damaged sound must not cost the pictures
                    warnings.warn(
                        f"{self.path}: the sound of {self._audio_from} stops early ({err})", stacklevel=2
                    )
            self._container.close()
        except BaseException:
            self.abort()
            raise
        finally:
            if self._audio is not None:
                self._audio[0].close()
                self._audio = None
        self._container = None  # closed: a later `abort` has only the file to drop
        assert self._file is not None
        return self._file

    def close(self) -> Path:
        """Finish the file and move it into place; returns its path."""
        return self.finish().commit()

    def abort(self) -> None:
        """Drop everything written so far; no partial file is left behind."""
        if self._container is not None:
            # Closing flushes what is buffered, which fails again on a full disk: the error that
            # brought us here is the one to report.
            with contextlib.suppress(av.error.FFmpegError, OSError):
                self._container.close()
            self._container = None
        if self._audio is not None:
            self._audio[0].close()
            self._audio = None
        if self._file is not None:
            self._file.discard()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def publish_together(writers: Sequence[VideoWriter]) -> list[Path]:
    """Moves the writers' videos into place as one set, in the given order: all are finished
    first, then the earlier videos they replace are removed, and only then is the first renamed
    in. A run killed between the renames leaves videos missing, which the commands reading them
    say, never new videos beside earlier ones of other settings (unsmoothed pose videos, or an
    earlier animation's grid) taken for one set."""
    finished = [writer.finish() for writer in writers]
    for writer in writers:
        writer.path.unlink(missing_ok=True)
    for folder in {writer.path.parent for writer in writers}:
        sync_folder(folder)  # the removals on disk before any rename
    return [file.commit() for file in finished]
