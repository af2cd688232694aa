"""Frames/s of `rdance extract --only dwpose` on a 1080p clip, split into decode, preprocessing,
model time and post-processing, so the framework's own cost per frame is visible.

    python benchmarks/dwpose.py [--frames 48] [--det yolox.onnx --pose dwpose.onnx]

Defaults to the tiny golden models of ../shared/golden/dwpose (same signatures as the real ones).
Target: the time outside the two `session.run` calls stays under 10 ms per 1080p frame.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from realisdance_cli.extraction import ExtractOptions, extract
from realisdance_cli.video import FrameSource, VideoWriter

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden" / "dwpose"


def make_clip(path: Path, frames: int) -> None:
    """The golden person photo on a 1080p canvas, sliding sideways: real detections every frame."""
    person = cv2.imread(str(GOLDEN / "person_960x540.png"))[:, :, ::-1]
    person = cv2.resize(person, (540, 960))
    with VideoWriter(path, 30, crf=18, preset="veryfast") as writer:
        for index in range(frames):
            canvas = np.full((1080, 1920, 3), 40, np.uint8)
            x = 200 + 20 * index
            canvas[60:1020, x : x + 540] = person
            writer.write(canvas)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--det", type=Path, default=GOLDEN / "yolox_tiny.onnx")
    parser.add_argument("--pose", type=Path, default=GOLDEN / "dwpose_tiny.onnx")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        make_clip(clip, args.frames)
        start = time.perf_counter()
        decoded = sum(1 for _ in FrameSource(clip))
        decode = (time.perf_counter() - start) / decoded
        options = ExtractOptions(dwpose_det=args.det, dwpose_pose=args.pose, batch=args.batch, device="cpu")
        start = time.perf_counter()
        _, (summary,) = extract(clip, Path(folder) / "clip.rdance", options)
        wall = time.perf_counter() - start
    per = {name: 1000 * seconds / args.frames for name, seconds in summary.timings.items()}
    overhead = per["preprocess"] + per["postprocess"]
    print(f"DWPose extraction, {args.frames} frames at 1920x1080, models {args.det.name} + {args.pose.name}")
    print(f"  end to end (incl. start-up, hashing, writing): {args.frames / wall:6.1f} frames/s")
    print(f"  decode (own pass; overlapped in extraction):   {1000 * decode:6.2f} ms/frame")
    print(f"  preprocessing (letterbox, crop, normalise):    {per['preprocess']:6.2f} ms/frame")
    print(f"  model (the two session.run calls):             {per['model']:6.2f} ms/frame")
    print(f"  post-processing (decode, NMS, reorder):        {per['postprocess']:6.2f} ms/frame")
    verdict = "meets" if overhead < 10 else "MISSES"
    print(f"  overhead outside session.run: {overhead:.2f} ms/frame ({verdict} the 10 ms target)")


if __name__ == "__main__":
    main()
