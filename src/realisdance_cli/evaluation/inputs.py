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
from pathlib import Path

from realisdance_cli.errors import UserError
from realisdance_cli.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES

LISTED = 5  # names a listing shows before "and N more"


@dataclass(frozen=True)
class Pair:
    """One generated video and its truth (and the reference picture it was animated from)."""

    name: str
    generated: Path
    truth: Path
    reference: Path | None = None


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


def pair(methods: Mapping[str, Path], truth: Path, reference: Path | None = None) -> dict[str, list[Pair]]:
    """method -> its pairs, in name order. A single generated video is paired with a single truth
    whatever their names; folders are matched by name, and a generated video without a truth is
    refused (its name is said) since its scores would be missing from the method's mean."""
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
            f"{len(left)} truth videos have no generated video and are left out: {listing(left)}.",
            stacklevel=2,
        )
    pictures = references(reference, sorted(used))
    return {
        method: [Pair(p.name, p.generated, p.truth, pictures.get(p.name)) for p in pairs]
        for method, pairs in result.items()
    }


def method_names(paths: Sequence[Path]) -> dict[str, Path]:
    """A name per generated set (its file or folder name), made unique by its parent's name; the
    same file or folder given twice (by any path) is one sentence."""
    names: dict[str, Path] = {}
    given: dict[Path, Path] = {}
    for path in paths:
        if path.resolve() in given:
            raise UserError(f"GENERATED {path} is given twice (as {given[path.resolve()]} too).")
        given[path.resolve()] = path
        named = path.absolute()
        name = named.stem if path.is_file() else named.name
        if name in names:
            name = f"{named.parent.name}/{name}"
        if name in names:
            raise UserError(
                f"GENERATED {names[name]} and {path} would both be named {name}; rename one of them."
            )
        names[name] = path
    return names
