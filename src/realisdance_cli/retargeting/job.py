"""`rdance retarget` (`realisdance_cli.retargeting`): a driving track's dance on a reference's body.

The driver is a pose track with SMPL-X and MANO streams; the reference a picture (extracted once
into a one-frame track cached beside it, as `rdance extract` would: `me.png` -> `me.rdance`) or
such a track (`reference.py`). The result is a new pose track whose three streams all come from
the retargeted 3-D body (`body.py`, `hands.py`, `skeleton.py`), so `render-poses` draws three
videos that agree. Its source is the reference's picture size (the driver's with placement
"driver") and the driver's timing and video, so the rendered pose videos keep the dance's frame
rate and sound.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realisdance_cli import weights
from realisdance_cli.bodies import mano_layer, smplx_model
from realisdance_cli.conditions import POSE_NAMES
from realisdance_cli.errors import UserError
from realisdance_cli.files import atomic_folder, claimed_output, contents, file_sha256, paths_from_strings
from realisdance_cli.progress import ProgressFn, counter, no_progress
from realisdance_cli.retargeting.body import (
    DEFAULT_FRAME_RATE,
    NO_MOTION,
    RetargetedBody,
    check_placement,
    dancer,
    retarget_body,
)
from realisdance_cli.retargeting.hands import RetargetedHands, retarget_hands
from realisdance_cli.retargeting.reference import (
    NEEDED,
    Reference,
    reference_person,
    reference_track,
    require_streams,
    sound_stream,
)
from realisdance_cli.retargeting.skeleton import dwpose_stream
from realisdance_cli.track import TRACK_SUFFIX, SourceInfo, Stream, Track, holds_track, named, not_a_track

SIDES = ("driver", "reference")


@dataclass
class RetargetOptions:
    """How the dance goes onto the reference (see `body.py` for the placements)."""

    placement: str = "reference"  # "reference": where the reference stands; "driver": the dance's framing
    upper_body: bool = False  # a half-body reference: follow the neck and shoulders, no ground line
    smooth: bool = False  # One-Euro on the driver's SMPL-X and MANO streams first (render-poses --smooth)
    expression: bool = True  # the driver's facial expression; False: the reference's, in every frame
    preview: bool = False  # also write <out>_preview.png: reference | driver | the retargeted pose
    weights_root: Path | None = None
    device: str = "auto"  # where the reference picture's extraction runs

    def __post_init__(self) -> None:
        paths_from_strings(self, "weights_root")
        check_placement(self.placement, self.upper_body)


def default_out(driver: Path, reference: Path) -> Path:
    """`dance.rdance` onto `me.png` -> `dance_on_me.rdance` beside the driver (`.` names the folder
    it stands for)."""
    driver, reference = named(driver), named(reference)
    return driver.with_name(f"{driver.stem}_on_{reference.stem}{TRACK_SUFFIX}")


def _with_expression(stream: Stream, expression: np.ndarray) -> Stream:
    fields = dict(stream.fields)
    fields["expression"] = np.broadcast_to(expression, fields["expression"].shape).copy()
    return Stream(stream.kind, stream.offsets, fields)


def smoother(track: Track, options: RetargetOptions) -> Callable[[Stream], Stream] | None:
    """With `options.smooth`, what smooths the dancer's streams as render-poses --smooth smooths a
    track's (over its timing, keypoint units of its longer side); else None."""
    if not options.smooth:
        return None
    from realisdance_cli.smoothing import smooth_stream

    assert track.source.fps is not None  # checked by `retarget` before any work
    fps, size = float(track.source.fps), max(track.source.width, track.source.height)
    return lambda stream: smooth_stream(stream, fps, frame_size=size)


