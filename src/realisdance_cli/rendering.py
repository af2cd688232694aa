"""`rdance render-poses`: a pose track (or an original `.pkl`) -> the pose videos the network reads.

`dwpose.mp4` is the skeleton picture, `smpl.mp4` the SMPL-X colourful surface and `hamer.mp4` the
MANO hands. All have one frame per track frame (black where nothing was found) and the same size
and frame rate, so they stay aligned. The mesh videos share one offscreen renderer.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np

from realisdance_cli import weights
from realisdance_cli.audio import AudioChoice, audio_source, has_audio
from realisdance_cli.conditions import BY_NAME, CONDITIONS, POSE_NAMES, SET_ASIDE, chosen, elsewhere
from realisdance_cli.errors import UserError
from realisdance_cli.files import file_sha256, folder_lock, paths_from_strings
from realisdance_cli.original import (
    OPTIONAL_KEYS,
    load_dwpose_pkl,
    poses_to_stream,
    stream_to_poses,
    track_to_original,
)
from realisdance_cli.progress import ProgressFn, counter, no_progress
from realisdance_cli.renderers.skeleton import draw_pose
from realisdance_cli.track import Stream, Track, while_written
from realisdance_cli.video import FrameSource, as_fraction
from realisdance_cli.video_writer import VideoWriter, check_crf, check_h264_size, publish_together

log = logging.getLogger(__name__)

Painter = Callable[[int], np.ndarray]
POSE_CHUNK = 32  # frames of SMPL-X posed per call
MAX_SIDE = 8192  # pixels: beyond 8K video, and the bound that keeps a typo from allocating gigabytes


@dataclass
class RenderOptions:
    """How `render_poses` draws. `videos`: some of dwpose, hamer, smpl (a name, a comma-separated
    text or a list; the videos dwpose.mp4, hamer.mp4, smpl.mp4 drawn from the track streams
    dwpose, mano, smplx); `size`: (height, width) or "768x576" text; `crf`: H.264 quality, 0 (best)
    to 51. A name or size that is not one is a `UserError` here, before any work."""

    videos: Sequence[str] | None = None  # default: every video the source has a stream for
    size: tuple[int, int] | None = None  # (height, width); default: the source size
    fps: Fraction | None = None  # default: the track's
    face: bool = False
    crf: int = 18
    lossless: bool = False
    weights_root: Path | None = None
    smplx_model: Path | None = None
    mano_model: Path | None = None
    smplx_colours: Path | None = None
    smooth: bool = False  # One-Euro filter on keypoints and SMPL-X/MANO parameters (smoothing.py)
    audio: AudioChoice = None  # a file's sound, or False for none; default: the source video's

    def __post_init__(self) -> None:
        paths_from_strings(self, "weights_root", "smplx_model", "mano_model", "smplx_colours", "audio")
        self.videos = parse_videos(self.videos)
        self.size = parse_size(self.size)


def parse_size(size: str | Sequence[int] | None) -> tuple[int, int] | None:
    """`768x576` (height x width), from Python also (768, 576) -> (768, 576); None: not given."""
    if size is None or size == "":
        return None
    try:
        height, width = _sides(size)
    except (TypeError, ValueError):
        raise UserError(f"--size must look like 768x576 (height x width), got {size!r}.") from None
    if not (2 <= height <= MAX_SIDE and 2 <= width <= MAX_SIDE):
        raise UserError(f"--size must be between 2x2 and {MAX_SIDE}x{MAX_SIDE}, got {size!r}.")
    return height, width


def _sides(size: str | Sequence[int]) -> list[int]:
    """The sides of "HxW" text or of whole numbers (ValueError or TypeError: neither)."""
    if isinstance(size, str):
        return [int(part) for part in size.lower().split("x")]
    if not all(isinstance(side, Integral) and not isinstance(side, bool) for side in size):
        raise ValueError(size)
    return [int(side) for side in size]


def parse_videos(videos: str | Iterable[str] | None) -> list[str] | None:
    """`--only smpl,hamer` (or "smpl", ["smpl", "hamer"]) -> the videos in their order (None: every
    one the track has); a stage's or a stream's name is said to be one, with its video."""
    return chosen(videos, POSE_NAMES, "videos", hint=partial(elsewhere, scheme="name"))


def default_out(source: Path) -> Path:
    """Videos go into the track folder (so `rdance animate ref.png dance.rdance` finds them), or
    beside a `.pkl` into `<name>_poses/`."""
    return source.with_name(source.stem + "_poses") if source.is_file() else source


@dataclass
class _Canvas:
    """What every painter needs to know about the output frames."""

    height: int
    width: int
    scale_x: float  # output pixels per source pixel
    scale_y: float
    fps: float


def _smoothed(stream: Stream, canvas: _Canvas, options: RenderOptions, width: int, height: int) -> Stream:
    """`stream` itself, or with `--smooth` a smoothed copy."""
    if not options.smooth:
        return stream
    from realisdance_cli.smoothing import smooth_stream

    return smooth_stream(stream, canvas.fps, frame_size=max(width, height))


def _skeleton(poses: list[dict[str, Any]], canvas: _Canvas, face: bool) -> Painter:
    return lambda index: draw_pose(poses[index], canvas.height, canvas.width, face=face)


def _smpl(track: Track, canvas: _Canvas, options: RenderOptions, stack: ExitStack) -> Painter:
    from realisdance_cli.bodies import (
        default_vertex_colours,
        load_vertex_colours,
        smplx_model,
        smplx_vertices,
    )
    from realisdance_cli.renderers.smpl_cs import SmplCsRenderer

    root = weights.weights_root(options.weights_root)
    model_file = weights.require("smplx", root, options.smplx_model)
    model = smplx_model(model_file)
    colour_file = options.smplx_colours or weights.status(weights.get("smplx-colors"), root).path
    if options.smplx_colours is not None or colour_file.is_file():
        colours = load_vertex_colours(colour_file)
        log.info("smpl.mp4: the SMPL-X model %s, coloured by %s", model_file, colour_file)
    else:
        colours = default_vertex_colours(model.v_template.numpy())
        log.info("smpl.mp4: the SMPL-X model %s, in default colours (no %s)", model_file, colour_file)
    if len(colours) != model.get_num_verts():
        raise UserError(
            f"{colour_file} colours {len(colours)} vertices, the SMPL-X model has {model.get_num_verts()}."
        )
    painter = SmplCsRenderer(canvas.height, canvas.width, model.faces, colours)
    stack.callback(painter.close)
    stream = _smoothed(track.load("smplx"), canvas, options, track.source.width, track.source.height)
    scale = np.array([canvas.scale_x, canvas.scale_y])
    posed: dict[int, np.ndarray] = {}  # frame -> vertices of its valid people, a chunk at a time

    def valid_people(index: int) -> dict[str, np.ndarray]:
        people = stream.frame(index)
        return {name: values[people["valid"]] for name, values in people.items()}

    def vertices_of(index: int) -> np.ndarray:
        """SMPL-X is posed for POSE_CHUNK frames per call (many times faster than one by one)."""
        if index not in posed:
            posed.clear()
            frames = range(index, min(index + POSE_CHUNK, stream.frame_count))
            people = [valid_people(frame) for frame in frames]
            stacked = {name: np.concatenate([p[name] for p in people]) for name in people[0]}
            counts = np.cumsum([len(p["valid"]) for p in people])[:-1]
            posed.update(zip(frames, np.split(smplx_vertices(model, stacked), counts), strict=True))
        return posed[index]

    def paint(index: int) -> np.ndarray:
        people = valid_people(index)
        picture = np.zeros((canvas.height, canvas.width, 3), np.uint8)
        for number, (vertices, focal, princpt) in enumerate(
            zip(vertices_of(index), people["focal"], people["princpt"], strict=True)
        ):
            drawn = painter.render(vertices, focal * scale, princpt * scale)
            if number == 0:  # black where nothing is drawn: the first person needs no overlay
                picture = drawn
                continue
            covered = drawn.any(axis=-1)
            picture[covered] = drawn[covered]  # later people in front, as the original's overlay
        return picture

    return paint


def _hands(track: Track, canvas: _Canvas, options: RenderOptions, stack: ExitStack) -> Painter:
    from realisdance_cli.bodies import mano_layer, mano_vertices
    from realisdance_cli.renderers.hands import HandRenderer

    root = weights.weights_root(options.weights_root)
    model_file = weights.require("mano", root, options.mano_model)
    layer = mano_layer(model_file)
    log.info("hamer.mp4: the MANO model %s", model_file)
    painter = HandRenderer(canvas.height, canvas.width, layer.faces)
    stack.callback(painter.close)
    stream = _smoothed(track.load("mano"), canvas, options, track.source.width, track.source.height)

    def paint(index: int) -> np.ndarray:
        hands = stream.frame(index)
        keep = hands["valid"]
        hands = {name: values[keep] for name, values in hands.items()}
        if not len(hands["focal"]):
            return np.zeros((canvas.height, canvas.width, 3), np.uint8)
        focal = float(hands["focal"][0])  # one full-frame camera per frame
        vertices = mano_vertices(layer, hands)
        return painter.render(
            vertices, hands["cam_t_full"], hands["is_right"], focal * canvas.scale_x, focal * canvas.scale_y
        )

    return paint


def _start_time(track: Track | None) -> float:
    """Seconds into the source video of the track's first frame (extraction may start later)."""
    if track is None or track.source.fps is None:
        return 0.0
    return float(track.source.start / (track.source.fps * track.source.stride))


