"""`rdance animate`: a reference picture and pose videos to the animated video."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from realisdance_cli.cli.shared import (
    AudioOption,
    DeviceOption,
    DtypeOption,
    ForceOption,
    NoAudioOption,
    WeightsOption,
    audio_choice,
    choice,
    command,
    console,
    plain,
    progress_bars,
)
from realisdance_cli.errors import UserError

app = typer.Typer()


class Schedule(str, Enum):
    """How the temporal windows cover the video."""

    sliding = "sliding"
    uniform = "uniform"


class Uncond(str, Enum):
    """The unconditional branch of classifier-free guidance."""

    fake = "fake"
    real = "real"


@command(
    app,
    "animate",
    "rdance animate me.png dance.rdance",
    "rdance animate me.png dance.rdance --stride 2 --max-frames 0 --grid",
    "rdance animate me.png --dwpose clip.pkl --hamer clip_hamer.mp4 --smpl clip_smpl.mp4",
    "rdance animate me.png dance.rdance --device cuda:1 --dtype bf16",
    "rdance animate me.png dance.rdance --start 48 --audio song.m4a",
)
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
    start: Annotated[int, typer.Option(help="First pose frame to use.")] = 0,
    stride: Annotated[int, typer.Option(help="Use every n-th pose frame (the original: 4).")] = 4,
    max_frames: Annotated[int, typer.Option(help="At most this many frames; 0 for all.")] = 80,
    steps: Annotated[int, typer.Option(help="DDIM denoising steps.")] = 50,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale (1 turns it off).")] = 2.0,
    seed: Annotated[int, typer.Option(help="Noise seed: the same seed gives the same video.")] = 42,
    context: Annotated[int, typer.Option(help="Frames the network sees together (at most 32).")] = 16,
    overlap: Annotated[int, typer.Option(help="Frames shared by neighbouring windows.")] = 4,
    schedule: Annotated[
        Schedule,
        choice(
            Schedule,
            "--schedule",
            "Windows: sliding (no wrap-around) or uniform (the original's closed loop).",
        ),
    ] = Schedule.sliding,
    uncond: Annotated[
        Uncond,
        choice(Uncond, "--uncond", "Unconditional branch: fake (zeroed tokens, the original's) or real."),
    ] = Uncond.fake,
    context_batch: Annotated[
        int, typer.Option(help="Windows per network call (more is faster, needs memory).")
    ] = 1,
    dtype: DtypeOption = None,
    device: DeviceOption = "auto",
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
        typer.Option(
            help="A pipeline folder, an original .ckpt or a trained .safetensors (default: from --weights)."
        ),
    ] = None,
    crf: Annotated[int, typer.Option(help="H.264 quality, 0 (best) to 51.")] = 18,
    audio: AudioOption = None,
    no_audio: NoAudioOption = False,
    force: ForceOption = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Animate the character in REFERENCE with the pose videos of a dance (GPU recommended).

    The reference is scaled and centre-cropped to --size; so are the pose videos. The result has
    source fps / --stride frames per second, and the sound of the frames it shows (from the pose
    videos, which render-poses gives the dance's sound; --audio FILE or --no-audio to change it).
    """
    from realisdance_cli import animation
    from realisdance_cli.animator.pipeline import SamplingOptions
    from realisdance_cli.rendering import parse_size

    inputs = animation.PoseInputs(
        poses, {k: v for k, v in (("dwpose", dwpose), ("hamer", hamer), ("smpl", smpl)) if v}
    )
    target = out or animation.default_out(reference, inputs)
    for path in animation.output_paths(target, grid):
        if path.exists() and not force:
            raise UserError(f"{path} exists; use --force to replace it.")
    options = animation.AnimateOptions(
        size=parse_size(size) or (768, 576),
        start=start,
        stride=stride,
        max_frames=None if max_frames == 0 else max_frames,
        audio=audio_choice(audio, no_audio),
        seed=seed,
        dtype=plain(dtype),
        device=device,
        grid=grid,
        crf=crf,
        weights_root=weights_dir,
        checkpoint=checkpoint,
        channels_last=channels_last,
        sampling=SamplingOptions(
            steps=steps,
            guidance=guidance,
            uncond=uncond.value,
            context=context,
            overlap=overlap,
            schedule=schedule.value,
            context_batch=context_batch,
            faithful=faithful,
        ),
    )
    with progress_bars() as progress:
        written = animation.animate(reference, inputs, target, options, progress)
    for path in written:
        console.print(f"wrote {path}")
