"""The I3D that FVD is computed with: DeepMind's Inception-v1 I3D trained on Kinetics-400, as
DisCo's evaluation runs it (`tool/metrics/inception3d.py`, piergiaj's pytorch-i3d port) on the
weights VideoGPT converted from the TF-Hub module of the FVD paper, `i3d_pretrained_400.pt`.

FVD numbers are only comparable on this network read this way, so the structure follows DisCo's
module layer for layer under the release's names (`Conv3d_1a_7x7.conv3d.weight`,
`Mixed_4b.b1b.bn.running_var`, `logits.conv3d.bias`, ...), and so do its details: every
convolution and max pool pads like TensorFlow's SAME, from the input's size with the odd pixel at
the back (the max pools pad with zeros, harmless after a ReLU); the batch norms use TensorFlow's
eps, 1e-3 (their scales are ones in the release: TensorFlow's I3D has none).

Clips (N, 3, T, H, W) in [0, 1] have every frame resized to 224 x 224 (bicubic, Pillow's resize
as DisCo calls it) and are mapped to [-1, 1] (DisCo's `frame / 127.5 - 1`). The features are
DisCo's: the 400 Kinetics logits (after the 7 x 7 average pool of the 1024 Mixed_5c channels),
averaged over the remaining time steps (two for a 16-frame clip). DisCo passes each video whole
as one clip; `rdance eval` passes 16-frame clips, the length DisCo's scripts cut its videos to.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from realisdance_cli.evaluation.video_layers import FrozenBatchNorm3d, resize_frames
from realisdance_cli.state_dicts import loaded, read_state_dict

INPUT_SIZE = 224
CLASSES = 400
FEATURES = CLASSES
BATCH_NORM_EPS = 1e-3
RELEASE = "i3d_pretrained_400.pt"

Triple = tuple[int, int, int]

# The Inception blocks: input channels, then the widths of branch 0 (1x1), branch 1 (1x1, 3x3x3),
# branch 2 (1x1, 3x3x3) and branch 3 (max pool, 1x1); the outputs are b0 + b1b + b2b + b3b.
MIXED: dict[str, tuple[int, tuple[int, int, int, int, int, int]]] = {
    "3b": (192, (64, 96, 128, 16, 32, 32)),
    "3c": (256, (128, 128, 192, 32, 96, 64)),
    "4b": (480, (192, 96, 208, 16, 48, 64)),
    "4c": (512, (160, 112, 224, 24, 64, 64)),
    "4d": (512, (128, 128, 256, 24, 64, 64)),
    "4e": (512, (112, 144, 288, 32, 64, 64)),
    "4f": (528, (256, 160, 320, 32, 128, 128)),
    "5b": (832, (256, 160, 320, 32, 128, 128)),
    "5c": (832, (384, 192, 384, 48, 128, 128)),
}
# The max pools between stages: before Mixed_3b, before Mixed_4b, before Mixed_5b.
POOLS: dict[str, tuple[Triple, Triple]] = {
    "3b": ((1, 3, 3), (1, 2, 2)),
    "4b": ((3, 3, 3), (2, 2, 2)),
    "5b": ((2, 2, 2), (2, 2, 2)),
}


def pad_same(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """Zero padding of (N, C, T, H, W) for TensorFlow's SAME: kernel - stride in total where the
    stride divides the size, else kernel - size % stride; the odd pixel goes at the back."""
    pads: list[int] = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride, strict=True))):
        total = max(k - (s if size % s == 0 else size % s), 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def max_pool_same(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    return F.max_pool3d(pad_same(x, kernel, stride), kernel, stride)


class Unit3D(nn.Module):
    """SAME padding, a convolution without bias, batch norm, ReLU (pytorch-i3d's `Unit3D`)."""

    def __init__(self, inputs: int, outputs: int, kernel: int = 1, stride: int = 1):
        super().__init__()
        self.kernel: Triple = (kernel, kernel, kernel)
        self.stride: Triple = (stride, stride, stride)
        self.conv3d = nn.Conv3d(inputs, outputs, self.kernel, stride=self.stride, bias=False)
        self.bn = FrozenBatchNorm3d(outputs, eps=BATCH_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv3d(pad_same(x, self.kernel, self.stride))))


class InceptionBlock(nn.Module):
    """Four branches concatenated: 1x1; 1x1 then 3x3x3; 1x1 then 3x3x3; 3x3x3 max pool then 1x1."""

    def __init__(self, inputs: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        self.b0 = Unit3D(inputs, widths[0])
        self.b1a = Unit3D(inputs, widths[1])
        self.b1b = Unit3D(widths[1], widths[2], 3)
        self.b2a = Unit3D(inputs, widths[3])
        self.b2b = Unit3D(widths[3], widths[4], 3)
        self.b3b = Unit3D(inputs, widths[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        branches = [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)]
        return torch.cat(branches, dim=1)


class Logits(nn.Module):
    """The classifier: a 1x1x1 convolution with bias (the release's `logits.conv3d`)."""

    def __init__(self, inputs: int, classes: int):
        super().__init__()
        self.conv3d = nn.Conv3d(inputs, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3d(x)


class I3D(nn.Module):
    """Clips (N, 3, T, H, W) in [0, 1] -> their time-averaged Kinetics logits (N, 400)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, 7, stride=2)
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, 3)
        for name, (inputs, widths) in MIXED.items():
            self.add_module(f"Mixed_{name}", InceptionBlock(inputs, widths))
        self.logits = Logits(1024, CLASSES)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.ndim != 5 or clips.shape[1] != 3:
            raise ValueError(f"expected clips (N, 3, T, H, W), got {tuple(clips.shape)}")
        x = 2 * resize_frames(clips, INPUT_SIZE) - 1
        x = max_pool_same(self.Conv3d_1a_7x7(x), (1, 3, 3), (1, 2, 2))
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
        for name in MIXED:
            if name in POOLS:
                x = max_pool_same(x, *POOLS[name])
            x = getattr(self, f"Mixed_{name}")(x)
        x = x.mean(dim=(3, 4), keepdim=True)  # DisCo's 1 x 7 x 7 average pool of the 7 x 7 map
        return self.logits(x).flatten(2).mean(dim=2)  # (N, 400, T, 1, 1) -> (N, 400)


def load_i3d(path: Path) -> I3D:
    """The network with the weights of `path` (the release, or a safetensors copy of it), every
    key accounted for, in eval mode."""
    state = read_state_dict(path, f"the FVD I3D weights ({RELEASE})")
    return loaded(I3D, state, f"{path} is not the FVD I3D network ({RELEASE})")
