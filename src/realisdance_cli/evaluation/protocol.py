"""How frames are brought together before they are compared: the evaluation protocol.

Papers' numbers are only comparable under one protocol: the frame size the metrics see, how a
frame of another shape gets there, which frames count, how the video metrics cut clips. DisCo's
is the default (see the README's evaluation section for its sources); the others are options.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from realisdance_cli.errors import UserError

if TYPE_CHECKING:  # NumPy and Pillow load when frames are fitted, not for `rdance --help`
    import numpy as np


def centre(height: int, width: int, aspect: float) -> tuple[int, int, int, int]:
    """The largest centred part of a (height, width) frame of `aspect` (width / height): x0, y0,
    width, height, offsets rounded down (torchvision's centre crop)."""
    kept_width = min(width, round(height * aspect))
    kept_height = min(height, round(width / aspect))
    return (width - kept_width) // 2, (height - kept_height) // 2, kept_width, kept_height


@dataclass(frozen=True)
class Protocol:
    """How frames are compared.

    Frames are centre-cropped to the aspect of `size` (height, width), resized to it with Pillow's
    bilinear filter and rounded to 8 bits, as the protocol's PNG frames were; SSIM is on BT.601
    grey (OpenCV's conversion), LPIPS sees [0, 1] as DisCo feeds it. Video metrics see every
    window of `clip_length` consecutive frames `clip_stride` apart (`clips`). `wrapped_psnr` adds
    the 8-bit wrap-around PSNR of DisCo's first code (papers of 2023-24 copied it: about 29 dB for
    almost anything).

    A truth of another shape than its generated video is first cut to the generated video's
    aspect (`aspect`): the centre a model's scale-to-cover fit keeps, so both show one region.
    """

    name: str
    size: tuple[int, int]
    clip_length: int
    clip_stride: int
    wrapped_psnr: bool
    summary: str

    def window(self, height: int, width: int, aspect: float | None = None) -> tuple[int, int, int, int]:
        """The part of a (height, width) frame the protocol keeps: x0, y0, width, height."""
        x0, y0, width, height = centre(height, width, aspect) if aspect else (0, 0, width, height)
        inner_x, inner_y, kept_width, kept_height = centre(height, width, self.size[1] / self.size[0])
        return x0 + inner_x, y0 + inner_y, kept_width, kept_height

    def fit_frames(self, frames: Sequence[np.ndarray], aspect: float | None = None) -> np.ndarray:
        """(H, W, 3) uint8 frames (each its own size) -> (N, h, w, 3) uint8 at the protocol's size."""
        import numpy as np
        from PIL import Image

        target, fitted = (self.size[1], self.size[0]), []
        for frame in frames:
            height, width = frame.shape[:2]
            x0, y0, width, height = self.window(height, width, aspect)
            crop = Image.fromarray(np.ascontiguousarray(frame[y0 : y0 + height, x0 : x0 + width]))
            fitted.append(np.asarray(crop.resize(target, Image.Resampling.BILINEAR)))  # cropped first
        return np.stack(fitted) if fitted else np.zeros((0, *self.size, 3), np.uint8)

    def map_points(
        self, points: np.ndarray, height: int, width: int, aspect: float | None = None
    ) -> np.ndarray:
        """(..., 2) pixel x, y of a (height, width) frame -> the same places in the fitted frame;
        NaN for points outside it, which the image metrics do not see either."""
        import numpy as np

        x0, y0, kept_width, kept_height = self.window(height, width, aspect)
        scale = np.array([self.size[1] / kept_width, self.size[0] / kept_height])
        mapped = (np.asarray(points, dtype=np.float64) - [x0, y0]) * scale
        inside = ((mapped >= 0) & (mapped <= [self.size[1], self.size[0]])).all(axis=-1)
        return np.where(inside[..., None], mapped, np.nan)

    def clips(self, frames: int) -> list[slice]:
        """The clips of a video of `frames` frames for FID-VID and FVD: every window, the last one
        included, as DisCo's code since commit 6190108 cuts them from frame folders (its
        `DatasetFVDVideoFromFramesResize`). None for a video shorter than a clip.

        DisCo's first code (gen_gifs_for_fvd.py, until 6190108) wrote the windows as 256-colour GIFs
        and left the last one out (`frames - clip_length` of them); neither is done here, under
        either protocol: the palette changes every pixel, and each GIF writer quantises its own way."""
        length = self.clip_length
        return [slice(start, start + length) for start in range(0, frames - length + 1, self.clip_stride)]


DISCO = Protocol(
    "disco",
    size=(256, 256),
    clip_length=16,
    clip_stride=1,
    wrapped_psnr=False,
    summary="DisCo's (TikTok): centre square at 256x256, every frame, 16-frame windows at stride 1",
)
DISCO_LEGACY = replace(
    DISCO,
    name="disco-legacy",
    wrapped_psnr=True,
    summary="DisCo's with its first PSNR code (8-bit wrap-around), as in the 29-30 dB tables",
)
PROTOCOLS = {protocol.name: protocol for protocol in (DISCO, DISCO_LEGACY)}
DEFAULT_PROTOCOL = "disco"


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise UserError(f"--protocol must be {' or '.join(PROTOCOLS)}, got {name!r}.") from None
