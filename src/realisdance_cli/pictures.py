"""One picture as RGB uint8 (H, W, 3), upright: a file read as OpenCV shows it, or a PIL image or array.

Image sources, the demo and both animators read pictures here, so a picture reads the same (and a
bad one fails with the same sentence) whichever of them is given it; both animators take a video's
frames here too (`video_frames`), so a video form one takes the other takes.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from realisdance_cli.errors import UserError
from realisdance_cli.files import existing_file, read_bytes
from realisdance_cli.pipeline_checks import check_pixel_range

if TYPE_CHECKING:
    from PIL import Image

    # A picture `picture_pixels` takes: a file, a PIL image or an (H, W, 3) array, uint8 or in [0, 1].
    Picture = Image.Image | np.ndarray | str | os.PathLike[str]


def read_picture(path: str | os.PathLike[str], what: str = "the picture") -> np.ndarray:
    """One picture file as RGB uint8 (H, W, 3), EXIF orientation applied (as OpenCV shows it), or
    one sentence when it is missing (`what` names it), a folder or not a picture."""
    path = existing_file(Path(path), what)
    data = read_bytes(path)
    check_pixel_count(data, str(path))
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise UserError(f"{path} is not an image OpenCV can read (use PNG or JPEG).")
    return np.ascontiguousarray(image[:, :, ::-1])


MAX_PICTURE_PIXELS = 150_000_000  # a 150-megapixel photograph; beyond, a forged header is likelier


def check_pixel_count(data: bytes, where: str) -> None:
    """Refuses a picture whose header declares more than `MAX_PICTURE_PIXELS`, before decoding it:
    a 3 MB PNG of 32768 x 32768 blank rows took 6 GB and a minute. A format PIL cannot parse is
    left to OpenCV, which bounds pictures at 2^30 pixels itself."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
        except Image.DecompressionBombError:  # more than twice PIL's own limit
            width = height = MAX_PICTURE_PIXELS
        except Exception:  # not PIL's format or not a picture: OpenCV says which
            return
    if width * height > MAX_PICTURE_PIXELS:
        raise UserError(
            f"{where} is a picture of more than {MAX_PICTURE_PIXELS // 10**6} megapixels; scale it down."
        )


def picture_pixels(picture: Picture | Sequence[Picture], what: str = "the picture") -> np.ndarray:
    """A picture file, PIL image or array as RGB (H, W, 3) uint8, or one sentence naming it as
    `what` (tensors are each caller's own layout). Float arrays in [0, 1] are pixels / 255 (kept
    to 8 bits, as a picture file holds them); a list of one picture (diffusers' batch of one) and
    a leading batch axis of 1 are taken too."""
    from PIL import Image, ImageOps

    picture = one_picture(picture, what)
    if isinstance(picture, str | os.PathLike):
        return read_picture(picture, what)
    if isinstance(picture, Image.Image):  # upright, as a file read from its path is
        picture = ImageOps.exif_transpose(picture).convert("RGB")
    array = np.asarray(picture)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[2] != 3 or not (array.dtype == np.uint8 or array.dtype.kind == "f"):
        raise UserError(
            f"{what} must be (H, W, 3) uint8 or floats in [0, 1], got {array.shape} {array.dtype}."
        )
    if array.dtype.kind == "f":
        check_pixel_range(array, what)
        return (array * 255).round().astype(np.uint8)
    return array


def one_picture(picture: Any, what: str) -> Any:
    """The picture of a list or tuple of one (diffusers' batch of one), or `picture` itself."""
    if not isinstance(picture, list | tuple):
        return picture
    if len(picture) != 1:
        raise UserError(f"{what} must be one picture (or a list of one), got a list of {len(picture)}.")
    return picture[0]


def video_frames(video: Any, what: str, forms: str) -> Iterable[Any]:
    """The frames of a video given in no pipeline's own tensor layout, each for the caller to read
    as a picture: a video file's, an image's or an image folder's (decoded as they are used), a
    sequence's, or an (F, ...) array's or tensor's (a leading batch axis of 1 dropped), e.g. an
    (F, H, W, 3) array of uint8 or of floats in [0, 1]. Anything else is one sentence naming
    `what` and what the caller takes (`forms`)."""
    if isinstance(video, str | os.PathLike):
        from realisdance_cli.video import FrameSource

        path = Path(video)
        return FrameSource(path if path.is_dir() else existing_file(path, what))
    shape = getattr(video, "shape", None)
    if shape is not None and len(shape) == 5 and shape[0] == 1:
        video, shape = video[0], shape[1:]
    if (shape is not None and len(shape) == 4) or (shape is None and isinstance(video, Sequence)):
        return video
    kind = "an array" if isinstance(video, np.ndarray) else "a tensor"
    got = type(video).__name__ if shape is None else f"{kind} {tuple(shape)} {video.dtype}"
    raise UserError(f"{what} must be {forms}, got {got}.")
