"""The pose track: the cached result of extraction, one folder per video (`<name>.rdance/`).

    meta.json        schema version, source (path, sha256, fps, size, frames), per-stream state
    dwpose.npz       DWPose whole-body keypoints        } one file per finished stream
    smplx.npz        SMPL-X parameters + camera         }
    mano.npz         MANO hands + camera                }
    <stream>.parts/  chunks of a stream being extracted (merged into <stream>.npz when finished)

Every stream is ragged: frame `i` owns items `offsets[i]:offsets[i+1]` (people for DWPose and
SMPL-X, hands for MANO), so a frame may hold nobody. Files are replaced atomically (temporary
file + rename); a chunk is recorded in meta.json only after it is on disk, so a killed
extraction resumes from the last recorded frame to the same arrays as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from realisdance_cli import __version__
from realisdance_cli.conditions import elsewhere
from realisdance_cli.errors import InUse, UserError, brief, counted
from realisdance_cli.files import (
    atomic_write_bytes,
    contents,
    folder_lock,
    is_temporary,
    load_npz,
    lock_holder,
    remove,
    save_npz,
)

FPS_RANGE = (Fraction(1, 100), Fraction(1000))
"""The frame rates a video or a track may have (beyond them, its timing is damaged: a --smooth of
"1e9 fps" kept 23 of 78 hands, resampling "1/20000000 fps" took gigabytes)."""

SCHEMA_VERSION = 1
TRACK_SUFFIX = ".rdance"


@dataclass(frozen=True)
class FieldSpec:
    shape: tuple[int, ...]  # per item
    dtype: str
    doc: str


# DWPose keypoints use the original's 134-point layout: OpenPose body-18 (with the synthesised
# neck at 1), 6 feet, 68 face, 21 left hand (92-112), 21 right hand (113-133); see SPEC 1.
DWPOSE_POINTS = 134
LEFT_HAND = slice(92, 113)
RIGHT_HAND = slice(113, 134)
FACE = slice(24, 92)
BODY = slice(0, 18)

STREAMS: dict[str, dict[str, FieldSpec]] = {
    "dwpose": {
        "keypoints": FieldSpec((DWPOSE_POINTS, 2), "float64", "x, y in source pixels (NaN: unknown)"),
        "scores": FieldSpec((DWPOSE_POINTS,), "float64", "keypoint confidence"),
        "box": FieldSpec((4,), "float64", "person box x0, y0, x1, y1 in pixels (NaN: unknown)"),
    },
    "smplx": {
        "global_orient": FieldSpec((3,), "float32", "root rotation, axis-angle"),
        "body_pose": FieldSpec((21, 3), "float32", "body joint rotations, axis-angle"),
        "left_hand_pose": FieldSpec((15, 3), "float32", "relative to the SMPL-X hand mean"),
        "right_hand_pose": FieldSpec((15, 3), "float32", "relative to the SMPL-X hand mean"),
        "jaw_pose": FieldSpec((3,), "float32", "axis-angle"),
        "leye_pose": FieldSpec((3,), "float32", "axis-angle (zeros from SMPLer-X)"),
        "reye_pose": FieldSpec((3,), "float32", "axis-angle (zeros from SMPLer-X)"),
        "betas": FieldSpec((10,), "float32", "shape coefficients"),
        "expression": FieldSpec((10,), "float32", "expression coefficients"),
        "transl": FieldSpec((3,), "float32", "camera-frame translation (SMPLer-X cam_trans)"),
        "focal": FieldSpec((2,), "float32", "fx, fy of the full-frame camera in pixels"),
        "princpt": FieldSpec((2,), "float32", "cx, cy of the full-frame camera in pixels"),
        "bbox": FieldSpec((4,), "float32", "processed person box x, y, w, h in pixels"),
        "valid": FieldSpec((), "bool", "False where the person was skipped (box too small)"),
    },
    "mano": {
        "is_right": FieldSpec((), "bool", "True for a right hand"),
        "global_orient": FieldSpec((1, 3, 3), "float32", "wrist rotation matrix"),
        "hand_pose": FieldSpec((15, 3, 3), "float32", "finger joint rotation matrices"),
        "betas": FieldSpec((10,), "float32", "shape coefficients"),
        "cam_crop": FieldSpec((3,), "float32", "s, tx, ty of the crop camera"),
        "cam_t_full": FieldSpec((3,), "float32", "translation for the full-frame camera"),
        "focal": FieldSpec((), "float32", "full-frame focal length in pixels"),
        "box": FieldSpec((4,), "float32", "hand box x0, y0, x1, y1 in pixels"),
        "valid": FieldSpec((), "bool", "False where the hand was rejected"),
    },
}


def _check_kind(kind: str) -> dict[str, FieldSpec]:
    """The fields of stream `kind`, or one sentence; for an extraction stage's or a pose video's
    name, which stream holds it (a stream's name stays one thing: none is taken for another)."""
    if kind in STREAMS:
        return STREAMS[kind]
    streams = ", ".join(STREAMS)
    if other := elsewhere(kind, "stream"):
        raise UserError(f"{other} (the streams are {streams}).")
    raise UserError(f"unknown stream {kind!r}; the streams are {streams}.")


@dataclass
class Stream:
    """Per-frame records of one kind: frame `i` owns items `offsets[i]:offsets[i+1]`."""

    kind: str
    offsets: np.ndarray
    fields: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        specs = _check_kind(self.kind)
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        if self.offsets.ndim != 1 or self.offsets.size < 1 or self.offsets[0] != 0:
            raise ValueError("offsets must be a 1-D array starting at 0")
        if np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must not decrease")
        if set(self.fields) != set(specs):
            raise ValueError(f"{self.kind} needs fields {sorted(specs)}, got {sorted(self.fields)}")
        items = int(self.offsets[-1])
        for name, spec in specs.items():
            array = np.asarray(self.fields[name])
            if array.shape != (items, *spec.shape):
                raise ValueError(
                    f"{self.kind}.{name} must have shape {(items, *spec.shape)}, got {array.shape}"
                )
            self.fields[name] = array.astype(spec.dtype, copy=False)

    @property
    def frame_count(self) -> int:
        return self.offsets.size - 1

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name} {array.shape} {array.dtype}" for name, array in self.fields.items())
        return f"Stream({self.kind!r}, {self.frame_count} frames, {int(self.offsets[-1])} items: {shapes})"

    def items_per_frame(self) -> np.ndarray:
        return np.diff(self.offsets)

    def valid_per_frame(self) -> np.ndarray:
        """Per frame, the items that hold a result: a skipped person or rejected hand is stored
        (its `valid` is False) but found nobody; DWPose has no such mark, so all its items count."""
        valid = self.fields.get("valid")
        if valid is None:
            return self.items_per_frame()
        before = np.concatenate([[0], np.cumsum(valid, dtype=np.int64)])  # valid items before each item
        return np.diff(before[self.offsets])

    def frame(self, index: int) -> dict[str, np.ndarray]:
        """The items of frame `index`, each field with a leading item axis."""
        lo, hi = int(self.offsets[index]), int(self.offsets[index + 1])
        return {name: array[lo:hi] for name, array in self.fields.items()}

    @classmethod
    def from_frames(cls, kind: str, frames: Iterable[Mapping[str, np.ndarray]]) -> Stream:
        """Build from per-frame dicts whose arrays have a leading item axis (length 0 allowed)."""
        specs = _check_kind(kind)
        frames = [frame for frame in frames]
        counts = [len(next(iter(frame.values()))) if frame else 0 for frame in frames]

        def gather(name: str, spec: FieldSpec) -> np.ndarray:
            arrays = [np.asarray(frame[name], spec.dtype) for frame in frames if frame]
            for index, array in enumerate(arrays):
                if array.shape[1:] != spec.shape:
                    shape = (-1, *spec.shape)
                    raise ValueError(
                        f"{kind}.{name} must have shape {shape}, got {array.shape} in frame {index}"
                    )
            return np.concatenate(arrays) if arrays else np.empty((0, *spec.shape), spec.dtype)

        fields = {name: gather(name, spec) for name, spec in specs.items()}
        return cls(kind, np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]), fields)

    @classmethod
    def concat(cls, kind: str, parts: Sequence[Stream]) -> Stream:
        specs = _check_kind(kind)
        offsets = [np.zeros(1, np.int64)]
        for part in parts:
            offsets.append(part.offsets[1:] + offsets[-1][-1])
        fields = {
            name: np.concatenate([np.empty((0, *spec.shape), spec.dtype)] + [p.fields[name] for p in parts])
            for name, spec in specs.items()
        }
        return cls(kind, np.concatenate(offsets), fields)

    def equals(self, other: Stream) -> bool:
        """Exact equality of every array (NaN equal to NaN)."""
        return (
            self.kind == other.kind
            and np.array_equal(self.offsets, other.offsets)
            and all(
                np.array_equal(self.fields[k], other.fields[k], equal_nan=self.fields[k].dtype.kind == "f")
                for k in self.fields
            )
        )


