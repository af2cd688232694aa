"""`rdance track import|export|info`: pose tracks and the original release's .pkl."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from realisdance_cli.cli.shared import ForceOption, command, console, interruptible
from realisdance_cli.errors import counted
from realisdance_cli.files import claimed_output

app = typer.Typer(
    help="Inspect pose tracks; convert to and from the original .pkl format.", no_args_is_help=True
)

TrackArgument = Annotated[Path, typer.Argument(help="A pose track folder (<name>.rdance).")]


@command(
    app,
    "track import",
    "rdance track import dwpose_video.pkl --fps 30 --out dance.rdance",
    "rdance track import photo.pkl",
)
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
    again. Files with NaN, infinite or out-of-range values are refused. A stopped import is done
    again by the same command.
    """
    from realisdance_cli.original import import_dwpose_pkl, imported_single
    from realisdance_cli.track import Track
    from realisdance_cli.video import as_fraction

    rate = None if fps is None else as_fraction(fps, "--fps")
    with interruptible("run the same command again to import the file."):
        track = import_dwpose_pkl(pkl, out or Track.default_path(pkl), fps=rate, overwrite=force)
    if imported_single(track):
        console.print(f"imported one picture's poses (a single pose dict) into {escape(str(track.path))}")
    else:
        console.print(f"imported {counted(track.source.frame_count, 'frame')} into {escape(str(track.path))}")


@command(
    app,
    "track export",
    "rdance track export dance.rdance --out dwpose_video.pkl",
    "rdance track export photo.rdance --single --out photo.pkl",
)
def track_export(
    track_dir: TrackArgument,
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
    """Write a track's DWPose poses as the original release's .pkl, readable by the authors' code."""
    from realisdance_cli.original import export_dwpose_pkl, export_single
    from realisdance_cli.track import Track, named

    track = Track.open(track_dir)
    target = out or named(track_dir).with_suffix(".pkl")
    single = export_single(track, single)
    with claimed_output(target, force=force):
        export_dwpose_pkl(track, target, single=single)
    if single:
        console.print(f"wrote one picture's pose dict to {escape(str(target))}")
    else:
        console.print(f"wrote {counted(track.source.frame_count, 'frame')} to {escape(str(target))}")


@command(app, "track info", "rdance track info dance.rdance")
def track_info(track_dir: TrackArgument) -> None:
    """Show a track's source, its streams, and how many people and hands each frame has."""
    from realisdance_cli.track import Track
    from realisdance_cli.track_summary import summarise

    console.print(summarise(Track.open(track_dir)))