def skeleton_stream(body: RetargetedBody, hands: RetargetedHands, size: tuple[int, int]) -> Stream:
    """The DWPose stream of the retargeted body and hands, projected through the body's camera."""
    frames = body.smplx.frame_count
    focal, princpt = np.zeros((frames, 2)), np.zeros((frames, 2))
    joints: list[np.ndarray | None] = [None] * frames
    points: list[dict[str, np.ndarray] | None] = [None] * frames
    for frame in np.flatnonzero(body.smplx.items_per_frame()):
        item = int(body.smplx.offsets[frame])
        joints[frame] = body.joints[item]
        focal[frame] = body.smplx.fields["focal"][item]
        princpt[frame] = body.smplx.fields["princpt"][item]
        points[frame] = hands.points(int(frame))
    return dwpose_stream(joints, focal, princpt, size, points)


def _stream_ids(track: Track) -> dict[str, str]:
    """Which SMPL-X and MANO results a track held (their files' sha256), so a cached retargeting
    is redone when either input was extracted again."""
    return {kind: file_sha256(track.path / f"{kind}.npz")[:16] for kind in NEEDED if track.has(kind)}


def provenance(driver: Track, reference: Track, options: RetargetOptions) -> dict[str, Any]:
    """What the retargeted streams record as their options: how and from what they were made (the
    tracks' paths are for reading only: `_same` knows the inputs by their streams)."""
    return {
        "origin": "retarget",
        "placement": options.placement,
        "upper_body": options.upper_body,
        "smooth": options.smooth,
        "expression": "driver" if options.expression else "reference",
        "driver": {"track": str(driver.path.resolve()), **_stream_ids(driver)},
        "reference": {"track": str(reference.path.resolve()), **_stream_ids(reference)},
    }


def _same(made: Mapping[str, Any], other: Mapping[str, Any], *, settings: bool = True) -> bool:
    """Whether two `provenance`s name the same input streams (and, with `settings`, the same
    settings), wherever the tracks were then: a copied or moved project keeps its retargetings."""

    def known(record: Mapping[str, Any]) -> dict[str, Any]:
        inputs = {side: {k: v for k, v in record[side].items() if k != "track"} for side in SIDES}
        return {**record, **inputs} if settings else inputs

    return known(made) == known(other)


def _made(out: Path) -> dict[str, Any] | None:
    """How the whole retargeting at `out` was made (its streams' options), else None."""
    if not (out / "meta.json").is_file():
        return None
    track = Track.open(out)
    kinds = ("dwpose", *NEEDED)
    if not all(track.has(kind) for kind in kinds):
        return None
    made = track.state("dwpose").options
    return made if made.get("origin") == "retarget" else None


def _reusable(out: Path, made: Mapping[str, Any]) -> Track | None:
    """animate --retarget's cache at `out`: the track when it was retargeted from these very inputs
    (with whatever settings `rdance retarget` was given), None when `out` is free or holds an
    earlier retargeting of the same tracks (their streams were extracted again); anything else there
    is the user's and is refused."""
    if not out.exists() or not contents(out):
        return None
    before = _made(out)
    if before is not None and _same(before, made, settings=False):
        return Track.open(out)
    if before is not None and all(before[side]["track"] == made[side]["track"] for side in SIDES):
        return None
    raise UserError(
        f"{out} exists and was not retargeted from these tracks; run `rdance retarget` with --force "
        "to replace it, or move it away."
    )


def _write(
    out: Path, source: SourceInfo, streams: Mapping[str, Stream], ids: dict[str, str], made: dict[str, Any]
) -> Track:
    """The new track at `out`, whole or not at all: written beside it and then moved into its place
    (an earlier track there stays until the new one is complete)."""
    with atomic_folder(out) as partial:
        track = Track.create(partial, source)
        for kind, stream in streams.items():
            track.write(kind, stream, weights=ids, options=made)
    return Track.open(out)


