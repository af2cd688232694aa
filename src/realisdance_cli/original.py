"""The original release's DWPose `.pkl` format, read and written exactly.

A video's `.pkl` is a list with one dict per frame (SPEC section 1); the stage-1 image data holds
one picture's dict alone, which reads as a one-frame track. Each dict has `bodies.candidate`
(18N, 2) and `bodies.subset` (N, 18) for N people, `hands` (2N, 21, 2) with all left hands first, optional
`faces` (N, 68, 2) and `hands_score` (2N, 21), and the frame size `H`, `W`. Coordinates are
divided by the frame size; points with a score under 0.3 are -1, except body points, which keep
their coordinates and are hidden through `subset` instead.
"""

from __future__ import annotations

import io
import pickle
import shlex
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from realisdance_cli.conditions import BY_STREAM
from realisdance_cli.errors import UserError
from realisdance_cli.files import atomic_write_bytes, expands_too_far, file_sha256, human_size
from realisdance_cli.safe_pickle import restricted_load
from realisdance_cli.track import (
    BODY,
    DWPOSE_POINTS,
    FACE,
    LEFT_HAND,
    RIGHT_HAND,
    SourceInfo,
    Stream,
    Track,
    holds_track,
)
from realisdance_cli.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, as_fraction

SCORE_THRESHOLD = 0.3
OPTIONAL_KEYS = ("faces", "hands_score")
# Coordinates are fractions of the frame size, and DWPose finds points near the picture (the
# official sample stays within -1 and 1.4); anything this far out is a damaged file, and would
# overflow the skeleton drawing's integer pixels.
COORDINATE_LIMIT = 1000.0
MAX_FRAME_SIDE = 8192  # pixels: render-poses' largest video; a frame is drawn at the file's own size
# `pkl_layout` in a DWPose stream's options: how the imported file held its poses.
LIST_LAYOUT = "list"  # a list of per-frame dicts (the original's video data)
SINGLE_LAYOUT = "single"  # one picture's pose dict (the original's stage-1 image data)


def to_original_pose(
    keypoints: np.ndarray,
    scores: np.ndarray,
    height: int,
    width: int,
    *,
    optional_keys: Sequence[str] = OPTIONAL_KEYS,
) -> dict[str, Any]:
    """One frame's pose dict, with the original's arithmetic step for step.

    `keypoints` (N, 134, 2) are pixels in the 134-point layout, `scores` (N, 134).
    """
    people = keypoints.shape[0]
    candidate = np.array(keypoints, dtype=np.float64)
    candidate[..., 0] /= float(width)
    candidate[..., 1] /= float(height)
    far = np.abs(candidate) > COORDINATE_LIMIT  # NaN: unknown (a retargeted body's outside the picture)
    if far.any():
        raise UserError(
            f"a DWPose point is {candidate[far][0]:.3g} frame sizes from the picture, which DWPose never "
            "finds: the pose track is damaged; extract it again."
        )
    candidate[~np.isfinite(candidate)] = -1
    body = candidate[:, BODY].copy().reshape(people * 18, 2)
    index = 18 * np.arange(people)[:, None] + np.arange(18)[None, :]
    subset = np.where(scores[:, BODY] > SCORE_THRESHOLD, index, -1).astype(np.float64)
    candidate[scores < SCORE_THRESHOLD] = -1
    pose: dict[str, Any] = {
        "bodies": {"candidate": body, "subset": subset},
        "hands": np.vstack([candidate[:, LEFT_HAND], candidate[:, RIGHT_HAND]]),
    }
    if "hands_score" in optional_keys:
        pose["hands_score"] = np.vstack([scores[:, LEFT_HAND], scores[:, RIGHT_HAND]]).astype(np.float64)
    if "faces" in optional_keys:
        pose["faces"] = candidate[:, FACE]
    pose["H"], pose["W"] = int(height), int(width)
    return pose


def _to_pixels(normalised: np.ndarray, size: float) -> np.ndarray:
    """Pixels `p` with `p / size == normalised` exactly, so an export gives back the same file."""
    pixels = normalised * size
    for _ in range(8):
        error = pixels / size - normalised
        wrong = np.isfinite(normalised) & (error != 0)
        if not wrong.any():
            break
        pixels[wrong] = np.nextafter(pixels[wrong], np.where(error[wrong] > 0, -np.inf, np.inf))
    return pixels


def _points(normalised: np.ndarray, width: int, height: int) -> np.ndarray:
    pixels = np.empty_like(normalised)
    pixels[..., 0] = _to_pixels(normalised[..., 0], width)
    pixels[..., 1] = _to_pixels(normalised[..., 1], height)
    return pixels


