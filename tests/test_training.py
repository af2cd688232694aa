"""Training: the golden loss step, the stages' trainable sets and inflation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import GOLDEN, need
from safetensors.torch import load_file

from realisdance_cli.animator.checkpoint import load_network
from realisdance_cli.training.objective import Batch, diffusion_loss, noise_scheduler

TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
CASE = GOLDEN / "animator"


@pytest.fixture(scope="module")
def unet_config() -> dict:
    return json.loads((need(CASE) / "tiny_sd" / "unet" / "config.json").read_text())


@pytest.fixture(scope="module")
def scheduler_config() -> dict:
    return json.loads((need(CASE) / "tiny_sd" / "scheduler" / "scheduler_config.json").read_text())


def _grad_norm(parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    return torch.sqrt(sum((p.grad.double() ** 2).sum() for p in parameters if p.grad is not None))


@pytest.mark.parametrize("branch", ["cond", "drop"])
def test_loss_step_matches_the_original(unet_config: dict, scheduler_config: dict, branch: str) -> None:
    case = load_file(CASE / "train_step_case.safetensors")
    tokens = json.loads((CASE / "tiny_dinov2" / "config.json").read_text())["hidden_size"]
    net = load_network(CASE / "realisdance_tiny.ckpt", unet_config, tokens).train()
    batch = Batch(
        case["latents"],
        case["ref_latents"],
        case["encoder_hidden_states"],
        case["dwpose"],
        case["hamer"],
        case["smpl"],
    )
    scheduler = noise_scheduler(scheduler_config)
    loss, weights = diffusion_loss(
        net, scheduler, batch, case["noise"], case["timesteps"], drop=branch == "drop"
    )
    loss.backward()
    torch.testing.assert_close(weights, case[f"{branch}.snr_weights"], **TOLERANCE)
    torch.testing.assert_close(loss.reshape(1), case[f"{branch}.loss"], **TOLERANCE)
    motion = [p for name, p in net.named_parameters() if "motion_modules." in name]
    everything = list(net.parameters())
    torch.testing.assert_close(
        _grad_norm(motion).float().reshape(1), case[f"{branch}.grad_norm_motion_modules"], **TOLERANCE
    )
    torch.testing.assert_close(
        _grad_norm(everything).float().reshape(1), case[f"{branch}.grad_norm_all"], **TOLERANCE
    )
