"""Frames/s of the whole `render-poses` job for the two mesh videos (SMPL-CS + hands at 768x576):
posing SMPL-X and MANO, drawing, and H.264 encoding, on a synthetic swaying track of one person
with two hands. Uses the tests' full-size synthetic SMPL-X file and the golden MANO file; the
best of `--repeat` runs (this machine is shared and noisy).

    python benchmarks/render_poses.py [--frames 120] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from body_models import write_smplx  # noqa: E402

from realisdance_cli.rendering import RenderOptions, render_poses  # noqa: E402
from realisdance_cli.track import SourceInfo, Stream, Track  # noqa: E402

MANO = ROOT.parent / "shared" / "golden" / "hamer" / "mano" / "MANO_RIGHT.pkl"
HEIGHT, WIDTH = 768, 576


def person(sway: float) -> dict[str, np.ndarray]:
    zeros = {name: np.zeros((1, 3)) for name in ("jaw_pose", "leye_pose", "reye_pose")}
    return {
        **zeros,
        "global_orient": np.array([[np.pi, 0.0, 0.0]]),
        "body_pose": np.zeros((1, 21, 3)),
        "left_hand_pose": np.zeros((1, 15, 3)),
        "right_hand_pose": np.zeros((1, 15, 3)),
        "betas": np.zeros((1, 10)),
        "expression": np.zeros((1, 10)),
        "transl": np.array([[sway, 0.2, 3.0]]),
        "focal": np.array([[900.0, 900.0]]),
        "princpt": np.array([[WIDTH / 2, HEIGHT / 2]]),
        "bbox": np.zeros((1, 4)),
        "valid": np.array([True]),
    }


def hands(sway: float) -> dict[str, np.ndarray]:
    eye = np.eye(3, dtype=np.float32)
    return {
        "is_right": np.array([True, False]),
        "global_orient": np.broadcast_to(eye, (2, 1, 3, 3)).copy(),
        "hand_pose": np.broadcast_to(eye, (2, 15, 3, 3)).copy(),
        "betas": np.zeros((2, 10)),
        "cam_crop": np.zeros((2, 3)),
        "cam_t_full": np.array([[0.25 + sway, 0.0, 40.0], [-0.25 + sway, 0.0, 40.0]]),
        "focal": np.full(2, 5000 / 256 * max(HEIGHT, WIDTH)),
        "box": np.zeros((2, 4)),
        "valid": np.array([True, True]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        source = SourceInfo("dance.mp4", "0" * 64, WIDTH, HEIGHT, frame_count=args.frames, fps=30)
        track = Track.create(tmp / "dance.rdance", source)
        sways = [0.05 * np.sin(i / 5) for i in range(args.frames)]
        track.write("smplx", Stream.from_frames("smplx", [person(s) for s in sways]), weights={}, options={})
        track.write("mano", Stream.from_frames("mano", [hands(s) for s in sways]), weights={}, options={})
        options = RenderOptions(smplx_model=write_smplx(tmp / "SMPLX_NEUTRAL.npz"), mano_model=MANO)
        rates = []
        for run in range(args.repeat):
            start = time.perf_counter()
            render_poses(track.path, tmp / f"out{run}", options)
            rates.append(args.frames / (time.perf_counter() - start))
    backend = os.environ.get("PYOPENGL_PLATFORM", "")
    print(f"render-poses smpl + hamer at {HEIGHT}x{WIDTH} (HxW), {args.frames} frames, backend {backend}:")
    print(f"  {max(rates):.1f} frames/s (posing, drawing, encoding both videos; best of {args.repeat})")


if __name__ == "__main__":
    main()
