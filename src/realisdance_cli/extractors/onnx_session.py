"""ONNX Runtime sessions: provider choice and, where the graph allows it, a free batch axis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from realisdance_cli.errors import UserError
from realisdance_cli.files import read_bytes


def providers(device: str = "auto") -> list[Any]:
    """CUDA when asked for or available (`auto`; `cuda:N` on GPU N, so that each process of a
    multi-GPU job uses its own), else the CPU."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device == "cpu":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in available:
        index = int(device.partition(":")[2] or 0) if device.startswith("cuda") else 0
        return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
    if device.startswith("cuda"):
        raise UserError(
            "--device cuda was asked for, but ONNX Runtime has no CUDA provider here; "
            "pip uninstall onnxruntime && pip install onnxruntime-gpu."
        )
    return ["CPUExecutionProvider"]


def _with_free_batch(model_bytes: bytes) -> bytes | None:
    """The model with its first input/output axis made symbolic, or None if it cannot be."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if not dims:
            return None
        dims[0].dim_param = "batch"
    return model.SerializeToString()


def open_session(path: Path, device: str = "auto", *, batchable: bool = False) -> tuple[Any, bool]:
    """An inference session for `path`; with `batchable`, try to free the batch axis and keep that
    version only if a batch of two gives what two single runs give. Returns (session, batched)."""
    import onnxruntime

    data = read_bytes(path)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # Idle worker threads would otherwise spin after every run, taking the cores that decoding and
    # the Python steps between runs need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    chosen = providers(device)

    def session(model: bytes) -> Any:
        return onnxruntime.InferenceSession(model, sess_options=options, providers=chosen)

    try:
        single = session(data)
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
        raise UserError(f"{path} is not a usable ONNX model ({type(err).__name__}: {err}).") from None
    if not batchable:
        return single, False
    try:
        freed = _with_free_batch(data)
        batched = session(freed) if freed else None
    except Exception:
        batched = None
    if batched is None or not _same_as_single(single, batched):
        return single, False
    return batched, True


def _same_as_single(single: Any, batched: Any) -> bool:
    shape = [dim if isinstance(dim, int) else 1 for dim in single.get_inputs()[0].shape]
    probe = np.random.default_rng(0).normal(size=(2, *shape[1:])).astype(np.float32)
    name = single.get_inputs()[0].name
    try:
        together = batched.run(None, {name: probe})
    except Exception:
        return False
    apart = [single.run(None, {name: probe[i : i + 1]}) for i in range(2)]
    return all(
        np.allclose(together[k], np.concatenate([a[k] for a in apart]), rtol=1e-4, atol=1e-5)
        for k in range(len(together))
    )
