"""`rdance extract` and `rdance render-poses`: from a video to a pose track to pose videos."""

from __future__ import annotations

import shlex
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from realisdance_cli.cli.shared import (
    RESUMES,
    AudioOption,
    DeviceOption,
    DtypeOption,
    NoAudioOption,
    WeightsOption,
    audio_choice,
    command,
    console,
    plain,
    progress_bars,
)
from realisdance_cli.conditions import BY_STAGE, CONDITIONS, SET_ASIDE
from realisdance_cli.errors import UserError, counted

if TYPE_CHECKING:
    from realisdance_cli.extraction import StageSummary

app = typer.Typer()


def _frames(label: str, frames: list[int]) -> str:
    """The frames a stage found `label` in ("; 3 with nobody: 0, 4, 7"), at most 20 named."""
    shown = ", ".join(map(str, frames[:20])) + (", ..." if len(frames) > 20 else "")
    return f"; [yellow]{len(frames)} with {label}[/]: {shown}" if frames else ""


def stage_line(summary: StageSummary) -> str:
    """One stage's line of `rdance extract`: what it found, and the frames where it found nothing,
    apart from those where it set aside what DWPose found (a person too small for SMPL-X), so that
    an empty SMPL-X stream is not read as nobody in the video."""
    found = summary.frames - len(summary.empty_frames)
    state = "already done" if summary.skipped else "done"
    condition = BY_STAGE[summary.stage]
    what = "hands" if summary.stage == "hamer" else "a person"
    line = f"{summary.stage}: {state}, {counted(summary.frames, 'frame')}, {found} with {what}"
    if summary.stage == "hamer":
        per_frame = summary.items / max(summary.frames, 1)
        line += f" ({counted(summary.items, 'hand')}, {per_frame:.1f} per frame)"
    set_aside = set(summary.set_aside_frames)
    line += _frames(condition.nothing, [frame for frame in summary.empty_frames if frame not in set_aside])
    if set_aside:
        line += _frames(SET_ASIDE[condition.stream], summary.set_aside_frames)
    return line


@command(
    app,
    "extract",
    "rdance extract dance.mp4",
    "rdance extract dance.mp4 --stride 4 --max-frames 80 --out dance.rdance",
    "rdance extract dance.mp4 --only hamer --device cuda --dtype bf16",
    "rdance extract frames/ --fps 25 --only dwpose --dwpose-det det.onnx --dwpose-pose pose.onnx",
)
def extract(
    source: Annotated[Path, typer.Argument(help="A video, a folder of frames, or one image.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Track folder (default: <name>.rdance).")
    ] = None,
    only: Annotated[str | None, typer.Option(help="Stages to run, comma-separated (default: all).")] = None,
    start: Annotated[int, typer.Option(help="First frame to use.")] = 0,
    stride: Annotated[int, typer.Option(help="Use every N-th frame.")] = 1,
    max_frames: Annotated[int | None, typer.Option(help="Use at most this many frames (0: all).")] = None,
    fps: Annotated[float | None, typer.Option(help="Frame rate of an image folder (30).")] = None,
    max_people: Annotated[int, typer.Option(help="People kept per frame, largest first.")] = 1,
    rgb: Annotated[
        bool,
        typer.Option(
            "--rgb", help="Feed DWPose RGB (its training colour order) instead of the original's BGR."
        ),
    ] = False,
    device: DeviceOption = "auto",
    dtype: DtypeOption = None,
    chunk: Annotated[int, typer.Option(help="Frames per saved chunk (the unit of resuming).")] = 32,
    batch: Annotated[int, typer.Option(help="Pose-model and hand crops per call.")] = 16,
    dwpose_det: Annotated[
        Path | None, typer.Option(help="YOLOX detector .onnx (default: from --weights).")
    ] = None,
    dwpose_pose: Annotated[
        Path | None, typer.Option(help="DWPose pose .onnx (default: from --weights).")
    ] = None,
    weights_dir: WeightsOption = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Start over instead of resuming.")] = False,
) -> None:
    """Extract poses from a video into a pose track (resumable: run it again after a stop).

    Stages: dwpose (whole-body keypoints; by default BGR frames and the largest person, exactly
    like the original), then smplerx (the SMPL-X body from the DWPose person boxes) and hamer
    (MANO hands from the DWPose hand boxes), with no second DWPose pass. Frames without a person
    or a hand stay empty.
    """
    from realisdance_cli import extraction
    from realisdance_cli.video import DEFAULT_IMAGE_FPS, IMAGE_SUFFIXES, Selection, as_fraction, image_files

    for name, value in (("--max-people", max_people), ("--chunk", chunk), ("--batch", batch)):
        if value < 1:
            raise UserError(f"{name} must be 1 or more, got {value}.")
    stages = extraction.parse_stages(only)
    if dtype is not None and not set(stages) & set(extraction.NETWORK_STAGES):
        ignored = f"--dtype is for the PyTorch stages (hamer, smplerx); --only {only} runs none"
        warnings.warn(ignored, stacklevel=2)
    image_fps = DEFAULT_IMAGE_FPS if fps is None else as_fraction(fps, "--fps")
    if fps is not None and source.is_file() and source.suffix.lower() not in IMAGE_SUFFIXES:
        warnings.warn("--fps is for image folders; a video keeps its own frame rate", stacklevel=2)
    if fps is None and source.is_dir() and len(image_files(source)) > 1:  # one picture has no timing
        warnings.warn(
            f"{source} is a folder of images, which records no frame rate: taken as {DEFAULT_IMAGE_FPS} "
            "fps (--fps sets its own)",
            stacklevel=2,
        )
    options = extraction.ExtractOptions(
        selection=Selection(
            start=start, stride=stride, max_frames=max_frames or None
        ),  # 0: all, as elsewhere
        stages=stages,
        device=device,
        dtype=plain(dtype),
        max_people=max_people,
        rgb=rgb,
        chunk=chunk,
        batch=batch,
        weights_root=weights_dir,
        dwpose_det=dwpose_det,
        dwpose_pose=dwpose_pose,
    )
    with progress_bars(RESUMES) as progress:
        track, summaries = extraction.extract(
            source,
            out,
            options,
            force=force,
            image_fps=image_fps,
            progress=progress,
        )
    for summary in summaries:
        console.print(stage_line(summary))
    console.print(f"pose track: {escape(str(track.path))}")
    console.print(f"next: {escape(shlex.join(['rdance', 'render-poses', str(track.path)]))}")