def retarget(
    driver: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    options: RetargetOptions | None = None,
    *,
    force: bool = False,
    reuse: bool = False,
    progress: ProgressFn = no_progress,
) -> Track:
    """The dance of the pose track `driver` on the body of `reference` (a picture or its one-frame
    track) as a new pose track at `out` (default: `default_out`). An existing `out` is replaced only
    with `force`, unless it is this very retargeting (the same inputs, settings and weights): then
    it is kept, and only a missing preview is made (a run stopped before it resumes). With `reuse`,
    a track at `out` retargeted from the same inputs is returned as it is whatever its settings, an
    earlier one of the same tracks is replaced, and anything else there is refused (animate
    --retarget's cache)."""
    driver, reference = Path(driver), Path(reference)
    options = options or RetargetOptions()
    out = Path(out) if out is not None else default_out(driver, reference)
    drive = Track.open(driver)
    require_streams(drive, NEEDED)
    sound_stream(drive, "mano")  # its damage said before any work, as the SMPL-X stream's
    if not len(dancer(sound_stream(drive, "smplx")).fields["betas"]):
        raise UserError(NO_MOTION)
    if options.smooth and drive.source.fps is None:
        raise UserError(f"{driver} does not record its frame rate, which --smooth needs.")
    preview = _preview_path(out) if options.preview else None
    _check_outputs(out, preview, drive, reference)
    # Claimed from here to the writing (a second job stops at once); what may be replaced is
    # decided below, under the claims.
    with ExitStack() as claims:
        for claimed, folder in ((out, True), (preview, False)):
            if claimed is not None:
                claims.enter_context(claimed_output(claimed, force=True, folder=folder))
        occupied = bool(contents(out))
        track_there = occupied and holds_track(out)
        # Its lock, as every writer of a track takes it (render-poses may be drawing it now); a
        # new track is claimed whole by `claimed_output` until it is moved into place.
        claims.enter_context(Track.lock(out) if track_there else nullcontext())
        if occupied and not track_there:  # said first: no --force replaces it
            raise not_a_track(out)
        earlier = _made(out) if track_there else None  # a retargeting made there before
        for taken in (out if occupied else None, preview if preview and preview.exists() else None):
            if taken is not None and not (force or reuse or earlier is not None):
                raise UserError(f"{taken} already exists; pass --force to replace it.")
        return _retarget_to(
            out, earlier, drive, reference, options, force=force, reuse=reuse, progress=progress
        )


def _check_outputs(out: Path, preview: Path | None, drive: Track, reference: Path) -> None:
    """One sentence when the new track or its preview would replace what the retargeting reads
    (`_inputs`), or the track would lie inside an input track (extracting that again empties it)."""
    inputs = _inputs(drive, reference)
    if out.resolve() in inputs:
        raise UserError(f"--out {out} would replace an input or the reference's track; choose another --out.")
    if inside := [track for track in _tracks(drive, reference) if track in out.resolve().parents]:
        raise UserError(
            f"--out {out} lies inside the pose track {inside[0]}, which an extraction again may empty; "
            "choose another --out."
        )
    if preview is not None and preview.resolve() in inputs:
        raise UserError(f"the preview {preview} would replace an input picture; choose another --out.")


def _tracks(drive: Track, reference: Path) -> set[Path]:
    """The tracks a retargeting reads, resolved: the driver, the reference (or its picture) and the
    reference picture's cached track."""
    return {path.resolve() for path in (drive.path, reference, Track.default_path(reference))}


def _inputs(drive: Track, reference: Path) -> set[Path]:
    """What a retargeting reads, resolved: `_tracks` and the pictures the preview shows (the
    tracks' sources), which neither --out nor its preview replaces."""
    sources = [drive.source.path]
    if holds_track(reference):
        sources.append(Track.open(reference).source.path)
    return _tracks(drive, reference) | {Path(source).resolve() for source in sources}


def _preview_path(out: Path) -> Path:
    from realisdance_cli.retargeting.preview import preview_path

    return preview_path(out)


