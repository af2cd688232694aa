"""The networks of the two training stages, what each one trains, and checkpoints in both forms.

Stage 1 (image finetuning) trains the reference UNet, the main UNet, the pose guider and the clip
projector on single frames. It uses the same `RealisDanceNet` as inference with every motion
module taken out (replaced by a pass-through): on one frame that network is exactly the original's
2-D main UNet and motion-free pose guider, and its checkpoints hold no motion module, as the
original's stage-1 files. Stage 2 (motion learning) starts from a stage-1 checkpoint, takes the
main UNet's motion modules from an AnimateDiff checkpoint (its mid-block modules have no place in
RealisDance and are skipped), starts the pose guider's at the identity (AnimateDiff zero-initialises
their output projection), and trains only the motion modules.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

from realisdance_cli.animator.motion import (
    check_position_tables,
    to_diffusers_key,
    to_original_key,
    with_position_tables,
)
from realisdance_cli.animator.network import RealisDanceNet
from realisdance_cli.errors import UserError
from realisdance_cli.files import AtomicFile
from realisdance_cli.state_dicts import key_mismatch

STAGES = (1, 2)


def is_motion(name: str) -> bool:
    return "motion_modules." in name


def _two_d(name: str) -> bool:
    return not is_motion(name)


def _everything(name: str) -> bool:
    return True


class PassThrough(torch.nn.Module):
    """Stands where a motion module was: the 3-D blocks call it with the frame count."""

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return hidden_states


def without_motion_modules(net: RealisDanceNet) -> None:
    for module in net.modules():
        motion = getattr(module, "motion_modules", None)
        if isinstance(motion, torch.nn.ModuleList):
            for index in range(len(motion)):
                motion[index] = PassThrough()


def _identity_motion_modules(module: torch.nn.Module) -> None:
    """Zero output projections: a motion module then adds exactly nothing to its input."""
    for child in module.modules():
        if isinstance(child, AnimateDiffTransformer3D):
            torch.nn.init.zeros_(child.proj_out.weight)
            torch.nn.init.zeros_(child.proj_out.bias)


def _load_part(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str, part: Callable[[str], bool]
) -> None:
    """Strict loading of the tensors of `module` whose names `part` accepts, from `state`."""
    problem = key_mismatch([k for k in module.state_dict() if part(k)], state.keys())
    if problem:
        raise UserError(f"{what} does not fit: {problem}.")
    module.load_state_dict(dict(state), strict=False)


def stage1_network(
    unet_config: dict[str, Any], token_width: int, base_unet: Mapping[str, torch.Tensor]
) -> RealisDanceNet:
    """Both UNets from the base model's UNet weights; pose guider and projector freshly initialised."""
    net = RealisDanceNet.build(unet_config, token_width)
    without_motion_modules(net)
    _load_part(net.unet_ref, base_unet, "the base UNet", _everything)
    _load_part(net.unet_main, base_unet, "the base UNet", _everything)
    return net


def animatediff_motion_modules(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An AnimateDiff checkpoint's down/up-block motion modules under diffusers' names."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    mid = [k for k in state if k.startswith("mid_block.")]
    if mid:
        warnings.warn(
            f"skipping {len(mid)} mid-block motion-module tensors: RealisDance has none there",
            stacklevel=2,
        )
    kept = check_position_tables({k: v for k, v in state.items() if not k.startswith("mid_block.")})
    return {to_diffusers_key(k): v for k, v in kept.items()}


def stage2_network(
    unet_config: dict[str, Any],
    token_width: int,
    stage1: Mapping[str, torch.Tensor],
    motion: Mapping[str, torch.Tensor] | None,
) -> RealisDanceNet:
    """The stage-1 weights (every non-motion parameter must be there) inflated with motion modules."""
    net = RealisDanceNet.build(unet_config, token_width)
    _identity_motion_modules(net)
    _load_part(net, {k: v for k, v in stage1.items() if not is_motion(k)}, "the stage-1 checkpoint", _two_d)
    if motion is not None:
        _load_part(net.unet_main, animatediff_motion_modules(motion), "the motion checkpoint", is_motion)
    return net


def select_trainable(net: RealisDanceNet, stage: int) -> list[tuple[str, torch.nn.Parameter]]:
    """Marks what `stage` trains (stage 1: all but the motion modules; 2: only them) and returns it."""
    chosen = []
    for name, parameter in net.named_parameters():
        wanted = is_motion(name) == (stage == 2)
        parameter.requires_grad_(wanted)
        if wanted:
            chosen.append((name, parameter))
    return chosen


def save_original(weights: Mapping[str, torch.Tensor], target: Path, global_step: int) -> None:
    """`{"state_dict", "global_step"}` with the original's names, readable by the authors' code."""
    state = {to_original_key(k): v.detach().cpu().contiguous() for k, v in weights.items()}
    with AtomicFile(target) as partial:
        torch.save({"state_dict": with_position_tables(state), "global_step": global_step}, partial)
