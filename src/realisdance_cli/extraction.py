"""`rdance extract`: decode a source once and run the pose stages into a resumable pose track."""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import shutil
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from realisdance_cli import weights
from realisdance_cli.conditions import BY_STAGE, BY_STREAM, STAGES, chosen, elsewhere
from realisdance_cli.errors import UserError, counted
from realisdance_cli.files import file_sha256
from realisdance_cli.progress import ProgressFn, no_progress
from realisdance_cli.track import SourceInfo, Stream, Track, holds_track
from realisdance_cli.track_summary import Found
from realisdance_cli.video import DEFAULT_IMAGE_FPS, FrameSource, Selection, prefetched

logger = logging.getLogger(__name__)


@dataclass
class ExtractOptions:
    """How `extract` runs. `stages`: some of dwpose, hamer, smplerx (a name, a comma-separated
    text or a list; run in that order, DWPose first), each making one track stream (dwpose, mano,
    smplx). `device`: auto, cpu, cuda, cuda:N or mps; `dtype` of the PyTorch stages (hamer,
    smplerx): fp16, bf16 or fp32. `selection` picks frames by start and stride (no `fps`).
    A name that is not one is a `UserError` here, before any work."""

    selection: Selection = field(default_factory=Selection)
    stages: Sequence[str] = STAGES
    device: str = "auto"
    dtype: str | None = None  # PyTorch stages: fp16 on a GPU, fp32 on the CPU
    max_people: int = 1
    rgb: bool = False
    chunk: int = 32  # frames per resumable chunk
    batch: int = 16  # pose-model crops per call
    weights_root: Path | None = None
    dwpose_det: Path | None = None
    dwpose_pose: Path | None = None

    def __post_init__(self) -> None:
        if self.selection.fps is not None:  # a track's frames are its source's by start and stride
            raise UserError("extraction reads frames by start and stride, not resampled to a rate (no fps).")
        self.stages = parse_stages(self.stages)


@dataclass
class StageSummary:
    stage: str
    frames: int
    empty_frames: list[int]  # frames without a valid person or hand (set aside ones included)
    items: int  # valid people or hands found in all
    skipped: bool  # already complete before this run
    set_aside_frames: list[int] = field(default_factory=list)  # empty only as DWPose's were set aside


def parse_stages(stages: str | Iterable[str] | None) -> list[str]:
    """`--only dwpose,hamer` (or "hamer", ["dwpose", "hamer"]) -> stages in run order (all when not
    given); a stream's or a video's name is said to be one, with its stage."""
    return chosen(stages, STAGES, "stages", hint=partial(elsewhere, scheme="stage")) or list(STAGES)


def source_digest(source: FrameSource) -> str:
    """sha256 of a video file, or of every image of a folder in order."""
    if source.path.is_file():
        return file_sha256(source.path)
    digest = hashlib.sha256()
    for image in source.images:
        digest.update(image.name.encode())
        digest.update(bytes.fromhex(file_sha256(image)))
    return digest.hexdigest()


def open_track(
    source: FrameSource, out: Path, *, force: bool, stages: Sequence[str] = ()
) -> tuple[Track, bool]:
    """The track for `source` at `out`, and whether this call made it.

    A track of the same frames is resumed; with `force` its `stages` start over (the others are
    kept). A track of other frames is refused, or with `force` replaced. Every stage that needs
    DWPose boxes is checked to get them before anything is written."""
    info = source.info
    current = SourceInfo(
        path=str(source.path.resolve()),
        sha256=source_digest(source),
        width=info.width,
        height=info.height,
        frame_count=info.frame_count,
        fps=info.fps,
        start=source.selection.start,
        stride=source.selection.stride,
    )
    track = _same_frames(out, current, force)
    _check_order(stages, track, out)
    if track is None:  # `create` refuses a folder that is not a track
        return Track.create(out, current, overwrite=force), True
    if track.source.fps != current.fps:  # an image folder's rate is the user's word; no stream uses it
        logger.warning("%s: frame rate %s fps, was %s", out, current.fps, track.source.fps)
        track.retime(current.fps)
    for stage in stages if force else ():
        _start_over(track, BY_STAGE[stage].stream, stages)
    return track, False


