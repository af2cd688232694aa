"""LPIPS (VGG, version 0.1): the learned perceptual distance of Zhang et al. 2018, as the `lpips`
package computes it, from two released files.

Both frames are shifted and scaled per channel (the ScalingLayer), passed through torchvision's
VGG16 convolutions, and read at relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3; at each of those
five layers the features are scaled to unit length along the channels, their squared differences
are weighed by a learned 1x1 convolution (`lin0`..`lin4`) and averaged over the image, and the
five averages are summed.

Frames go in as LPIPS defines them, in [-1, 1]; `rdance eval` holds frames in [0, 1] and passes
`2 * frames - 1` (the `lpips` package's `normalize=True`).

Weights: the backbone is torchvision's `vgg16-397923af.pth` (`features.N.weight/bias`; its ImageNet
classifier is not used and is dropped when present), the heads are the package's
`weights/v0.1/vgg.pth` (`lin0.model.1.weight`..`lin4.model.1.weight`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from realisdance_cli.state_dicts import load_exactly, read_state_dict

# The ScalingLayer's constants: inputs in [-1, 1] become (x - SHIFT) / SCALE per RGB channel, the
# ImageNet mean and deviation that torchvision's VGG expects, expressed for that range.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# Output channels of VGG16's 13 convolutions; "M" is a 2x2 max pool (torchvision's configuration D).
VGG16_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# `features` indices of the ReLUs LPIPS reads: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
TAPS = (3, 8, 15, 22, 29)
CHANNELS = (64, 128, 256, 512, 512)
UNIT_EPS = 1e-10  # the package's `normalize_tensor` guard against a zero vector
BACKBONE_RELEASE = "vgg16-397923af.pth"
HEADS_RELEASE = "LPIPS v0.1 vgg.pth"


class VGG16Features(nn.Module):
    """torchvision's VGG16 `features` up to relu5_3 (indices 0..29, the same key names); returns
    the activations at TAPS."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for entry in VGG16_LAYOUT:
            if entry == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(entry), 3, padding=1), nn.ReLU()]
                channels = int(entry)
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in TAPS:
                taps.append(x)
        return taps


class Head(nn.Module):
    """One learned 1x1 weighing of the channels, behind a dropout as in training (a no-op in eval
    mode; it also keeps the release's key `model.1.weight`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Heads(nn.Module):
    """The five heads under the release's names `lin0`..`lin4`."""

    def __init__(self) -> None:
        super().__init__()
        for index, channels in enumerate(CHANNELS):
            self.add_module(f"lin{index}", Head(channels))

    def forward(self, index: int, x: torch.Tensor) -> torch.Tensor:
        head: Head = getattr(self, f"lin{index}")
        return head(x)


def scaling_layer(frames: torch.Tensor) -> torch.Tensor:
    """(frames - SHIFT) / SCALE per RGB channel, for frames (N, 3, H, W) in [-1, 1]."""
    shift = frames.new_tensor(SHIFT).view(1, 3, 1, 1)
    return (frames - shift) / frames.new_tensor(SCALE).view(1, 3, 1, 1)


def _unit(features: torch.Tensor) -> torch.Tensor:
    """Each pixel's feature vector scaled to unit length along the channels."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + UNIT_EPS)


class LPIPS(nn.Module):
    """LPIPS(a, b) for frames (N, 3, H, W) in [-1, 1] (H, W >= 16): the N distances."""

    def __init__(self) -> None:
        super().__init__()
        self.vgg = VGG16Features()
        self.heads = Heads()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
            raise ValueError(
                f"expected two batches (N, 3, H, W) of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
            )
        if min(a.shape[2:]) < 16:
            raise ValueError(f"LPIPS needs frames of at least 16 x 16 pixels, got {tuple(a.shape[2:])}")
        both = scaling_layer(torch.cat([a, b]))
        total = a.new_zeros(len(a))
        for index, features in enumerate(self.vgg(both)):
            first, second = _unit(features).chunk(2)
            total = total + self.heads(index, (first - second) ** 2).mean(dim=(1, 2, 3))
        return total


def load_lpips(backbone: Path, heads: Path) -> LPIPS:
    """LPIPS with torchvision's VGG16 weights from `backbone` and the v0.1 heads from `heads`
    (each the release or a safetensors copy), every key accounted for, in eval mode."""
    vgg = read_state_dict(backbone, f"torchvision's VGG16 weights ({BACKBONE_RELEASE})")
    lins = read_state_dict(heads, f"the LPIPS heads ({HEADS_RELEASE})")
    with torch.device("meta"):
        model = LPIPS()
    features = {key: value for key, value in vgg.items() if not key.startswith("classifier.")}
    load_exactly(model.vgg, features, f"{backbone} is not torchvision's VGG16 ({BACKBONE_RELEASE})")
    load_exactly(model.heads, lins, f"{heads} is not the LPIPS VGG heads ({HEADS_RELEASE})")
    return model.eval()
