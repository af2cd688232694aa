"""The timed network run the HaMeR and SMPLer-X benchmarks share (run them as scripts, so this
folder is on the import path)."""

from __future__ import annotations

import time

import torch

from realisdance_cli.devices import run_batched


def network_seconds(
    model: torch.nn.Module, inputs: torch.Tensor, batch: int, device: torch.device, dtype: torch.dtype
) -> float:
    """Seconds for one pass over `inputs` in batches (after a warm-up pass), synchronised on GPUs."""

    def run() -> None:
        for _ in run_batched(model, inputs, batch, device, dtype):
            pass
        if device.type == "cuda":
            torch.cuda.synchronize()

    run()  # warm-up
    start = time.perf_counter()
    run()
    return time.perf_counter() - start
