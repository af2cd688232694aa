"""How frames are brought together before they are compared: the evaluation protocol.

Papers' numbers are only comparable under one protocol: the frame size the metrics see, how a
frame of another shape gets there, which frames count, how the video metrics cut clips. DisCo's
is the default (see the README's evaluation section for its sources); the others are options.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from realisdance_cli.errors import UserError

if TYPE_CHECKING:  # NumPy and Pillow load when frames are fitted, not for `rdance --help`
    import numpy as np


@dataclass(frozen=True)
class Protocol:
    """How frames are compared.

    Frames are fitted to `size` (height, width): squashed ("resize") or centre-cropped to its
    aspect first ("crop", offsets rounded down as torchvision's centre crop does), resized with
    Pillow's bilinear filter, and rounded to 8 bits as the protocol's PNG frames were. Video
    metrics see every window of `clip_length` consecutive frames `clip_stride` apart.
    `ssim_gray`: SSIM on BT.601 grey (OpenCV's conversion) rather than per colour channel;
    `psnr_uint8`: the 8-bit wrap-around of DisCo's first PSNR code (papers of 2023-24 copied
    it: about 29 dB for almost anything); `lpips_signed`: LPIPS fed [-1, 1] as it was trained,
    not [0, 1] as DisCo feeds it.
    """

    name: str
    size: tuple[int, int]
    fit: Literal["resize", "crop"]
    clip_length: int
    clip_stride: int
    ssim_gray: bool
    psnr_uint8: bool
    lpips_signed: bool
    summary: str

    def window(self, height: int, width: int) -> tuple[int, int, int, int]:
        """The part of a (height, width) frame the protocol keeps: x0, y0, kept width, kept height."""
        if self.fit == "resize":
            return 0, 0, width, height
        aspect = self.size[1] / self.size[0]
        kept_width = min(width, round(height * aspect))
        kept_height = min(height, round(width / aspect))
        return (width - kept_width) // 2, (height - kept_height) // 2, kept_width, kept_height

    def fit_frames(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, h, w, 3) uint8 at the protocol's size."""
        import numpy as np
        from PIL import Image

        x0, y0, kept_width, kept_height = self.window(*frames.shape[1:3])
        crops = frames[:, y0 : y0 + kept_height, x0 : x0 + kept_width]  # cropped first, as torchvision does
        target = (self.size[1], self.size[0])
        return np.stack(
            [np.asarray(Image.fromarray(c).resize(target, Image.Resampling.BILINEAR)) for c in crops]
        )

    def map_points(self, points: np.ndarray, height: int, width: int) -> np.ndarray:
        """(..., 2) pixel x, y of a (height, width) frame -> the same places in the fitted frame."""
        import numpy as np

        x0, y0, kept_width, kept_height = self.window(height, width)
        scale = np.array([self.size[1] / kept_width, self.size[0] / kept_height])
        return (np.asarray(points, dtype=np.float64) - [x0, y0]) * scale

    def clips(self, frames: int) -> list[slice]:
        """The clips of a video of `frames` frames for FID-VID and FVD."""
        length = self.clip_length
        return [slice(start, start + length) for start in range(0, frames - length + 1, self.clip_stride)]


DISCO = Protocol(
    "disco",
    size=(256, 256),
    fit="crop",
    clip_length=16,
    clip_stride=1,
    ssim_gray=True,
    psnr_uint8=False,
    lpips_signed=False,
    summary="DisCo's (TikTok): centre square at 256x256, every frame, 16-frame windows at stride 1",
)
DISCO_LEGACY = replace(
    DISCO,
    name="disco-legacy",
    psnr_uint8=True,
    summary="DisCo's with its first PSNR code (8-bit wrap-around), as in the 29-30 dB tables",
)
PROTOCOLS = {protocol.name: protocol for protocol in (DISCO, DISCO_LEGACY)}
DEFAULT_PROTOCOL = "disco"


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UserError(f"unknown protocol {name!r}; the protocols are {', '.join(PROTOCOLS)}.") from None
