"""`rdance dataset build`: training sets from folders of dance videos."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from realisdance_cli.cli.shared import (
    RESUMES,
    DeviceOption,
    WeightsOption,
    command,
    console,
    errors,
    progress_bars,
)
from realisdance_cli.errors import counted

app = typer.Typer(help="Build training sets from folders of dance videos.", no_args_is_help=True)


@command(
    app,
    "dataset build",
    "rdance dataset build dances/ --out data/",
    "rdance dataset build dances/ --out data/ --shard 3/8 --device cuda",
)
def dataset_build(
    videos: Annotated[Path, typer.Argument(help="A folder of dance videos.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Data folder: tracks, pose videos, manifest.")],
    shard: Annotated[
        str | None, typer.Option(help="i/n: this machine's share (every n-th video from the i-th).")
    ] = None,
    device: DeviceOption = "auto",
    weights_dir: WeightsOption = None,
) -> None:
    """Extract and render the pose videos of every video, and write the training manifest.

    Resumable: finished videos are skipped on a re-run; a video that fails is reported and left
    out, and when every video is left out the exit code is 1. A video another process is building
    is not left out: the others are built, no manifest is written and the exit code is 2; run again
    once that process has finished. With --shard i/n each machine writes manifest-i-of-n.jsonl;
    concatenate the shards.
    """
    from realisdance_cli.extraction import ExtractOptions
    from realisdance_cli.rendering import RenderOptions
    from realisdance_cli.training.dataset_build import Shard, build

    with progress_bars(RESUMES) as progress:
        report = build(
            videos,
            out,
            ExtractOptions(device=device, weights_root=weights_dir),
            RenderOptions(weights_root=weights_dir),
            Shard.parse(shard),
            progress,
            warn=lambda message: errors.print(f"[yellow]{message}[/]", highlight=False),
            tell=_tell,
        )
    manifest = escape(str(report.manifest))
    console.print(f"{counted(len(report.built), 'video')} in {manifest}; {len(report.failed)} left out")
    if report.failed and not report.built:
        raise typer.Exit(1)  # so that scripts notice a set with nothing in it


def _tell(message: str) -> None:
    """A line above the bars, as they are (none with -q)."""
    if logging.getLogger().isEnabledFor(logging.WARNING):
        errors.print(message, style="dim", markup=False, highlight=False)
