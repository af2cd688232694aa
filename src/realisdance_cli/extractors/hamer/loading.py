"""Loading `hamer.ckpt` (a Lightning checkpoint) with `torch.load(weights_only=True)`: its pickled
yacs config becomes a plain dictionary through a stand-in, and the discriminator and MANO buffers
are ignored."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from realisdance_cli.errors import UserError
from realisdance_cli.extractors.hamer.config import read_config
from realisdance_cli.extractors.hamer.network import Hamer
from realisdance_cli.files import load_npz
from realisdance_cli.state_dicts import load_exactly, read_weights

IGNORED_PREFIXES = ("discriminator.", "mano.")  # training-only; MANO is rebuilt from its own file


def _yacs_stand_in() -> type:
    """Stands in for yacs' CfgNode, which the checkpoint's `hyper_parameters` pickles: torch's
    weights-only unpickler accepts it by name, and each node it makes is an OrderedDict, one of the
    few types that unpickler lets the node's items and attributes be set on."""

    class CfgNode:
        def __new__(cls, *args: Any) -> Any:
            return OrderedDict()

    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    return CfgNode


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The network weights of a Lightning `hamer.ckpt`, read without plain unpickling."""
    raw = read_weights(path, "a HaMeR checkpoint", safe_globals=[_yacs_stand_in()])
    state = raw.get("state_dict") if isinstance(raw, dict) else None
    if not isinstance(state, dict) or "backbone.patch_embed.proj.weight" not in state:
        raise UserError(f"{path} is not a HaMeR checkpoint: it has no backbone weights.")
    return {
        k: v
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and not k.startswith(IGNORED_PREFIXES) and k != "initialized"
    }


MEANS = {"pose": "mano_head.init_hand_pose", "shape": "mano_head.init_betas", "cam": "mano_head.init_cam"}
REFETCH = "delete it and fetch it again (`rdance weights download hamer` prints the steps)"


def _read_means(path: Path) -> dict[str, torch.Tensor]:
    """The (1, N) mean MANO parameters of `mano_mean_params.npz` under the network's buffer names."""
    data = load_npz(path, REFETCH)
    missing = [name for name in MEANS if name not in data]
    if missing:
        lacks = ", ".join(missing)
        raise UserError(f"{path} is not HaMeR's mean MANO parameters: it lacks {lacks}; {REFETCH}.")
    return {key: torch.from_numpy(data[name]).float()[None] for name, key in MEANS.items()}


def _holds_means(state: dict[str, torch.Tensor]) -> bool:
    return all(key in state for key in MEANS.values())


def carries_means(checkpoint: Path) -> bool:
    """Whether a readable HaMeR checkpoint holds the mean MANO parameters as buffers (the released
    one does), which makes `mano_mean_params.npz` unneeded. Memory-mapped: no weight is read."""
    try:
        return _holds_means(read_checkpoint(checkpoint))
    except UserError:
        return False


def load_hamer(checkpoint: Path, config_path: Path, mean_params: Path | None = None) -> Hamer:
    """The network, strictly loaded; the mean MANO parameters come from the checkpoint's buffers
    (which the original's loading overwrote `mano_mean_params.npz` with) or, failing that, the file."""
    state = read_checkpoint(checkpoint)
    config = read_config(config_path, state)
    if not _holds_means(state):
        if mean_params is None or not mean_params.is_file():
            raise UserError(
                f"{checkpoint} lacks the mean MANO parameters; put mano_mean_params.npz beside it."
            )
        state.update(_read_means(mean_params))
    with torch.device("meta"):
        model = Hamer(config)
    load_exactly(model, state, f"{checkpoint} does not fit {config_path.name}")
    return model.eval()
