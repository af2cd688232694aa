"""What RealisDance-DiT sees of the reference and the pose videos, as the original prepares them.

Tensors are in the original's layout, (B, 3, F, H, W) in [-1, 1] (the reference with F = 1), or
in the SD pipeline's, (F, 3, H, W) frames and a (3, H, W) reference in [0, 1], converted; pictures
(PIL, (H, W, 3) arrays of uint8 or floats in [0, 1], paths) and videos (frame sequences, (F, H, W, 3)
arrays of uint8 or floats in [0, 1], files, image folders: read as the SD pipeline reads them) are
converted to it as the original's `load_image` / `load_video` do. Resizing is PyTorch's bicubic on
those tensors, as in the original's `process_shape`. Videos stay uint8 until they are resized, a
few frames at a time, so a long 1080p video never exists in float32.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from realisdance_cli.errors import UserError
from realisdance_cli.pictures import picture_pixels, video_frames
from realisdance_cli.pipeline_checks import check_pixel_range

if TYPE_CHECKING:
    from PIL import Image

    # The reference: PIL, an (H, W, 3) array (uint8 or floats in [0, 1]), a file, or a tensor
    # (B, 3, 1, H, W) in [-1, 1] or (3, H, W) in [0, 1].
    PictureInput = Image.Image | np.ndarray | torch.Tensor | str | os.PathLike[str]
    # A pose video: pictures, an (F, H, W, 3) array (uint8 or floats in [0, 1]), a file, an image folder,
    # or a tensor (B, 3, F, H, W) in [-1, 1] or (F, 3, H, W) in [0, 1].
    VideoInput = Sequence[PictureInput] | np.ndarray | torch.Tensor | str | os.PathLike[str]

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's normalisation
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SIDE = 224


RESIZE_FRAMES = 8  # frames converted to float and resized at a time


def _layout(frames: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (1, 3, F, H, W) uint8."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None]


def signed(video: torch.Tensor) -> torch.Tensor:
    """uint8 pixels as float32 in [-1, 1] (the original's `x / 127.5 - 1`); floats as they are."""
    return video.float() / 127.5 - 1 if video.dtype == torch.uint8 else video.float()


def _floats_or_pixels(tensor: torch.Tensor, what: str, scale: str) -> None:
    """uint8 pixels or floats (ints would be read as pixels of another scale)."""
    if tensor.dtype != torch.uint8 and not tensor.is_floating_point():
        raise UserError(f"{what} tensor must hold floats in {scale} (or uint8 pixels), got {tensor.dtype}.")


def _from_unit(tensor: torch.Tensor, what: str, layout: str) -> torch.Tensor:
    """The SD pipeline's form, frames (F, 3, H, W) or a picture (3, H, W) in [0, 1] (or uint8
    pixels), in the original's layout and scale: (1, 3, F, H, W) in [-1, 1] (uint8 kept)."""
    _floats_or_pixels(tensor, what, "[0, 1]")
    frames = tensor.permute(1, 0, 2, 3) if tensor.ndim == 4 else tensor[:, None]
    if tensor.dtype == torch.uint8:
        return frames[None]
    check_pixel_range(tensor, f"{what} tensor {layout}")
    return frames[None].to(torch.float32, copy=True).mul_(2).sub_(1)  # one copy, not two


def _checked(tensor: torch.Tensor, what: str, frames: int | None = None) -> torch.Tensor:
    """A given tensor in the original's layout: uint8 pixels, or floats in [-1, 1] (the scale is
    the caller's to get right: [0, 1] values would be read as other colours, so a pose video with
    no black, -1, is warned about); or in the SD pipeline's (F, 3, H, W) / (3, H, W) in [0, 1]."""
    original, unit, unit_dims = (
        ("(B, 3, 1, H, W)", "(3, H, W)", 3) if frames == 1 else ("(B, 3, F, H, W)", "(F, 3, H, W)", 4)
    )
    if tensor.ndim == unit_dims and tensor.shape[-3] == 3:
        return _from_unit(tensor, what, unit)
    if tensor.ndim != 5 or tensor.shape[1] != 3 or (frames is not None and tensor.shape[2] != frames):
        raise UserError(
            f"{what} tensor must be {original} in [-1, 1] or {unit} in [0, 1], got {tuple(tensor.shape)}."
        )
    _floats_or_pixels(tensor, what, "[-1, 1]")
    if tensor.dtype == torch.uint8:
        return tensor
    check_pixel_range(tensor, f"{what} tensor", signed=True)
    if tensor.numel() and float(tensor.min()) >= 0:
        warnings.warn(
            f"{what} tensor {original} holds no value below 0, as if it were in [0, 1]: the pipeline takes "
            f"{original} in [-1, 1] (x * 2 - 1) or {unit} in [0, 1].",
            stacklevel=2,
        )
    return tensor


def picture_tensor(picture: PictureInput) -> torch.Tensor:
    """The reference as (B, 3, 1, H, W) in [-1, 1]."""
    if isinstance(picture, torch.Tensor):
        return signed(_checked(picture, "the reference", frames=1))
    return signed(_layout(picture_pixels(picture, "the reference picture")[None]))


VIDEO_FORMS = (
    "a list of frames, an (F, H, W, 3) array (uint8 or floats in [0, 1]), a tensor (B, 3, F, H, W) in "
    "[-1, 1] or (F, 3, H, W) in [0, 1], or a video file or image folder"
)


def _frames(video: object, what: str) -> np.ndarray:
    """A pose video that is not a tensor as (F, H, W, 3) uint8 frames, read as the SD pipeline
    reads it (`video_frames`), or one sentence naming it; a uint8 array as it is, not copied."""
    if isinstance(video, np.ndarray) and video.ndim == 4 and video.shape[3] == 3 and video.dtype == np.uint8:
        return video
    each = f"a frame of {what}"
    frames = [picture_pixels(frame, each) for frame in video_frames(video, what, VIDEO_FORMS)]
    sizes = sorted({frame.shape for frame in frames})
    if len(sizes) > 1:
        raise UserError(f"the frames of {what} must have one size, got {sizes}.")
    return np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.uint8)


