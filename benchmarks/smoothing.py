"""How much `render-poses --smooth` steadies a noisy track, and what it costs in accuracy.

    python benchmarks/smoothing.py [--frames 240] [--fps 30]

Keypoints: the synthetic dancer (true positions known) with Gaussian noise. Rotations: smoothly
turning joints with random rotational noise, one of them turning through +-180 degrees, where
filtering axis-angle components (instead of on the rotation manifold) breaks down.
Jitter is the mean size of the frame-to-frame acceleration; error is the distance to the truth.
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.spatial.transform import Rotation

from realisdance_cli.smoothing import KEYPOINTS, PARAMETERS, smooth_rotations, smooth_vectors
from realisdance_cli.synthetic import dancer_frame


def keypoint_case(frames: int, fps: float, noise: float, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    truth = np.stack([dancer_frame(t / fps, 768, 576, rng)[0][0, :18] for t in range(frames)])
    noisy = truth + rng.normal(0, noise, truth.shape)
    smoothed = smooth_vectors(noisy / 768, fps, np.ones(truth.shape[:2]), KEYPOINTS) * 768

    def jitter(x: np.ndarray) -> float:
        return float(np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean())

    def error(x: np.ndarray) -> float:
        return float(np.linalg.norm(x - truth, axis=-1).mean())

    return {"jitter_before": jitter(noisy), "jitter_after": jitter(smoothed), "jitter_truth": jitter(truth),
            "error_before": error(noisy), "error_after": error(smoothed)}  # fmt: skip


def rotation_case(frames: int, fps: float, noise_deg: float, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    angles = np.stack(
        [0.6 * np.sin(1.5 * t), 0.4 * np.cos(2.0 * t), np.pi + 0.5 * np.sin(t)], 1
    )  # joint 2 wraps
    truth = Rotation.from_rotvec(np.stack([angles * np.eye(3)[k] for k in range(3)], 1).reshape(-1, 3))
    jolts = Rotation.from_rotvec(rng.normal(0, np.radians(noise_deg) / np.sqrt(3), (frames * 3, 3)))
    noisy = (truth * jolts).as_matrix().reshape(frames, 3, 3, 3)
    smoothed = smooth_rotations(noisy, fps, np.ones(frames), PARAMETERS)
    naive = Rotation.from_rotvec(  # per axis-angle component, for comparison
        smooth_vectors(Rotation.from_matrix(noisy.reshape(-1, 3, 3)).as_rotvec().reshape(frames, 3, 3),
                       fps, np.ones((frames, 3)), PARAMETERS).reshape(-1, 3))  # fmt: skip
    truth_m = truth.as_matrix().reshape(frames, 3, 3, 3)

    def error(matrices: np.ndarray) -> float:
        relative = Rotation.from_matrix(matrices.reshape(-1, 3, 3)).inv() * Rotation.from_matrix(
            truth_m.reshape(-1, 3, 3)
        )
        return float(np.degrees(relative.magnitude()).mean())

    def jitter(matrices: np.ndarray) -> float:
        steps = Rotation.from_matrix(matrices[:-1].reshape(-1, 3, 3)).inv() * Rotation.from_matrix(
            matrices[1:].reshape(-1, 3, 3)
        )
        speed = steps.as_rotvec().reshape(frames - 1, 3, 3)
        return float(np.degrees(np.linalg.norm(speed[1:] - speed[:-1], axis=-1)).mean())

    return {"jitter_before": jitter(noisy), "jitter_after": jitter(smoothed), "jitter_truth": jitter(truth_m),
            "error_before": error(noisy), "error_after": error(smoothed),
            "error_componentwise": error(naive.as_matrix().reshape(frames, 3, 3, 3))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    points = keypoint_case(args.frames, args.fps, noise=3.0)
    turns = rotation_case(args.frames, args.fps, noise_deg=3.0)
    print(f"One-Euro smoothing, {args.frames} frames at {args.fps:g} fps")
    print(f"  settings: keypoints {KEYPOINTS}, parameters {PARAMETERS}")
    for label, case, unit in (
        ("keypoints, 3 px noise", points, "px"),
        ("rotations, 3 deg noise", turns, "deg"),
    ):
        print(
            f"  {label}: jitter {case['jitter_before']:.2f} -> {case['jitter_after']:.2f} {unit} "
            f"(truth {case['jitter_truth']:.2f}); error to the truth {case['error_before']:.2f} -> "
            f"{case['error_after']:.2f} {unit}"
        )
    print(
        f"  rotations filtered per axis-angle component instead: error {turns['error_componentwise']:.2f} deg"
    )


if __name__ == "__main__":
    main()