def _save_stream(path: Path, stream: Stream) -> None:
    save_npz(path, {"offsets": stream.offsets, **stream.fields})


def _load_stream(path: Path, kind: str) -> Stream:
    arrays = load_npz(path)
    try:
        return Stream(kind, arrays.pop("offsets"), arrays)
    except (KeyError, ValueError) as err:
        raise UserError(f"{path} does not hold a valid {kind} stream ({err}).") from None


@dataclass
class SourceInfo:
    """Where a track came from; `fps` may be unknown (None) for imported pose files."""

    path: str
    sha256: str
    width: int
    height: int
    frame_count: int
    fps: Fraction | None = None
    start: int = 0
    stride: int = 1

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["fps"] = None if self.fps is None else str(self.fps)
        return data

    @classmethod
    def from_json(cls, data: Any) -> SourceInfo:
        """Read back what `to_json` wrote; anything else (a hand-edited or damaged meta.json) is a
        ValueError saying what is wrong, so that no command trips over it later."""
        values = dict(_entries(data, "source", set(cls.__dataclass_fields__)))
        missing = {"path", "sha256", "width", "height", "frame_count"} - set(values)
        if missing:
            raise ValueError(f"source lacks {', '.join(sorted(missing))}")
        for name in ("path", "sha256"):
            if not isinstance(values[name], str):
                raise ValueError(f"source {name} must be text, got {brief(values[name])}")
        for name, least in (("width", 1), ("height", 1), ("frame_count", 0), ("start", 0), ("stride", 1)):
            if name in values:
                _whole(values[name], f"source {name}", least)
        values["fps"] = _frame_rate(values.get("fps"))
        return cls(**values)


