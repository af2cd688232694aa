"""What the network sees of pictures and videos: fitting to the frame, DINOv2's view, pixels back.

Inputs come as PIL images, numpy arrays (H, W, 3) uint8 or in [0, 1], tensors (3, H, W) in [0, 1]
or paths; videos as a sequence of pictures, an array (F, H, W, 3) uint8 or in [0, 1], a tensor
(F, 3, H, W) in [0, 1], a video file or an image folder. Pictures are scaled to cover the frame and
centre-cropped, as the original does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from realisdance_cli.errors import UserError
from realisdance_cli.pictures import one_picture, picture_pixels, video_frames
from realisdance_cli.pipeline_checks import check_pixel_range

if TYPE_CHECKING:
    import torch
    from PIL import Image

    # A picture: PIL, an (H, W, 3) array (uint8 or in [0, 1]), a file, or a tensor (3, H, W) in [0, 1].
    PictureInput = Image.Image | np.ndarray | torch.Tensor | str | os.PathLike[str]
    # A video: pictures, an (F, H, W, 3) array (uint8 or in [0, 1]), a file, an image folder, or a
    # tensor (F, 3, H, W) in [0, 1].
    VideoInput = Sequence[PictureInput] | np.ndarray | torch.Tensor | str | os.PathLike[str]

SIZE = (768, 576)  # (height, width): the frame the model was trained at, the original's default
MIN_SIDE = 48  # pixels: DINOv2 sees 5/12 of the picture, which must hold a 14-pixel patch
CLIP_SCALE = 5 / 12  # DINOv2 sees the reference at 5/12 of the frame (320x240 for 768x576)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def check_frame_size(height: int, width: int, what: str) -> None:
    """The VAE works in 8-pixel cells, and DINOv2's view must hold one patch."""
    if height % 8 or width % 8 or min(height, width) < MIN_SIDE:
        raise UserError(
            f"{what} must be a multiple of 8 on both sides and at least {MIN_SIDE}x{MIN_SIDE}, "
            f"got {height}x{width}."
        )


def fit(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale an RGB picture to cover (height, width), then crop the centre."""
    height, width = size
    scale = max(height / picture.shape[0], width / picture.shape[1])
    new_w, new_h = max(width, round(picture.shape[1] * scale)), max(height, round(picture.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(picture, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def picture_array(
    picture: PictureInput, size: tuple[int, int], what: str = "the reference picture"
) -> np.ndarray:
    """Any picture input fitted to (height, width): (H, W, 3) uint8, or float32 in [0, 1] for a
    tensor, which is taken as it is (it must have the size already). A list of one and a leading
    batch axis of 1 are taken too; a mistake is one sentence naming the picture as `what`."""
    import torch

    picture = one_picture(picture, what)
    if not isinstance(picture, torch.Tensor):
        return fit(picture_pixels(picture, what), size)
    if picture.ndim == 4 and picture.shape[0] == 1:
        picture = picture[0]
    if picture.ndim != 3 or picture.shape[0] != 3:
        raise UserError(f"{what} as a tensor must be (3, H, W) in [0, 1], got {tuple(picture.shape)}.")
    if tuple(picture.shape[1:]) != size:
        raise UserError(
            f"{what} as a tensor must be {size[0]}x{size[1]} (height x width), "
            f"got {picture.shape[1]}x{picture.shape[2]}."
        )
    array = picture.detach().float().cpu()
    check_pixel_range(array, what)
    return array.permute(1, 2, 0).numpy()


VIDEO_FORMS = (
    "frames, an (F, H, W, 3) array (uint8 or floats in [0, 1]), a tensor (F, 3, H, W) in [0, 1], or a "
    "video file or image folder"
)


def video_arrays(video: VideoInput, size: tuple[int, int], what: str = "the pose video") -> list[np.ndarray]:
    """Any video input as frames fitted to (height, width), as `picture_array` makes them (read
    as the DiT pipeline reads them, `video_frames`), or one sentence naming it as `what` (no
    frames: nothing to stack, nothing to animate)."""
    each = f"a frame of {what}"
    frames = [picture_array(frame, size, each) for frame in video_frames(video, what, VIDEO_FORMS)]
    if not frames:
        raise UserError(f"{what} has no frames to animate.")
    return frames


def _unit(picture: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]."""
    return picture.astype(np.float32) / 255 if picture.dtype == np.uint8 else picture.astype(np.float32)


def reference_tensor(picture: np.ndarray) -> torch.Tensor:
    """A fitted picture (H, W, 3) as the VAE's input (1, 3, H, W) in [-1, 1]."""
    import torch

    if picture.dtype == np.uint8:
        return torch.from_numpy(picture).permute(2, 0, 1)[None].float() / 127.5 - 1
    return torch.from_numpy(_unit(picture)).permute(2, 0, 1)[None] * 2 - 1


def video_tensor(frames: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """Fitted frames (H, W, 3), or an (F, H, W, 3) array of them, as the pose guider's input
    (1, 3, F, H, W) in [0, 1]."""
    import torch

    if all(frame.dtype == np.uint8 for frame in frames):
        return torch.from_numpy(np.asarray(frames)).permute(3, 0, 1, 2)[None].float() / 255
    return torch.from_numpy(np.stack([_unit(f) for f in frames])).permute(3, 0, 1, 2)[None]


def clip_input(picture: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
    """DINOv2's view (3, h, w) of a fitted picture: resized to `size` (height, width; default
    5/12 of the picture, 320x240 for 768x576 as the original) and ImageNet-normalised."""
    import torch

    height, width = size or (round(picture.shape[0] * CLIP_SCALE), round(picture.shape[1] * CLIP_SCALE))
    resized = cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
    clip = torch.from_numpy(_unit(resized))
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    return ((clip - mean) / std).permute(2, 0, 1)


def frame_pixels(picture: torch.Tensor) -> np.ndarray:
    """A frame (3, H, W) in [0, 1] as the (H, W, 3) uint8 picture written to video."""
    import torch

    return (picture * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def as_pil(frames: Any) -> list:
    """Frames (F, 3, H, W) in [0, 1] as PIL images."""
    from PIL import Image

    return [Image.fromarray(frame_pixels(frame)) for frame in frames]