def video_tensor(video: VideoInput, what: str) -> torch.Tensor:
    """A pose video as (B, 3, F, H, W): uint8 pixels, or floats in [-1, 1] (see `_checked`); a file
    gives all its frames. One sentence naming it as `what` if it is none of these or empty."""
    tensor = _checked(video, what) if isinstance(video, torch.Tensor) else _layout(_frames(video, what))
    if tensor.shape[2] == 0:
        raise UserError(f"{what} has no frames to animate.")
    return tensor


def video_size(height: int, width: int, max_resolution: int, multiple: int) -> tuple[int, int]:
    """The size of `max_resolution` pixels in the aspect of height x width, each side a multiple
    of `multiple` (the original's rule for the output from the SMPL video's size)."""
    ratio = (max_resolution / (height * width)) ** 0.5
    return round(height * ratio / multiple) * multiple, round(width * ratio / multiple) * multiple


def reference_size(picture: tuple[int, int], video: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The reference picture's size (height, width) at the video's area in whole `multiple`s (the
    original's rule), or one sentence when a side would vanish."""
    scaled = video_size(*picture, video[0] * video[1], multiple)
    if min(scaled) < multiple:
        raise UserError(
            f"the reference picture ({picture[0]}x{picture[1]}, height x width) is too narrow for a "
            f"{video[0]}x{video[1]} video: a side would be under {multiple} pixels; crop it to a less "
            "extreme shape."
        )
    return scaled


def _bicubic(
    video: torch.Tensor, size: tuple[int, int], crop: tuple[int, int, int, int] | None = None
) -> torch.Tensor:
    """Each frame in [-1, 1] resized to `size` (bicubic, `align_corners=False`), then cut to
    `crop` = (height, width, top, left) if given, a few frames at a time."""
    parts = []
    for chunk in video.split(RESIZE_FRAMES, dim=2):
        frames = chunk.shape[2]
        flat = signed(chunk).permute(0, 2, 1, 3, 4).flatten(0, 1)
        flat = F.interpolate(flat, size=size, mode="bicubic", align_corners=False)
        if crop is not None:
            height, width, top, left = crop
            flat = flat[..., top : top + height, left : left + width]
        parts.append(flat.unflatten(0, (-1, frames)).permute(0, 2, 1, 3, 4))
    return torch.cat(parts, dim=2)


def resize_crop(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Scaled to cover (height, width), then centre-cropped (the original's "resize_crop")."""
    height, width = size
    ratio_h, ratio_w = height / video.shape[3], width / video.shape[4]
    if ratio_h > ratio_w:
        scaled = (height, round(video.shape[4] * ratio_h))
        top, left = 0, int(round(scaled[1] - width) / 2.0)
    else:
        scaled = (round(video.shape[3] * ratio_w), width)
        top, left = int(round(scaled[0] - height) / 2.0), 0
    return _bicubic(video, scaled, (height, width, top, left))


def resize_to_area(video: torch.Tensor, area: int, multiple: int) -> torch.Tensor:
    """Scaled to `area` pixels in its own aspect, sides multiples of `multiple`, no crop (the
    original's "max_resolution", used for the reference)."""
    return _bicubic(video, video_size(video.shape[3], video.shape[4], area, multiple))


def clip_view(picture: torch.Tensor) -> torch.Tensor:
    """CLIP's input (B, 3, 224, 224) from a reference (B, 3, 1, H, W) in [-1, 1]."""
    unit = picture[:, :, 0] * 0.5 + 0.5
    unit = F.interpolate(unit, size=(CLIP_SIDE, CLIP_SIDE), mode="bicubic", align_corners=False)
    mean, std = (
        torch.tensor(values, dtype=unit.dtype, device=unit.device).view(1, 3, 1, 1)
        for values in (CLIP_MEAN, CLIP_STD)
    )
    return (unit - mean) / std
