"""Video in and out: real H.264 files written and read back through PyAV."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import numbered_frames, write_video

from realisdance_cli.errors import UserError
from realisdance_cli.video import FrameSource, Selection, as_fraction, read_frames
from realisdance_cli.video_writer import VideoWriter


def test_lossless_round_trip_keeps_every_pixel_count_and_rate(tmp_path: Path) -> None:
    frames = numbered_frames(13, 33, 65)  # odd sizes are fine when lossless
    path = write_video(tmp_path / "clip.mp4", frames, fps=Fraction(30000, 1001))
    source = FrameSource(path)
    assert (source.info.width, source.info.height) == (65, 33)
    assert source.info.fps == Fraction(30000, 1001)
    assert source.info.frame_count == len(source) == 13
    decoded = list(source)
    assert len(decoded) == 13
    assert all(np.array_equal(a, b) for a, b in zip(frames, decoded, strict=True))


def test_lossy_video_has_exact_count_constant_rate_and_good_quality(tmp_path: Path) -> None:
    frames = [np.full((64, 96, 3), (10 * i, 128, 255 - 10 * i), np.uint8) for i in range(25)]
    path = tmp_path / "lossy.mp4"
    with VideoWriter(path, 12.5, crf=18) as writer:
        for frame in frames:
            writer.write(frame)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.average_rate == Fraction(25, 2)
        times = [frame.pts * frame.time_base for frame in container.decode(stream)]
    assert len(times) == 25
    steps = {b - a for a, b in itertools.pairwise(times)}
    assert steps == {Fraction(2, 25)}  # constant frame rate
    decoded = read_frames(path)
    assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(frames, decoded, strict=True)) < 2


def test_selection_start_stride_max_frames(tmp_path: Path) -> None:
    frames = numbered_frames(20)
    path = write_video(tmp_path / "clip.mp4", frames, fps=24)
    source = FrameSource(path, Selection(start=3, stride=4, max_frames=3))
    assert source.info.frame_count == 3
    assert source.info.fps == 6
    picked = [int(frame[0, 0, 0]) for frame in source]
    assert picked == [3, 7, 11]
    # Without a cap: 3, 7, 11, 15, 19.
    assert [int(f[0, 0, 0]) for f in FrameSource(path, Selection(start=3, stride=4))] == [3, 7, 11, 15, 19]
    with pytest.raises(UserError, match="past the last frame"):
        FrameSource(path, Selection(start=20))
    with pytest.raises(UserError, match="--stride"):
        Selection(stride=0)


def test_rotation_metadata_is_honoured(tmp_path: Path) -> None:
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:8, :8] = 255  # a white square top-left
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "rgb24"
        stream.options = {"qp": "0"}
        stream.set_display_rotation(90)  # shown turned 90 degrees counter-clockwise
        for index in range(3):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    source = FrameSource(path)
    assert (source.info.width, source.info.height, source.info.rotation) == (32, 64, 90)
    shown = next(iter(source))
    assert shown.shape == (64, 32, 3)
    assert shown[-8:, :8].min() == 255 and shown[:8, :8].max() == 0  # top-left went to bottom-left


def test_image_folder_in_natural_order_and_single_image(tmp_path: Path) -> None:
    frames = numbered_frames(12)
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"f{index}.png"), frame[:, :, ::-1])
    (folder / "notes.txt").write_text("not a frame")
    source = FrameSource(folder, Selection(stride=5))
    assert source.info.fps == 6 and source.info.frame_count == 3
    assert [int(f[0, 0, 0]) for f in source] == [0, 5, 10]  # f10 after f9, not after f1
    single = FrameSource(folder / "f7.png")
    assert single.info.frame_count == 1
    assert np.array_equal(next(iter(single)), frames[7])


def test_image_folder_with_mixed_sizes_is_refused(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 10, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((12, 10, 3), np.uint8))
    with pytest.raises(UserError, match="all frames must have one size"):
        list(FrameSource(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not a video"), (b"this is not a video at all" * 50, "not a video")],
)
def test_unreadable_inputs_are_one_clear_sentence(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as caught:
        FrameSource(path)
    assert caught.value.exit_code == 2
    with pytest.raises(UserError, match="does not exist"):
        FrameSource(tmp_path / "missing.mp4")
    with pytest.raises(UserError, match="holds no image files"):
        FrameSource(tmp_path / "empty_dir" if (tmp_path / "empty_dir").mkdir() is None else tmp_path)
    with pytest.raises(UserError, match="not an image"):
        (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
        FrameSource(tmp_path / "broken.png")


def test_truncated_video_fails_clearly(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", numbered_frames(30, 96, 128), lossless=False)
    data = path.read_bytes()
    broken = tmp_path / "truncated.mp4"
    broken.write_bytes(data[: len(data) // 2])
    try:
        source = FrameSource(broken)
    except UserError:
        return  # refused at probe time: fine
    with pytest.raises(UserError, match="corrupt"):
        list(source)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, type) of the MP4 boxes in `data[start:end]`, and of those inside the track's."""
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        yield start, kind
        if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
            yield from _boxes(data, start + 8, start + size)
        start += size