def _retarget_to(
    out: Path,
    earlier: dict[str, Any] | None,
    drive: Track,
    reference: Path,
    options: RetargetOptions,
    *,
    force: bool,
    reuse: bool,
    progress: ProgressFn,
) -> Track:
    """`retarget`'s work once its inputs and outputs are checked and claimed; `earlier`: how the
    retargeting already at `out` was made (`_made`), if one is."""
    root = weights.weights_root(options.weights_root)
    paths = weights.require_all(["smplx", "mano"], root)
    ref_track = reference_track(
        reference, options.device, options.weights_root, force=force, progress=progress
    )
    made = provenance(drive, ref_track, options)
    ids = {name: file_sha256(path)[:16] for name, path in paths.items()}
    model = None
    if reuse and (cached := _reusable(out, made)) is not None:
        return cached
    if (
        not force
        and earlier is not None
        and _same(earlier, made)
        and (done := Track.open(out)).state("dwpose").weights == ids
    ):
        track = done  # this very retargeting, made before
    elif earlier is not None and not (force or reuse):  # anything else there was refused already
        raise UserError(f"{out} already exists; pass --force to replace it.")
    else:
        chosen = reference_person(ref_track, reference)
        size = chosen.size if options.placement == "reference" else (drive.source.height, drive.source.width)
        model = smplx_model(paths["smplx"])
        streams = _retargeted(drive, chosen, model, mano_layer(paths["mano"]), size, options, progress)
        source = SourceInfo(
            path=drive.source.path,
            sha256=drive.source.sha256,
            width=size[1],
            height=size[0],
            frame_count=drive.source.frame_count,
            fps=drive.source.fps,
            start=drive.source.start,
            stride=drive.source.stride,
        )
        track = _write(out, source, streams, ids, made)
        if earlier is not None and not options.preview:
            _preview_path(out).unlink(missing_ok=True)  # the replaced retargeting's: another pose
    if options.preview and (force or not _preview_path(out).exists()):
        from realisdance_cli.retargeting.preview import write_preview

        model = model if model is not None else smplx_model(paths["smplx"])
        write_preview(track, drive, ref_track, model, root)
    return track


def _retargeted(
    driver: Track,
    reference: Reference,
    model: Any,
    layer: Any,
    size: tuple[int, int],
    options: RetargetOptions,
    progress: ProgressFn,
) -> dict[str, Stream]:
    """The retargeted streams by kind (the body, its hands, and their skeleton) in pictures of
    `size` (height, width); `model` and `layer` are `bodies.smplx_model` and `bodies.mano_layer`."""
    smooth = smoother(driver, options)
    smplx, mano = dancer(sound_stream(driver, "smplx")), sound_stream(driver, "mano")
    # The bar counts the dancer's frames posed twice (the driver's body, then the new one), then
    # the hands and the skeleton as one step each.
    advance = counter(progress, "retarget", 2 * len(smplx.fields["betas"]) + 2)
    smplx = smooth(smplx) if smooth is not None else smplx
    if not options.expression:
        smplx = _with_expression(smplx, reference.person["expression"])
    fps = driver.source.fps
    body = retarget_body(
        smplx,
        reference.person,
        model,
        options.placement,
        options.upper_body,
        frame_rate=DEFAULT_FRAME_RATE if fps is None else float(fps),
        advance=advance,
    )
    driver_size = (driver.source.height, driver.source.width)
    hands = retarget_hands(
        mano, body, reference.hands, layer, driver_size=driver_size, size=size, smooth=smooth
    )
    advance(1)
    skeleton = skeleton_stream(body, hands, size)
    advance(1)
    return {"dwpose": skeleton, "mano": hands.mano, "smplx": body.smplx}


def retargeted_poses(
    driver: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    options: RetargetOptions | None = None,
    progress: ProgressFn = no_progress,
) -> Path:
    """The pose-video folder of `driver`'s dance on `reference` (`rdance animate --retarget`): the
    retargeted track `default_out(driver, reference)`, made or reused, with its three videos."""
    from realisdance_cli.conditions import BY_NAME
    from realisdance_cli.rendering import RenderOptions, render_poses

    options = options or RetargetOptions()
    driver, reference = Path(driver), Path(reference)
    if not (driver / "meta.json").is_file():
        raise UserError(
            f"--retarget needs a pose track (`rdance extract dance.mp4` makes one), got {driver}."
        )
    track = retarget(
        driver, reference, default_out(driver, reference), options, reuse=True, progress=progress
    )
    if not all((track.path / BY_NAME[name].video).is_file() for name in POSE_NAMES):
        render_poses(track.path, options=RenderOptions(weights_root=options.weights_root), progress=progress)
    return track.path
