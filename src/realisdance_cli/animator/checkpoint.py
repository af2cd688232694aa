"""Loading the trained network: the authors' checkpoint and our own safetensors form.

The original file is `torch.save({"state_dict": ..., "global_step": ...})` of the DDP-wrapped
network (keys may carry `module.`). It is read with `weights_only=True` and memory-mapped, renamed
to our module names, and loaded strictly: every key must be used and every parameter filled.
`save_network` writes the renamed tensors to one `.safetensors` file whose metadata carries the
network config (what training saves; it needs neither pickle nor the base model's UNet config), and
`convert_to_pipeline` writes the whole release as a diffusers pipeline folder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from realisdance_cli.animator.motion import check_position_tables, to_diffusers_key
from realisdance_cli.animator.network import RealisDanceNet
from realisdance_cli.errors import UserError
from realisdance_cli.files import AtomicFile, atomic_folder
from realisdance_cli.state_dicts import load_exactly, read_state_dict, read_weights, safetensors_metadata

FORMAT = "realisdance-cli/1"
USABLE = "a usable RealisDance checkpoint"
OURS = "give a network file `rdance train` wrote, or the authors' .ckpt"


def _bad_checkpoint(path: Path, why: str) -> UserError:
    return UserError(f"{path} is not {USABLE}: {why}")


def read_original(path: Path) -> dict[str, torch.Tensor]:
    """The original checkpoint's tensors under our module names."""
    raw = read_weights(path, USABLE)
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise _bad_checkpoint(path, "it holds no tensor dictionary")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        state = check_position_tables(state)
    except ValueError as error:
        raise _bad_checkpoint(path, str(error)) from None
    return {to_diffusers_key(k): v for k, v in state.items()}


def _build(unet_config: dict[str, Any], token_width: int) -> RealisDanceNet:
    with torch.device("meta"):
        return RealisDanceNet.build(unet_config, token_width)


def load_state(net: RealisDanceNet, state: Mapping[str, torch.Tensor], path: Path) -> RealisDanceNet:
    """Strict loading with a readable list of what is missing or extra."""
    hint = "; is it a RealisDance-SD stage-2 file for this base model?"
    load_exactly(net, state, f"{path} is not {USABLE}", hint)
    return net.eval()


def _saved_config(path: Path) -> tuple[dict[str, Any], int]:
    """The base UNet config and token width that `save_network` put in the file's metadata."""
    metadata = safetensors_metadata(path, USABLE, OURS)
    if metadata.get("format") != FORMAT:
        raise _bad_checkpoint(
            path, f"its metadata does not say {FORMAT} (it is not a network `rdance train` wrote)"
        )
    try:
        config = json.loads(metadata["config"])
        return dict(config["unet"]), int(config["token_width"])
    except (KeyError, TypeError, ValueError) as error:  # also json's errors (ValueErrors)
        reason = f"{type(error).__name__}: {error}"
        raise _bad_checkpoint(
            path, f"its metadata holds no usable network config ({reason}); {OURS}."
        ) from None


def load_network(
    path: Path, unet_config: dict[str, Any] | None = None, token_width: int | None = None
) -> RealisDanceNet:
    """The network from either form; the original form needs the base UNet config and DINOv2 width."""
    if path.suffix == ".safetensors":
        saved_unet, saved_width = _saved_config(path)
        return load_state(_build(saved_unet, saved_width), read_state_dict(path, USABLE, OURS), path)
    if unet_config is None or token_width is None:
        raise ValueError("the original checkpoint needs the base UNet config and the token width")
    return load_state(_build(unet_config, token_width), read_original(path), path)


def save_network(
    weights: Mapping[str, torch.Tensor], target: Path, unet_config: dict[str, Any], token_width: int
) -> int:
    """Writes a network's state dict in our form (atomically); returns the number of tensors."""
    state = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    config = json.dumps({"unet": dict(unet_config), "token_width": token_width})
    with AtomicFile(target, suffix=".safetensors") as partial:
        save_file(state, str(partial), metadata={"format": FORMAT, "config": config})
    return len(state)


def convert_to_pipeline(
    source: Path, base: Path, dinov2: Path, target: Path, variant: str | None = None
) -> Path:
    """Writes the authors' release as one diffusers pipeline folder (`model_index.json` and a
    subfolder per part), atomically; `variant="fp16"` stores half-precision weights."""
    from realisdance_cli.animator.pipeline import RealisDancePipeline

    dtype = torch.float16 if variant == "fp16" else None
    pipeline = RealisDancePipeline.from_original(source, base, dinov2, dtype=dtype)
    with atomic_folder(target) as partial:
        pipeline.save_pretrained(partial, variant=variant)
    return target
