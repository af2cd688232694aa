"""Seconds per denoising step and peak memory of RealisDance-DiT, by compute pattern and placement.

    python benchmarks/dit.py                       # tiny network, CPU: faithful, default, teacache
    python benchmarks/dit.py --config 14b --steps 2 --modes default,group,fp8,group+fp8,faithful  # GPU

Modes:
  faithful   the original's compute pattern: every call re-encodes the conditions, the
             unconditional branch is a call of its own (`faithful=True`)
  default    ours: the conditions encoded once per video, both guidance branches as one batch
  teacache   default with TeaCache at --teacache-threshold (its first 5 steps always compute;
             it skips when the timestep modulation changes little, which random weights' does
             not: expect no skips without the release's weights)
  fp8        the transformer's weights stored as float8_e4m3fn and computed in --dtype, layer by
             layer (diffusers' `enable_layerwise_casting`)
  offload    diffusers' `enable_model_cpu_offload`: each model comes to the GPU whole while it runs
  group      the transformer's layers come to the GPU just ahead of use, on a CUDA stream
             (diffusers' `enable_group_offload`, leaf level), CLIP and the VAE whole while they run
  group+fp8  both
offload, group and group+fp8 need CUDA. The placements are `rdance animate`'s own (`dit.job.place`).

Random weights with the real structure: `--config tiny` is the golden tiny network (../shared/
golden/dit/CASES.json), `--config 14b` Wan2.1-I2V-14B's transformer (40 layers, 40 heads x 128,
FFN 13824: 16.4B parameters with the CLIP keys and values and the pose and reference inputs), the
Wan VAE (0.13B) and CLIP ViT-H/14 (0.63B), built on --device in --dtype (the transformer; the VAE
and CLIP in float32, with the transformer's `_keep_in_fp32_modules` as `from_pretrained` keeps
them), so the 14B network takes seconds, not the minutes a CPU build would; the build is timed
on its own. The UMT5-XXL text encoder is not built: the prompt and negative prompt come as random
embeddings (1, 512, 4096), what the encoder hands the pipeline once per video before any
denoising (with model offload it would visit the GPU alone, 11 GB in bf16, then leave).

Each mode runs in its own process so its peaks are its own, in three phases: encode (the call's
start to the first step: the VAE encodes the reference and both pose videos, CLIP the reference),
denoise (the steps), decode (the VAE decodes the latents, timed on its own). Peaks are
`torch.cuda.max_memory_allocated` on CUDA, the peak resident set (VmHWM) on the CPU. Seconds per
step are the median of the steps after the first (warm-up; group offload also traces the layer
order then) when there are two or more. A mode that fails prints its error and the others still run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler
from transformers import CLIPVisionConfig, CLIPVisionModel

from realisdance_cli.dit.job import place
from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline
from realisdance_cli.dit.transformer import RealisDanceDiT

TINY_TRANSFORMER = {
    "num_attention_heads": 2,
    "attention_head_dim": 24,
    "text_dim": 32,
    "freq_dim": 32,
    "ffn_dim": 64,
    "num_layers": 2,
    "image_dim": 32,
    "added_kv_proj_dim": 48,
}
WAN_14B_TRANSFORMER = {
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
    "image_dim": 1280,
    "added_kv_proj_dim": 5120,
}
TRANSFORMER = {  # the rest of the config, as the release's
    "patch_size": (1, 2, 2),
    "in_channels": 36,
    "out_channels": 16,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "rope_max_seq_len": 1024,
    "add_cond_in_dim": 32,
    "attn_cond_in_dim": 16,
}
TINY_VAE = {"base_dim": 8, "z_dim": 16, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1}
TINY_CLIP = {
    "hidden_size": 32,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "hidden_act": "quick_gelu",
}
CLIP_VIT_H = {
    "hidden_size": 1280,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "intermediate_size": 5120,
    "hidden_act": "gelu",
}
SCHEDULER = {  # the release's UniPC with flow sigmas
    "prediction_type": "flow_prediction",
    "use_flow_sigmas": True,
    "num_train_timesteps": 1000,
    "flow_shift": 5.0,
    "solver_order": 2,
    "solver_type": "bh2",
    "predict_x0": True,
    "lower_order_final": True,
    "final_sigmas_type": "zero",
    "timestep_spacing": "linspace",
}
TEXT_TOKENS = 512  # the pipeline's max_sequence_length: the prompt is zero-padded to it


@dataclass(frozen=True)
class Config:
    """One network size and the run its figures are usually wanted for."""

    transformer: dict[str, Any]
    vae: dict[str, Any]  # over AutoencoderKLWan's defaults (the release's VAE)
    clip: dict[str, Any]
    size: str
    frames: int
    steps: int
    dtype: str


CONFIGS = {
    "tiny": Config(TINY_TRANSFORMER, TINY_VAE, TINY_CLIP, size="128x128", frames=17, steps=8, dtype="fp32"),
    "14b": Config(WAN_14B_TRANSFORMER, {}, CLIP_VIT_H, size="768x768", frames=81, steps=3, dtype="bf16"),
}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
MODES = ("faithful", "default", "teacache", "fp8", "offload", "group", "group+fp8")
CUDA_ONLY = ("offload", "group", "group+fp8")
GOAL_PEAK = 24 * 2**30  # the goals: 81 frames at 768x768 in 24 GB ...
GOAL_SLOWDOWN = 1.2  # ... at most 1.2x the all-on-GPU time per step ...
GOAL_SPEEDUP = 1.3  # ... and the default at least 1.3x faster per step than the faithful pattern


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """New parameters born in `dtype`: the 14B transformer never exists in float32."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def keep_in_fp32(model: torch.nn.Module, names: list[str]) -> None:
    """Parameters under a module named in `names` back to float32, as `from_pretrained` keeps them."""
    for name, parameter in model.named_parameters():
        if any(part in names for part in name.split(".")):
            parameter.data = parameter.data.float()