def _source_sound(track: Track | None, fps: Fraction) -> Path | None:
    """The track's source video, when it has sound that keeps time with the pose videos."""
    if track is None or track.source.fps is None:  # an original .pkl, imported or not
        return None
    path = Path(track.source.path)
    if not path.is_file() or not has_audio(path):  # moved, an image folder, or silent
        return None
    if fps != track.source.fps:
        warnings.warn(
            f"the pose videos carry no sound: at {fps} fps they do not keep time with {path} "
            f"(the track has {track.source.fps} fps)",
            stacklevel=2,
        )
        return None
    if file_sha256(path) != track.source.sha256:
        warnings.warn(
            f"the pose videos carry no sound: {path} has changed since the track was made from it",
            stacklevel=2,
        )
        return None
    return path


def _check_neighbours(folder: Path, videos: Sequence[str], size: tuple[int, int]) -> None:
    """Pose videos kept beside the new ones at another size are said: animate refuses a set of
    several sizes (each would be cropped its own way)."""
    others = {}
    for condition in CONDITIONS:
        path = folder / condition.video
        if condition.name not in videos and path.is_file():
            try:
                info = FrameSource(path).info
            except UserError:  # a damaged one is animate's to say
                continue
            if (info.height, info.width) != size:
                others[condition.video] = f"{info.height}x{info.width}"
    if others:
        kept = ", ".join(f"{name} {other}" for name, other in others.items())
        warnings.warn(
            f"{folder} keeps {kept} beside the new {size[0]}x{size[1]} videos (height x width); animate "
            "takes pose videos of one size: render them all at one size",
            stacklevel=3,
        )


