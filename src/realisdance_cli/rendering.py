"""`rdance render-poses`: a pose track (or an original `.pkl`) -> the pose videos the network reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from realisdance_cli.errors import UserError
from realisdance_cli.original import load_dwpose_pkl, track_to_original
from realisdance_cli.progress import ProgressFn, no_progress
from realisdance_cli.renderers.skeleton import draw_pose
from realisdance_cli.track import Track
from realisdance_cli.video import VideoWriter, as_fraction

VIDEOS = ("dwpose",)  # smpl and hamer join with the mesh renderers


@dataclass
class RenderOptions:
    videos: Sequence[str] = VIDEOS
    size: tuple[int, int] | None = None  # (height, width); default: the source size
    fps: Fraction | None = None  # default: the track's
    face: bool = False
    crf: int = 18
    lossless: bool = False


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`768x576` (height x width) -> (768, 576)."""
    if not text:
        return None
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 768x576 (height x width), got {text!r}.") from None
    if height < 2 or width < 2:
        raise UserError(f"--size must be at least 2x2, got {text!r}.")
    return height, width


def parse_videos(text: str | None) -> list[str]:
    if not text:
        return list(VIDEOS)
    wanted = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in wanted if name not in VIDEOS]
    if unknown:
        raise UserError(f"cannot render {', '.join(unknown)}; this version renders {', '.join(VIDEOS)}.")
    return [name for name in VIDEOS if name in wanted]


def load_poses(source: Path) -> tuple[list[dict[str, Any]], int, int, Fraction | None]:
    """Original-format pose dicts, frame size and fps (None if unknown) of a track or a `.pkl`."""
    if source.is_file():
        poses = load_dwpose_pkl(source)
        return poses, int(poses[0]["H"]), int(poses[0]["W"]), None
    track = Track.open(source)
    return track_to_original(track), track.source.height, track.source.width, track.source.fps


def default_out(source: Path) -> Path:
    """Videos go into the track folder (so `rdance animate ref.png dance.rdance` finds them), or
    beside a `.pkl` into `<name>_poses/`."""
    return source.with_name(source.stem + "_poses") if source.is_file() else source


def render_poses(
    source: Path,
    out: Path | None = None,
    options: RenderOptions | None = None,
    progress: ProgressFn = no_progress,
) -> list[Path]:
    """Write the chosen pose videos; returns their paths."""
    options = options or RenderOptions()
    poses, height, width, fps = load_poses(source)
    fps = options.fps or fps
    if fps is None:
        raise UserError(f"{source} does not record its frame rate; pass --fps (for example --fps 30).")
    size = options.size or (height, width)
    out = out or default_out(source)
    written = []
    for name in options.videos:
        path = out / f"{name}.mp4"
        with VideoWriter(path, as_fraction(fps), crf=options.crf, lossless=options.lossless) as writer:
            for index, pose in enumerate(poses):
                writer.write(draw_pose(pose, size[0], size[1], face=options.face))
                progress(name, index + 1, len(poses))
        written.append(path)
    return written
