"""Frames/s of `rdance extract --only dwpose` on a 1080p clip, split into decode, preprocessing,
model time and post-processing, so the framework's own cost per frame is visible.

    python benchmarks/dwpose.py [--frames 48] [--det yolox.onnx --pose dwpose.onnx]

Defaults to the tiny golden models of ../shared/golden/dwpose (same signatures as the real ones).
Target: the time outside the two `session.run` calls stays under 10 ms per 1080p frame.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from realisdance_cli.extraction import ExtractOptions, extract
from realisdance_cli.extractors.dwpose.solution import DWPose, to_openpose
from realisdance_cli.video import FrameSource
from realisdance_cli.video_writer import VideoWriter

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "golden" / "dwpose"


def make_clip(path: Path, frames: int) -> None:
    """The golden person photo on a 1080p canvas, sliding sideways: real detections every frame."""
    person = cv2.imread(str(GOLDEN / "person_960x540.png"))[:, :, ::-1]
    person = cv2.resize(person, (540, 960))
    with VideoWriter(path, 30, crf=18, preset="veryfast") as writer:
        for index in range(frames):
            canvas = np.full((1080, 1920, 3), 40, np.uint8)
            x = 100 + (12 * index) % 1200  # slides right, then starts again
            canvas[60:1020, x : x + 540] = person
            writer.write(canvas)


def step_times(clip: Path, det: Path, pose: Path) -> dict[str, float]:
    """Median ms per frame of each step, one frame at a time on one thread (batch 1)."""
    model = DWPose(det, pose, device="cpu", batch=1)
    detector, pose_model = model.detector, model.pose
    rows = []
    for frame in FrameSource(clip):
        t0 = time.perf_counter()
        tensor, ratio = detector.preprocess(frame)
        t1 = time.perf_counter()
        output = detector.inference(tensor)
        t2 = time.perf_counter()
        boxes = detector.postprocess(output, ratio)
        t3 = time.perf_counter()
        patches, placements = pose_model.preprocess([(frame, boxes[0])])
        t4 = time.perf_counter()
        outputs = pose_model.inference(patches)
        t5 = time.perf_counter()
        to_openpose(*pose_model.postprocess(outputs, placements))
        t6 = time.perf_counter()
        rows.append(
            {"preprocess": t1 - t0 + t4 - t3, "model": t2 - t1 + t5 - t4, "postprocess": t3 - t2 + t6 - t5}
        )
    return {name: 1000 * statistics.median(row[name] for row in rows) for name in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--repeat", type=int, default=3, help="end-to-end runs; the median is shown")
    parser.add_argument("--det", type=Path, default=GOLDEN / "yolox_tiny.onnx")
    parser.add_argument("--pose", type=Path, default=GOLDEN / "dwpose_tiny.onnx")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        make_clip(clip, args.frames)
        decode_times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            decoded = sum(1 for _ in FrameSource(clip))
            decode_times.append(1000 * (time.perf_counter() - start) / decoded)
        steps = step_times(clip, args.det, args.pose)
        options = ExtractOptions(
            stages=["dwpose"], dwpose_det=args.det, dwpose_pose=args.pose, batch=args.batch, device="cpu"
        )
        rates = []
        for run in range(args.repeat):
            start = time.perf_counter()
            extract(clip, Path(folder) / f"run{run}.rdance", options)
            rates.append(args.frames / (time.perf_counter() - start))
    overhead = steps["preprocess"] + steps["postprocess"]
    print(f"DWPose on {args.frames} frames at 1920x1080, models {args.det.name} + {args.pose.name}")
    print(f"  rdance extract end to end, pose batch {args.batch} (median of {args.repeat}, incl. start-up,")
    print(
        f"    hashing and writing; decoding overlapped in a thread): {statistics.median(rates):6.1f} frames/s"
    )
    print("  per frame, one at a time (medians):")
    print(f"    decode to RGB:                             {statistics.median(decode_times):6.2f} ms")
    print(f"    preprocessing (letterbox, crop, normalise): {steps['preprocess']:6.2f} ms")
    print(f"    model (the two session.run calls):          {steps['model']:6.2f} ms")
    print(f"    post-processing (boxes, NMS, SimCC, neck):  {steps['postprocess']:6.2f} ms")
    verdict = "meets" if overhead < 10 else "MISSES"
    print(f"  framework overhead outside session.run: {overhead:.2f} ms/frame ({verdict} the 10 ms target)")


if __name__ == "__main__":
    main()
