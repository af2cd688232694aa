"""`rdance demo`: the authors' demo sequence animated with the open weights, or offline what
needs no download."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from realisdance_cli.animation import AnimateOptions
    from realisdance_cli.demo import Fetch

app = typer.Typer()


@command(
    app,
    "demo",
    "rdance demo",
    "rdance demo --offline",
    "rdance demo --yes --device cuda:1",
    "rdance demo --size 256x192 --steps 10 --max-frames 16",
)
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the demo's outputs.")] = Path(
        "demo/out"
    ),
    offline: Annotated[
        bool, typer.Option("--offline", help="Download nothing (as HF_HUB_OFFLINE=1 does).")
    ] = False,
    device: DeviceOption = "auto",
    size: Annotated[str, typer.Option(help="HEIGHTxWIDTH of the result, multiples of 8.")] = "768x576",
    steps: Annotated[int, typer.Option(help="DDIM denoising steps.")] = 50,
    max_frames: Annotated[int, typer.Option(help="At most this many frames; 0 for all.")] = 80,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Download without asking (never asked when not on a terminal)."),
    ] = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Animate the authors' demo sequence: downloads what is missing (its size said first; asked on
    a terminal), then writes <out>/realisdance_demo.mp4 and realisdance_demo_grid.mp4 (a GPU by
    default; on the CPU the time is estimated from the first denoising step).

    Offline (no hub, HF_HUB_OFFLINE or --offline) with something missing, it does what needs no
    download: the synthetic dancer's skeleton video, a short doctor, and what the full demo would
    fetch. The demo replaces its own earlier outputs in --out (only those, and it says so);
    downloads are kept (a file cut off mid-transfer is fetched again).
    """
    from realisdance_cli import animation, weights
    from realisdance_cli import demo as demos
    from realisdance_cli.animator.sampling import SamplingOptions
    from realisdance_cli.files import folder_lock
    from realisdance_cli.rendering import parse_size

    options = animation.AnimateOptions(
        size=parse_size(size),
        device=device,
        grid=True,
        weights_root=weights_dir,
        model=animation.SDOptions(
            max_frames=None if max_frames == 0 else max_frames, sampling=SamplingOptions(steps=steps)
        ),
    )
    animation.check_options(options)
    root = weights.weights_root(weights_dir)
    with folder_lock(out, "the demo folder"):
        fetch = demos.missing(root)
        if not fetch.empty:
            reason = "--offline was given" if offline else demos.hub_unreachable()
            if reason is None:
                reason = _download(fetch, root, yes)
            if reason is not None:
                return _offline(out, root, fetch, reason)
        _animate(out, root, options)


def _download(fetch: Fetch, root: Path, yes: bool) -> str | None:
    """Say the size, ask on a terminal unless --yes, download; why not (None: downloaded)."""
    from realisdance_cli import demo as demos
    from realisdance_cli import weights
    from realisdance_cli.files import human_size

    found = demos.sizes(fetch)
    each = ", ".join(
        f"{name} {human_size(size)}" if size is not None else name for name, size in found.items()
    )
    whole = demos.total(found)
    amount = human_size(whole) if whole is not None else "files of unknown size"
    console.print(f"the full demo downloads {amount}: {escape(each)}", highlight=False)
    if not yes and sys.stdin.isatty() and not typer.confirm("download it now?", default=True):
        return "the download was declined"
    with progress_bars(RESUMES) as progress:
        for entry in fetch.weights:
            path = weights.download(entry, root, progress)
            console.print(f"[green]downloaded[/] {entry.name}: {escape(str(path))}")
        if fetch.sequence:
            folder = demos.fetch_sequence(root, fetch.sequence, progress)
            console.print(f"[green]downloaded[/] the demo sequence: {escape(str(folder))}")
    return None


def _offline(out: Path, root: Path, fetch: Fetch, reason: str) -> None:
    """The demo without downloads: the synthetic dancer, a short doctor, what would be fetched."""
    from realisdance_cli import demo as demos
    from realisdance_cli.conditions import BY_NAME
    from realisdance_cli.track import Track
    from realisdance_cli.track_summary import summarise

    console.print(f"[bold]offline[/]: {escape(reason)}; the demo does what needs no download.")
    _replacing(out, demos.SKELETON)
    with progress_bars() as progress:
        folder = demos.dancer_skeleton(out, progress)
    console.print(summarise(Track.open(folder)))
    pkl, _, roundtrip = (out / name for name in demos.SKELETON)
    console.print(
        f"the synthetic dancer's poses in the original DWPose format: {escape(str(pkl))}, imported as "
        f"the pose track above and exported back to {escape(str(roundtrip))} (the same bytes)",
        highlight=False,
    )
    console.print(f"the synthetic dancer's skeleton video: {escape(str(folder / BY_NAME['dwpose'].video))}")
    for line in demos.short_doctor(root):
        console.print(escape(line), highlight=False)
    console.print(
        f"The full demo would fetch {escape(fetch.names())}; run `rdance demo` where the Hugging Face "
        "hub can be reached.",
        highlight=False,
    )


def _animate(out: Path, root: Path, options: AnimateOptions) -> None:
    from realisdance_cli import animation
    from realisdance_cli import demo as demos
    from realisdance_cli.devices import resolve_device

    _replacing(out, tuple(path.name for path in animation.output_paths(Path(demos.VIDEO), grid=True)))
    on_cpu = resolve_device(options.device, options.dtype)[0].type == "cpu"
    if on_cpu:
        console.print(
            "[bold yellow]on the CPU[/]: animating can take hours at the default size; the "
            "time is said after the first denoising step. A quick look: --size 256x192 --steps 10 "
            "--max-frames 16."
        )
    with progress_bars() as progress:
        report = demos.with_estimate(progress, lambda text: errors.print(text)) if on_cpu else progress
        written = demos.animate(root, out, options, report)
    for path in written:
        console.print(f"wrote {escape(str(path))}")


def _replacing(out: Path, names: tuple[str, ...]) -> None:
    """Say which of the demo's own earlier outputs this run replaces."""
    earlier = [name for name in names if (out / name).exists()]
    if earlier:
        console.print(f"replacing the previous demo's {escape(', '.join(earlier))} in {escape(str(out))}")
