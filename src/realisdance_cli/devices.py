"""Which device and number format a PyTorch stage runs in."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from realisdance_cli.errors import UserError

MAX_SEED = 2**63 - 1  # the largest seed torch.Generator.manual_seed takes on every platform

if TYPE_CHECKING:
    import torch

DTYPES = ("fp16", "bf16", "fp32")
log = logging.getLogger(__name__)


def resolve_device(
    device: str | None, dtype: str | None, gpu_dtype: str = "fp16"
) -> tuple[torch.device, torch.dtype]:
    """`device` None or "auto": CUDA when there is one; `dtype` None: `gpu_dtype` on a GPU, fp32
    on the CPU."""
    import torch

    wanted = None if device in (None, "auto") else device
    try:
        chosen = torch.device(wanted or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError:
        raise UserError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {device!r}.") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {device} was asked for, but PyTorch sees no CUDA GPU.")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise UserError(
            f"--device {device} was asked for, but PyTorch sees {count} GPU(s): cuda:0 to cuda:{count - 1}."
        )
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps was asked for, but PyTorch sees no Apple GPU (MPS).")
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {device!r}.")
    name = dtype or (gpu_dtype if chosen.type == "cuda" else "fp32")
    if name not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {name!r}.")
    _say_chosen(str(chosen), name, _why_device(wanted, chosen.type), "" if dtype else " (its default there)")
    return chosen, {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def _why_device(wanted: str | None, chosen: str) -> str:
    """Why `--device auto` chose what it did (nothing when the device was named)."""
    if wanted is not None:
        return ""
    return " (auto: a CUDA GPU is there)" if chosen == "cuda" else " (auto: PyTorch sees no CUDA GPU)"


@functools.cache
def _say_chosen(device: str, dtype: str, why_device: str, why_dtype: str) -> None:
    """Logged once a process: a job checks its device before the work and resolves it again for it."""
    log.info("networks run on %s%s in %s%s", device, why_device, dtype, why_dtype)


def run_batched(
    model: Callable[[torch.Tensor], Any],
    inputs: torch.Tensor,
    batch: int,
    device: torch.device,
    dtype: torch.dtype,
) -> Iterator[Any]:
    """`model`'s outputs for `batch` rows of `inputs` at a time on `device`, without gradients,
    under autocast when `dtype` is a half type on a GPU (the network's weights stay fp32)."""
    import torch

    autocast = device.type == "cuda" and dtype != torch.float32
    for part in inputs.split(batch):
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=autocast):
            yield model(part.to(device))


def out_of_memory(err: BaseException) -> UserError | None:
    """The one sentence for PyTorch running out of GPU (or CPU) memory, naming what makes a job
    lighter; None for any other error."""
    gpu = type(err).__name__ == "OutOfMemoryError"  # torch.OutOfMemoryError, without importing torch
    if not (gpu or isinstance(err, MemoryError) or "can't allocate memory" in str(err)):
        return None
    where = "the GPU" if gpu else "this machine"
    return UserError(
        f"{where} ran out of memory; make the job lighter (animate: a smaller --size or --context-batch 1; "
        "animate --model dit: --offload group, --fp8, --vae-tiling or a smaller --max-res; extract: a "
        "smaller --batch; train: a smaller --batch-size or --size)."
    )