def from_original_pose(pose: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, 134, 2) in pixels and scores (N, 134) from one frame's pose dict.

    Masked points (-1) become NaN with score 0; without `hands_score`, visible points score 1.
    The pose file never stores the feet, so they are NaN.
    """
    width, height = int(pose["W"]), int(pose["H"])
    subset = np.asarray(pose["bodies"]["subset"], np.float64)
    people = subset.shape[0]
    keypoints = np.full((people, DWPOSE_POINTS, 2), np.nan)
    scores = np.zeros((people, DWPOSE_POINTS))
    keypoints[:, BODY] = _points(np.asarray(pose["bodies"]["candidate"], np.float64), width, height).reshape(
        people, 18, 2
    )
    scores[:, BODY] = (subset != -1).astype(np.float64)

    def masked(part: slice, values: np.ndarray, part_scores: np.ndarray | None) -> None:
        missing = np.all(values == -1, axis=-1)
        keypoints[:, part] = np.where(missing[..., None], np.nan, _points(values, width, height))
        scores[:, part] = part_scores if part_scores is not None else (~missing).astype(np.float64)

    hands = np.asarray(pose["hands"], np.float64)
    hand_scores = pose.get("hands_score")
    hand_scores = None if hand_scores is None else np.asarray(hand_scores, np.float64)
    masked(LEFT_HAND, hands[:people], None if hand_scores is None else hand_scores[:people])
    masked(RIGHT_HAND, hands[people:], None if hand_scores is None else hand_scores[people:])
    if "faces" in pose:
        masked(FACE, np.asarray(pose["faces"], np.float64), None)
    return keypoints, scores


def _expected_shapes(people: int, key: str) -> tuple[int, ...]:
    return {
        "bodies.candidate": (18 * people, 2),
        "hands": (2 * people, 21, 2),
        "faces": (people, 68, 2),
        "hands_score": (2 * people, 21),
    }[key]


def _frame_size(pose: Mapping[str, Any], key: str, where: str) -> int:
    value = pose[key]
    try:
        size = int(value)
        whole = bool(size == value)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole or not 0 < size <= MAX_FRAME_SIDE:
        raise UserError(
            f"{where}: {key} should be the frame size in pixels (a whole number from 1 to "
            f"{MAX_FRAME_SIDE}), got {_shown(value)}."
        )
    return size


def _shown(value: object) -> str:
    """A short view of a value a damaged file holds, which may be huge or nested without end:
    numbers and text cut short, anything else by its type."""
    if isinstance(value, str):
        return repr(value[:40])
    if isinstance(value, int | float | np.number):
        try:
            text = repr(value)
        except ValueError:  # an int of more than 4300 digits
            return "a number of thousands of digits"
        return text if len(text) <= 24 else f"a number of {len(text)} digits"
    return f"a {type(value).__name__}"


def _first(mask: np.ndarray) -> str:
    return ", ".join(str(int(i)) for i in np.argwhere(mask)[0])


def _check_values(name: str, array: np.ndarray, where: str) -> None:
    """Finite numbers (NaN and inf break drawing), coordinates near the picture."""
    if array.dtype.kind not in "iuf":
        raise UserError(f"{where}: {name} should hold real numbers, not {array.dtype}.")
    bad = ~np.isfinite(array)
    if bad.any():
        at = _first(bad)
        value = array[tuple(np.argwhere(bad)[0])].item()
        raise UserError(
            f"{where}: {name}[{at}] is {value}; the original writes only finite numbers (-1 for a hidden "
            "point), so the file is damaged."
        )
    if name in ("hands_score", "bodies.subset"):
        return
    far = np.abs(array) > COORDINATE_LIMIT
    if far.any():
        value = array[tuple(np.argwhere(far)[0])].item()
        raise UserError(
            f"{where}: {name}[{_first(far)}] is {value}, over {COORDINATE_LIMIT:g} frame sizes away from "
            "the picture, which DWPose never finds, so the file is damaged."
        )


def _check_pose(pose: Any, where: str, optional: set[str]) -> None:
    if not isinstance(pose, dict):
        raise UserError(f"{where} is not a DWPose pose dict (it is a {type(pose).__name__}).")
    missing = [key for key in ("bodies", "hands", "H", "W") if key not in pose]
    if missing:
        raise UserError(f"{where} is not a DWPose pose dict (missing {', '.join(map(repr, missing))}).")
    bodies = pose["bodies"]
    if not isinstance(bodies, dict) or not {"candidate", "subset"} <= set(bodies):
        raise UserError(f"{where}: bodies should be a dict with candidate and subset.")
    _frame_size(pose, "H", where)
    _frame_size(pose, "W", where)
    subset = bodies["subset"]
    if not isinstance(subset, np.ndarray) or subset.ndim != 2 or subset.shape[1] != 18:
        raise UserError(f"{where}: bodies.subset must be an (N, 18) array.")
    if optional != {key for key in OPTIONAL_KEYS if key in pose}:
        raise UserError(f"{where} has other optional keys than frame 0 ({sorted(optional)}).")
    arrays = {"bodies.candidate": bodies["candidate"], "hands": pose["hands"]}
    arrays.update({key: pose[key] for key in sorted(optional)})
    for key, array in arrays.items():
        expected = _expected_shapes(subset.shape[0], key)
        if not isinstance(array, np.ndarray) or array.shape != expected:
            shape = getattr(array, "shape", type(array).__name__)
            raise UserError(f"{where}: {key} should have shape {expected}, got {shape}.")
    for key, array in {"bodies.subset": subset, **arrays}.items():
        _check_values(key, array, where)
    rows = 18 * subset.shape[0]
    wrong = (subset != -1) & ((subset < 0) | (subset >= rows) | (subset != np.floor(subset)))
    if wrong.any():
        value = subset[tuple(np.argwhere(wrong)[0])].item()
        raise UserError(
            f"{where}: bodies.subset[{_first(wrong)}] is {value}, but its entries are -1 or a row of "
            f"bodies.candidate (0 to {rows - 1}), so the file is damaged."
        )


def read_dwpose_pkl(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The frames of an original DWPose `.pkl`, loaded safely and checked, and whether the file
    held one picture's pose dict (the original's image data) instead of a list of frames."""
    try:
        data = restricted_load(path)
    except UserError:
        if path.suffix.lower() == ".pkl":
            raise
        raise UserError(f"{path} is not a DWPose .pkl{_extract_instead(path)}.") from None
    single = isinstance(data, dict)
    frames = [data] if single else data
    if not isinstance(frames, list) or not frames:
        raise UserError(
            f"{path} is not a DWPose pose file: it should hold a non-empty list of frames "
            "or one picture's pose dict."
        )
    stored, described = path.stat().st_size, _described_bytes(frames)
    if expands_too_far(stored, described):
        raise UserError(
            f"{path} is damaged or forged: its {human_size(stored)} describe {human_size(described)} of "
            "poses (frames repeated by reference), far more than any pose file holds."
        )
    optional = {key for key in OPTIONAL_KEYS if isinstance(frames[0], dict) and key in frames[0]}
    for number, pose in enumerate(frames):
        _check_pose(pose, str(path) if single else f"{path} frame {number}", optional)
    sizes = {(int(pose["H"]), int(pose["W"])) for pose in frames}
    if len(sizes) != 1:  # the points are fractions of each frame's size: one video has one
        raise UserError(f"{path} mixes frame sizes {sorted(sizes)} (height, width); one video has one size.")
    return frames, single


