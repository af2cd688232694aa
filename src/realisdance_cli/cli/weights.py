"""`rdance weights list|check|download|convert`: the model weight files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from realisdance_cli.cli.shared import (
    ForceOption,
    WeightsOption,
    command,
    console,
    errors,
    progress_bars,
)
from realisdance_cli.errors import UserError

app = typer.Typer(help="List, check and download the model weights.", no_args_is_help=True)

NamesArgument = Annotated[
    list[str] | None,
    typer.Argument(help="Names or groups (default: all but the optional dit and eval groups)."),
]


@command(app, "weights list", "rdance weights list", "rdance weights list --weights /data/rdance")
def weights_list(weights_dir: WeightsOption = None) -> None:
    """List every weight file: what it is for, where it goes, where it comes from, its licence."""
    from rich.table import Table

    from realisdance_cli import weights

    root = weights.weights_root(weights_dir)
    table = Table(title=f"weights in {escape(str(root))}", expand=True)
    for column in ("name", "group", "here", "purpose", "path", "source", "licence"):
        table.add_column(column, overflow="fold")
    for entry in weights.REGISTRY:
        found = weights.status(entry, root, structure="none")
        table.add_row(
            entry.name,
            entry.group,
            f"[green]{found.place}[/]" if found.found else "[red]no[/]",
            entry.purpose,
            escape(str(found.path) if found.found else entry.path),
            entry.where(),
            entry.licence,
        )
    console.print(table)


@command(app, "weights check", "rdance weights check dwpose", "rdance weights check --hash")
def weights_check(
    names: NamesArgument = None,
    hash_: Annotated[bool, typer.Option("--hash", help="Also verify sha256 checksums (slow).")] = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Check that weight files are present and whole: every file's structure is read (zip CRCs of
    checkpoints, safetensors and ONNX sizes, configs parse), so a truncated or damaged download is
    caught without checksums; exit code 1 if any is missing or wrong.
    """

    from realisdance_cli import weights

    root = weights.weights_root(weights_dir)
    bad = 0
    for entry in weights.select(names or []):
        with console.status(f"checking {entry.name}"):  # a checkpoint of gigabytes takes seconds
            found = weights.status(entry, root, verify_hash=hash_, structure="full")
        where = escape(str(found.path))
        if found.ok:
            note = f" ({escape(found.note)})" if found.note else ""
            console.print(f"[green]ok[/]      {entry.name:14} {where} ({found.place}){note}")
        elif found.found:
            bad += 1
            console.print(
                f"[red]wrong[/]   {entry.name:14} {where}: {escape(found.problem or '')}; "
                f"to fetch it again: {escape(weights.refetch(found, root))}"
            )
        elif unneeded := weights.not_needed(entry, root):
            console.print(f"[green]ok[/]      {entry.name:14} not needed: {escape(unneeded)}")
        else:
            bad += 1
            console.print(
                f"[red]missing[/] {entry.name:14} {escape(weights.not_found(found))}: "
                f"{escape(weights.instructions(entry, root))}"
            )
    if bad:
        raise typer.Exit(1)


@command(app, "weights download", "rdance weights download dwpose", "rdance weights download realisdance")
def weights_download(names: NamesArgument = None, weights_dir: WeightsOption = None) -> None:
    """Download weight files from the Hugging Face hub into the Hugging Face cache, or into the
    folder --weights / RDANCE_HOME names (HF_ENDPOINT and HF_HUB_OFFLINE are honoured; files found
    in the cache are not fetched again); print exact instructions for licence-gated ones (SMPL-X, MANO).

    Exit code 1 if something requested is still missing afterwards.
    """
    from realisdance_cli import weights

    root = weights.weights_root(weights_dir)
    missing = []
    # huggingface_hub starts a file bound for its cache over (a weights folder's file continues)
    with progress_bars("finished files are kept; run the same command again to go on.") as progress:
        for entry in weights.select(names or []):
            found = weights.status(entry, root)
            if found.ok:
                console.print(f"[green]present[/] {entry.name}: {escape(str(found.path))} ({found.place})")
                continue
            if unneeded := weights.not_needed(entry, root):
                console.print(f"[green]not needed[/] {entry.name}: {escape(unneeded)}")
                continue
            if isinstance(entry.source, weights.Manual):
                missing.append(entry)
                continue
            path = weights.download(entry, root, progress)
            console.print(f"[green]downloaded[/] {entry.name}: {escape(str(path))}")
    for entry in missing:
        steps = escape(weights.instructions(entry, root))
        errors.print(f"[bold yellow]by hand[/] {entry.name} ({entry.licence}): {steps}")
    if missing:
        raise typer.Exit(1)


@command(
    app,
    "weights convert",
    "rdance weights convert",
    "rdance weights convert --fp16",
    "rdance weights convert stage_2_hamer_release.ckpt --out realisdance-sd",
)
def weights_convert(
    checkpoint: Annotated[
        Path | None, typer.Argument(help="Original RealisDance .ckpt (default: the one under --weights).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output pipeline folder (default: realisdance/pipeline under --weights)."
        ),
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Store half-precision weights (the fp16 variant).")
    ] = False,
    force: ForceOption = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Convert the authors' release to one diffusers pipeline folder: no pickle, faster to load,
    `RealisDancePipeline.from_pretrained(FOLDER)` in Python.

    `rdance animate` uses the folder when it sits at the default place.
    """
    from realisdance_cli import animation, weights
    from realisdance_cli.animator.checkpoint import convert_to_pipeline
    from realisdance_cli.files import claimed_output, existing_file

    if checkpoint is not None:  # a mistyped name first, before what the weights folder lacks
        existing_file(checkpoint, "the RealisDance checkpoint")
    root = weights.weights_root(weights_dir)
    needed = ["base-model", "dinov2"] + ([] if checkpoint else ["realisdance"])
    paths = weights.require_all(needed, root)
    source = existing_file(checkpoint or paths["realisdance"], "the RealisDance checkpoint")
    target = out or root / animation.PIPELINE_FOLDER
    with claimed_output(target, force=force, folder=True):
        if target.exists() and not (target / "model_index.json").is_file():
            raise UserError(f"{target} is not a pipeline folder; choose another --out.")
        animation.quiet_libraries()
        with console.status(f"converting {source}"):
            convert_to_pipeline(
                source, paths["base-model"], paths["dinov2"], target, "fp16" if fp16 else None
            )
    console.print(f"wrote {escape(str(target))} (load it with RealisDancePipeline.from_pretrained)")