@pytest.mark.parametrize(
    ("ticks_a_second", "ticks_a_frame", "said"),
    [
        (1, 20_000_000, r"claims 5e-08 frames per second, less than 0\.01: its timing is"),
        (2_000_000_000, 1, r"claims 2e\+09 frames per second, more than 1000: its timing is"),
    ],
)
def test_a_forged_frame_rate_is_refused_before_resampling(
    tmp_path: Path, ticks_a_second: int, ticks_a_frame: int, said: str
) -> None:
    """Three frames timed 20,000,000 s apart (a 1.5 KB file): resampled to 16 fps they asked for
    gigabytes of frame indices. Timed 2e9 a second, smoothing's time constants lost most hands."""
    path = write_video(tmp_path / "clip.mp4", numbered_frames(3, 32, 32))
    data = bytearray(path.read_bytes())
    for at, kind in list(_boxes(bytes(data), 0, len(data))):
        if kind == b"mdhd":  # the track's clock
            struct.pack_into(">I", data, at + 12 + (8 if data[at + 8] == 0 else 16), ticks_a_second)
        elif kind == b"edts":  # no edit list to say otherwise
            data[at + 4 : at + 8] = b"free"
        elif kind == b"stts":  # each frame's duration
            for entry in range(struct.unpack(">I", data[at + 12 : at + 16])[0]):
                struct.pack_into(">I", data, at + 20 + 8 * entry, ticks_a_frame)
    path.write_bytes(data)
    with pytest.raises(UserError, match=said):
        FrameSource(path, Selection(fps=Fraction(16)))


def test_a_frame_of_another_size_than_the_first_is_refused(tmp_path: Path) -> None:
    """A .mov whose header said 64x64 held 16000x16000 pictures: 8 prefetched frames took 6 GB."""
    path = tmp_path / "growing.mov"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=24)
        stream.width = stream.height = 32
        stream.pix_fmt = "rgb24"
        for index, side in enumerate((32, 32, 48)):  # each packet a whole PNG of its own size
            _, png = cv2.imencode(".png", np.full((side, side, 3), 60 * index, np.uint8))
            packet = av.Packet(png.tobytes())
            packet.stream, packet.pts, packet.dts, packet.time_base = stream, index, index, Fraction(1, 24)
            container.mux(packet)
    source = FrameSource(path)
    assert (source.info.width, source.info.height, source.info.frame_count) == (32, 32, 3)
    with pytest.raises(UserError, match="frame 2 is 48x48, but the first is 32x32; a video whose frames"):
        list(source)


def test_writer_leaves_nothing_behind_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError), VideoWriter(path, 24) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
        raise RuntimeError("renderer crashed")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="even frame size"), VideoWriter(path, 24) as writer:
        writer.write(np.zeros((15, 16, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_as_fraction() -> None:
    assert as_fraction(29.97) == Fraction(30000, 1001)
    assert as_fraction("25/2") == Fraction(25, 2)
    assert as_fraction(24) == 24
    with pytest.raises(UserError):
        as_fraction(0)


def _with_hidden_first_frames(path: Path, count: int, fps: int) -> Path:
    """A copy of the mp4 at `path` whose edit list starts `count` frames in, as a cut made with
    `ffmpeg -ss ... -c copy` does: the frames stay in the file, and the header still counts them."""
    data = bytearray(path.read_bytes())
    box = data.find(b"elst")
    assert box > 0 and data[box + 4] == 0  # a version-0 edit list
    timescale = int.from_bytes(data[data.find(b"mdhd") + 16 : data.find(b"mdhd") + 20], "big")
    media_time = box + 16  # after version/flags, entry count, segment duration
    start = int.from_bytes(data[media_time : media_time + 4], "big", signed=True)
    data[media_time : media_time + 4] = (start + count * timescale // fps).to_bytes(4, "big", signed=True)
    cut = path.with_name("cut.mp4")
    cut.write_bytes(bytes(data))
    return cut


def test_frames_an_edit_list_hides_are_not_counted(tmp_path: Path) -> None:
    """A trimmed phone clip: it was refused as truncated (10 frames announced, 7 shown)."""
    cut = _with_hidden_first_frames(write_video(tmp_path / "clip.mp4", numbered_frames(10), fps=10), 3, 10)
    source = FrameSource(cut)
    assert source.info.frame_count == 7
    assert [int(frame[0, 0, 0]) for frame in source] == list(range(3, 10))  # lossless: indices exact


def test_the_default_video_stream_is_read_not_the_first(tmp_path: Path) -> None:
    """A file of two video streams, the second marked default (the one players show)."""
    path = tmp_path / "two.mp4"
    with av.open(str(path), "w") as container:
        streams = []
        for size, disposition in ((16, av.stream.Disposition(0)), (48, av.stream.Disposition.default)):
            stream = container.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
            stream.disposition = disposition
            streams.append(stream)
        for index in range(3):
            for stream in streams:
                picture = np.full((stream.height, stream.width, 3), 60 * index, np.uint8)
                container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        for stream in streams:
            container.mux(stream.encode())
    frames = list(FrameSource(path))
    assert len(frames) == 3 and frames[0].shape == (48, 48, 3)
    assert [int(frame.mean()) // 30 for frame in frames] == [0, 2, 4]
