"""The settings of a training run's steps, apart from the loop, so that `rdance train` checks them
without loading the loop's libraries (diffusers alone takes seconds)."""

from __future__ import annotations

from dataclasses import dataclass

MIN_SNR_GAMMA = 5.0  # the loss weights min(snr, gamma) / (snr + 1), as the released configs' snr_gamma
VALIDATION_GUIDANCE = 2.0  # as the released configs' validation_kwargs.guidance_scale


@dataclass(frozen=True)
class TrainOptions:
    stage: int = 2
    steps: int = 10_000
    learning_rate: float = 1e-5  # the released configs; the paper says 5e-5
    warmup_steps: int = 0
    batch_size: int = 1
    accumulate: int = 1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    cfg_uncond_ratio: float = 0.01  # the paper's 1 %; the released configs turn it off (0)
    pose_shuffle_ratio: float = 0.05  # stage 2 only
    mixed_precision: str = "no"  # no | fp16 | bf16
    gradient_checkpointing: bool = False
    ema_decay: float = 0.0  # 0: no moving average
    checkpoint_every: int = 1000
    validate_every: int = 1000  # with validation clips given; 0: never
    validation_ddim_steps: int = 25
    log_with: str = "tensorboard"  # or "none"
    seed: int = 42
    workers: int = 0
