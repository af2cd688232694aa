"""The InceptionV3 that FID is defined with: TensorFlow's 2015-12-05 graph as pytorch-fid ports it.

FID numbers are only comparable when computed with this exact network, so the structure follows
pytorch-fid's variant of torchvision's `Inception3` (1008 classes, no auxiliary head) layer for
layer, under the same names, so that its released `pt_inception-2015-12-05-6726825d.pth` loads
strictly. Where TensorFlow's graph differs from torchvision's Inception, so does this one: the
average pools inside the A, C and first E blocks leave the zero padding out of their means, and the
last E block pools by maximum. Frames in [0, 1] are resized bilinearly to 299 x 299 and mapped to
[-1, 1]; the result is the 2048 pool3 features (the global average before the classifier).

That input is pytorch-fid's, and so DisCo's: its `gen_eval.sh` (c4fa48a, and every commit before)
scores FID with `python -m pytorch_fid` on the saved PNG frames. clean-fid's input (Pillow's
bicubic on float frames, (x - 128) / 128) is not DisCo's FID: its first two commits printed that
number beside it, as "clean-fid", and later ones dropped it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from realisdance_cli.state_dicts import loaded, read_state_dict

INPUT_SIZE = 299
FEATURES = 2048
# TensorFlow's graph has 1008 outputs (1000 classes and 8 unused); the head is kept so that the
# release loads key for key, and is not used for features.
CLASSES = 1008
BATCH_NORM_EPS = 1e-3
RELEASE = "pt_inception-2015-12-05-6726825d.pth"

Size = int | tuple[int, int]


class ConvBN(nn.Module):
    """Convolution without bias, batch norm, ReLU: torchvision's `BasicConv2d`."""

    def __init__(self, inputs: int, outputs: int, kernel: Size, stride: int = 1, padding: Size = 0):
        super().__init__()
        self.conv = nn.Conv2d(inputs, outputs, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(outputs, eps=BATCH_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _mean_pool(x: torch.Tensor) -> torch.Tensor:
    """3 x 3, stride 1, averaging only the pixels inside the image (TensorFlow's SAME pooling)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, stride=1, padding=1)


class BlockA(nn.Module):
    """35 x 35 block: 1x1, 5x5, double 3x3 and pooled branches (Mixed_5b..5d)."""

    def __init__(self, inputs: int, pool_features: int):
        super().__init__()
        self.branch1x1 = ConvBN(inputs, 64, 1)
        self.branch5x5_1 = ConvBN(inputs, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(inputs, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.branch_pool = ConvBN(inputs, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = self.branch5x5_2(self.branch5x5_1(x))
        deep = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), wide, deep, self.branch_pool(_mean_pool(x))], 1)


class ReductionB(nn.Module):
    """35 -> 17 reduction (Mixed_6a): strided 3x3, strided double 3x3, strided max pool."""

    def __init__(self, inputs: int):
        super().__init__()
        self.branch3x3 = ConvBN(inputs, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(inputs, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        deep = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), deep, F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):
    """17 x 17 block with factorised 7x7 convolutions (Mixed_6b..6e)."""

    def __init__(self, inputs: int, channels_7x7: int):
        super().__init__()
        c = channels_7x7
        self.branch1x1 = ConvBN(inputs, 192, 1)
        self.branch7x7_1 = ConvBN(inputs, c, 1)
        self.branch7x7_2 = ConvBN(c, c, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(inputs, c, 1)
        self.branch7x7dbl_2 = ConvBN(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c, c, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBN(inputs, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        double = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([self.branch1x1(x), single, double, self.branch_pool(_mean_pool(x))], 1)


class ReductionD(nn.Module):
    """17 -> 8 reduction (Mixed_7a)."""

    def __init__(self, inputs: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(inputs, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(inputs, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.branch3x3_2(self.branch3x3_1(x))
        long = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            long = layer(long)
        return torch.cat([short, long, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    """8 x 8 block with split 1x3 / 3x1 outputs (Mixed_7b with a mean pool, Mixed_7c with a max
    pool: so TensorFlow's graph has it)."""

    def __init__(self, inputs: int, pool: Literal["mean", "max"]):
        super().__init__()
        self.pool = _mean_pool if pool == "mean" else _max_pool
        self.branch1x1 = ConvBN(inputs, 320, 1)
        self.branch3x3_1 = ConvBN(inputs, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(inputs, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBN(inputs, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.branch3x3_1(x)
        deep = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(short),
                self.branch3x3_2b(short),
                self.branch3x3dbl_3a(deep),
                self.branch3x3dbl_3b(deep),
                self.branch_pool(self.pool(x)),
            ],
            1,
        )


class FidInception(nn.Module):
    """Frames (N, 3, H, W) in [0, 1] -> their pool3 features (N, 2048)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = BlockA(192, pool_features=32)
        self.Mixed_5c = BlockA(256, pool_features=64)
        self.Mixed_5d = BlockA(288, pool_features=64)
        self.Mixed_6a = ReductionB(288)
        self.Mixed_6b = BlockC(768, channels_7x7=128)
        self.Mixed_6c = BlockC(768, channels_7x7=160)
        self.Mixed_6d = BlockC(768, channels_7x7=160)
        self.Mixed_6e = BlockC(768, channels_7x7=192)
        self.Mixed_7a = ReductionD(768)
        self.Mixed_7b = BlockE(1280, pool="mean")
        self.Mixed_7c = BlockE(2048, pool="max")
        self.fc = nn.Linear(FEATURES, CLASSES)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"expected frames (N, 3, H, W), got {tuple(frames.shape)}")
        x = F.interpolate(frames, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))


def load_fid_inception(path: Path) -> FidInception:
    """The network with the weights of `path` (the release, or a safetensors copy of it), every
    key accounted for, in eval mode."""
    state = read_state_dict(path, f"the FID Inception weights ({RELEASE})")
    return loaded(FidInception, state, f"{path} is not the FID Inception network ({RELEASE})")
