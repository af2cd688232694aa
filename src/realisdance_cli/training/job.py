"""`rdance train`: everything a training run needs, gathered from files, then the loop."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from realisdance_cli import weights
from realisdance_cli.errors import UserError
from realisdance_cli.state_dicts import read_weights
from realisdance_cli.training.data import ClipDataset, ClipSampling, read_manifest
from realisdance_cli.training.loop import Encoders, TrainOptions, train


@dataclass
class TrainJob:
    manifest: Path
    out: Path
    options: TrainOptions = field(default_factory=TrainOptions)
    sampling: ClipSampling = field(default_factory=ClipSampling)
    weights_root: Path | None = None
    stage1: Path | None = None  # stage 2: stage-1 weights, our .safetensors or the original .ckpt
    motion: Path | None = None  # stage 2: AnimateDiff motion modules (default: the registry's)
    resume: bool = False


def _stage1_state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from realisdance_cli.animator.checkpoint import read_original

    if not path.is_file():
        raise UserError(f"the stage-1 checkpoint {path} does not exist.")
    return load_file(path) if path.suffix == ".safetensors" else read_original(path)


def _motion_state(path: Path) -> dict[str, torch.Tensor]:
    raw = read_weights(path, "a motion-module checkpoint", mmap=False)  # AnimateDiff's may predate zip files
    return raw.get("state_dict", raw) if isinstance(raw, dict) else {}


def build_network(job: TrainJob, unet_config: dict[str, Any], token_width: int, root: Path) -> Any:
    from safetensors.torch import load_file

    from realisdance_cli.training.stages import stage1_network, stage2_network

    if job.options.stage == 1:
        base = load_file(weights.require("base-unet", root))
        return stage1_network(unet_config, token_width, base)
    if job.stage1 is None:
        raise UserError("stage 2 starts from stage-1 weights: give --stage1 PATH.")
    motion = job.motion or weights.require("motion-prior", root)
    return stage2_network(unet_config, token_width, _stage1_state(job.stage1), _motion_state(motion))


def weights_digest(net: torch.nn.Module) -> str:
    """A short digest of every parameter, to see that all ranks hold the same network."""
    digest = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def run(job: TrainJob, report: Any = lambda step, loss: None) -> tuple[list[float], str]:
    """Trains; returns the losses of this run's steps and the digest of the final weights."""
    from diffusers import AutoencoderKL
    from transformers import Dinov2Model

    from realisdance_cli.training.objective import noise_scheduler

    root = weights.weights_root(job.weights_root)
    paths = weights.require_all(["base-model", "dinov2"], root)
    base = paths["base-model"]
    unet_config = json.loads((base / "unet" / "config.json").read_text())
    encoder = Dinov2Model.from_pretrained(paths["dinov2"])
    net = build_network(job, unet_config, encoder.config.hidden_size, root)
    encoders = Encoders(AutoencoderKL.from_pretrained(base / "vae"), encoder)
    scheduler = noise_scheduler(json.loads((base / "scheduler" / "scheduler_config.json").read_text()))
    dataset = ClipDataset(read_manifest(job.manifest, job.sampling.span), job.sampling, job.options.seed)
    config = {"unet": unet_config, "token_width": encoder.config.hidden_size}
    losses = train(net, encoders, scheduler, dataset, job.options, job.out, config, job.resume, report)
    return losses, weights_digest(net)
