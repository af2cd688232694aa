"""Hands per second of HaMeR (crop + network), with random weights of the tiny golden size or of
the released ViT-H size.

    python benchmarks/hamer.py                                   # tiny, CPU
    python benchmarks/hamer.py --config vit-h --device cuda --dtype fp16 --hands 256   # on a GPU

The crops are cut from a 1920x1080 frame (hand boxes of 120-200 px, so the anti-alias blur runs)
and timed apart from the network.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from batched import network_seconds

from realisdance_cli.devices import resolve_device
from realisdance_cli.extractors.hamer.config import DecoderConfig, HamerConfig
from realisdance_cli.extractors.hamer.network import Hamer
from realisdance_cli.extractors.hand_estimator import crop_hand
from realisdance_cli.extractors.vit import ViTConfig

CONFIGS = {
    "tiny": HamerConfig(
        backbone=ViTConfig(embed_dim=64, depth=2, num_heads=4),
        decoder=DecoderConfig(depth=2, heads=4, mlp_dim=96, dim_head=16, context_dim=64, dim=64),
    ),
    "vit-h": HamerConfig(backbone=ViTConfig()),  # the released sizes are the defaults
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    parser.add_argument("--hands", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    args = parser.parse_args()
    device, dtype = resolve_device(args.device, args.dtype)
    config = CONFIGS[args.config]
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    corners = rng.uniform((100, 100, 120), (1700, 800, 200), (args.hands, 3))
    boxes = [(x, y, x + w, y + w) for x, y, w in corners]
    start = time.perf_counter()
    crops = [crop_hand(frame, np.array(box), i % 2 == 1, config) for i, box in enumerate(boxes)]
    crop_seconds = time.perf_counter() - start

    torch.manual_seed(0)
    model = Hamer(config).eval().to(device)
    pixels = torch.from_numpy(np.stack([c.pixels for c in crops]))
    net_seconds = network_seconds(model, pixels, args.batch, device, dtype)
    print(
        f"hamer {args.config} on {device} {str(dtype).removeprefix('torch.')}, {args.hands} hands, "
        f"batch {args.batch}: crops {args.hands / crop_seconds:.1f} hands/s, "
        f"network {args.hands / net_seconds:.1f} hands/s"
    )


if __name__ == "__main__":
    main()
