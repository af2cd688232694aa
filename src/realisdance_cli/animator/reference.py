"""Reference attention: the main UNet's self-attentions also attend to the reference UNet's tokens.

The reference UNet (plain 2-D, run on the reference latents) records the input of each spatial
self-attention (`norm1(h)`); the matching self-attention of the main UNet then takes keys and
values from [its own tokens, the reference tokens of its sample]. Pairing is by module path, which
is the original's pairing: it sorts both UNets' blocks by width with a stable sort, so equal paths
meet.

Both sides are forward pre-hooks on the attention modules, not attention processors: whatever
processor diffusers installs later (`set_default_attn_processor`, xformers, SDPA) computes
attention over the keys the hook hands it, so reference attention cannot be dropped by accident.
The hooks are small objects kept on their module, so a deep copy of a UNet keeps its own wiring.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention_processor import Attention
from torch import nn

HOOK = "reference_hook"  # attribute of each connected attention module holding its hook


class ReferenceBank:
    """Reference tokens per layer, and which reference each row of the main batch reads.

    `rows[i]` is the reference row for main-batch row i (one row per sample and frame), or -1 for
    a row that attends to itself only (the unconditional branch). Attending over a key set listed
    twice equals attending over it once, so such rows use their own tokens in the reference slot
    and the whole batch keeps one shape.
    """

    def __init__(self) -> None:
        self.tokens: dict[str, torch.Tensor] = {}
        self.rows: torch.Tensor | None = None

    def clear(self) -> None:
        self.tokens.clear()
        self.rows = None

    def context(self, name: str, hidden: torch.Tensor) -> torch.Tensor | None:
        """Keys/values source for the main UNet's layer `name`, or None for plain self-attention."""
        if self.rows is None:
            return None
        rows = self.rows
        reference = self.tokens[name][rows.clamp(min=0)]
        reference = torch.where((rows >= 0)[:, None, None], reference, hidden)
        return torch.cat([hidden, reference], dim=1)


class _Writer:
    """Records a reference self-attention's input."""

    def __init__(self, bank: ReferenceBank, name: str) -> None:
        self.bank, self.name = bank, name

    def __call__(self, _attn: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        self.bank.tokens[self.name] = args[0] if args else kwargs["hidden_states"]


class _Reader:
    """Hands a main self-attention [its own tokens, the reference's] as keys and values."""

    def __init__(self, bank: ReferenceBank, name: str) -> None:
        self.bank, self.name = bank, name

    def __call__(self, _attn: nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict] | None:
        hidden = args[0] if args else kwargs["hidden_states"]
        context = self.bank.context(self.name, hidden)
        if context is None:
            return None
        return args[:1], {**kwargs, "encoder_hidden_states": context}


def spatial_self_attentions(unet: nn.Module) -> dict[str, Attention]:
    """The self-attention (`attn1`) of every spatial transformer block, by module path."""
    found = {
        name: module
        for name, module in unet.named_modules()
        if name.endswith(".attn1") and "motion_modules" not in name and isinstance(module, Attention)
    }
    if not found:
        raise ValueError("the UNet has no spatial self-attention to connect")
    return found


def _hook(attn: Attention, kind: type[_Writer] | type[_Reader], bank: ReferenceBank, name: str) -> None:
    """Points the module's hook of `kind` at `bank`, registering it the first time."""
    hook = getattr(attn, HOOK, None)
    if isinstance(hook, kind):
        hook.bank = bank
        return
    if hook is not None:
        raise ValueError(f"{name} is already connected the other way round")
    hook = kind(bank, name)
    attn.register_forward_pre_hook(hook, with_kwargs=True)
    setattr(attn, HOOK, hook)


def read_into(main_unet: nn.Module, bank: ReferenceBank) -> None:
    """The main UNet's self-attentions read the reference tokens kept in `bank`."""
    for name, attn in spatial_self_attentions(main_unet).items():
        _hook(attn, _Reader, bank, name)


def connect(reference_unet: nn.Module, main_unet: nn.Module, bank: ReferenceBank) -> None:
    """The reference UNet's self-attentions record into `bank`, which the main UNet reads.

    Connecting again (another bank, or the same) rewires the existing hooks; nothing is added twice.
    """
    writers = spatial_self_attentions(reference_unet)
    readers = spatial_self_attentions(main_unet)
    if list(writers) != list(readers):
        raise ValueError("the reference and main UNets have different spatial attention layers")
    for name, attn in writers.items():
        _hook(attn, _Writer, bank, name)
    read_into(main_unet, bank)
