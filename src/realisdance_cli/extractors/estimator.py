"""The base of the PyTorch estimators (SMPLer-X on people, HaMeR on hands): frames and their
DWPose records -> the track records of one stream.

Each frame's DWPose record names what there is to estimate (`find`: people or hands) and what is
known without the network (`describe`: boxes, sides, whether the item can go through the network
at all). The items that can are cropped (`preprocess`), go through the network together in
batches (`inference`) and become record fields (`postprocess`); the others keep the stream's
neutral values (zeros, identity rotations) with `valid` false, so every item found stays in the
track.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import torch

from realisdance_cli.devices import run_batched
from realisdance_cli.track import STREAMS


class Crop(Protocol):
    pixels: np.ndarray  # (3, h, w) float32: one network input


ItemT = TypeVar("ItemT")
CropT = TypeVar("CropT", bound=Crop)


def blank_records(stream: str, count: int) -> dict[str, np.ndarray]:
    """`count` records of `stream` that say nothing: zeros, identity rotation matrices, not valid."""
    records = {}
    for name, spec in STREAMS[stream].items():
        values = np.zeros((count, *spec.shape), spec.dtype)
        if spec.shape[-2:] == (3, 3):
            values[...] = np.eye(3, dtype=spec.dtype)
        records[name] = values
    return records


class Estimator(ABC, Generic[ItemT, CropT]):
    """A network on `device` (run in `dtype`, `batch` crops per call) that makes `stream` records."""

    stream: ClassVar[str]

    def __init__(
        self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype, batch: int = 16
    ) -> None:
        self.model = model.to(device)
        self.device, self.dtype, self.batch = device, dtype, batch

    @abstractmethod
    def find(self, frame_rgb: np.ndarray, pose: dict[str, np.ndarray]) -> list[ItemT]:
        """What the (H, W, 3) frame holds to estimate, from its DWPose record."""

    @abstractmethod
    def describe(self, frame_rgb: np.ndarray, item: ItemT) -> dict[str, Any]:
        """The record fields known without the network; `valid` says whether it can run on the item."""

    @abstractmethod
    def preprocess(self, frame_rgb: np.ndarray, item: ItemT) -> CropT:
        """The network input of a valid item."""

    @abstractmethod
    def name_outputs(self, outputs: Any) -> dict[str, torch.Tensor]:
        """The network's outputs for one batch, by name."""

    @abstractmethod
    def postprocess(
        self, outputs: dict[str, torch.Tensor], crops: list[CropT], known: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Record fields (one row per crop) from the named outputs, the crops and the fields
        `describe` gave their items."""

    def inference(self, pixels: np.ndarray) -> dict[str, torch.Tensor]:
        """The named outputs (float32, on the CPU) for (N, 3, h, w) crops, `batch` at a time."""
        parts = [
            self.name_outputs(out)
            for out in run_batched(self.model, torch.from_numpy(pixels), self.batch, self.device, self.dtype)
        ]
        return {name: torch.cat([part[name].float().cpu() for part in parts]) for name in parts[0]}

    def __call__(
        self, frames_rgb: list[np.ndarray], poses: list[dict[str, np.ndarray]]
    ) -> list[dict[str, np.ndarray]]:
        """Frames (RGB) and their DWPose records -> per frame, the records of its items."""
        found = [(i, item) for i, pose in enumerate(poses) for item in self.find(frames_rgb[i], pose)]
        record = blank_records(self.stream, len(found))
        for row, (i, item) in enumerate(found):
            for name, value in self.describe(frames_rgb[i], item).items():
                record[name][row] = value
        rows = np.flatnonzero(record["valid"])
        if len(rows):
            crops = [self.preprocess(frames_rgb[found[row][0]], found[row][1]) for row in rows]
            outputs = self.inference(np.stack([crop.pixels for crop in crops]))
            known = {name: values[rows] for name, values in record.items()}
            for name, values in self.postprocess(outputs, crops, known).items():
                record[name][rows] = values.reshape(len(rows), *record[name].shape[1:])
        owners = np.array([i for i, _ in found], np.int64)
        return [{name: values[owners == i] for name, values in record.items()} for i in range(len(poses))]