def _nothing_to_render(source: Path, track: Track | None, missing: Sequence[str]) -> UserError:
    """Why `source` (a track, or a DWPose .pkl when `track` is None) cannot give the `missing`
    videos, or any video when none is missing but none was available."""
    if not missing:
        return UserError(f"{source} has no finished stream to render; run `rdance extract` first.")
    if track is None:
        what = "a .pkl holds only DWPose poses"
    else:
        streams = " or ".join(BY_NAME[name].stream for name in missing)
        what = f"{source} has no finished {streams} stream"
    return UserError(f"cannot render {', '.join(missing)}: {what}; run `rdance extract` for it.")


def _warn_black(track: Track, videos: Sequence[str]) -> None:
    """A video whose stream found nothing in any frame is black throughout, which animate takes
    without a word: said once here, with why when DWPose found what the stage set aside."""
    for name in videos:
        condition = BY_NAME[name]
        stream = track.load(condition.stream)
        if stream.valid_per_frame().any():
            continue
        why = f"; DWPose found only {SET_ASIDE[condition.stream]}" if stream.items_per_frame().any() else ""
        warnings.warn(
            f"{condition.video} is black: the track's {condition.label} stream found {condition.nothing} "
            f"in any frame{why}; {condition.unguided}",
            stacklevel=3,
        )


def _default_size(height: int, width: int, lossless: bool) -> tuple[int, int]:
    """The source's size, each side cut to even for H.264 (a phone's odd-sized clip, said)."""
    if max(height, width) > MAX_SIDE:
        raise UserError(
            f"the source is {height}x{width} (height x width), larger than the videos can be; "
            f"give --size up to {MAX_SIDE}x{MAX_SIDE}."
        )
    if lossless or not (height % 2 or width % 2):
        return height, width
    even = (height - height % 2, width - width % 2)
    if not all(even):  # a one-pixel side (a 1x1 picture's track) has no even cut
        raise UserError(
            f"the source is {height}x{width} (height x width), too small for H.264's even sides; "
            "give --size (2x2 at least) or --lossless."
        )
    warnings.warn(
        f"H.264 needs even sides: the videos are {even[0]}x{even[1]}, the source {height}x{width} "
        "(--lossless keeps it)",
        stacklevel=3,
    )
    return even


def _painters(
    videos: Sequence[str],
    track: Track | None,
    poses: list[dict[str, Any]],
    size: tuple[int, int],
    canvas: _Canvas,
    options: RenderOptions,
    stack: ExitStack,
    progress: ProgressFn,
) -> dict[str, Painter]:
    """What draws each chosen video's frames from the track (or the .pkl's `poses`) of source
    `size` (height, width); the renderers' resources are held by `stack`. Making them (PyTorch's
    import, the body models, OpenGL) takes seconds before the first frame: a task of its own."""
    painters: dict[str, Painter] = {}
    advance = counter(progress, "loading renderers", len(videos))
    for name in videos:
        if name == "dwpose":
            painters[name] = _skeleton_painter(track, poses, size, canvas, options)
        else:
            assert track is not None  # a .pkl offers only the skeleton, refused above
            painters[name] = (_smpl if name == "smpl" else _hands)(track, canvas, options, stack)
        advance(1)
    return painters