def _start_over(track: Track, stream: str, running: Sequence[str]) -> None:
    """`stream` is made anew: it goes, and with it what was made from it. Its video in the track
    folder (where render-poses writes and animate reads) shows the old one; HaMeR's and SMPLer-X's
    streams were made from the old DWPose boxes (said unless their stage is `running` now)."""
    made_from = [other for other in ("mano", "smplx") if stream == "dwpose" and other in track.streams]
    for name in (stream, *made_from):
        video = track.path / BY_STREAM[name].video
        if video.exists():
            video.unlink()
            warnings.warn(f"removed {video}: it showed the earlier {name} stream", stacklevel=2)
    for name in made_from:
        stage = BY_STREAM[name].stage
        if stage not in running:
            again = shlex.join(
                ["rdance", "extract", track.source.path, "--only", stage, "--out", str(track.path)]
            )
            warnings.warn(
                f"{track.path}: removed the {name} stream, made from the earlier DWPose boxes; "
                f"`{again}` makes it again",
                stacklevel=2,
            )
        track.discard(name)
    track.discard(stream)


def _begin(
    track: Track, stream: str, weights: dict[str, str], options: dict[str, Any], running: Sequence[str]
) -> None:
    """Start or resume `stream` (`Track.begin`); started over with other weights or options, what
    rested on its earlier result goes too (`_start_over`)."""
    if stream in track.streams and not track.made_with(stream, weights, options):
        _start_over(track, stream, running)
    track.begin(stream, weights=weights, options=options)


def _same_frames(out: Path, current: SourceInfo, force: bool) -> Track | None:
    """The track at `out` if it was made from the frames `current` describes (None: no track
    there, or with `force` one that is damaged or of other frames)."""
    if not (out / "meta.json").exists() or (force and not holds_track(out)):
        return None
    try:
        track = Track.open(out)
    except UserError:
        if force:
            return None
        raise
    old = track.source
    if (old.sha256, old.frame_count, old.start, old.stride) == (
        current.sha256,
        current.frame_count,
        current.start,
        current.stride,
    ):
        return track
    if force:
        return None
    if old.sha256 != current.sha256:
        made = f"was made from another source ({old.path}, sha256 {old.sha256[:12]}...)"
    else:
        made = (
            f"holds {counted(old.frame_count, 'frame')} from frame {old.start} every {old.stride} of this "
            "source; "
            f"this run asks for {current.frame_count} from {current.start} every {current.stride} "
            "(--start, --stride, --max-frames)"
        )
    raise UserError(f"{out} {made}; pass --force to make it again or --out to write elsewhere.")


def _check_order(stages: Sequence[str], track: Track | None, out: Path) -> None:
    """HaMeR and SMPLer-X read the DWPose boxes: from this run, or finished in the track."""
    needing = [stage for stage in stages if stage in NETWORK_STAGES]
    if needing and "dwpose" not in stages and not (track is not None and track.has("dwpose")):
        raise UserError(
            f"{' and '.join(needing)} read the DWPose boxes, and {out} has no finished DWPose stream; "
            f"run the dwpose stage too (--only dwpose,{','.join(needing)})."
        )


