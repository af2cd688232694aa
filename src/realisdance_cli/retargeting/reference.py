"""The two inputs of a retargeting as tracks: what a track must hold (one sentence naming the
extraction that makes what it lacks), and the reference: a picture's one-frame track, extracted
once beside it (`me.png` -> `me.rdance`, as `rdance extract` would), or such a track; its largest
person and that person's hands."""

from __future__ import annotations

import os
import shlex
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realisdance_cli.conditions import BY_STREAM, CONDITIONS, MIN_PERSON_BOX
from realisdance_cli.errors import UserError
from realisdance_cli.files import file_sha256
from realisdance_cli.progress import ProgressFn, no_progress
from realisdance_cli.retargeting.body import largest_person
from realisdance_cli.track import Stream, Track, foreign
from realisdance_cli.video import IMAGE_SUFFIXES

NEEDED = ("smplx", "mano")  # the streams a retargeting reads: the body and the hands
# What to do with a track imported from a .pkl (no 3-D poses), by what its poses were seen in.
REEXTRACT = {
    "video": "run `rdance extract VIDEO` on the video it was made from and use that track",
    "picture": "give the picture it was made from instead (its track is extracted beside it)",
}
# What an extraction writes for a found person or hand, by stream and field: low < value <= high
# (per component where given so). Rotations (axis-angle radians, MANO's matrices) and shape and
# expression coefficients are a few units; translations are metres, a body in front of its camera
# (SMPLer-X's depth is positive); focal lengths (positive) and principal points are pixels.
_UNITS, _CAMERA, _FOCAL = (-100.0, 100.0), (-1e7, 1e7), (0.0, 1e7)
_SMPLX_UNITS = ("global_orient", "body_pose", "left_hand_pose", "right_hand_pose", "jaw_pose")
LIMITS: dict[str, dict[str, tuple[Any, Any]]] = {
    "smplx": {
        **dict.fromkeys((*_SMPLX_UNITS, "leye_pose", "reye_pose", "betas", "expression"), _UNITS),
        "transl": ((-1e7, -1e7, 0.0), 1e7),
        "focal": _FOCAL,
        "princpt": _CAMERA,
    },
    "mano": {
        **dict.fromkeys(("global_orient", "hand_pose", "betas"), _UNITS),
        "cam_t_full": _CAMERA,
        "focal": _FOCAL,
    },
}
# People a reference picture is extracted with: two are enough to tell the user it shows several.
REFERENCE_PEOPLE = 2


def require_streams(track: Track, kinds: tuple[str, ...], made_from: str = "video") -> None:
    """One sentence naming the `kinds` streams `track` lacks and the extraction that makes them;
    `made_from` is what the track's poses were seen in: "video" (the dance) or "picture" (the
    reference)."""
    missing = [kind for kind in kinds if not track.has(kind)]
    if not missing:
        return
    names = " and ".join(BY_STREAM[kind].label for kind in missing)
    if track.has("dwpose") and track.state("dwpose").options.get("origin") == "import":
        raise UserError(
            f"{track.path} was imported from a DWPose .pkl, which holds no {names} poses; "
            f"{REEXTRACT[made_from]}."
        )
    streams = "streams" if len(missing) > 1 else "stream"
    raise UserError(
        f"{track.path} has no finished {names} {streams}; run `{_extraction(track, missing)}` first."
    )


def _extraction(track: Track, kinds: list[str], *options: str) -> str:
    """The `rdance extract` command (to paste) that makes the `kinds` streams of `track` again."""
    stages = ",".join(c.stage for c in CONDITIONS if c.stream in kinds)
    return shlex.join(
        ["rdance", "extract", track.source.path, "--only", stages, "--out", str(track.path), *options]
    )


def sound_stream(track: Track, kind: str) -> Stream:
    """The finished SMPL-X or MANO stream `kind` of `track` whose found people or hands hold only
    numbers an extraction writes (`LIMITS`): a hand-edited or damaged one (NaN, infinity, 1e30, a
    focal length of 0) is said in one sentence, as a retargeting of it would be drawn as garbage
    or not at all. Items that are not `valid` (skipped, rejected) may hold anything."""
    stream = track.load(kind)
    valid = np.asarray(stream.fields["valid"], bool)
    for name, (low, high) in LIMITS[kind].items():
        values = stream.fields[name][valid].astype(np.float64)
        wrong = ~((values > low) & (values <= high))  # NaN is never within
        if wrong.any():
            first = tuple(np.argwhere(wrong)[0])
            item = int(np.flatnonzero(valid)[first[0]])
            frame = int(np.searchsorted(stream.offsets, item, side="right")) - 1
            raise UserError(
                f"{track.path / (kind + '.npz')} is damaged: the {BY_STREAM[kind].label} {name} of frame "
                f"{frame} holds {values[first]:g}, which no extraction writes; make it again with "
                f"`{_extraction(track, [kind], '--force')}`."
            )
    return stream


