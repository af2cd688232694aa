"""`rdance`: the command line. One thin function per command: parse, call the library, show.

Heavy libraries (torch, onnxruntime, pyrender, PyAV) are imported inside the commands, so
`rdance --help` stays instant.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from realisdance_cli.errors import UserError
from realisdance_cli.progress import ProgressFn

app = typer.Typer(
    name="rdance",
    help="RealisDance: animate a character picture with the poses of a dance video, with realistic hands.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
weights_app = typer.Typer(help="List, check and download the model weights.", no_args_is_help=True)
track_app = typer.Typer(
    help="Inspect pose tracks; convert to and from the original .pkl format.", no_args_is_help=True
)
dataset_app = typer.Typer(help="Build training sets from folders of dance videos.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")
app.add_typer(dataset_app, name="dataset")
app.add_typer(track_app, name="track")

console = Console()
errors = Console(stderr=True)

WeightsOption = Annotated[
    Path | None,
    typer.Option(
        "--weights",
        help="Weights folder (default: $RDANCE_HOME, else ~/.cache/realisdance).",
        show_default=False,
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", "-f", help="Replace the output if it exists.")]


RESUMES = "finished parts are kept; run the same command again to resume."
RESTARTS = "no output was left half-written."


@contextmanager
def progress_bars(on_interrupt: str = RESTARTS) -> Iterator[ProgressFn]:
    """A `ProgressFn` that draws one rich bar per task (frames/s and time left); Ctrl-C ends the
    job with exit code 130 and `on_interrupt` (whether the job resumes)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:6.1f}/s" if task.speed else "", style="cyan")

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=False,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def report(task: str, completed: int, total: int | None) -> None:
            if task not in tasks:
                tasks[task] = bars.add_task(task, total=total)
            bars.update(tasks[task], completed=completed, total=total)

        try:
            yield report
        except KeyboardInterrupt:
            bars.stop()
            errors.print(f"[yellow]interrupted[/]; {on_interrupt}")
            raise typer.Exit(130) from None


# --------------------------------------------------------------------------------------- doctor


_LEVEL_STYLE = {
    "ok": "[green]ok[/]",
    "info": "[dim]--[/]",
    "warn": "[bold yellow]WARN[/]",
    "fail": "[bold red]FAIL[/]",
}


