"""Frames per second of SMPLer-X (person crop + network), with random weights of the tiny golden
size or of the released H32 size.

    python benchmarks/smplerx.py                                    # tiny, CPU
    python benchmarks/smplerx.py --config h32 --device cuda --dtype fp16 --people 64   # on a GPU
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from batched import network_seconds

from realisdance_cli.devices import resolve_device
from realisdance_cli.extractors.body_estimator import crop_person, process_box
from realisdance_cli.extractors.smplerx.config import SmplerXConfig
from realisdance_cli.extractors.smplerx.network import SmplerX
from realisdance_cli.extractors.vit import ViTConfig

CONFIGS = {
    "tiny": SmplerXConfig(encoder=ViTConfig(embed_dim=64, depth=2, num_heads=4, task_tokens=31)),
    "h32": SmplerXConfig(),  # the released sizes are the defaults
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--people", type=int, default=32, help="one per frame")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    args = parser.parse_args()
    device, dtype = resolve_device(args.device, args.dtype)
    config = CONFIGS[args.config]
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    start = time.perf_counter()
    crops = []
    for x, y in rng.uniform((100, 50), (1400, 200), (args.people, 2)):
        box = process_box(np.array([x, y, 300, 800]), 1920, 1080, config)
        assert box is not None
        crops.append(crop_person(frame, box, config))
    crop_seconds = time.perf_counter() - start

    torch.manual_seed(0)
    model = SmplerX(config).eval().to(device)
    pixels = torch.from_numpy(np.stack(crops))
    net_seconds = network_seconds(model, pixels, args.batch, device, dtype)
    print(
        f"smplerx {args.config} on {device} {str(dtype).removeprefix('torch.')}, {args.people} people, "
        f"batch {args.batch}: crops {args.people / crop_seconds:.1f}/s, "
        f"network {args.people / net_seconds:.1f} frames/s"
    )


if __name__ == "__main__":
    main()