def _skeleton_painter(
    track: Track | None,
    poses: list[dict[str, Any]],
    size: tuple[int, int],
    canvas: _Canvas,
    options: RenderOptions,
) -> Painter:
    """The skeleton of the track's DWPose stream, or of the .pkl's `poses`, smoothed as asked."""
    height, width = size
    if track is not None:
        poses = track_to_original(track, _smoothed(track.load("dwpose"), canvas, options, width, height))
    elif options.smooth:
        present = [key for key in OPTIONAL_KEYS if key in poses[0]]
        smoothed = _smoothed(poses_to_stream(poses), canvas, options, width, height)
        poses = stream_to_poses(smoothed, height, width, present)
    if options.face and poses and "faces" not in poses[0]:
        warnings.warn(
            "--face draws nothing: these poses hold no face landmarks (a .pkl without `faces`)",
            stacklevel=2,
        )
    return _skeleton(poses, canvas, options.face)


def render_poses(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    options: RenderOptions | None = None,
    progress: ProgressFn = no_progress,
) -> list[Path]:
    """Write the chosen pose videos in step, frame by frame; returns their paths."""
    source, out = Path(source), Path(out) if out is not None else None
    options = options or RenderOptions()
    track: Track | None = None
    poses: list[dict[str, Any]] = []  # of a .pkl
    if source.is_file():
        poses = load_dwpose_pkl(source)
        height, width, source_fps = int(poses[0]["H"]), int(poses[0]["W"]), None
        available = ["dwpose"]
    else:
        track = Track.open(source)
        height, width, source_fps = track.source.height, track.source.width, track.source.fps
        available = [c.name for c in CONDITIONS if track.has(c.stream)]
    videos = list(options.videos) if options.videos is not None else available
    if track is not None and options.videos is None:
        for condition in CONDITIONS:
            state = track.state(condition.stream)
            if condition.stream in track.streams and not state.complete:
                warnings.warn(
                    f"{condition.video} is not written: the {condition.stream} stream is unfinished "
                    f"({state.frames_done} of {track.source.frame_count} frames); run `rdance extract` "
                    "again to finish it",
                    stacklevel=2,
                )
    missing = [name for name in videos if name not in available]
    if missing or not videos:
        refusal = _nothing_to_render(source, track, missing)
        raise refusal if track is None else while_written(track.path, refusal)
    if track is not None:
        _warn_black(track, videos)
    fps = options.fps or source_fps
    if fps is None:
        raise UserError(f"{source} does not record its frame rate; pass --fps (for example --fps 30).")
    out_height, out_width = options.size or _default_size(height, width, options.lossless)
    check_h264_size(out_height, out_width, lossless=options.lossless)
    check_crf(options.crf)
    audio = audio_source(options.audio, lambda: _source_sound(track, as_fraction(fps)))
    # Smoothing follows the source's timing; --fps only changes the playback rate.
    canvas = _Canvas(out_height, out_width, out_width / width, out_height / height, float(source_fps or fps))
    frames = track.source.frame_count if track is not None else len(poses)

    folder = out or default_out(source)
    made = not folder.exists()
    with folder_lock(folder, "the output folder"):  # before the models load
        try:
            with ExitStack() as stack:
                earlier = [BY_NAME[name].video for name in videos if (folder / BY_NAME[name].video).exists()]
                if earlier:  # pose videos are made again from the track at will: replaced, but said
                    warnings.warn(f"replacing the earlier {', '.join(earlier)} in {folder}", stacklevel=2)
                _check_neighbours(folder, videos, (out_height, out_width))
                painters = _painters(videos, track, poses, (height, width), canvas, options, stack, progress)
                writers = {
                    name: VideoWriter(
                        folder / BY_NAME[name].video,
                        as_fraction(fps),
                        crf=options.crf,
                        lossless=options.lossless,
                        audio_from=audio,
                        audio_start=_start_time(track),
                    )
                    for name in videos
                }
                for writer in writers.values():  # what a failure leaves: no temporary
                    stack.callback(writer.abort)
                for index in range(frames):
                    for name, paint in painters.items():
                        writers[name].write(paint(index))
                    progress("render", index + 1, frames)
                return publish_together(list(writers.values()))
        except BaseException:
            if made:  # the folder this call made holds nothing finished: no empty folder is left
                shutil.rmtree(folder, ignore_errors=True)
            raise
