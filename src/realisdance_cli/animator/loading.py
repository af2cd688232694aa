"""The loading task of the SD RealisDance: its parts named without importing diffusers, so that
`rdance animate` reports it before that import's seconds."""

from __future__ import annotations

from pathlib import Path

from realisdance_cli.progress import Loading, ProgressFn

TASK = "loading RealisDance (MB)"
DINOV2 = "DINOv2"
NETWORK = "the RealisDance network"
VAE = "the base model's VAE"
FOLDER = "the RealisDance pipeline folder"


def original_loading(progress: ProgressFn, checkpoint: Path, base_model: Path, dinov2: Path) -> Loading:
    """The authors' release: DINOv2, the network's checkpoint and the base model's VAE (its UNet
    and scheduler give only their settings)."""
    return Loading(progress, TASK, {DINOV2: dinov2, NETWORK: checkpoint, VAE: base_model / "vae"})


def folder_loading(progress: ProgressFn, folder: Path) -> Loading:
    """A pipeline folder (`rdance weights convert`), which diffusers loads in one call."""
    return Loading(progress, TASK, {FOLDER: folder})
