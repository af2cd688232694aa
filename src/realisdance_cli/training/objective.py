"""The training objective of the authors' `train.py`.

DDPM with zero-SNR rescaled betas and v-prediction: noise a clip at random timesteps, predict the
velocity, and weight each sample's mean squared error by min-SNR (gamma 5; for v-prediction the
weight is min(snr, 5) / (snr + 1), zero at the zero-SNR timestep). Classifier-free-guidance dropout
trains the unconditional branch the sampler uses: zeroed DINOv2 tokens and no reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr
from torch.nn import functional as F

from realisdance_cli.animator.network import RealisDanceNet
from realisdance_cli.animator.pipeline import SCHEDULER_OVERRIDES
from realisdance_cli.training.options import MIN_SNR_GAMMA


def noise_scheduler(config: dict) -> DDPMScheduler:
    """The base model's betas with the RealisDance overrides, as a DDPM training scheduler."""
    return DDPMScheduler.from_config({**config, **SCHEDULER_OVERRIDES})


def min_snr_weights(scheduler: DDPMScheduler, timesteps: torch.Tensor) -> torch.Tensor:
    snr = compute_snr(scheduler, timesteps)
    return torch.clamp(snr, max=MIN_SNR_GAMMA) / (snr + 1)


@dataclass
class Batch:
    """One training batch: latents (B, 4, F, h, w), reference latents (B, 4, h, w), raw DINOv2
    tokens (B, T, C) and the pose videos (B, 3, F, H, W) in [0, 1]."""

    latents: torch.Tensor
    ref_latents: torch.Tensor
    tokens: torch.Tensor
    dwpose: torch.Tensor
    hamer: torch.Tensor
    smpl: torch.Tensor


def diffusion_loss(
    net: RealisDanceNet,
    scheduler: DDPMScheduler,
    batch: Batch,
    noise: torch.Tensor,
    timesteps: torch.Tensor,
    drop: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, per-sample weights). `drop`: the unconditional branch (zeroed tokens, no reference)."""
    noisy = scheduler.add_noise(batch.latents, noise, timesteps)
    target = scheduler.get_velocity(batch.latents, noise, timesteps)
    tokens = torch.zeros_like(batch.tokens) if drop else batch.tokens
    prediction = net(
        noisy,
        batch.ref_latents,
        batch.dwpose,
        batch.hamer,
        batch.smpl,
        timesteps,
        tokens,
        drop_reference=drop,
    )
    weights = min_snr_weights(scheduler, timesteps)
    error = F.mse_loss(prediction.float(), target.float(), reduction="none")
    per_sample = error.mean(dim=tuple(range(1, error.ndim)))
    return (per_sample * weights).mean(), weights
