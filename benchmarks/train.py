"""Training steps per second and peak memory of one stage-2 (or stage-1) optimiser step, with
random weights of the tiny size or SD-1.5 size; inputs are random latents and poses, so the figure
is the network's (the VAE/DINOv2 encoding of a batch is not included).

    python benchmarks/train.py                                            # tiny, CPU
    python benchmarks/train.py --config sd15 --size 768x576 --frames 16 --dtype bf16 --checkpointing  # GPU
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from animate import SD15, TINY, UNET_BLOCKS

from realisdance_cli.animator.network import RealisDanceNet
from realisdance_cli.training.objective import Batch, diffusion_loss, noise_scheduler
from realisdance_cli.training.stages import select_trainable, without_motion_modules

SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "steps_offset": 1}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=("tiny", "sd15"), default="tiny")
    parser.add_argument("--stage", type=int, default=2)
    parser.add_argument("--size", default="128x96", help="HEIGHTxWIDTH of the pictures")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dtype", default="fp32", choices=("fp16", "bf16", "fp32"))
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    config = SD15 if args.config == "sd15" else TINY
    torch.manual_seed(0)
    with torch.device(device):
        net = RealisDanceNet.build({**config["unet"], **UNET_BLOCKS}, config["dinov2"]["hidden_size"])
    if args.stage == 1:
        without_motion_modules(net)
    if args.checkpointing:
        net.unet_main.enable_gradient_checkpointing()
        net.unet_ref.enable_gradient_checkpointing()
    trainable = [p for _, p in select_trainable(net.train(), args.stage)]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    scheduler = noise_scheduler(SCHEDULER)
    height, width = (int(v) for v in args.size.split("x"))
    b, f, h, w = args.batch, args.frames, height // 8, width // 8
    batch = Batch(
        torch.randn(b, 4, f, h, w, device=device),
        torch.randn(b, 4, h, w, device=device),
        torch.randn(b, 257, config["dinov2"]["hidden_size"], device=device),
        *(torch.rand(b, 3, f, height, width, device=device) for _ in range(3)),
    )
    autocast = device.type == "cuda" and dtype != torch.float32
    times = []
    for _ in range(args.steps + 1):  # the first is warm-up
        start = time.perf_counter()
        timesteps = torch.randint(0, 1000, (b,), device=device)
        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
            loss, _ = diffusion_loss(net, scheduler, batch, torch.randn_like(batch.latents), timesteps)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    per_step = sum(times[1:]) / args.steps
    peak = (
        torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    print(
        f"train stage {args.stage}: {args.config}, {b}x{f} frames at {args.size}, {args.dtype} on {device}"
        f"{', checkpointing' if args.checkpointing else ''}: {1 / per_step:.2f} steps/s "
        f"({per_step:.2f} s/step), peak {peak / 2**30:.2f} GiB"
    )


if __name__ == "__main__":
    main()
