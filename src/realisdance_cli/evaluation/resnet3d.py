"""The 3-D ResNet-50 that FID-VID is computed with: Hara et al.'s Kinetics-400 model
(kenshohara/3D-ResNets-PyTorch, `resnet-50-kinetics.pth`, shortcut type B), as DisCo's evaluation
runs it (`tool/metrics/resnet3d.py`, built with sample size 112, sample duration 16, no classifier).

The structure follows that module layer for layer under the release's names (`conv1.weight`,
`layer3.2.bn2.running_var`, `layer4.0.downsample.0.weight`, ..., `fc.bias`), so that the release
loads strictly; the 400-class classifier is kept for that and not used. The release is a training
checkpoint of 2017: a dict whose `state_dict` carries DataParallel's `module.` prefixes, beside
the epoch, the architecture's name and the optimizer's state; only the weights are read, without
the prefix.

Clips (N, 3, 16, H, W) in [0, 1] have every frame resized to 112 x 112 (bicubic, Pillow's resize
as DisCo calls it), and are scaled to [0, 255] less the ActivityNet mean of each channel, without
division by a deviation: the input this model was trained on, and DisCo's `frame - pixel_mean`.
The features are the 2048 channels of layer 4, averaged over its 1 x 4 x 4 map (DisCo's
`AvgPool3d((1, 4, 4))` before the classifier). The pooling was built for 16 frames (a longer
clip would give several time steps), which is the clip length DisCo cuts videos into.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from realisdance_cli.errors import UserError
from realisdance_cli.evaluation.video_layers import FrozenBatchNorm3d, resize_frames
from realisdance_cli.state_dicts import loaded, read_state_dict, read_weights

INPUT_SIZE = 112
CLIP_FRAMES = 16
FEATURES = 2048
CLASSES = 400
BATCH_NORM_EPS = 1e-5
# The per-channel RGB mean subtracted from [0, 255] frames: ActivityNet's, kenshohara's default
# (`--mean_dataset activitynet`, no deviation) and DisCo's `pixel_mean`.
PIXEL_MEAN = (114.7748, 107.7354, 99.4750)
BLOCKS = (3, 4, 6, 3)  # bottleneck blocks in layer1..layer4
WIDTHS = (64, 128, 256, 512)  # their inner widths; each block puts out 4x as many channels
RELEASE = "resnet-50-kinetics.pth"
CHECKPOINT_PREFIX = "module."


def _norm(channels: int) -> FrozenBatchNorm3d:
    return FrozenBatchNorm3d(channels, eps=BATCH_NORM_EPS)


class Bottleneck(nn.Module):
    """1x1x1, 3x3x3 (carrying the stride), 1x1x1 convolutions with batch norms, added to the input
    or, where the shape changes, to its strided 1x1x1 projection (shortcut B)."""

    def __init__(self, inputs: int, width: int, stride: int = 1):
        super().__init__()
        outputs = 4 * width
        self.conv1 = nn.Conv3d(inputs, width, 1, bias=False)
        self.bn1 = _norm(width)
        self.conv2 = nn.Conv3d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = _norm(width)
        self.conv3 = nn.Conv3d(width, outputs, 1, bias=False)
        self.bn3 = _norm(outputs)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or inputs != outputs:
            self.downsample = nn.Sequential(
                nn.Conv3d(inputs, outputs, 1, stride=stride, bias=False), _norm(outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ResNet3D50(nn.Module):
    """Clips (N, 3, 16, H, W) in [0, 1] -> their pooled layer-4 features (N, 2048)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 64, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = _norm(64)
        inputs = 64
        for index, (blocks, width) in enumerate(zip(BLOCKS, WIDTHS, strict=True)):
            stride = 1 if index == 0 else 2
            layer = [Bottleneck(inputs, width, stride)] + [
                Bottleneck(4 * width, width) for _ in range(blocks - 1)
            ]
            self.add_module(f"layer{index + 1}", nn.Sequential(*layer))
            inputs = 4 * width
        self.fc = nn.Linear(FEATURES, CLASSES)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if clips.ndim != 5 or clips.shape[1] != 3 or clips.shape[2] != CLIP_FRAMES:
            raise ValueError(f"expected clips (N, 3, {CLIP_FRAMES}, H, W), got {tuple(clips.shape)}")
        mean = clips.new_tensor(PIXEL_MEAN).view(1, 3, 1, 1, 1)
        x = 255 * resize_frames(clips, INPUT_SIZE) - mean
        x = F.max_pool3d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        for index in range(1, len(BLOCKS) + 1):
            x = getattr(self, f"layer{index}")(x)
        return x.mean(dim=(2, 3, 4))  # the 1 x 4 x 4 map of a 16-frame 112 x 112 clip


def read_release(path: Path) -> dict[str, torch.Tensor]:
    """The weights of the release (its checkpoint's `state_dict`), of a plain state dict, or of a
    safetensors copy, without DataParallel's `module.` prefixes."""
    what = f"the FID-VID 3-D ResNet-50 weights ({RELEASE})"
    if path.suffix == ".safetensors":
        state: object = read_state_dict(path, what)
    else:
        state = read_weights(path, what, mmap=False)
        if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
            state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(
            f"{path} is not {what}: it holds neither a checkpoint with a state dict nor a state dict."
        )
    return {key.removeprefix(CHECKPOINT_PREFIX): value for key, value in state.items()}


def load_resnet3d(path: Path) -> ResNet3D50:
    """The network with the weights of `path`, every key accounted for, in eval mode."""
    state = read_release(path)
    return loaded(ResNet3D50, state, f"{path} is not the FID-VID 3-D ResNet-50 ({RELEASE})")