def _chunks(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    while chunk := list(islice(frames, size)):
        yield chunk


def _weight_ids(paths: dict[str, Path]) -> dict[str, str]:
    return {name: file_sha256(path)[:16] for name, path in paths.items()}


def _used_weights(stage: str, paths: dict[str, Path]) -> dict[str, str]:
    """The ids of the weight files a stage runs with (`_weight_ids`), where they are logged."""
    logger.info("%s: weights %s", stage, ", ".join(f"{name} {path}" for name, path in paths.items()))
    return _weight_ids(paths)


def _unchanged(
    track: Track, stream: str, options: dict[str, Any], weight_paths: Callable[[], dict[str, Path]]
) -> bool:
    """Whether `stream` is finished with these options and these weight files (when they are at
    hand: a finished track is still summarised on a machine without them)."""
    state = track.state(stream)
    if not state.complete or state.options != options:
        return False
    try:
        paths = weight_paths()
    except UserError:  # missing weight files: nothing to compare, the finished stream stands
        return True
    return state.weights == _weight_ids(paths)


def _summary(track: Track, stage: str, *, skipped: bool) -> StageSummary:
    """What `stage` found; its empty frames where it set aside every box DWPose gave it (a person
    too small for SMPLer-X) are told apart from those where DWPose found nothing."""
    stream = track.load(BY_STAGE[stage].stream)
    result = Found(stream.valid_per_frame())
    set_aside = np.flatnonzero((result.per_frame == 0) & (stream.items_per_frame() > 0)).tolist()
    return StageSummary(
        stage, result.per_frame.size, result.empty_frames, result.total, skipped, set_aside_frames=set_aside
    )


def _run_chunks(
    track: Track,
    stage: str,
    source: FrameSource,
    options: ExtractOptions,
    infer: Callable[[list[np.ndarray], int], list[dict[str, np.ndarray]]],
    progress: ProgressFn,
) -> None:
    """Decode the frames `stage` still lacks (in a background thread), infer them chunk by chunk
    (`infer(frames, index of the first)`), and save each chunk before the next, so a stop loses at
    most one chunk."""
    stream = BY_STAGE[stage].stream
    done, total = track.state(stream).frames_done, track.source.frame_count
    if done:
        logger.info("%s: resuming %s at frame %d of %d", stage, track.path, done, total)
    progress(stage, done, total)
    if done < total:  # all chunks may be saved already, with only the merge left
        remaining = Selection(
            start=source.selection.start + done * source.selection.stride,
            stride=source.selection.stride,
            max_frames=total - done,
        )
        frames = prefetched(iter(FrameSource(source.path, remaining, image_fps=source.info.source_fps)))
        for chunk in _chunks(frames, options.chunk):
            track.append(stream, Stream.from_frames(stream, infer(chunk, done)))
            done += len(chunk)
            progress(stage, done, total)
    track.finish(stream)


def run_dwpose(
    track: Track, source: FrameSource, options: ExtractOptions, progress: ProgressFn
) -> StageSummary:
    from realisdance_cli.extractors.dwpose.solution import DWPose

    stage_options = {"rgb": options.rgb, "max_people": options.max_people}
    root = weights.weights_root(options.weights_root)
    for name, named in (("dwpose-det", options.dwpose_det), ("dwpose-pose", options.dwpose_pose)):
        if named is not None:  # a file the user named must be there, finished stream or not
            weights.require(name, root, named)

    def weight_paths() -> dict[str, Path]:
        return {
            "dwpose-det": weights.require("dwpose-det", root, options.dwpose_det),
            "dwpose-pose": weights.require("dwpose-pose", root, options.dwpose_pose),
        }

    if _unchanged(track, "dwpose", stage_options, weight_paths):
        return _summary(track, "dwpose", skipped=True)
    paths = weight_paths()
    _begin(track, "dwpose", _used_weights("dwpose", paths), stage_options, options.stages)
    model = DWPose(
        paths["dwpose-det"],
        paths["dwpose-pose"],
        device=options.device,
        max_people=options.max_people,
        rgb=options.rgb,
        batch=options.batch,
    )
    _run_chunks(track, "dwpose", source, options, lambda frames, _: model(frames), progress)
    return _summary(track, "dwpose", skipped=False)


def _hand_estimator(paths: dict[str, Path], root: Path, device: Any, dtype: Any, batch: int) -> Any:
    from realisdance_cli.extractors.hamer.loading import load_hamer
    from realisdance_cli.extractors.hand_estimator import HandEstimator

    mean = root / weights.get("hamer-mean").path
    return HandEstimator(load_hamer(paths["hamer"], paths["hamer-config"], mean), device, dtype, batch)


def _body_estimator(paths: dict[str, Path], root: Path, device: Any, dtype: Any, batch: int) -> Any:
    from realisdance_cli.extractors.body_estimator import BodyEstimator
    from realisdance_cli.extractors.smplerx.loading import load_smplerx

    return BodyEstimator(load_smplerx(paths["smplerx"]), device, dtype, batch)


@dataclass(frozen=True)
class _NetworkStage:
    """A PyTorch stage that reads this run's DWPose stream (person or hand boxes)."""

    stage: str
    network: tuple[str, ...]  # weight files that make the result
    renderer: str  # the body model render-poses needs, checked now so no long run ends without it
    build: Callable[[dict[str, Path], Path, Any, Any, int], Any]

    @property
    def stream(self) -> str:
        return BY_STAGE[self.stage].stream

    def run(
        self, track: Track, source: FrameSource, options: ExtractOptions, progress: ProgressFn
    ) -> StageSummary:
        from realisdance_cli.devices import resolve_device

        device, dtype = resolve_device(options.device, options.dtype)
        dwpose = track.state("dwpose")
        stage_options = {
            "dtype": str(dtype).removeprefix("torch."),
            "dwpose": {**dwpose.weights, **dwpose.options},  # other boxes -> other results
        }
        root = weights.weights_root(options.weights_root)
        if _unchanged(track, self.stream, stage_options, lambda: weights.require_all(self.network, root)):
            return _summary(track, self.stage, skipped=True)
        paths = weights.require_all([*self.network, self.renderer], root)
        network = {name: paths[name] for name in self.network}
        _begin(track, self.stream, _used_weights(self.stage, network), stage_options, options.stages)
        estimator = self.build(paths, root, device, dtype, options.batch)
        poses = track.load("dwpose")

        def infer(frames: list[np.ndarray], first: int) -> list[dict[str, np.ndarray]]:
            return estimator(frames, [poses.frame(first + i) for i in range(len(frames))])

        _run_chunks(track, self.stage, source, options, infer, progress)
        return _summary(track, self.stage, skipped=False)


NETWORK_STAGES = {
    "hamer": _NetworkStage("hamer", ("hamer", "hamer-config"), "mano", _hand_estimator),
    "smplerx": _NetworkStage("smplerx", ("smplerx",), "smplx", _body_estimator),
}
RUNNERS: dict[str, Any] = {"dwpose": run_dwpose} | {name: s.run for name, s in NETWORK_STAGES.items()}


def _check_weights(track: Track | None, options: ExtractOptions) -> None:
    """Every weight file the unfinished stages of `track` (None: a new one) need, named at once
    before anything is written."""

    def finished(stream: str) -> bool:
        return track is not None and track.has(stream)

    needed = []
    if not finished("dwpose") and "dwpose" in options.stages:
        needed += [
            name
            for name, explicit in (("dwpose-det", options.dwpose_det), ("dwpose-pose", options.dwpose_pose))
            if explicit is None
        ]
    for name, stage in NETWORK_STAGES.items():
        if not finished(stage.stream) and name in options.stages:
            needed += [*stage.network, stage.renderer]
    weights.require_all(needed, weights.weights_root(options.weights_root))


def extract(
    input_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    options: ExtractOptions | None = None,
    *,
    force: bool = False,
    image_fps: Fraction = DEFAULT_IMAGE_FPS,
    progress: ProgressFn = no_progress,
) -> tuple[Track, list[StageSummary]]:
    """Run the chosen stages on `input_path` (video, image folder or image) into a pose track.

    Returns the track (`Track`: `track.load("dwpose")` and so on) and a `StageSummary` per stage
    run, in run order (frames, frames with nobody, people or hands found, whether it was finished
    already). The track is locked while this runs; a track this call made is removed again when it
    fails before any frame is saved, so no empty track is left behind."""
    input_path, out = Path(input_path), Path(out) if out is not None else None
    options = options or ExtractOptions()
    if any(stage in NETWORK_STAGES for stage in options.stages):
        from realisdance_cli.devices import resolve_device

        resolve_device(options.device, options.dtype)  # a wrong --dtype/--device is said before any work
    source = FrameSource(input_path, options.selection, image_fps=image_fps)
    path = out or Track.default_path(input_path)
    resumable = (path / "meta.json").exists() and not force
    _check_weights(Track.open(path) if resumable else None, options)
    new = not path.exists()  # the lock makes the folder
    with Track.lock(path):
        track, made = None, new
        try:
            track, made = open_track(source, path, force=force, stages=options.stages)
            summaries = [RUNNERS[stage](track, source, options, progress) for stage in options.stages]
        except BaseException:
            if made and not (track and any(state.frames_done for state in track.streams.values())):
                shutil.rmtree(path, ignore_errors=True)
            raise
    return track, summaries
