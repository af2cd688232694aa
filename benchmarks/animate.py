"""Seconds per denoising step and peak memory of the animator, faithful pattern vs our default.

    python benchmarks/animate.py                                  # tiny network, CPU, 48 frames
    python benchmarks/animate.py --config sd15 --size 768x576 --frames 80 --dtype fp16 \
        --modes default,offload                                   # on a GPU: all on it vs model offload

Random weights with the real structure (`--config sd15`: SD-1.5 UNets, SD VAE, DINOv2-large).
Each mode runs in its own process so the CPU peak (max RSS) is its own; on CUDA the peak is
`torch.cuda.max_memory_allocated`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

TINY = {
    "unet": {
        "block_out_channels": [32, 32, 32, 32],
        "layers_per_block": 1,
        "cross_attention_dim": 32,
        "attention_head_dim": 8,
        "norm_num_groups": 8,
    },
    "vae": {"block_out_channels": [8, 16, 16, 16], "layers_per_block": 1, "norm_num_groups": 8},
    "dinov2": {"hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 96},
}
SD15 = {
    "unet": {
        "block_out_channels": [320, 640, 1280, 1280],
        "layers_per_block": 2,
        "cross_attention_dim": 768,
        "attention_head_dim": 8,
        "norm_num_groups": 32,
    },
    "vae": {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "norm_num_groups": 32},
    "dinov2": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
    },
}
UNET_BLOCKS = {
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
}
VAE_BLOCKS = {"down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4}
SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}


def build(config: dict, device: torch.device, dtype: torch.dtype):
    from diffusers import AutoencoderKL
    from transformers import Dinov2Config, Dinov2Model

    from realisdance_cli.animator.network import RealisDanceNet
    from realisdance_cli.animator.pipeline import RealisDancePipeline, zero_snr_ddim

    torch.manual_seed(0)
    with torch.device(device):
        network = RealisDanceNet.build({**config["unet"], **UNET_BLOCKS}, config["dinov2"]["hidden_size"])
        vae = AutoencoderKL(**config["vae"], **VAE_BLOCKS)
        encoder = Dinov2Model(Dinov2Config(**config["dinov2"], patch_size=14))
    network.to(dtype).eval()
    return RealisDancePipeline.from_network(
        network, vae.to(dtype).eval(), encoder.to(dtype).eval(), zero_snr_ddim(SCHEDULER)
    )


def run_mode(args: argparse.Namespace) -> dict:
    from realisdance_cli.animator.pipeline import PoseVideos
    from realisdance_cli.animator.sampling import SamplingOptions

    device = torch.device(args.device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    offload = args.mode == "offload"  # built on the CPU; each part visits the GPU while it runs
    pipeline = build(
        SD15 if args.config == "sd15" else TINY, torch.device("cpu") if offload else device, dtype
    )
    if args.mode in ("default", "offload"):  # as `rdance animate` runs; "nchw": without channels-last
        pipeline.to_channels_last()
    if offload:
        pipeline.enable_model_cpu_offload(device=device)
    height, width = (int(v) for v in args.size.split("x"))
    poses = PoseVideos(*(torch.rand(1, 3, args.frames, height, width) for _ in range(3)))
    ref = torch.rand(1, 3, height, width)
    clip = torch.randn(1, 3, round(height * 5 / 12), round(width * 5 / 12))
    options = SamplingOptions(
        steps=args.steps,
        context=args.context,
        overlap=args.overlap,
        faithful=args.mode == "faithful",
        context_batch=args.context_batch,
        schedule="uniform" if args.mode == "faithful" else "sliding",
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    steps_done: list[float] = []

    def progress(task: str, done: int, total: int | None) -> None:
        steps_done.append(time.perf_counter())

    start = time.perf_counter()
    generator = torch.Generator().manual_seed(0)
    pipeline(
        ref,
        poses,
        clip_image=clip,
        generator=generator,
        output_type="pt",
        progress=progress,
        **options.call_kwargs(),
    )
    total = time.perf_counter() - start
    loop = steps_done[-1] - steps_done[0]  # from the first report (set-up done) to the last window
    peak = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    return {"seconds_per_step": loop / args.steps, "total_seconds": total, "peak_bytes": peak}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=("tiny", "sd15"), default="tiny")
    parser.add_argument("--size", default="128x96", help="HEIGHTxWIDTH of the video")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--context", type=int, default=16)
    parser.add_argument("--overlap", type=int, default=4)
    parser.add_argument("--context-batch", type=int, default=1)
    parser.add_argument("--dtype", default="fp32", choices=("fp16", "bf16", "fp32"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--modes", default="faithful,default", help="of faithful, default, nchw, offload (GPU)"
    )
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode, print JSON
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)))
        return
    results = {}
    modes = args.modes.split(",")
    if "offload" in modes and not args.device.startswith("cuda"):
        modes.remove("offload")
        print("offload: skipped (model offload moves parts to a GPU; this run is on the CPU)")
    for mode in modes:
        command = [sys.executable, __file__, *sys.argv[1:], "--mode", mode]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"animate: {args.config} network, {args.frames} frames at {args.size}, windows of {args.context} "
          f"(overlap {args.overlap}), {args.steps} steps, {args.dtype} on {args.device}")  # fmt: skip
    for mode, r in results.items():
        print(f"  {mode:13} {r['seconds_per_step']:8.3f} s/step   peak {r['peak_bytes'] / 2**30:6.2f} GiB   "
              f"({r['total_seconds']:.1f} s in all)")  # fmt: skip
    if {"faithful", "default"} <= results.keys():
        speedup = results["faithful"]["seconds_per_step"] / results["default"]["seconds_per_step"]
        print(f"  default is {speedup:.2f}x faster per step than the faithful pattern")


if __name__ == "__main__":
    main()