def _cached_reference(
    picture: Path, device: str, weights_root: Path | None, force: bool, progress: ProgressFn
) -> Track:
    """The one-frame track of `picture` beside it: reused when whole and made from this picture,
    else extracted (resumed by the extraction's own rules)."""
    from realisdance_cli.extraction import ExtractOptions, extract

    cache = Track.default_path(picture)
    stale = False  # the cache holds another picture: --force lets it be replaced, nothing else does
    if (cache / "meta.json").is_file():
        track = Track.open(cache)
        stale = track.source.sha256 != file_sha256(picture)
        if stale and not force:
            raise UserError(
                f"{cache} was extracted from another picture ({track.source.path}); delete it, or "
                f"pass --force to rdance retarget, to extract {picture} again."
            )
        if not stale and all(track.has(kind) for kind in NEEDED):
            return track
    if (taken := _taken(cache)) is not None:
        command = f"{shlex.join(['rdance', 'extract', str(picture)])} --out DIR/{shlex.quote(cache.name)}"
        raise UserError(
            f"cannot write {cache} beside the picture ({taken}); extract it elsewhere with "
            f"`{command}` and give that track as the reference."
        )
    extraction = ExtractOptions(device=device, weights_root=weights_root, max_people=REFERENCE_PEOPLE)
    track, _ = extract(picture, cache, extraction, force=stale, progress=progress)
    return track


def _taken(cache: Path) -> str | None:
    """Why a picture's track cannot be written at `cache`, its place beside the picture (a file or
    a folder of the user's there is never replaced), else None."""
    if cache.exists() and not cache.is_dir():
        return "a file of that name is there"
    if foreign(cache):
        return "a folder of that name that is not a pose track is there"
    if not os.access(cache if cache.exists() else cache.parent, os.W_OK):
        return "its folder is read-only"
    return None


def reference_track(
    reference: Path,
    device: str = "auto",
    weights_root: Path | None = None,
    *,
    force: bool = False,
    progress: ProgressFn = no_progress,
) -> Track:
    """The reference's one-frame pose track: `reference` itself when it is a track, else its
    picture's cached track (extracted when missing or unfinished)."""
    if reference.is_dir():
        track = Track.open(reference)
    elif reference.suffix.lower() in IMAGE_SUFFIXES and reference.is_file():
        track = _cached_reference(reference, device, weights_root, force, progress)
    elif not reference.exists():
        raise UserError(f"{reference} does not exist.")
    else:
        raise UserError(
            f"{reference} is neither a picture ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a pose track."
        )
    require_streams(track, ("smplx",), made_from="picture")
    if track.source.frame_count != 1:
        raise UserError(
            f"{track.path} has {track.source.frame_count} frames; the reference is one picture "
            "(give the picture, or its track from `rdance extract PICTURE`)."
        )
    return track


@dataclass
class Reference:
    """The reference's chosen person (SMPL-X fields without the person axis) and hands."""

    person: dict[str, np.ndarray]
    hands: dict[str, np.ndarray] | None  # MANO fields with a hand axis, or None without a stream
    size: tuple[int, int]  # (height, width) of its picture


def reference_person(track: Track, name: Path) -> Reference:
    """The largest person of the reference track (said so when there are several) and the hands
    that lie in that person's box."""
    people = sound_stream(track, "smplx").frame(0)
    chosen = largest_person(people)
    if chosen is None:
        raise UserError(_nobody(people, name))
    count = int(np.count_nonzero(people["valid"]))
    hands = sound_stream(track, "mano").frame(0) if track.has("mano") else None
    if count > 1:  # the extraction keeps two people: enough to notice a picture of several
        warnings.warn(f"{name} shows {count} or more people; the dance goes onto the largest", stacklevel=3)
    if hands is not None:  # only the chosen person's hands (a stray hand would lend its shape)
        hands = _hands_in_box(hands, people["bbox"][chosen])
    person = {key: values[chosen] for key, values in people.items()}
    return Reference(person, hands, (track.source.height, track.source.width))


def _nobody(people: Mapping[str, np.ndarray], name: Path) -> str:
    """Why the reference has no person: none found, or the largest DWPose found was too small for
    SMPLer-X (kept with its box, `valid` false), which a larger picture of the same body cures."""
    boxes = np.asarray(people["bbox"], np.float64).reshape(-1, 4)
    if len(boxes):
        width, height = boxes[np.argmax(np.nan_to_num(boxes[:, 2] * boxes[:, 3]))][2:]
        if width < MIN_PERSON_BOX[0] or height < MIN_PERSON_BOX[1]:
            return (
                f"the person in {name} is too small for SMPL-X: its box is {width:.0f}x{height:.0f} px, "
                f"under {MIN_PERSON_BOX[0]}x{MIN_PERSON_BOX[1]} px (width x height); use a picture "
                "where the character's body is larger."
            )
    return f"no person was found in {name}; use a picture that shows the character's body."


def _hands_in_box(hands: Mapping[str, np.ndarray], box: np.ndarray) -> dict[str, np.ndarray]:
    """The hands (with a hand axis) whose box centre lies in the person box `box` (x, y, w, h)."""
    centre = (hands["box"][:, :2] + hands["box"][:, 2:]) / 2
    inside = np.all((centre >= box[:2]) & (centre <= box[:2] + box[2:]), axis=1)
    return {key: values[inside] for key, values in hands.items()}
