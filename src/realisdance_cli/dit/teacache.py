"""TeaCache (Liu et al., 2024) as RealisDance-DiT's original applies it: when the timestep
modulation has changed little since the last computed step, the transformer blocks are skipped and
their last residual (output - input) is added instead.

The change is the relative L1 distance of the modulation, mapped through a polynomial fitted for
Wan2.1-I2V-14B and accumulated until it reaches the threshold; the first `warmup` steps are
always computed. One `TeaCache` follows one sequence of calls (one branch batch of one window),
one call per denoising step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

# The original's fits for Wan2.1-I2V-14B, by the modulation compared.
COEFFICIENTS = {
    True: (8.10705460e03, 2.13393892e03, -3.72934672e02, 1.66203073e01, -4.17769401e-02),  # timestep_proj
    False: (-114.36346466, 65.26524496, -18.82220707, 4.91518089, -0.23412683),  # temb
}
WARMUP = {True: 5, False: 1}


@dataclass
class TeaCache:
    """The skip state of one branch batch (the original's `cutoff_steps` is the step count, so
    it never applies and is left out)."""

    threshold: float
    use_timestep_proj: bool = True
    step: int = 0
    accumulated: float = 0.0
    skipped: int = 0
    previous_modulation: torch.Tensor | None = field(default=None, repr=False)
    previous_residual: torch.Tensor | None = field(default=None, repr=False)

    def should_compute(self, modulation: torch.Tensor) -> bool:
        """Whether this step runs the blocks; `modulation` is the timestep projection (B, 6, dim),
        or temb (B, dim) without `use_timestep_proj`. Advances the step."""
        step, self.step = self.step, self.step + 1
        previous, self.previous_modulation = self.previous_modulation, modulation.clone()
        if previous is None or self.previous_residual is None or step < WARMUP[self.use_timestep_proj]:
            return True
        change = ((modulation - previous).abs().mean() / previous.abs().mean()).cpu().item()
        self.accumulated += float(np.poly1d(COEFFICIENTS[self.use_timestep_proj])(change))
        if self.accumulated < self.threshold:
            self.skipped += 1
            return False
        self.accumulated = 0.0
        return True

    def remember(self, tokens_in: torch.Tensor, tokens_out: torch.Tensor) -> torch.Tensor:
        """After computed blocks: keeps their residual; returns their output."""
        self.previous_residual = tokens_out - tokens_in
        return tokens_out

    def reuse(self, tokens_in: torch.Tensor) -> torch.Tensor:
        """Instead of the blocks: the input plus the last computed residual."""
        assert self.previous_residual is not None
        return tokens_in + self.previous_residual