@dataclass
class StreamState:
    """Progress and provenance of one stream."""

    frames_done: int = 0
    complete: bool = False
    weights: dict[str, str] = field(default_factory=dict)  # registry name -> file sha256 or path
    options: dict[str, Any] = field(default_factory=dict)  # how it was made (e.g. "origin": "import")

    @classmethod
    def from_json(cls, kind: str, data: Any, frame_count: int) -> StreamState:
        """Read back one stream's state, refusing (ValueError) what no writer makes."""
        if kind not in STREAMS:
            raise ValueError(f"it records an unknown stream {brief(kind)}")
        values = _entries(data, f"stream {kind}", set(cls.__dataclass_fields__))
        state = cls(**values)
        if _whole(state.frames_done, f"{kind} frames_done", 0) > frame_count:
            raise ValueError(f"{kind} has {state.frames_done} frames done of {frame_count}")
        if not isinstance(state.complete, bool):
            raise ValueError(f"{kind} complete must be true or false, got {brief(state.complete)}")
        weights = _mapping(state.weights, f"{kind} weights")
        if not all(isinstance(item, str) for pair in weights.items() for item in pair):
            raise ValueError(f"{kind} weights must name files by text")
        _mapping(state.options, f"{kind} options")
        return state


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {brief(value)}")
    return value


