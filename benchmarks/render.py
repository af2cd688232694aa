"""Frames/s of the SMPL-CS + hands pictures at 768x576 (the golden meshes, posed anew each frame),
with one reused renderer and scene per kind (ours) and with renderers created per frame (the
original). Ours is reported once started (contexts made, shaders compiled: the rate of a long
video) and with its start-up; each figure is the best of `--repeat` runs (this machine is shared
and noisy).

    python benchmarks/render.py [--frames 120] [--size 768x576] [--repeat 3]

Runs on the headless backend `rdance doctor` chooses (RDANCE_GL=osmesa|egl forces one).
Target on a 2-core CPU with OSMesa: at least 20 frames/s.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from realisdance_cli.bodies import load_vertex_colours
from realisdance_cli.renderers.hands import HandRenderer
from realisdance_cli.renderers.smpl_cs import SmplCsRenderer

SHARED = Path(__file__).resolve().parents[2] / "shared"


def frames(golden: np.lib.npyio.NpzFile, count: int, height: int, width: int) -> list[dict[str, np.ndarray]]:
    """The golden body and hands, swaying a little from frame to frame, scaled to the size."""
    scale = width / 768
    body, hands = golden["smplcs_576x768.vertices"], golden["hands_576x768.vertices"]
    out = []
    for index in range(count):
        shift = np.array([0.02 * np.sin(index / 5), 0.0, 0.0], np.float32)
        out.append({
            "body": body + shift,
            "focal": golden["smplcs_576x768.focal"] * scale,
            "princpt": np.array([width / 2, height / 2]),
            "hands": hands + shift,
            "cam_t": golden["hands_576x768.cam_t"],
            "is_right": golden["hands_576x768.is_right"],
            "hand_focal": float(golden["hands_576x768.focal"]) * scale,
        })  # fmt: skip
    return out


def run(poses: list[dict[str, np.ndarray]], golden: np.lib.npyio.NpzFile, colours: np.ndarray,
        height: int, width: int, per_frame: bool) -> tuple[float, float]:  # fmt: skip
    """(frames/s over every frame, frames/s after the first frame)."""

    def make() -> tuple[SmplCsRenderer, HandRenderer]:
        return (
            SmplCsRenderer(height, width, golden["smplcs.faces"], colours),
            HandRenderer(height, width, golden["hands.faces"]),
        )

    start = time.perf_counter()
    body, hands = make()
    for index, pose in enumerate(poses):
        if index == 1:
            started = time.perf_counter()
        if per_frame and index:
            body.close()
            hands.close()
            body, hands = make()
        body.render(pose["body"], pose["focal"], pose["princpt"])
        hands.render(pose["hands"], pose["cam_t"], pose["is_right"], pose["hand_focal"])
    end = time.perf_counter()
    body.close()
    hands.close()
    return len(poses) / (end - start), (len(poses) - 1) / (end - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--size", default="768x576", help="HxW")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    golden = np.load(SHARED / "golden" / "render" / "render_golden.npz")
    colours = load_vertex_colours(SHARED / "fixtures" / "official" / "smplx_color.pt")
    poses = frames(golden, args.frames, height, width)
    ours = [run(poses, golden, colours, height, width, per_frame=False) for _ in range(args.repeat)]
    backend = os.environ.get("PYOPENGL_PLATFORM", "")  # chosen on first use
    fresh = max(
        run(poses[:20], golden, colours, height, width, per_frame=True)[0] for _ in range(args.repeat)
    )
    overall, steady = max(rate for rate, _ in ours), max(rate for _, rate in ours)
    print(f"SMPL-CS + hands at {height}x{width} (HxW), {args.frames} frames, backend {backend}")
    print(f"  ours, started:                   {steady:6.1f} frames/s")
    print(f"  ours, with start-up:             {overall:6.1f} frames/s")
    print(f"  renderers per frame (original):  {fresh:6.1f} frames/s ({steady / fresh:.1f}x slower)")


if __name__ == "__main__":
    main()
