"""Decode and encode speed of `video.py` and `video_writer.py` on a 1080p clip (frames/s, ms/frame).

    python benchmarks/video_io.py [--frames 120] [--size 1080x1920]

Decoding is part of every extraction's per-frame overhead, encoding of every render.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from realisdance_cli.video import FrameSource
from realisdance_cli.video_writer import VideoWriter


def synthetic_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    """A moving gradient with noise: compresses like real footage, not like a flat colour."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width]
    frames = []
    for index in range(count):
        base = ((x + 8 * index) % 256).astype(np.uint8)
        frame = np.stack([base, (y % 256).astype(np.uint8), 255 - base], axis=-1)
        frame = frame + rng.integers(0, 12, frame.shape, dtype=np.uint8)
        frames.append(frame)
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", default="1080x1920", help="HxW")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    frames = synthetic_frames(args.frames, height, width)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        start = time.perf_counter()
        with VideoWriter(path, 30, crf=18, preset="veryfast") as writer:
            for frame in frames:
                writer.write(frame)
        encode = time.perf_counter() - start
        start = time.perf_counter()
        decoded = sum(1 for _ in FrameSource(path))
        decode = time.perf_counter() - start
    assert decoded == args.frames
    print(f"video I/O, {args.frames} frames at {width}x{height}")
    for label, seconds in (("encode (libx264 veryfast, crf 18)", encode), ("decode to RGB", decode)):
        rate, per_frame = args.frames / seconds, 1000 * seconds / args.frames
        print(f"  {label:34} {rate:7.1f} frames/s  {per_frame:6.2f} ms/frame")


if __name__ == "__main__":
    main()
