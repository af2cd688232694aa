"""The moving average of the trained weights, saved in a run's state as safetensors and JSON.

accelerate could checkpoint diffusers' `EMAModel` itself (`register_for_checkpointing`), but it
pickles it and unpickles it on resume with `weights_only=False`, so a crafted file in a copied run
folder would run code. Here the shadow weights go to `ema.safetensors` (by parameter name) and the
scalars (step, warm-up) to `ema.json`, and a resume reads them back without any unpickling.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import save_file

from realisdance_cli.errors import UserError
from realisdance_cli.state_dicts import key_mismatch, read_state_dict

WEIGHTS, SCALARS = "ema.safetensors", "ema.json"


class MovingAverage:
    """diffusers' `EMAModel` over named parameters, with a state that is never unpickled."""

    def __init__(self, named: list[tuple[str, torch.nn.Parameter]], decay: float) -> None:
        from diffusers.training_utils import EMAModel

        self.names = [name for name, _ in named]
        self.parameters = [parameter for _, parameter in named]
        self.model = EMAModel(self.parameters, decay=decay)

    def step(self) -> None:
        self.model.step(self.parameters)

    def save(self, folder: Path) -> None:
        """Writes the average into a state folder (one rank does: every rank holds the same)."""
        state = self.model.state_dict()
        shadow = state.pop("shadow_params")
        tensors = {name: s.detach().cpu().contiguous() for name, s in zip(self.names, shadow, strict=True)}
        save_file(tensors, str(folder / WEIGHTS))
        (folder / SCALARS).write_text(json.dumps(state))

    def load(self, folder: Path) -> None:
        """The average saved in the state `folder`; the decay stays the one given now (a --resume
        may change it). A state without one (a run without EMA) leaves it at the resumed weights."""
        if not (folder / SCALARS).is_file():
            warnings.warn(
                f"{folder} holds no moving average of the weights; it starts again from the resumed ones.",
                stacklevel=2,
            )
            return
        saved = read_state_dict(folder / WEIGHTS, "the moving average of a training state")
        problem = key_mismatch(self.names, saved)
        if problem:
            raise UserError(f"{folder / WEIGHTS} does not fit the weights this stage trains: {problem}.")
        scalars = json.loads((folder / SCALARS).read_text()) | {"decay": self.model.decay}
        shadow = [saved[name].to(p.device) for name, p in zip(self.names, self.parameters, strict=True)]
        self.model.load_state_dict({**scalars, "shadow_params": shadow})

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The average in place of the trained weights for a while (validation, its export)."""
        self.model.store(self.parameters)
        self.model.copy_to(self.parameters)
        try:
            yield
        finally:
            self.model.restore(self.parameters)