@command(
    app,
    "render-poses",
    "rdance render-poses dance.rdance",
    "rdance render-poses dance.rdance --size 768x576 --only smpl,hamer --out poses/",
    "rdance render-poses dwpose_video.pkl --fps 30",
    "rdance render-poses dance.rdance --no-audio",
)
def render_poses(
    source: Annotated[Path, typer.Argument(help="A pose track folder, or an original DWPose .pkl.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder (default: the track, or <name>_poses/).")
    ] = None,
    only: Annotated[str | None, typer.Option(help="Videos to write, comma-separated (default: all).")] = None,
    size: Annotated[str | None, typer.Option(help="HxW of the videos (default: the source size).")] = None,
    fps: Annotated[float | None, typer.Option(help="Frame rate (default: the track's).")] = None,
    face: Annotated[bool, typer.Option("--face", help="Draw the face landmarks too.")] = False,
    crf: Annotated[int, typer.Option(help="H.264 quality, 0 (best) to 51.")] = 18,
    lossless: Annotated[
        bool, typer.Option("--lossless", help="Keep the pictures exactly (bigger files).")
    ] = False,
    smplx_model: Annotated[
        Path | None, typer.Option(help="SMPLX_NEUTRAL.npz (default: from --weights).")
    ] = None,
    mano_model: Annotated[Path | None, typer.Option(help="MANO_RIGHT.pkl (default: from --weights).")] = None,
    smplx_colors: Annotated[
        Path | None,
        typer.Option(help="The authors' smplx_color.pt (default: from --weights, else a jet gradient)."),
    ] = None,
    smooth: Annotated[
        bool,
        typer.Option(
            "--smooth", help="Steady shaky poses: a One-Euro filter on keypoints and body/hand parameters."
        ),
    ] = False,
    audio: AudioOption = None,
    no_audio: NoAudioOption = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Render the pose videos the animator reads: dwpose.mp4 (skeleton), smpl.mp4 (SMPL-X colourful
    surface) and hamer.mp4 (hands), for every stream the track has.

    One video frame per track frame (black where nothing was found), all at the track's size and
    frame rate unless --size/--fps say otherwise, so the three stay aligned; they carry the source
    video's sound (--audio FILE or --no-audio to change it).
    """
    from realisdance_cli import rendering
    from realisdance_cli.video import as_fraction

    options = rendering.RenderOptions(
        videos=rendering.parse_videos(only),
        size=rendering.parse_size(size),
        fps=None if fps is None else as_fraction(fps, "--fps"),
        face=face,
        crf=crf,
        lossless=lossless,
        weights_root=weights_dir,
        smplx_model=smplx_model,
        mano_model=mano_model,
        smplx_colours=smplx_colors,
        smooth=smooth,
        audio=audio_choice(audio, no_audio),
    )
    with progress_bars() as progress:
        written = rendering.render_poses(source, out, options, progress)
    for path in written:
        console.print(f"wrote {escape(str(path))}")
    folder = written[0].parent  # animate reads all three from it (a .pkl's skeleton alone is not enough)
    if all((folder / condition.video).is_file() for condition in CONDITIONS):
        console.print(f"next: {escape(shlex.join(['rdance', 'animate', 'PICTURE', str(folder)]))}")