@app.command()
def doctor(weights_dir: WeightsOption = None) -> None:
    """Check this machine: Python, torch/CUDA, ONNX Runtime, headless GL, video codecs, weights.

    [bold]Example[/]: rdance doctor --weights /data/rdance-weights
    """
    from rich.table import Table

    from realisdance_cli import doctor as checks
    from realisdance_cli.weights import weights_root

    results = checks.run_all(weights_root(weights_dir))
    table = Table(show_header=True, header_style="bold", expand=True)
    table.add_column("area", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in results:
        table.add_row(check.section, check.name, _LEVEL_STYLE[check.level], check.detail)
    console.print(table)
    failed = [c for c in results if c.level == "fail"]
    warned = [c for c in results if c.level == "warn"]
    for check in warned:
        errors.print(f"[bold yellow]warning:[/] {check.name}: {check.detail}")
    if failed:
        errors.print(f"[bold red]{len(failed)} check(s) failed[/]: " + ", ".join(c.name for c in failed))
        raise typer.Exit(1)


# ------------------------------------------------------------------------------ extract, render


@app.command()
def extract(
    source: Annotated[Path, typer.Argument(help="A video, a folder of frames, or one image.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Track folder (default: <name>.rdance).")
    ] = None,
    only: Annotated[str | None, typer.Option(help="Stages to run, comma-separated (default: all).")] = None,
    start: Annotated[int, typer.Option(help="First frame to use.")] = 0,
    stride: Annotated[int, typer.Option(help="Use every N-th frame.")] = 1,
    max_frames: Annotated[int | None, typer.Option(help="Use at most this many frames.")] = None,
    fps: Annotated[float, typer.Option(help="Frame rate of an image folder.")] = 30.0,
    max_people: Annotated[int, typer.Option(help="People kept per frame, largest first.")] = 1,
    rgb: Annotated[
        bool,
        typer.Option(
            "--rgb", help="Feed DWPose RGB (its training colour order) instead of the original's BGR."
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    dtype: Annotated[
        str | None, typer.Option(help="HaMeR's number format: fp16, bf16 or fp32 (default: fp16 on a GPU).")
    ] = None,
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
    like the original), then hamer (MANO hands from the DWPose hand boxes, no second DWPose pass).
    Frames without a person or a hand stay empty.

    [bold]Examples[/]:
      rdance extract dance.mp4
      rdance extract dance.mp4 --stride 4 --max-frames 80 --out dance.rdance
      rdance extract dance.mp4 --only hamer --device cuda --dtype bf16
      rdance extract frames/ --fps 25 --only dwpose --dwpose-det det.onnx --dwpose-pose pose.onnx
    """
    from realisdance_cli import extraction
    from realisdance_cli.video import Selection, as_fraction

    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, got {device!r}.")
    for name, value in (("--max-people", max_people), ("--chunk", chunk), ("--batch", batch)):
        if value < 1:
            raise UserError(f"{name} must be 1 or more, got {value}.")
    options = extraction.ExtractOptions(
        selection=Selection(start=start, stride=stride, max_frames=max_frames),
        stages=extraction.parse_stages(only),
        device=device,
        dtype=dtype,
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
            source, out, options, force=force, image_fps=as_fraction(fps), progress=progress
        )
    for summary in summaries:
        found = summary.frames - len(summary.empty_frames)
        state = "already done" if summary.skipped else "done"
        what, nothing = ("hands", "no hand") if summary.stage == "hamer" else ("a person", "nobody")
        line = f"{summary.stage}: {state}, {summary.frames} frames, {found} with {what}"
        if summary.stage == "hamer":
            line += f" ({summary.items} hands, {summary.items / max(summary.frames, 1):.1f} per frame)"
        if summary.empty_frames:
            shown = ", ".join(map(str, summary.empty_frames[:20]))
            more = ", ..." if len(summary.empty_frames) > 20 else ""
            line += f"; [yellow]{len(summary.empty_frames)} with {nothing}[/]: {shown}{more}"
        console.print(line)
    console.print(f"pose track: {track.path}")


@app.command("render-poses")
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
    weights_dir: WeightsOption = None,
) -> None:
    """Render the pose videos the animator reads: dwpose.mp4 (skeleton), smpl.mp4 (SMPL-X colourful
    surface) and hamer.mp4 (hands), for every stream the track has.

    One video frame per track frame (black where nothing was found), all at the track's size and
    frame rate unless --size/--fps say otherwise, so the three stay aligned.

    [bold]Examples[/]:
      rdance render-poses dance.rdance
      rdance render-poses dance.rdance --size 768x576 --only smpl,hamer --out poses/
      rdance render-poses dwpose_video.pkl --fps 30
    """
    from realisdance_cli import rendering
    from realisdance_cli.video import as_fraction

    options = rendering.RenderOptions(
        videos=rendering.parse_videos(only),
        size=rendering.parse_size(size),
        fps=None if fps is None else as_fraction(fps),
        face=face,
        crf=crf,
        lossless=lossless,
        weights_root=weights_dir,
        smplx_model=smplx_model,
        mano_model=mano_model,
        smplx_colours=smplx_colors,
        smooth=smooth,
    )
    with progress_bars() as progress:
        written = rendering.render_poses(source, out, options, progress)
    for path in written:
        console.print(f"wrote {path}")


@app.command()
def animate(
    reference: Annotated[Path, typer.Argument(help="The character picture (PNG/JPEG, any size).")],
    poses: Annotated[
        Path | None,
        typer.Argument(help="Folder with dwpose.mp4, hamer.mp4 and smpl.mp4 (from render-poses)."),
    ] = None,
    dwpose: Annotated[Path | None, typer.Option(help="Skeleton video, or an original DWPose .pkl.")] = None,
    hamer: Annotated[Path | None, typer.Option(help="Hands video.")] = None,
    smpl: Annotated[Path | None, typer.Option(help="SMPL-X colourful-surface video.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output mp4 (default: <reference>_<poses>.mp4).")
    ] = None,
    size: Annotated[str, typer.Option(help="HEIGHTxWIDTH of the result, multiples of 8.")] = "768x576",
    stride: Annotated[int, typer.Option(help="Use every n-th pose frame (the original: 4).")] = 4,
    max_frames: Annotated[int, typer.Option(help="At most this many frames; 0 for all.")] = 80,
    steps: Annotated[int, typer.Option(help="DDIM denoising steps.")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale (1 turns it off).")] = 2.0,
    seed: Annotated[int, typer.Option(help="Noise seed: the same seed gives the same video.")] = 42,
    context: Annotated[int, typer.Option(help="Frames the network sees together (at most 32).")] = 16,
    overlap: Annotated[int, typer.Option(help="Frames shared by neighbouring windows.")] = 4,
    schedule: Annotated[
        str, typer.Option(help="Windows: sliding (no wrap-around) or uniform (the original's closed loop).")
    ] = "sliding",
    uncond: Annotated[
        str, typer.Option(help="Unconditional branch: fake (zeroed tokens, the original's) or real.")
    ] = "fake",
    context_batch: Annotated[
        int, typer.Option(help="Windows per network call (more is faster, needs memory).")
    ] = 1,
    dtype: Annotated[
        str | None, typer.Option(help="fp16, bf16 or fp32 (default: fp16 on a GPU, fp32 on the CPU).")
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="cuda, cuda:1, cpu ... (default: cuda if present).")
    ] = None,
    grid: Annotated[
        bool, typer.Option("--grid", help="Also write <out>_grid.mp4: reference, the poses and the result.")
    ] = False,
    faithful: Annotated[
        bool, typer.Option("--faithful", help="The original's compute pattern (slower; for checking).")
    ] = False,
    channels_last: Annotated[
        bool, typer.Option("--channels-last/--no-channels-last", help="NHWC convolutions (faster).")
    ] = True,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="RealisDance .ckpt or converted .safetensors (default: from --weights)."),
    ] = None,
    crf: Annotated[int, typer.Option(help="H.264 quality, 0 (best) to 51.")] = 18,
    force: ForceOption = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Animate the character in REFERENCE with the pose videos of a dance (GPU recommended).

    The reference is scaled and centre-cropped to --size; so are the pose videos. The result has
    source fps / --stride frames per second.

    [bold]Examples[/]:
      rdance animate me.png dance.rdance
      rdance animate me.png dance.rdance --stride 2 --max-frames 0 --grid
      rdance animate me.png --dwpose clip.pkl --hamer clip_hamer.mp4 --smpl clip_smpl.mp4
    """
    from realisdance_cli import animation
    from realisdance_cli.animator.pipeline import SamplingOptions
    from realisdance_cli.rendering import parse_size

    if schedule not in ("sliding", "uniform") or uncond not in ("fake", "real"):
        raise UserError("--schedule must be sliding or uniform, and --uncond fake or real.")
    if not 1 <= context <= 32 or not 0 <= overlap < context:
        raise UserError(
            f"--context must be 1 to 32 and --overlap 0 to context-1, got {context} and {overlap}."
        )
    if steps < 1 or context_batch < 1:
        raise UserError("--steps and --context-batch must be 1 or more.")
    inputs = animation.PoseInputs(
        poses, {k: v for k, v in (("dwpose", dwpose), ("hamer", hamer), ("smpl", smpl)) if v}
    )
    target = out or animation.default_out(reference, inputs)
    if target.exists() and not force:
        raise UserError(f"{target} exists; use --force to replace it.")
    options = animation.AnimateOptions(
        size=parse_size(size) or (768, 576),
        stride=stride,
        max_frames=max_frames or None,
        seed=seed,
        dtype=dtype,
        device=device,
        grid=grid,
        crf=crf,
        weights_root=weights_dir,
        checkpoint=checkpoint,
        channels_last=channels_last,
        sampling=SamplingOptions(
            steps=steps,
            guidance=guidance,
            uncond=uncond,  # type: ignore[arg-type]
            context=context,
            overlap=overlap,
            schedule=schedule,  # type: ignore[arg-type]
            context_batch=context_batch,
            faithful=faithful,
        ),
    )
    with progress_bars() as progress:
        written = animation.animate(reference, inputs, target, options, progress)
    for path in written:
        console.print(f"wrote {path}")


# -------------------------------------------------------------------------------------- weights


@weights_app.command("list")
def weights_list(weights_dir: WeightsOption = None) -> None:
    """List every weight file: what it is for, where it goes, where it comes from, its licence.

    [bold]Example[/]: rdance weights list
    """
    from rich.table import Table

    from realisdance_cli import weights

    root = weights.weights_root(weights_dir)
    table = Table(title=f"weights in {root}", expand=True)
    for column in ("name", "group", "here", "purpose", "path", "source", "licence"):
        table.add_column(column, overflow="fold")
    for entry in weights.REGISTRY:
        found = weights.status(entry, root, structure="none").found
        table.add_row(
            entry.name,
            entry.group,
            "[green]yes[/]" if found else "[red]no[/]",
            entry.purpose,
            entry.path,
            entry.where(),
            entry.licence,
        )
    console.print(table)


@weights_app.command("check")
def weights_check(
    names: Annotated[list[str] | None, typer.Argument(help="Names or groups (default: all).")] = None,
    hash_: Annotated[bool, typer.Option("--hash", help="Also verify sha256 checksums (slow).")] = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Check that weight files are present and whole: every file's structure is read (zip CRCs of
    checkpoints, safetensors and ONNX sizes, configs parse), so a truncated or damaged download is
    caught without checksums; exit code 1 if any is missing or wrong.

    [bold]Examples[/]: rdance weights check dwpose · rdance weights check --hash
    """
    from rich.markup import escape

    from realisdance_cli import weights

    root = weights.weights_root(weights_dir)
    bad = 0
    for entry in weights.select(names or []):
        found = weights.status(entry, root, verify_hash=hash_, structure="full")
        where = escape(str(found.path))
        if found.ok:
            note = f" ({escape(found.note)})" if found.note else ""
            console.print(f"[green]ok[/]      {entry.name:14} {where}{note}")
        elif found.found:
            bad += 1
            console.print(
                f"[red]wrong[/]   {entry.name:14} {where}: {escape(found.problem or '')}; "
                f"to fetch it again: {escape(weights.refetch(found, root))}"
            )
        else:
            bad += 1
            console.print(
                f"[red]missing[/] {entry.name:14} {where}: {escape(weights.instructions(entry, root))}"
            )
    if bad:
        raise typer.Exit(1)


@weights_app.command("download")
def weights_download(
    names: Annotated[list[str] | None, typer.Argument(help="Names or groups (default: all).")] = None,
    weights_dir: WeightsOption = None,
) -> None:
    """Download weight files from the Hugging Face hub (resumable; HF_ENDPOINT and HF_HUB_OFFLINE
    are honoured); print exact instructions for licence-gated ones (SMPL-X, MANO).

    Exit code 1 if something requested is still missing afterwards.

    [bold]Examples[/]: rdance weights download dwpose · rdance weights download realisdance
    """
    from realisdance_cli import weights

    root = weights.weights_root(weights_dir)
    missing = []
    with progress_bars(RESUMES) as progress:
        for entry in weights.select(names or []):
            if weights.status(entry, root).ok:
                console.print(f"[green]present[/] {entry.name}: {root / entry.path}")
                continue
            if isinstance(entry.source, weights.Manual):
                missing.append(entry)
                continue
            path = weights.download(entry, root, progress)
            console.print(f"[green]downloaded[/] {entry.name}: {path}")
    for entry in missing:
        errors.print(
            f"[bold yellow]by hand[/] {entry.name} ({entry.licence}): {weights.instructions(entry, root)}"
        )
    if missing:
        raise typer.Exit(1)


@weights_app.command("convert")
def weights_convert(
    checkpoint: Annotated[
        Path | None, typer.Argument(help="Original RealisDance .ckpt (default: the one under --weights).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output .safetensors.")] = None,
    force: ForceOption = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Convert the RealisDance checkpoint to our safetensors form: no pickle, faster to load.

    `rdance animate` uses the converted file when it sits at the default place.

    [bold]Example[/]: rdance weights convert
    """
    import json

    from realisdance_cli import animation, weights
    from realisdance_cli.animator.checkpoint import convert
    from realisdance_cli.files import existing_file

    root = weights.weights_root(weights_dir)
    needed = ["base-model", "dinov2"] + ([] if checkpoint else ["realisdance"])
    paths = weights.require_all(needed, root)
    source = existing_file(checkpoint or paths["realisdance"], "the RealisDance checkpoint")
    target = out or root / animation.CONVERTED
    if target.suffix != ".safetensors":
        raise UserError(f"the output must end in .safetensors, got {target}.")
    if target.exists() and not force:
        raise UserError(f"{target} exists; use --force to replace it.")
    unet_config = json.loads((paths["base-model"] / "unet" / "config.json").read_text())
    token_width = json.loads((paths["dinov2"] / "config.json").read_text())["hidden_size"]
    with console.status(f"converting {source}"):
        count = convert(source, target, unet_config, token_width)
    console.print(f"wrote {target} ({count} tensors)")


# ---------------------------------------------------------------------------------------- track


@track_app.command("import")
def track_import(
    pkl: Annotated[
        Path,
        typer.Argument(
            help="An original DWPose .pkl: a list of per-frame pose dicts, or one picture's pose dict."
        ),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Track folder (default: <name>.rdance).")
    ] = None,
    fps: Annotated[
        float | None, typer.Option(help="Frame rate of the poses (the .pkl does not store it).")
    ] = None,
    force: ForceOption = False,
) -> None:
    """Make a pose track from an original release's DWPose .pkl (loaded safely: arrays only).

    A video's file (a list of frames) gives one frame per pose dict; a picture's file (one pose
    dict, the original's stage-1 image data) gives a one-frame track that exports as a single dict
    again. Files with NaN, infinite or out-of-range values are refused.

    [bold]Example[/]: rdance track import dwpose_video.pkl --fps 30 --out dance.rdance
    """
    from realisdance_cli.original import import_dwpose_pkl, imported_single
    from realisdance_cli.track import Track

    track = import_dwpose_pkl(pkl, out or Track.default_path(pkl), fps=fps, overwrite=force)
    if imported_single(track):
        console.print(f"imported one picture's poses (a single pose dict) into {track.path}")
    else:
        frames = track.source.frame_count
        console.print(f"imported {frames} frame{'s' if frames != 1 else ''} into {track.path}")


@track_app.command("export")
def track_export(
    track_dir: Annotated[Path, typer.Argument(help="A pose track folder (<name>.rdance).")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The .pkl to write (default: <name>.pkl).")
    ] = None,
    single: Annotated[
        bool | None,
        typer.Option(
            "--single/--list",
            help="--single: one picture's pose dict, as the original's stage-1 image data (the track "
            "must have one frame); --list: a list of per-frame dicts, as its video data. Default: "
            "the layout the track was imported from, a list for tracks made by `rdance extract`.",
            show_default=False,
        ),
    ] = None,
    force: ForceOption = False,
) -> None:
    """Write a track's DWPose poses as the original release's .pkl, readable by the authors' code.

    [bold]Examples[/]:
      rdance track export dance.rdance --out dwpose_video.pkl
      rdance track export photo.rdance --single --out photo.pkl
    """
    from realisdance_cli.original import export_dwpose_pkl, export_single
    from realisdance_cli.track import Track

    track = Track.open(track_dir)
    target = out or track_dir.with_suffix(".pkl")
    single = export_single(track, single)
    if target.exists() and not force:
        raise UserError(f"{target} already exists; pass --force to replace it.")
    export_dwpose_pkl(track, target, single=single)
    if single:
        console.print(f"wrote one picture's pose dict to {target}")
    else:
        frames = track.source.frame_count
        console.print(f"wrote {frames} frame{'s' if frames != 1 else ''} to {target}")


@track_app.command("info")
def track_info(
    track_dir: Annotated[Path, typer.Argument(help="A pose track folder (<name>.rdance).")],
) -> None:
    """Show a track's source, its streams, and how many people and hands each frame has.

    [bold]Example[/]: rdance track info dance.rdance
    """
    from realisdance_cli.track import Track
    from realisdance_cli.track_summary import summarise

    console.print(summarise(Track.open(track_dir)))


# -------------------------------------------------------------------------------------- dataset


@dataset_app.command("build")
def dataset_build(
    videos: Annotated[Path, typer.Argument(help="A folder of dance videos.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Data folder: tracks, pose videos, manifest.")],
    shard: Annotated[
        str | None, typer.Option(help="i/n: this machine's share (every n-th video from the i-th).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    weights_dir: WeightsOption = None,
) -> None:
    """Extract and render the pose videos of every video, and write the training manifest.

    Resumable: finished videos are skipped on a re-run; a video that fails is reported and left
    out. With --shard i/n each machine writes manifest-i-of-n.jsonl; concatenate the shards.

    [bold]Examples[/]:
      rdance dataset build dances/ --out data/
      rdance dataset build dances/ --out data/ --shard 3/8 --device cuda
    """
    from realisdance_cli.extraction import ExtractOptions
    from realisdance_cli.rendering import RenderOptions
    from realisdance_cli.training.dataset_build import Shard, build

    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, got {device!r}.")
    with progress_bars(RESUMES) as progress:
        report = build(
            videos,
            out,
            ExtractOptions(device=device, weights_root=weights_dir),
            RenderOptions(weights_root=weights_dir),
            Shard.parse(shard),
            progress,
            warn=lambda message: errors.print(f"[yellow]{message}[/]", highlight=False),
        )
    console.print(f"{len(report.built)} videos in {report.manifest}; {len(report.failed)} left out")


# ---------------------------------------------------------------------------------------- train


@app.command()
def train(
    ctx: typer.Context,
    manifest: Annotated[
        Path | None,
        typer.Argument(help="Training set: a manifest (JSON lines) of videos or pictures and their poses."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML settings: these option names, or an original stage1/2_hamer.yaml."),
    ] = None,
    stage: Annotated[int, typer.Option(help="1: image finetuning; 2: motion learning.")] = 2,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: checkpoints and state.")] = Path(
        "run"
    ),
    stage1: Annotated[
        Path | None, typer.Option(help="Stage 2: the stage-1 weights (.safetensors or .ckpt).")
    ] = None,
    motion: Annotated[
        Path | None, typer.Option(help="Stage 2: AnimateDiff motion modules (default: from --weights).")
    ] = None,
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 10_000,
    lr: Annotated[
        float, typer.Option(help="AdamW learning rate (released configs 1e-5, paper 5e-5).")
    ] = 1e-5,
    warmup: Annotated[int, typer.Option(help="Warm-up steps of the constant schedule.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Clips per batch and process.")] = 1,
    accumulate: Annotated[int, typer.Option(help="Batches per optimiser step.")] = 1,
    frames: Annotated[
        int | None, typer.Option(help="Frames per clip (default: 1 in stage 1, 16 in 2).")
    ] = None,
    frame_stride: Annotated[int, typer.Option(help="Source frames between clip frames.")] = 4,
    size: Annotated[str, typer.Option(help="HEIGHTxWIDTH of the training pictures.")] = "768x576",
    ref_mode: Annotated[
        str, typer.Option(help="Reference: a random frame of the video, or the first.")
    ] = "random",
    cfg_uncond: Annotated[
        float, typer.Option(help="Share of batches without conditions (paper 0.01; released configs 0).")
    ] = 0.01,
    pose_shuffle: Annotated[
        float, typer.Option(help="Stage 2: chance per condition that one pose frame is overwritten.")
    ] = 0.05,
    adam_beta1: Annotated[float, typer.Option(hidden=True)] = 0.9,
    adam_beta2: Annotated[float, typer.Option(hidden=True)] = 0.999,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 1e-2,
    adam_epsilon: Annotated[float, typer.Option(hidden=True)] = 1e-8,
    max_grad_norm: Annotated[float, typer.Option(help="Gradient clipping norm.")] = 1.0,
    mixed_precision: Annotated[str, typer.Option(help="no, fp16 or bf16.")] = "no",
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing")] = False,
    ema_decay: Annotated[
        float, typer.Option(help="Keep a moving average of the weights with this decay (0: off).")
    ] = 0.0,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 1000,
    validate_every: Annotated[
        int, typer.Option(help="Steps between validation videos in OUT/validation (0: never).")
    ] = 1000,
    validation_manifest: Annotated[
        Path | None, typer.Option(help="Clips to validate on (default: the training set's first).")
    ] = None,
    validation_ddim_steps: Annotated[int, typer.Option(help="Denoising steps of validation.")] = 25,
    log_with: Annotated[str, typer.Option(help="tensorboard (OUT/logs) or none.")] = "tensorboard",
    seed: Annotated[int, typer.Option(help="Seed of clips, noise and timesteps.")] = 42,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Continue the run saved in OUT, even with other settings (a new --steps)."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Start over: remove the state and checkpoints in OUT.")
    ] = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Train RealisDance (stage 1 or 2) on one process, or many under `accelerate launch`/`torchrun`.

    Checkpoints go to OUT/stageN.safetensors (ours) and OUT/stageN.ckpt (the original format),
    with --ema-decay also OUT/stageN_ema.*; OUT/state holds what a stopped run needs to continue
    exactly where it was: the same command resumes it, --resume continues it with other settings,
    --force starts over. Options given here override --config.

    [bold]Examples[/]:
      rdance train data/manifest.jsonl --stage 1 --out runs/s1 --steps 30000
      rdance train data/manifest.jsonl --stage 2 --stage1 runs/s1/stage1.safetensors --out runs/s2
      rdance train --config configs/stage2_hamer.yaml data/manifest.jsonl --steps 500
      accelerate launch --multi_gpu -m realisdance_cli train data/manifest.jsonl --stage 2 --stage1 s1.ckpt
    """
    from realisdance_cli.training.config import read_config
    from realisdance_cli.training.job import job_from_settings, run

    settings = dict(ctx.params)
    if config is not None:
        from_file = read_config(config)
        # (by name: typer vendors its own click)
        given = {k for k in settings if getattr(ctx.get_parameter_source(k), "name", "") != "DEFAULT"}
        settings |= {k: v for k, v in from_file.items() if k not in given}
    job = job_from_settings(settings)
    with progress_bars(RESUMES) as progress:
        losses, digest = run(job, lambda step, loss: progress("training", step, job.options.steps))
    rank = os.environ.get("RANK", "0")
    if not losses:
        console.print(f"rank {rank}: {job.out} already holds all {job.options.steps} steps; weights {digest}")
        return
    summary = f"{len(losses)} steps, last loss {losses[-1]:.4f}; weights {digest}"
    console.print(f"rank {rank}: {summary}; checkpoints in {job.out}")


# ----------------------------------------------------------------------------------------- main


def _show_warning(message: Warning | str, *_: object, **__: object) -> None:
    errors.print(f"[yellow]warning:[/] {message}", highlight=False)


def _fail(err: UserError) -> NoReturn:
    errors.print(f"[bold red]error:[/] {err}", highlight=False)
    sys.exit(err.exit_code)


def main() -> None:
    """Entry point: user mistakes (and a full disk or a read-only folder) become one red sentence
    and exit code 2, never a traceback; warnings one yellow line."""
    from realisdance_cli.files import write_failure

    warnings.showwarning = _show_warning
    try:
        app()
    except UserError as err:
        _fail(err)
    except OSError as err:
        problem = write_failure(err)
        if problem is None:
            raise
        _fail(problem)
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]; no output was left half-written.")
        sys.exit(130)
