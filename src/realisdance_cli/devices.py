"""Which device and number format a PyTorch stage runs in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from realisdance_cli.errors import UserError

if TYPE_CHECKING:
    import torch

DTYPES = ("fp16", "bf16", "fp32")


def resolve_device(device: str | None, dtype: str | None) -> tuple[torch.device, torch.dtype]:
    """`device` None or "auto": CUDA when there is one; `dtype` None: fp16 on a GPU, fp32 on the CPU."""
    import torch

    wanted = None if device in (None, "auto") else device
    chosen = torch.device(wanted or ("cuda" if torch.cuda.is_available() else "cpu"))
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but PyTorch sees no CUDA GPU.")
    name = dtype or ("fp16" if chosen.type == "cuda" else "fp32")
    if name not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {name!r}.")
    return chosen, {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]
