"""The feature networks of `rdance eval` with random weights of the released structure, saved at
their registry paths: what the evaluation tests and benchmarks/eval.py score with (their cost is
their structure's; DINOv2 and DWPose, whose size each caller chooses, are added by the caller)."""

from __future__ import annotations

from pathlib import Path

import torch

from realisdance_cli.evaluation.i3d import I3D
from realisdance_cli.evaluation.inception import FidInception
from realisdance_cli.evaluation.lpips import LPIPS
from realisdance_cli.evaluation.resnet3d import ResNet3D50

LPIPS_HEADS = "eval/LPIPS_v0.1_vgg-a78928a0.pth"


def save(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def write_lpips(root: Path) -> None:
    """LPIPS's VGG16 and heads, the heads non-negative as trained ones are."""
    lpips = LPIPS()
    save(lpips.vgg.state_dict(), root / "eval" / "auxiliary" / "vgg16-397923af.pth")
    save({key: value.abs() for key, value in lpips.heads.state_dict().items()}, root / LPIPS_HEADS)


def write_eval_networks(root: Path) -> None:
    """FID's InceptionV3, LPIPS, FVD's I3D and FID-VID's 3-D ResNet-50 (in its release's checkpoint
    layout) under `root`, randomly initialised (PyTorch's default initialisation keeps the
    activations finite through the deep networks)."""
    save(FidInception().state_dict(), root / "eval" / "pt_inception-2015-12-05-6726825d.pth")
    write_lpips(root)
    save(I3D().state_dict(), root / "eval" / "eval_fvd" / "i3d_pretrained_400.pt")
    resnet = {f"module.{key}": value for key, value in ResNet3D50().state_dict().items()}
    save(
        {"epoch": 200, "arch": "resnet-50", "state_dict": resnet},
        root / "eval" / "eval_fvd" / "resnet-50-kinetics.pth",
    )