def _entries(value: Any, what: str, known: set[str]) -> dict[str, Any]:
    """`value` as a JSON object holding only entries named in `known`."""
    unknown = set(_mapping(value, what)) - known
    if unknown:
        raise ValueError(f"{what} has unknown entries {brief(sorted(unknown))}")
    return value


def _whole(value: Any, what: str, least: int) -> int:
    """`value` if it is a whole number of at least `least` (JSON's `true` is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{what} must be a whole number of at least {least}, got {brief(value)}")
    return value


def _frame_rate(value: Any) -> Fraction | None:
    """A recorded frame rate: unknown (None), or a number in `FPS_RANGE` ("30000/1001", 25)."""
    if value is None:
        return None
    try:
        rate = (
            Fraction(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
        )
    except (ValueError, OverflowError, ZeroDivisionError):  # "1/0", NaN, infinity, "abc"
        rate = None
    low, high = FPS_RANGE
    if rate is None or not low <= rate <= high:
        raise ValueError(f"source fps must be a frame rate from {float(low)} to {high}, got {brief(value)}")
    return rate


def holds_track(path: Path) -> bool:
    """Whether `path` holds a track's meta.json (whole enough to say so, if not to be opened)."""
    try:
        meta = json.loads((path / "meta.json").read_text())
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(meta, dict) and "schema_version" in meta and "source" in meta


def foreign(path: Path) -> bool:
    """Whether `path` is a folder of the user's, never to be written into: files in it besides a
    track's temporaries, no track's meta.json, and no process making a track there now."""
    user_files = path.is_dir() and not all(map(is_temporary, contents(path)))
    return user_files and not holds_track(path) and lock_holder(path) is None


def not_a_track(path: Path) -> UserError:
    """The refusal of a folder of the user's: no --force replaces it, so none is suggested."""
    return UserError(f"{path} exists and is not a pose track; it is never replaced: choose another --out.")


def while_written(path: Path, error: UserError) -> UserError:
    """`error`, what a reader found missing or unfinished in the track at `path`, unless another
    process (an extract or an import) is writing the track now: then that is its work in
    progress, and the remedy is to wait, not to extract or import it again."""
    holder = lock_holder(path)
    if holder is None:
        return error
    return InUse(f"{path} is being written by another process{holder}; wait for it, then run this again.")


def named(path: Path) -> Path:
    """`path` with a name to derive others from: `.` and `..` become the folders they stand for."""
    return path.resolve() if path.name in ("", "..") else path


