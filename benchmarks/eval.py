"""Videos scored per minute by `rdance eval` under DisCo's protocol, 16-frame 512x512 clips.

    python benchmarks/eval.py                        # CPU, every metric, 4 videos
    python benchmarks/eval.py --device cuda --videos 16
    python benchmarks/eval.py --metrics ssim,psnr,lpips,fid

The feature networks have the released structure with random weights (their cost is their
structure's): FID's InceptionV3, LPIPS's VGG16, FVD's I3D, FID-VID's 3-D ResNet-50 and DINOv2-large
(identity). Pose fidelity runs DWPose through ONNX Runtime with the tiny golden models of
../shared/golden/dwpose (the real DWPose-l costs what benchmarks/dwpose.py measures with its
files); a pose-free figure is printed too. Each video is compared with a truth of its own, both
measured (a truth is measured once whatever the number of methods): per video, 2 x 16 frames
through Inception and DINOv2, 16 LPIPS pairs, 2 x 1 clip through I3D and the ResNet, DWPose on
2 x 16 frames. The clock runs from the call to the table written, networks loaded included once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from eval_models import write_eval_networks  # noqa: E402

from realisdance_cli.evaluation import METRICS  # noqa: E402
from realisdance_cli.evaluation.job import EvalOptions, evaluate  # noqa: E402
from realisdance_cli.video_writer import VideoWriter  # noqa: E402

GOLDEN = ROOT.parent / "shared" / "golden"
FRAMES, SIZE = 16, 512


def write_weights(root: Path) -> None:
    """Every evaluation network at its registry path, random weights of the released structure
    (the tests' networks, DINOv2 at the size of the released large one)."""
    from transformers import Dinov2Config, Dinov2Model

    write_eval_networks(root)
    large = Dinov2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, image_size=518)
    Dinov2Model(large).save_pretrained(root / "dinov2-large")
    for name, relative in (("yolox_tiny.onnx", "yolox_l.onnx"), ("dwpose_tiny.onnx", "dw-ll_ucoco_384.onnx")):
        (root / "dwpose").mkdir(exist_ok=True)
        (root / "dwpose" / relative).symlink_to(GOLDEN / "dwpose" / name)


def write_videos(folder: Path, videos: int) -> tuple[Path, Path]:
    """`videos` truth clips (the golden person photo sliding through a 512x512 window) and
    generated ones (the same with noise), matched by name."""
    person = cv2.imread(str(GOLDEN / "dwpose" / "person_960x540.png"))[:, :, ::-1]
    rng = np.random.default_rng(0)
    for index in range(videos):
        for side, noise in (("truth", 0.0), ("generated", 12.0)):
            with VideoWriter(folder / side / f"{index:03d}.mp4", 16) as writer:
                for frame in range(FRAMES):
                    top = 40 + 8 * frame + 3 * index
                    window = person[top : top + 540, :].astype(np.float64)
                    picture = cv2.resize(window, (SIZE, SIZE)) + rng.normal(0, noise, (SIZE, SIZE, 3))
                    writer.write(np.clip(picture, 0, 255).astype(np.uint8))
    return folder / "generated", folder / "truth"


def score(generated: Path, truth: Path, weights: Path, metrics: list[str], device: str, out: Path) -> float:
    start = time.perf_counter()
    options = EvalOptions(metrics=metrics, device=device, weights_root=weights)
    evaluate([generated], truth, out, options)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=4)
    # hands3d needs HaMeR and the licence-gated MANO: not built here (benchmarks/hamer.py times HaMeR)
    parser.add_argument("--metrics", default=",".join(m for m in METRICS if m != "hands3d"))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    metrics = args.metrics.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        write_weights(folder / "weights")
        generated, truth = write_videos(folder, args.videos)
        print(f"{args.videos} videos of {FRAMES} frames at {SIZE}x{SIZE}, device {args.device}, "
              f"{torch.get_num_threads()} threads")  # fmt: skip
        runs = [("every metric asked", metrics)]
        posefree = [m for m in metrics if m not in ("pose", "smoothness")]
        if posefree != metrics:
            runs.append(("without pose and smoothness (DWPose)", posefree))
        for label, chosen in runs:
            seconds = score(generated, truth, folder / "weights", chosen, args.device, folder / label[:5])
            print(f"{label}: {seconds:.1f} s, {60 * args.videos / seconds:.2f} videos/minute")


if __name__ == "__main__":
    main()
