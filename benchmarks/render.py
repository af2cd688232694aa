"""Frames/s of the SMPL-CS + hands pictures at 768x576 (the golden meshes, posed anew each frame),
with one reused renderer and scene (ours) and with a renderer created per frame (the original).

    python benchmarks/render.py [--frames 60] [--size 768x576]

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
from realisdance_cli.renderers.scene import offscreen_renderer
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
        height: int, width: int, per_frame: bool) -> float:  # fmt: skip
    def make() -> tuple[SmplCsRenderer, HandRenderer]:
        shared = offscreen_renderer(height, width)
        return (
            SmplCsRenderer(height, width, golden["smplcs.faces"], colours, renderer=shared),
            HandRenderer(height, width, golden["hands.faces"], renderer=shared),
        )

    start = time.perf_counter()
    body, hands = make()
    for pose in poses:
        if per_frame:
            body.scene.renderer.delete()
            body, hands = make()
        body.render(pose["body"], pose["focal"], pose["princpt"])
        hands.render(pose["hands"], pose["cam_t"], pose["is_right"], pose["hand_focal"])
    body.scene.renderer.delete()
    return len(poses) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="768x576", help="HxW")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    golden = np.load(SHARED / "golden" / "render" / "render_golden.npz")
    colours = load_vertex_colours(SHARED / "fixtures" / "official" / "smplx_color.pt")
    poses = frames(golden, args.frames, height, width)
    reused = run(poses, golden, colours, height, width, per_frame=False)
    backend = os.environ.get("PYOPENGL_PLATFORM", "")  # chosen on first use
    fresh = run(poses, golden, colours, height, width, per_frame=True)
    print(f"SMPL-CS + hands at {height}x{width} (HxW), {args.frames} frames, backend {backend}")
    print(f"  one renderer and scene reused (ours): {reused:6.1f} frames/s")
    print(f"  a renderer per frame (the original):  {fresh:6.1f} frames/s ({reused / fresh:.1f}x slower)")


if __name__ == "__main__":
    main()