def build(config: Config, device: torch.device, dtype: torch.dtype) -> RealisDanceDiTPipeline:
    """The pipeline with random weights, on `device` (default initialisation, on that device)."""
    torch.manual_seed(0)
    with torch.device(device):
        with default_dtype(dtype):
            transformer = RealisDanceDiT(**TRANSFORMER, **config.transformer)
        vae = AutoencoderKLWan(**config.vae)
        clip = CLIPVisionModel(CLIPVisionConfig(**config.clip, patch_size=14, image_size=224))
    keep_in_fp32(transformer, transformer._keep_in_fp32_modules)
    scheduler = UniPCMultistepScheduler(**SCHEDULER)
    pipeline = RealisDanceDiTPipeline(None, None, clip.eval(), transformer.eval(), vae.eval(), scheduler)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


class Peak:
    """The peak memory since the last `reset`: allocated on CUDA, resident (VmHWM, Linux) on the CPU."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets the resident high-water mark

    def read(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        status = Path("/proc/self/status").read_text()
        kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(kilobytes) * 1024


def run_mode(args: argparse.Namespace) -> dict:
    """Builds, places and runs one mode; its figures."""
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    config = CONFIGS[args.config]
    meter = Peak(device)
    start = time.perf_counter()
    pipeline = build(config, device, dtype)
    offload = {"offload": "model", "group": "group", "group+fp8": "group"}.get(args.mode, "none")
    place(pipeline, offload, device, dtype, fp8=args.mode in ("fp8", "group+fp8"))
    meter.sync()
    build_seconds = time.perf_counter() - start

    height, width = (int(side) for side in args.size.split("x"))
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 1, height, width, generator=generator) * 2 - 1
    smpl, hamer = (
        torch.randint(0, 256, (1, 3, args.frames, height, width), generator=generator, dtype=torch.uint8)
        for _ in range(2)
    )
    text_dim = config.transformer["text_dim"]
    prompt, negative = (torch.randn(1, TEXT_TOKENS, text_dim, generator=generator) for _ in range(2))
    stamps: list[float] = []
    peaks: dict[str, int] = {}

    def progress(task: str, done: int, total: int | None) -> None:
        if task != "denoising":
            return
        meter.sync()
        stamps.append(time.perf_counter())
        if done == 0:  # set-up done, the steps begin
            peaks["encode"] = meter.read()
            meter.reset()

    meter.reset()
    start = time.perf_counter()
    output = pipeline(
        image,
        smpl,
        hamer,
        prompt_embeds=prompt,
        negative_prompt_embeds=negative,
        max_resolution=args.max_res or height * width,
        num_inference_steps=args.steps,
        generator=generator,
        output_type="latent",
        teacache_threshold=args.teacache_threshold if args.mode == "teacache" else None,
        faithful=args.mode == "faithful",
        progress=progress,
    )
    latents = output.frames
    meter.sync()
    peaks["denoise"] = meter.read()
    meter.reset()
    decode_start = time.perf_counter()
    pipeline.decode(latents)
    meter.sync()
    decode_seconds = time.perf_counter() - decode_start
    peaks["decode"] = meter.read()

    steps = [after - before for before, after in itertools.pairwise(stamps)]
    return {
        "seconds_per_step": statistics.median(steps[1:] or steps),
        "first_step_seconds": steps[0],
        "encode_seconds": stamps[0] - start,
        "decode_seconds": decode_seconds,
        "build_seconds": build_seconds,
        "peak_bytes": peaks,
        "reserved_bytes": torch.cuda.max_memory_reserved(device) if device.type == "cuda" else None,
        "teacache_skipped": output.teacache_skipped,
        "size": [side * pipeline.spatial_factor for side in latents.shape[-2:]],
        "latent_frames": latents.shape[2],
    }


def run_all(args: argparse.Namespace, modes: list[str]) -> dict[str, dict]:
    """Each mode in a process of its own, the modes in turn --repeat times, each mode's fastest
    run kept (on a shared machine the others' load comes and goes); a failure is kept as its
    error's last line and not repeated."""
    results: dict[str, dict] = {}
    for round_ in range(1, args.repeat + 1):
        for mode in [mode for mode in modes if "error" not in results.get(mode, {})]:
            command = [sys.executable, __file__, *sys.argv[1:], "--mode", mode]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                error = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
                results[mode] = {"error": error}
                print(f"  {mode}: failed: {error}", flush=True)
            else:
                result = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"  {mode} (run {round_}): {result['seconds_per_step']:.3f} s/step", flush=True)
                if mode not in results or result["seconds_per_step"] < results[mode]["seconds_per_step"]:
                    results[mode] = result
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
    return results


