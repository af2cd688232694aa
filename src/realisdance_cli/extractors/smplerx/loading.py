"""Loading `smpler_x_h32.pth.tar` with `torch.load(weights_only=True)` and the original loader's
renames (`module.` added, `backbone` -> `encoder`, `*_rotation_net` -> `*_regressor`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from realisdance_cli.errors import UserError
from realisdance_cli.extractors.smplerx.config import read_config
from realisdance_cli.extractors.smplerx.network import SmplerX
from realisdance_cli.state_dicts import load_exactly, read_weights

RENAMES = (
    ("module.backbone", "module.encoder"),
    ("body_rotation_net", "body_regressor"),
    ("hand_rotation_net", "hand_regressor"),
)


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The network weights of `smpler_x_h32.pth.tar` under the original loader's key names."""
    raw = read_weights(path, "a SMPLer-X checkpoint")
    network = raw.get("network") if isinstance(raw, dict) else None
    if not isinstance(network, dict):
        raise UserError(f"{path} is not a SMPLer-X checkpoint: it has no 'network' weights.")
    state = {}
    for key, value in network.items():
        key = key if key.startswith("module.") else f"module.{key}"
        for old, new in RENAMES:
            key = key.replace(old, new)
        state[key.removeprefix("module.")] = value
    if "encoder.patch_embed.proj.weight" not in state:
        raise UserError(f"{path} is not a SMPLer-X checkpoint: it has no encoder weights.")
    return state


def load_smplerx(checkpoint: Path) -> SmplerX:
    """The network, strictly loaded; `config.json` beside the checkpoint may set what the weights
    cannot tell (the encoder's head count) in the layout of the golden CONFIG.json."""
    state = read_checkpoint(checkpoint)
    sidecar = checkpoint.parent / "config.json"
    try:
        overrides = json.loads(sidecar.read_text()) if sidecar.is_file() else None
    except (OSError, ValueError) as error:
        raise UserError(f"{sidecar} is not readable JSON ({error}).") from None
    config = read_config(state, overrides)
    rotations = state["body_regressor.body_pose_out.0.weight"].shape[0] // 6
    with torch.device("meta"):
        model = SmplerX(config, rotations)
    load_exactly(model, state, f"{checkpoint} is not a SMPLer-X network this code knows")
    return model.eval()