class Track:
    """A pose-track folder. Create with `Track.create`, open with `Track.open`."""

    def __init__(self, path: Path, source: SourceInfo, streams: dict[str, StreamState]) -> None:
        self.path = path
        self.source = source
        self.streams = streams

    def __repr__(self) -> str:
        source = self.source
        rate = "unknown fps" if source.fps is None else f"{float(source.fps):g} fps"
        streams = ", ".join(
            f"{kind} {'finished' if state.complete else f'{state.frames_done}/{source.frame_count}'}"
            for kind, state in self.streams.items()
        )
        return (
            f"Track({str(self.path)!r}, {source.frame_count} frames of {source.height}x{source.width} "
            f"(height x width) at {rate}; streams: {streams or 'none'})"
        )

    def __fspath__(self) -> str:
        """The folder, so that a track stands wherever its path does (`render_poses(track)`)."""
        return str(self.path)

    @staticmethod
    def default_path(source: Path) -> Path:
        """`dance.mp4` -> `dance.rdance` beside it (`.`, a folder of frames: beside that folder)."""
        source = named(source)
        return (
            source.with_name(source.stem + TRACK_SUFFIX)
            if source.suffix
            else source.with_suffix(TRACK_SUFFIX)
        )

    @classmethod
    def create(cls, path: str | os.PathLike[str], source: SourceInfo, *, overwrite: bool = False) -> Track:
        """A new, empty track at `path`; an existing track there is replaced only with `overwrite`
        (its lock file stays, so a process holding it keeps holding it)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise UserError(f"{path} exists and is not a folder; choose another --out.")
        existing = contents(path)
        if existing:
            if not holds_track(path):  # a folder of the user's (a stray meta.json too) is never emptied
                raise not_a_track(path)
            if not overwrite:
                raise UserError(f"{path} already exists; pass --force to replace it.")
            # meta.json last: stopped midway, the folder is still a track that --force replaces
            remove(sorted(existing, key=lambda entry: entry.name == "meta.json"))
        path.mkdir(parents=True, exist_ok=True)
        track = cls(path, source, {})
        track._save_meta()
        return track

    @staticmethod
    def lock(path: Path) -> AbstractContextManager[None]:
        """Held while a process writes the track at `path`: a second writer stops with one sentence.
        A folder of the user's is refused before its lock file is made, so none is left in it (one
        being made now, whose lock another process holds, is that writer's to say)."""
        if foreign(path):
            raise not_a_track(path)
        return folder_lock(path, "the pose track")

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Track:
        """The track at `path`, or one sentence on why it cannot be read (to wait, when another
        process is writing it now)."""
        path = Path(path)
        try:
            return cls._read(path)
        except UserError as error:
            raise while_written(path, error) from None

    @classmethod
    def _read(cls, path: Path) -> Track:
        meta_path = path / "meta.json"
        if not path.exists():
            raise UserError(f"{path} does not exist.")
        if not meta_path.is_file():
            make = "rdance track import" if path.suffix.lower() == ".pkl" else "rdance extract"
            raise UserError(f"{path} is not a pose track (no meta.json); make one with `{make}`.")
        try:
            meta = _mapping(json.loads(meta_path.read_text()), "meta.json")
            version = _whole(meta.get("schema_version"), "schema_version", 1)
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"{path} was written by a newer realisdance-cli (schema {version}); please upgrade."
                )
            source = SourceInfo.from_json(meta.get("source"))
            streams = {
                kind: StreamState.from_json(kind, state, source.frame_count)
                for kind, state in _mapping(meta.get("streams"), "streams").items()
            }
        except json.JSONDecodeError as err:
            raise UserError(f"{meta_path} is damaged (it is not JSON: {err}); extract it again.") from None
        except (TypeError, ValueError) as err:
            raise UserError(f"{meta_path} is damaged ({err}); extract it again.") from None
        except RecursionError:
            raise UserError(f"{meta_path} is damaged (it nests too deeply); extract it again.") from None
        return cls(path, source, streams)

    def _save_meta(self) -> None:
        meta = {
            "schema_version": SCHEMA_VERSION,
            "written_by": f"realisdance-cli {__version__}",
            "source": self.source.to_json(),
            "streams": {kind: state.__dict__ for kind, state in self.streams.items()},
        }
        atomic_write_bytes(self.path / "meta.json", (json.dumps(meta, indent=2) + "\n").encode())

    def retime(self, fps: Fraction | None) -> None:
        """Set the source's frame rate (an image folder's is what the user says; no stream
        depends on it)."""
        self.source = replace(self.source, fps=fps)
        self._save_meta()

    def state(self, kind: str) -> StreamState:
        """The progress of `kind` (a stream: dwpose, smplx or mano); for a stream never recorded, a
        fresh state that is not kept (a writer that changes it must store it in `streams`)."""
        _check_kind(kind)
        return self.streams.get(kind, StreamState())

    def has(self, kind: str) -> bool:
        """Whether the stream `kind` (dwpose, smplx or mano) is finished."""
        return self.state(kind).complete

    def begin(self, kind: str, *, weights: Mapping[str, str], options: Mapping[str, Any]) -> int:
        """Start or resume `kind`; returns the number of frames already done.

        A stream made with other weights or options starts over, so a resumed result never mixes two
        configurations.
        """
        if not self.made_with(kind, weights, options):
            self.discard(kind)
            self.streams[kind] = StreamState(weights=dict(weights), options=dict(options))
            self._save_meta()
        return self.state(kind).frames_done

    def made_with(self, kind: str, weights: Mapping[str, str], options: Mapping[str, Any]) -> bool:
        """Whether `kind` is recorded as made (or being made) with these weights and options."""
        state = self.state(kind)
        return kind in self.streams and (state.weights, state.options) == (dict(weights), dict(options))

    def append(self, kind: str, chunk: Stream) -> None:
        """Add the next frames of `kind` (a crash after this call loses nothing)."""
        state = self.state(kind)
        if state.complete:
            raise ValueError(f"{kind} is already complete")
        if chunk.frame_count == 0:
            return
        parts = self.path / f"{kind}.parts"
        parts.mkdir(exist_ok=True)
        _save_stream(parts / f"{state.frames_done:08d}.npz", chunk)
        state.frames_done += chunk.frame_count
        self.streams[kind] = state
        self._save_meta()

    def finish(self, kind: str) -> Stream:
        """Merge the chunks of `kind` into `<kind>.npz`; it must cover every source frame."""
        state = self.state(kind)
        if state.frames_done != self.source.frame_count:
            raise ValueError(f"{kind} has {state.frames_done} of {self.source.frame_count} frames")
        stream = Stream.concat(kind, self._parts(kind))
        _save_stream(self.path / f"{kind}.npz", stream)
        state.complete = True
        self.streams[kind] = state  # unkept until now if it has no frames and no weights or options
        self._save_meta()
        shutil.rmtree(self.path / f"{kind}.parts", ignore_errors=True)
        return stream

    def write(
        self, kind: str, stream: Stream, *, weights: Mapping[str, str], options: Mapping[str, Any]
    ) -> None:
        """Store a whole stream at once (import, tests)."""
        self.discard(kind)
        self.begin(kind, weights=weights, options=options)
        self.append(kind, stream)
        self.finish(kind)

    def _parts(self, kind: str) -> list[Stream]:
        done = self.state(kind).frames_done
        parts, start = [], 0
        while start < done:
            path = self.path / f"{kind}.parts" / f"{start:08d}.npz"
            part = _load_stream(path, kind)
            if part.frame_count == 0:
                raise UserError(f"{path} is damaged (it holds no frames); run again with --force.")
            parts.append(part)
            start += part.frame_count
        return parts

    def load(self, kind: str) -> Stream:
        """The finished stream `kind`: dwpose (DWPose keypoints), smplx (SMPL-X bodies, the smplerx
        stage's) or mano (MANO hands, the hamer stage's)."""
        if not self.has(kind):
            done = self.state(kind).frames_done
            raise while_written(
                self.path,
                UserError(
                    f"{self.path} has no finished {kind} stream ({done} of {self.source.frame_count} "
                    "frames); run `rdance extract` for it."
                ),
            )
        stream = _load_stream(self.path / f"{kind}.npz", kind)
        if stream.frame_count != self.source.frame_count:
            raise UserError(
                f"{self.path / (kind + '.npz')} has {counted(stream.frame_count, 'frame')}, the track "
                f"{self.source.frame_count}; the track is damaged."
            )
        return stream

    def discard(self, kind: str) -> None:
        shutil.rmtree(self.path / f"{kind}.parts", ignore_errors=True)
        (self.path / f"{kind}.npz").unlink(missing_ok=True)
        if self.streams.pop(kind, None) is not None:
            self._save_meta()