def gib(count: int) -> str:
    return f"{count / 2**30:6.2f}"


def table(results: dict[str, dict]) -> None:
    print(f"  {'mode':10} {'s/step':>8} {'1st step':>8} {'encode s':>8} {'decode s':>8}   "
          f"{'peak GiB: encode':>16} {'denoise':>7} {'decode':>7}   {'build s':>7}")  # fmt: skip
    for mode, r in results.items():
        if "error" in r:
            print(f"  {mode:10} failed: {r['error']}")
            continue
        peaks = r["peak_bytes"]
        skipped = f"   TeaCache skipped {r['teacache_skipped']}" if mode == "teacache" else ""
        print(f"  {mode:10} {r['seconds_per_step']:8.3f} {r['first_step_seconds']:8.3f} "
              f"{r['encode_seconds']:8.2f} {r['decode_seconds']:8.2f}   {gib(peaks['encode']):>16} "
              f"{gib(peaks['denoise']):>7} {gib(peaks['decode']):>7}   "
              f"{r['build_seconds']:7.1f}{skipped}")  # fmt: skip


def goals(args: argparse.Namespace, results: dict[str, dict]) -> None:
    """The issue's goals next to the figures that answer them."""
    ok = {mode: r for mode, r in results.items() if "error" not in r}
    print("goals (issue 15):")
    if {"faithful", "default"} <= ok.keys():
        speedup = ok["faithful"]["seconds_per_step"] / ok["default"]["seconds_per_step"]
        verdict = "met" if speedup >= GOAL_SPEEDUP else "NOT met"
        print(f"  default >= {GOAL_SPEEDUP}x faster per step than faithful: {speedup:.2f}x, {verdict}")
    if "teacache" in ok and args.steps <= 5:
        print("  (TeaCache computes its first 5 steps; give --steps above 5 to see it skip)")
    size = ok[next(iter(ok))]["size"] if ok else None
    if size and (args.frames != 81 or size[0] * size[1] != 768 * 768 or not args.device.startswith("cuda")):
        print(f"  (the memory goal is for 81 frames at 768x768 on a GPU; this run: {args.frames} frames "
              f"at {size[0]}x{size[1]} on {args.device})")  # fmt: skip
    for mode in ("fp8", "offload", "group", "group+fp8"):
        if mode not in ok or "default" not in ok:
            continue
        peak = max(ok[mode]["peak_bytes"].values())
        slowdown = ok[mode]["seconds_per_step"] / ok["default"]["seconds_per_step"]
        verdict = "met" if peak <= GOAL_PEAK and slowdown <= GOAL_SLOWDOWN else "NOT met"
        print(f"  {mode}: peak {gib(peak).strip()} GiB (goal <= 24), {slowdown:.2f}x the default's "
              f"s/step (goal <= {GOAL_SLOWDOWN}x): {verdict}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=tuple(CONFIGS), default="tiny")
    parser.add_argument("--modes", default="faithful,default,teacache", help=f"of {', '.join(MODES)}")
    parser.add_argument("--frames", type=int, help="pose video frames (tiny: 17, 14b: 81)")
    parser.add_argument("--size", help="HEIGHTxWIDTH of the pose videos and the reference "
                        "(tiny: 128x128, 14b: 768x768)")  # fmt: skip
    parser.add_argument("--max-res", type=int, help="pixels of the output, in the videos' aspect "
                        "(default: --size's area)")  # fmt: skip
    parser.add_argument("--steps", type=int, help="denoising steps (tiny: 8, 14b: 3)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), help="the transformer's (tiny: fp32, 14b: bf16)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--teacache-threshold", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode; the fastest is kept")
    parser.add_argument("--json", help="also write the figures to this file, after each run")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode, print JSON
    args = parser.parse_args()
    config = CONFIGS[args.config]
    args.frames = args.frames or config.frames
    args.size = args.size or config.size
    args.steps = args.steps or config.steps
    args.dtype = args.dtype or config.dtype
    if args.mode:
        print(json.dumps(run_mode(args)))
        return
    modes = args.modes.split(",")
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        parser.error(f"unknown modes {', '.join(unknown)}; the modes are {', '.join(MODES)}")
    if not args.device.startswith("cuda"):
        for mode in [mode for mode in modes if mode in CUDA_ONLY]:
            modes.remove(mode)
            print(f"{mode}: skipped (it moves models to a CUDA GPU; this run is on {args.device})")
    print(f"dit: {args.config} network, {args.frames} frames from {args.size} videos "
          f"(max-res {args.max_res or 'as the videos'}), {args.steps} steps, {args.dtype} on {args.device}; "
          f"prompt as random embeddings (1, {TEXT_TOKENS}, {config.transformer['text_dim']}), "
          "no text encoder", flush=True)  # fmt: skip
    results = run_all(args, modes)
    table(results)
    goals(args, results)
    print(json.dumps({"settings": {k: v for k, v in vars(args).items() if k != "mode"}, "results": results}))


if __name__ == "__main__":
    main()
