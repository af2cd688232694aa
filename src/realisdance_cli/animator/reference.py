"""Reference attention: the main UNet's self-attentions also attend to the reference UNet's tokens.

The reference UNet (plain 2-D, run on the reference latents) records the input of each spatial
self-attention (`norm1(h)`); the matching self-attention of the main UNet then takes keys and
values from [its own tokens, the reference tokens of its sample]. Pairing is by module path, which
is the original's pairing: it sorts both UNets' blocks by width with a stable sort, so equal paths
meet. Implemented as diffusers attention processors; no parameters.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

SELF_ATTENTION = ".attn1.processor"


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


class _Writer(AttnProcessor2_0):
    def __init__(self, bank: ReferenceBank, name: str) -> None:
        super().__init__()
        self.bank, self.name = bank, name

    def __call__(
        self, attn: Attention, hidden_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        self.bank.tokens[self.name] = hidden_states
        return super().__call__(attn, hidden_states, *args, **kwargs)


class _Reader(AttnProcessor2_0):
    def __init__(self, bank: ReferenceBank, name: str) -> None:
        super().__init__()
        self.bank, self.name = bank, name

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> torch.Tensor:
        context = self.bank.context(self.name, hidden_states)
        return super().__call__(attn, hidden_states, context, *args, **kwargs)


def _spatial_self_attentions(unet: Any) -> list[str]:
    names = [n for n in unet.attn_processors if n.endswith(SELF_ATTENTION) and "motion_modules" not in n]
    if not names:
        raise ValueError("the UNet has no spatial self-attention to connect")
    return names


def connect(reference_unet: Any, main_unet: Any, bank: ReferenceBank) -> None:
    """Install the writer processors on the reference UNet and the readers on the main UNet."""
    writers = _spatial_self_attentions(reference_unet)
    readers = _spatial_self_attentions(main_unet)
    if [w.removesuffix(".processor") for w in writers] != [r.removesuffix(".processor") for r in readers]:
        raise ValueError("the reference and main UNets have different spatial attention layers")
    reference_unet.set_attn_processor(
        {n: _Writer(bank, n) if n in writers else AttnProcessor2_0() for n in reference_unet.attn_processors}
    )
    main_unet.set_attn_processor(
        {n: _Reader(bank, n) if n in readers else AttnProcessor2_0() for n in main_unet.attn_processors}
    )
