"""`rdance train`: stage 1 or 2 on one process, or many under `accelerate launch`/`torchrun`."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from realisdance_cli.cli.shared import (
    RESUMES,
    Choices,
    WeightsOption,
    choice,
    command,
    console,
    errors,
    progress_bars,
    seed_option,
)
from realisdance_cli.errors import counted

app = typer.Typer()


class RefMode(Choices):
    """Which frame of a clip's video is its reference picture."""

    random = "random"
    first = "first"


class MixedPrecision(Choices):
    """accelerate's mixed-precision modes."""

    no = "no"
    fp16 = "fp16"
    bf16 = "bf16"


class LogWith(Choices):
    """Where losses and learning rates are logged."""

    tensorboard = "tensorboard"
    none = "none"


@command(
    app,
    "train",
    "rdance train data/manifest.jsonl --stage 1 --out runs/s1 --steps 30000",
    "rdance train data/manifest.jsonl --stage 2 --stage1 runs/s1/stage1.safetensors --out runs/s2",
    "rdance train --config configs/stage2_hamer.yaml data/manifest.jsonl --steps 500",
    "rdance train data/manifest.jsonl --out runs/s2 --resume --steps 40000",
)
def train(
    ctx: typer.Context,
    manifest: Annotated[
        Path | None,
        typer.Argument(help="Training set: a manifest (JSON lines) of videos or pictures and their poses."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML settings: these option names, or an original stage1/2_hamer.yaml."),
    ] = None,
    stage: Annotated[int, typer.Option(help="1: image finetuning; 2: motion learning.")] = 2,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: checkpoints and state.")] = Path(
        "run"
    ),
    stage1: Annotated[
        Path | None, typer.Option(help="Stage 2: the stage-1 weights (.safetensors or .ckpt).")
    ] = None,
    motion: Annotated[
        Path | None, typer.Option(help="Stage 2: AnimateDiff motion modules (default: from --weights).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 10_000,
    lr: Annotated[
        float, typer.Option(help="AdamW learning rate (released configs 1e-5, paper 5e-5).")
    ] = 1e-5,
    warmup: Annotated[int, typer.Option(help="Warm-up steps of the constant schedule.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Clips per batch and process.")] = 1,
    accumulate: Annotated[int, typer.Option(help="Batches per optimiser step.")] = 1,
    frames: Annotated[
        int | None, typer.Option(help="Frames per clip (default: 1 in stage 1, 16 in 2).")
    ] = None,
    frame_stride: Annotated[int, typer.Option(help="Source frames between clip frames.")] = 4,
    size: Annotated[str, typer.Option(help="HEIGHTxWIDTH of the training pictures.")] = "768x576",
    ref_mode: Annotated[
        RefMode, choice(RefMode, "--ref-mode", "Reference: a random frame of the video, or the first.")
    ] = RefMode.random,
    cfg_uncond: Annotated[
        float, typer.Option(help="Share of batches without conditions (paper 0.01; released configs 0).")
    ] = 0.01,
    pose_shuffle: Annotated[
        float, typer.Option(help="Stage 2: chance per condition that one pose frame is overwritten.")
    ] = 0.05,
    adam_beta1: Annotated[float, typer.Option(hidden=True)] = 0.9,
    adam_beta2: Annotated[float, typer.Option(hidden=True)] = 0.999,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 1e-2,
    adam_epsilon: Annotated[float, typer.Option(hidden=True)] = 1e-8,
    max_grad_norm: Annotated[float, typer.Option(help="Gradient clipping norm.")] = 1.0,
    mixed_precision: Annotated[
        MixedPrecision, choice(MixedPrecision, "--mixed-precision", "Half-precision training, or no.")
    ] = MixedPrecision.no,
    gradient_checkpointing: Annotated[
        bool,
        typer.Option(
            "--gradient-checkpointing",
            help="Recompute activations in the backward pass: less GPU memory, slower steps.",
        ),
    ] = False,
    ema_decay: Annotated[
        float, typer.Option(help="Keep a moving average of the weights with this decay (0: off).")
    ] = 0.0,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 1000,
    validate_every: Annotated[
        int, typer.Option(help="Steps between validation videos in OUT/validation (0: never).")
    ] = 1000,
    validation_manifest: Annotated[
        Path | None, typer.Option(help="Clips to validate on (default: the training set's first).")
    ] = None,
    validation_ddim_steps: Annotated[int, typer.Option(help="Denoising steps of validation.")] = 25,
    log_with: Annotated[
        LogWith,
        choice(LogWith, "--log-with", "Losses and learning rates to TensorBoard (OUT/logs), or none."),
    ] = LogWith.tensorboard,
    seed: Annotated[int, seed_option("Seed of clips, noise and timesteps.")] = 42,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the run saved in OUT, even with other settings (a new --steps)."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Start over: remove the state and checkpoints in OUT.")
    ] = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Train RealisDance (stage 1 or 2) on one process, or many under `accelerate launch`/`torchrun`.

    Checkpoints go to OUT/stageN.safetensors (ours) and OUT/stageN.ckpt (the original format),
    with --ema-decay also OUT/stageN_ema.*; OUT/state holds what a stopped run needs to continue
    exactly where it was: the same command resumes it, --resume continues it with other settings,
    --force starts over (removing this stage's state, checkpoints, logs and validation videos, and
    nothing else in OUT). Options given here override --config.

    On many GPUs: accelerate launch --multi_gpu -m realisdance_cli train data/manifest.jsonl
    --stage 2 --stage1 s1.ckpt (or torchrun --nproc_per_node N -m realisdance_cli train ...).
    """
    from realisdance_cli.training.config import read_config
    from realisdance_cli.training.job import job_from_settings, run

    settings = {k: v.value if isinstance(v, Enum) else v for k, v in ctx.params.items()}
    if config is not None:
        from_file = read_config(config)
        # (by name: typer vendors its own click)
        given = {k for k in settings if getattr(ctx.get_parameter_source(k), "name", "") != "DEFAULT"}
        settings |= {k: v for k, v in from_file.items() if k not in given}
    job = job_from_settings(settings)
    with progress_bars(RESUMES) as progress:
        losses, digest = run(
            job,
            lambda step, loss: progress("training", step, job.options.steps),
            tell=lambda message: errors.print(escape(message), highlight=False),
            progress=progress,
        )
    rank, folder = os.environ.get("RANK", "0"), escape(str(job.out))
    if not losses:
        console.print(
            f"rank {rank}: {folder} already holds all {counted(job.options.steps, 'step')}; weights {digest}"
        )
        return
    summary = f"{counted(len(losses), 'step')}, last loss {losses[-1]:.4f}; weights {digest}"
    console.print(f"rank {rank}: {summary}; checkpoints in {folder}")
