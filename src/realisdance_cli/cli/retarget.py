"""`rdance retarget`: a dance's 3-D motion on the reference picture's own body."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from realisdance_cli.cli.shared import (
    Choices,
    DeviceOption,
    WeightsOption,
    choice,
    command,
    console,
    progress_bars,
)

app = typer.Typer()


class Placement(Choices):
    """Where the retargeted body stands."""

    reference = "reference"
    driver = "driver"


@command(
    app,
    "retarget",
    "rdance retarget dance.rdance me.png",
    "rdance retarget dance.rdance me.png --out dance_on_me.rdance --smooth --preview",
    "rdance retarget dance.rdance closeup.png --upper-body",
    "rdance retarget dance.rdance me.rdance --placement driver --force",
)
def retarget(
    driver: Annotated[Path, typer.Argument(help="The dance: a pose track with SMPL-X and MANO streams.")],
    reference: Annotated[
        Path,
        typer.Argument(
            help="The character: a picture (extracted once into <name>.rdance beside it) or its track."
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The new pose track (default: <driver>_on_<reference>.rdance)."),
    ] = None,
    placement: Annotated[
        Placement,
        choice(
            Placement,
            "--placement",
            "reference: the body stands where the reference stands, strides scaled to its legs; "
            "driver: the dance's own framing, only the body shape changes.",
        ),
    ] = Placement.reference,
    upper_body: Annotated[
        bool,
        typer.Option(
            "--upper-body",
            help="A half-body reference: follow its neck and shoulders; the legs stay out of the picture.",
        ),
    ] = False,
    smooth: Annotated[
        bool,
        typer.Option("--smooth", help="Steady a shaky dance first (One-Euro, as render-poses --smooth)."),
    ] = False,
    expression: Annotated[
        bool,
        typer.Option(
            "--expression/--no-expression",
            help="The dance's facial expression, or the reference's in every frame.",
        ),
    ] = True,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview", help="Also write <out>_preview.png: reference | dance | the retargeted pose."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            "-f",
            help="Replace the output if it exists (and a cached reference track of another picture).",
        ),
    ] = False,
    device: DeviceOption = "auto",
    weights_dir: WeightsOption = None,
) -> None:
    """Put the dance of a pose track on the reference's own body: a new pose track for render-poses.

    Every frame keeps the dance's joint rotations and takes the reference's body shape; the body
    stands where the reference stands in its picture (its camera), feet on its ground line, hands
    at its wrists. The three streams (SMPL-X, MANO, DWPose skeleton) come from the same 3-D body,
    so the three pose videos agree; they keep the dance's frame rate and sound.
    """
    from realisdance_cli.retargeting.job import RetargetOptions, default_out
    from realisdance_cli.retargeting.job import retarget as run
    from realisdance_cli.retargeting.preview import preview_path

    options = RetargetOptions(
        placement=placement.value,
        upper_body=upper_body,
        smooth=smooth,
        expression=expression,
        preview=preview,
        weights_root=weights_dir,
        device=device,
    )
    with progress_bars() as progress:
        track = run(
            driver, reference, out or default_out(driver, reference), options, force=force, progress=progress
        )
    console.print(f"pose track: {escape(str(track.path))}")
    if preview:
        console.print(f"preview: {escape(str(preview_path(track.path)))}")
    console.print(f"next: {escape(shlex.join(['rdance', 'render-poses', str(track.path)]))}")