def _extract_instead(path: Path) -> str:
    """For a video or a picture where a .pkl belongs, the extraction that makes its poses; for any
    other file (a checkpoint, a text) nothing, since extract would refuse it too."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        return ""
    kind = "a video" if suffix in VIDEO_SUFFIXES else "a picture"
    return f"; for {kind}, `{shlex.join(['rdance', 'extract', str(path)])}` makes its pose track"


def _described_bytes(frames: list[Any]) -> int:
    """The bytes of the frames' arrays, each reference counted: what importing them takes, which
    a pickle can make far larger than itself by repeating one frame (or array) by reference."""
    total = 0
    for pose in frames:
        values = list(pose.values()) if isinstance(pose, dict) else []
        for value in values:
            parts = value.values() if isinstance(value, dict) else [value]
            total += sum(part.nbytes for part in parts if isinstance(part, np.ndarray))
    return total


def load_dwpose_pkl(path: Path) -> list[dict[str, Any]]:
    """The frames of an original DWPose `.pkl` (one picture's dict is one frame), loaded safely and
    checked."""
    return read_dwpose_pkl(path)[0]


def save_dwpose_pkl(path: Path, poses: list[dict[str, Any]] | dict[str, Any]) -> None:
    """A list of frames, or one picture's pose dict, pickled as the original writes it."""
    buffer = io.BytesIO()
    pickle.dump(poses, buffer, protocol=4)
    atomic_write_bytes(path, buffer.getvalue())


def import_dwpose_pkl(
    pkl: Path, out: Path, *, fps: float | Fraction | None = None, overwrite: bool = False
) -> Track:
    """An original `.pkl` as a pose track (a DWPose stream, no SMPL-X or MANO).

    A file holding one picture's pose dict becomes a one-frame track that remembers it
    (`pkl_layout: single`), so that export writes a single dict again.
    """
    frames, single = read_dwpose_pkl(pkl)
    height, width = int(frames[0]["H"]), int(frames[0]["W"])
    stream = poses_to_stream(frames)
    source = SourceInfo(
        path=str(pkl.resolve()),
        sha256=file_sha256(pkl),
        width=width,
        height=height,
        frame_count=len(frames),
        fps=None if fps is None else as_fraction(fps),
    )
    if not overwrite:
        _refuse_a_fuller_track(out)
    optional = [key for key in OPTIONAL_KEYS if key in frames[0]]
    options = {
        "origin": "import",
        "pkl_keys": optional,
        "pkl_layout": SINGLE_LAYOUT if single else LIST_LAYOUT,
    }
    with Track.lock(out):  # an extraction writing the same track stops this, not the reverse
        track = Track.create(out, source, overwrite=overwrite or _stopped_import(out, source))
        track.write("dwpose", stream, weights={}, options=options)
    return track


def _refuse_a_fuller_track(out: Path) -> None:
    """A track at `out` with SMPL-X or MANO streams (an extraction's) is refused saying what --force
    would lose: the .pkl holds DWPose poses only, and those streams take a long run to make again."""
    try:
        track = Track.open(out) if holds_track(out) else None
    except UserError:  # damaged: `Track.create` says so
        return
    lost = [
        BY_STREAM[kind].label for kind in ("smplx", "mano") if track is not None and kind in track.streams
    ]
    if lost:
        streams = f"{' and '.join(lost)} stream{'s' if len(lost) > 1 else ''}"
        raise UserError(
            f"{out} already exists and holds {streams}, which --force would lose (a DWPose .pkl holds "
            "only DWPose poses); import into another folder with --out."
        )


def _stopped_import(out: Path, source: SourceInfo) -> bool:
    """Whether `out` holds what a stopped import of the same file left (a track of it with no
    finished stream): nothing finished is lost, so the same command replaces it instead of asking
    for --force. A living import holds the track's lock, so it is never taken for one."""
    if not holds_track(out):
        return False
    try:
        track = Track.open(out)
    except UserError:  # damaged: not replaced unasked
        return False
    return track.source.sha256 == source.sha256 and not any(s.complete for s in track.streams.values())


def imported_single(track: Track) -> bool:
    """Whether `track` was imported from a file holding one picture's pose dict."""
    return track.state("dwpose").options.get("pkl_layout") == SINGLE_LAYOUT


def poses_to_stream(poses: list[dict[str, Any]]) -> Stream:
    """Original pose dicts as a DWPose stream (pixels; the boxes, never stored there, unknown)."""
    records = []
    for pose in poses:
        keypoints, scores = from_original_pose(pose)
        records.append(
            {"keypoints": keypoints, "scores": scores, "box": np.full((len(keypoints), 4), np.nan)}
        )
    return Stream.from_frames("dwpose", records)


def stream_to_poses(
    stream: Stream, height: int, width: int, optional_keys: Sequence[str] = OPTIONAL_KEYS
) -> list[dict[str, Any]]:
    """A DWPose stream as original pose dicts, one per frame."""
    frames = []
    for index in range(stream.frame_count):
        people = stream.frame(index)
        frames.append(
            to_original_pose(
                people["keypoints"], people["scores"], height, width, optional_keys=optional_keys
            )
        )
    return frames


def track_to_original(track: Track, stream: Stream | None = None) -> list[dict[str, Any]]:
    """The DWPose stream of `track` (or `stream`, a processed copy of it) as original pose dicts."""
    optional = track.state("dwpose").options.get("pkl_keys", list(OPTIONAL_KEYS))
    stream = track.load("dwpose") if stream is None else stream
    return stream_to_poses(stream, track.source.height, track.source.width, optional)


def export_single(track: Track, single: bool | None = None) -> bool:
    """Whether exporting `track` writes one picture's pose dict: `single` if given, else the layout
    the track was imported from (a list for extracted tracks). Refuses a single dict for a track
    of several frames."""
    if single is None:
        single = imported_single(track)
    frames = track.source.frame_count
    if single and frames != 1:
        raise UserError(
            f"--single writes one picture's pose dict, but {track.path} has {frames} frames; "
            "leave it out (or pass --list) to write the list of frames."
        )
    return single


def export_dwpose_pkl(track: Track, out: Path, *, single: bool | None = None) -> Path:
    """Write `track`'s DWPose poses as the original's `.pkl`: a list of frames, or one picture's
    pose dict (see `export_single`)."""
    single = export_single(track, single)
    poses = track_to_original(track)
    save_dwpose_pkl(out, poses[0] if single else poses)
    return out
