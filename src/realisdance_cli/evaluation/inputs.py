"""What `rdance eval` compares: generated videos paired with their truth by name.

A video is a video file or a folder of frame images (DisCo's layout); a set is one video or a
folder of them (a folder holding video files is a set, whatever pictures it holds besides). Every
generated set (a method) must have a truth for each of its videos, found by name (the file name
without its suffix); a truth without a generated video is left out with a warning only when no
method has it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from realisdance_cli.errors import UserError, counted
from realisdance_cli.track import named
from realisdance_cli.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, FrameSource

LISTED = 5  # names a listing shows before "and N more"
EXIF_ORIENTATION = 0x0112
TRANSPOSING = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Pair:
    """One generated video and its truth (and the reference picture it was animated from)."""

    name: str
    generated: Path
    truth: Path
    reference: Path | None = None
    truth_fps: Fraction | None = None  # a truth of frame folders: their rate (--truth-fps), else unknown


def _is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def _is_frame_folder(path: Path) -> bool:
    if not path.is_dir():
        return False
    kinds = {p.suffix.lower() for p in path.iterdir() if not p.name.startswith(".")}
    return bool(kinds & IMAGE_SUFFIXES) and not any(_is_video_file(p) for p in path.iterdir())


def is_video(path: Path) -> bool:
    """A video file, or a folder holding frame images and no video files (a cover picture
    beside videos does not make their folder one video)."""
    return _is_video_file(path) or _is_frame_folder(path)


def listing(names: Sequence[str]) -> str:
    """'a, b, c, d, e and 3 more'."""
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(sorted(names)[:LISTED]) + more


def videos(path: Path, what: str) -> dict[str, Path]:
    """name -> video for a video or a folder of videos; one sentence when there is none."""
    if not path.exists():
        raise UserError(f"{what} {path} does not exist.")
    if is_video(path):
        return {path.stem: path}
    if not path.is_dir():
        raise UserError(
            f"{what} {path} is not a video ({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder of them."
        )
    found: dict[str, Path] = {}
    for item in sorted(path.iterdir()):
        if item.name.startswith(".") or not is_video(item):
            continue
        if item.stem in found:
            raise UserError(
                f"{what} {path} holds two videos named {item.stem} ({found[item.stem].name}, "
                f"{item.name}); keep one."
            )
        found[item.stem] = item
    if not found:
        raise UserError(
            f"{what} {path} holds no videos (files {', '.join(sorted(VIDEO_SUFFIXES))} or folders of frames)."
        )
    return found


def references(path: Path | None, names: Sequence[str]) -> dict[str, Path]:
    """name -> reference picture: one picture for every video, or a folder of pictures by name."""
    if path is None:
        return {}
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return dict.fromkeys(names, path)
    if not path.is_dir():
        raise UserError(f"--reference {path} is not a picture or a folder of pictures.")
    pictures: dict[str, Path] = {}
    for picture in sorted(path.iterdir()):
        if picture.suffix.lower() in IMAGE_SUFFIXES:
            if picture.stem in pictures:
                raise UserError(
                    f"--reference {path} holds two pictures named {picture.stem} "
                    f"({pictures[picture.stem].name}, {picture.name}); keep one."
                )
            pictures[picture.stem] = picture
    missing = [name for name in names if name not in pictures]
    if missing:
        raise UserError(f"--reference {path} has no picture named {listing(missing)}.")
    return {name: pictures[name] for name in names}


def pair(
    methods: Mapping[str, Path],
    truth: Path,
    reference: Path | None = None,
    truth_fps: Fraction | None = None,
) -> dict[str, list[Pair]]:
    """method -> its pairs, in name order. A single generated video is paired with a single truth
    whatever their names; folders are matched by name, and a generated video without a truth is
    refused (its name is said) since its scores would be missing from the method's mean.
    `truth_fps` is the rate of the truths that are frame folders (refused when none is). Frame
    folders of frames of several sizes are refused here, before any work."""
    truths = videos(truth, "TRUTH")
    result: dict[str, list[Pair]] = {}
    for method, path in methods.items():
        generated = videos(path, "GENERATED")
        if is_video(path) and is_video(truth):
            generated = {next(iter(truths)): path}
        unmatched = [name for name in generated if name not in truths]
        if unmatched:
            raise UserError(
                f"{path} has videos without a truth of the same name in {truth}: {listing(unmatched)}."
            )
        result[method] = [Pair(name, generated[name], truths[name]) for name in sorted(generated)]
    used = {p.name for pairs in result.values() for p in pairs}
    left = [name for name in truths if name not in used]
    if left:
        warnings.warn(
            f"{counted(len(left), 'truth video')} {'has' if len(left) == 1 else 'have'} no generated "
            f"video and {'is' if len(left) == 1 else 'are'} left out: {listing(left)}.",
            stacklevel=2,
        )
    if truth_fps is not None and not any(truths[name].is_dir() for name in used):
        raise UserError(
            f"--truth-fps gives the frame rate of truth frame folders, but {truth} holds only video files, "
            "which have their own; leave it out."
        )
    for folder in dict.fromkeys(
        path for pairs in result.values() for p in pairs for path in (p.generated, p.truth)
    ):
        if folder.is_dir():
            check_frame_sizes(folder)
    pictures = references(reference, sorted(used))
    return {
        method: [
            Pair(p.name, p.generated, p.truth, pictures.get(p.name), truth_fps if p.truth.is_dir() else None)
            for p in pairs
        ]
        for method, pairs in result.items()
    }


def _shown_size(picture: Path) -> tuple[int, int]:
    """A picture's width and height as it is read (EXIF orientation applied), from its header
    alone: no pixels are decoded (2000 PNGs take about 0.2 s)."""
    from PIL import Image

    try:
        with Image.open(picture) as image:
            exif = Image.Exif()
            exif.load(image.info.get("exif", b""))  # JPEG's, WebP's, a PNG's before its pixels
            width, height = image.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:  # PIL's, for a bad file
        raise UserError(f"{picture} is not a picture that can be read ({err}).") from None
    return (height, width) if exif.get(EXIF_ORIENTATION, 1) in TRANSPOSING else (width, height)


def check_frame_sizes(folder: Path) -> None:
    """Every frame of a frame folder has the first one's size: one sentence before any work (not
    when scoring reaches the odd frame)."""
    first, *rest = FrameSource(folder).images
    size = _shown_size(first)
    for picture in rest:
        if (found := _shown_size(picture)) != size:
            raise UserError(
                f"{picture} is {found[0]}x{found[1]}, but the first image is {size[0]}x{size[1]}; all "
                "frames must have one size."
            )


def method_names(paths: Sequence[Path]) -> dict[str, Path]:
    """A name per generated set (its file or folder name), made unique by its parent's name; the
    same file or folder given twice (by any path) is one sentence."""
    names: dict[str, Path] = {}
    given: dict[Path, Path] = {}
    for path in paths:
        if path.resolve() in given:
            raise UserError(f"GENERATED {path} is given twice (as {given[path.resolve()]} too).")
        given[path.resolve()] = path
        full = named(path).absolute()  # `.` and `..` named as the folders they stand for
        name = full.stem if path.is_file() else full.name
        if name in names:
            name = f"{full.parent.name}/{name}"
        if name in names:
            raise UserError(
                f"GENERATED {names[name]} and {path} would both be named {name}; rename one of them."
            )
        names[name] = path
    return names
