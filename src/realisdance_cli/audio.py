"""Sound for new videos through PyAV: which file a video's sound comes from, and its span muxed in.

The span a video shows is cut from the sound file: audio that mp4 carries is copied packet by
packet, anything else is decoded, cut exactly and re-encoded to AAC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, TypeAlias

import av
import numpy as np

from realisdance_cli.errors import UserError
from realisdance_cli.files import existing_file

# Audio codecs an mp4 file can carry as they are; anything else is re-encoded to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})
SEEK_MARGIN = 1.0  # seconds of audio demuxed before a span's start: room for the warm-up packet

# The sound of a new video: a file to take it from, False for none, None for the default source.
AudioChoice: TypeAlias = Path | Literal[False] | None


def has_audio(path: Path) -> bool:
    """Whether FFmpeg finds an audio stream in `path` (a video or a sound file)."""
    return bool(_audio_in(path))


def _audio_in(path: Path) -> bool | None:
    """Whether FFmpeg finds an audio stream in `path`; None when it cannot read the file."""
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, OSError):
        return None


def audio_source(choice: AudioChoice, default: Callable[[], Path | None]) -> Path | None:
    """The file whose sound a new video carries. A file the user named must have sound; the
    default (None where there is none) is looked for only when no file was named."""
    if choice is None:
        return default()
    if choice is False:
        return None
    sound = _audio_in(existing_file(choice, "the audio source"))
    if sound is None:
        raise UserError(f"{choice} is not a media file FFmpeg can read; give --audio a file with sound.")
    if not sound:
        raise UserError(
            f"{choice} has no audio stream to copy; give --audio a file with sound, or --no-audio."
        )
    return choice


def open_audio_source(path: Path, output: Any) -> tuple[Any, Any, Any] | None:
    """`path` opened with its first audio stream and the stream that sound becomes in `output`
    (the same codec where an mp4 carries it, AAC otherwise), for `copy_audio`; None when silent."""
    try:
        source = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise UserError(f"cannot read the audio of {path} ({err}).") from None
    if not source.streams.audio:
        source.close()
        return None
    in_stream = source.streams.audio[0]
    if in_stream.codec_context.name in MP4_AUDIO_CODECS:
        out_stream = output.add_stream_from_template(in_stream)
    else:
        out_stream = output.add_stream("aac", rate=in_stream.codec_context.sample_rate)
        mono = in_stream.codec_context.layout.nb_channels == 1
        out_stream.layout = "mono" if mono else "stereo"  # more channels are mixed down to two
    return source, in_stream, out_stream


def copy_audio(
    source: Any, in_stream: Any, out_stream: Any, output: Any, start: float, duration: float
) -> None:
    """Audio of `source` between `start` and `start + duration` seconds, copied or re-encoded.

    A span past the end of the sound leaves the stream empty, and the mp4 then has no audio."""
    with contextlib.suppress(av.error.FFmpegError):  # where seeking fails, demuxing starts at 0
        source.seek(max(0, round((start - SEEK_MARGIN) / in_stream.time_base)), stream=in_stream)
    if out_stream.codec_context.name == in_stream.codec_context.name:
        _copy_packets(source, in_stream, out_stream, output, start, duration)
    else:
        _reencode(source, in_stream, out_stream, output, start, duration)


def _copy_packets(
    source: Any, in_stream: Any, out_stream: Any, output: Any, start: float, duration: float
) -> None:
    """Packets as they are. The one before `start` goes along for the decoder to warm up on
    (AAC frames overlap), and every timestamp moves back by `start`: the mp4's edit list hides
    what lies before 0, so the sound starts on time; it ends within one packet of the span."""
    base = in_stream.time_base
    first, end = round(start / base), round((start + duration) / base)
    warm_up = None
    for packet in source.demux(in_stream):
        if packet.pts is None or packet.size == 0:
            continue
        if packet.pts >= end:
            break
        if packet.pts + (packet.duration or 0) <= first:
            warm_up = packet
            continue
        for each in (warm_up, packet) if warm_up is not None else (packet,):
            each.pts -= first
            each.dts = each.pts if each.dts is None else each.dts - first
            each.stream = out_stream
            output.mux(each)
        warm_up = None


def _reencode(
    source: Any, in_stream: Any, out_stream: Any, output: Any, start: float, duration: float
) -> None:
    """Decoded samples cut exactly to the span, encoded to AAC."""
    rate = out_stream.codec_context.sample_rate
    first, end = round(start * rate), round((start + duration) * rate)
    for frame in source.decode(in_stream):
        if frame.pts is None:
            continue
        begin = round(frame.pts * frame.time_base * rate)  # the frame's first sample
        if begin >= end:
            break
        skip, stop = max(0, first - begin), min(frame.samples, end - begin)
        if stop <= skip:
            continue
        piece = _samples(frame, skip, stop)
        piece.pts, piece.time_base = begin + skip - first, Fraction(1, rate)
        output.mux(out_stream.encode(piece))
    output.mux(out_stream.encode())


def _samples(frame: Any, skip: int, stop: int) -> Any:
    """Samples `skip:stop` of an audio frame, as a new frame in its format and layout."""
    data = frame.to_ndarray()
    channels = 1 if frame.format.is_planar else len(frame.layout.channels)  # packed: interleaved
    piece = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(data[:, skip * channels : stop * channels]),
        format=frame.format.name,
        layout=frame.layout.name,
    )
    piece.sample_rate = frame.sample_rate
    return piece
