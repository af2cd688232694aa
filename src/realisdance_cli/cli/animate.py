"""`rdance animate`: a reference picture and pose videos to the animated video."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.markup import escape

from realisdance_cli.cli.shared import (
    AudioOption,
    Choices,
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
    seed_option,
)
from realisdance_cli.errors import UserError, counted

if TYPE_CHECKING:
    from realisdance_cli.animator.sampling import SamplingOptions
    from realisdance_cli.retargeting.job import RetargetOptions

app = typer.Typer()


class Schedule(Choices):
    """How the temporal windows cover the video."""

    sliding = "sliding"
    uniform = "uniform"


class Uncond(Choices):
    """The unconditional branch of classifier-free guidance."""

    fake = "fake"
    real = "real"


class Model(Choices):
    """Which animation network."""

    sd = "sd"
    dit = "dit"


class Offload(Choices):
    """Where RealisDance-DiT's models rest on a GPU machine."""

    model = "model"
    group = "group"
    none = "none"


def _given(flags: Mapping[str, object]) -> list[str]:
    return [flag for flag, value in flags.items() if value not in (None, False)]


def _prompt(prompt: str | None, prompt_file: Path | None) -> str:
    if prompt is not None and prompt_file is not None:
        raise UserError("give --prompt or --prompt-file, not both.")
    if prompt_file is None:
        return prompt or ""
    from realisdance_cli.dit.job import read_prompt

    return read_prompt(prompt_file)


@command(
    app,
    "animate",
    "rdance animate me.png dance.rdance",
    "rdance animate me.png dance.rdance --stride 2 --max-frames 0 --grid",
    "rdance animate me.png dance.rdance --retarget",
    "rdance animate me.png --dwpose clip.pkl --hamer clip_hamer.mp4 --smpl clip_smpl.mp4",
    "rdance animate me.png dance.rdance --device cuda:1 --dtype bf16",
    "rdance animate me.png dance.rdance --start 48 --audio song.m4a",
    'rdance animate me.png dance.rdance --model dit --prompt "A woman dances in a sunlit studio."',
    "rdance animate me.png --model dit --smpl smpl.mp4 --hamer hamer.mp4 --prompt-file p.txt --teacache",
    'rdance animate me.png dance.rdance --model dit --prompt "..." --max-frames 0 --offload group --fp8',
)
def animate(
    reference: Annotated[Path, typer.Argument(help="The character picture (PNG/JPEG, any size).")],
    poses: Annotated[
        Path | None,
        typer.Argument(
            help="Folder with dwpose.mp4, hamer.mp4 and smpl.mp4 (from render-poses); with --retarget "
            "a pose track."
        ),
    ] = None,
    model: Annotated[
        Model,
        choice(
            Model,
            "--model",
            "sd: the SD-1.5 RealisDance; dit: RealisDance-DiT (Wan2.1-14B, needs a --prompt).",
        ),
    ] = Model.sd,
    dwpose: Annotated[Path | None, typer.Option(help="Skeleton video, or an original DWPose .pkl.")] = None,
    hamer: Annotated[Path | None, typer.Option(help="Hands video.")] = None,
    smpl: Annotated[Path | None, typer.Option(help="SMPL-X colourful-surface video.")] = None,
    retarget: Annotated[
        bool,
        typer.Option(
            "--retarget",
            help="POSES is a pose track: put its dance on REFERENCE's own body first (rdance retarget, "
            "cached beside the track) and render its pose videos.",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output mp4 (default: <reference>_<poses>.mp4).")
    ] = None,
    prompt: Annotated[str | None, typer.Option(help="dit: what the video shows.")] = None,
    prompt_file: Annotated[Path | None, typer.Option(help="dit: the prompt from a text file.")] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="dit: what the video should not show.")] = None,
    size: Annotated[
        str | None, typer.Option(help="HEIGHTxWIDTH of the result (sd: multiples of 8, 768x576; dit: of 16).")
    ] = None,
    max_res: Annotated[
        int | None, typer.Option(help="dit: pixels of area in the SMPL video's aspect (768*768).")
    ] = None,
    start: Annotated[int, typer.Option(help="First pose frame to use (dit: counted at --fps).")] = 0,
    stride: Annotated[
        int | None, typer.Option(help="sd: use every n-th pose frame (the original: 4).")
    ] = None,
    fps: Annotated[int | None, typer.Option(help="dit: resample the pose videos to this rate (16).")] = None,
    max_frames: Annotated[
        int | None,
        typer.Option(
            help="At most this many frames (sd 80, dit 81: a shorter dance is stretched over them and "
            "played faster, keeping its speed); 0 for all."
        ),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Denoising steps (sd: 50 DDIM, dit: 40).")] = None,
    guidance: Annotated[float, typer.Option(help="Classifier-free guidance scale (1 turns it off).")] = 2.0,
    seed: Annotated[
        int | None, seed_option("Noise seed: the same seed gives the same video (sd 42, dit 1024).")
    ] = None,
    context: Annotated[
        int | None, typer.Option(help="Frames the network sees together (sd: 16, at most 32; dit: 81).")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(help="Frames shared by neighbouring windows (sd 4, dit 16).")
    ] = None,
    schedule: Annotated[
        Schedule | None,
        choice(
            Schedule,
            "--schedule",
            "sd: windows sliding (no wrap-around, the default) or uniform (the original's closed loop).",
        ),
    ] = None,
    uncond: Annotated[
        Uncond | None,
        choice(Uncond, "--uncond", "sd: unconditional branch fake (zeroed tokens, the original's) or real."),
    ] = None,
    context_batch: Annotated[
        int | None, typer.Option(help="sd: windows per network call (more is faster, needs memory).")
    ] = None,
    teacache: Annotated[
        bool, typer.Option("--teacache", help="dit: skip blocks with TeaCache (faster, slightly different).")
    ] = False,
    teacache_thresh: Annotated[
        float | None, typer.Option(help="dit: TeaCache's threshold (the original's 0.2); higher skips more.")
    ] = None,
    offload: Annotated[
        Offload | None,
        choice(
            Offload,
            "--offload",
            "dit on a GPU: models rest on the CPU, each to the GPU in turn (model, the default), "
            "layer groups streamed (group), or all on the GPU (none).",
        ),
    ] = None,
    fp8: Annotated[bool, typer.Option("--fp8", help="dit: store the transformer's weights in fp8.")] = False,
    vae_tiling: Annotated[
        bool, typer.Option("--vae-tiling", help="dit: decode in tiles (less memory).")
    ] = False,
    compile_blocks: Annotated[
        bool,
        typer.Option(
            "--compile", help="dit: torch.compile the transformer's blocks (pays off from ~10 steps)."
        ),
    ] = False,
    dtype: DtypeOption = None,
    device: DeviceOption = "auto",
    grid: Annotated[
        bool, typer.Option("--grid", help="Also write <out>_grid.mp4: reference, the poses and the result.")
    ] = False,
    faithful: Annotated[
        bool, typer.Option("--faithful", help="The original's compute pattern (slower; for checking).")
    ] = False,
    channels_last: Annotated[
        bool | None,
        typer.Option("--channels-last/--no-channels-last", help="sd: NHWC convolutions (faster; on)."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="sd: a pipeline folder, an original .ckpt or a trained .safetensors; dit: the release "
            "folder (default: from --weights)."
        ),
    ] = None,
    crf: Annotated[int, typer.Option(help="H.264 quality, 0 (best) to 51.")] = 18,
    audio: AudioOption = None,
    no_audio: NoAudioOption = False,
    force: ForceOption = False,
    weights_dir: WeightsOption = None,
) -> None:
    """Animate the character in REFERENCE with the pose videos of a dance (GPU recommended).

    sd (the default): the reference and the three pose videos are scaled and centre-cropped to
    --size; the result has source fps / --stride frames per second. dit: RealisDance-DiT takes the
    SMPL-CS and HaMeR videos, resampled to 16 fps, and a --prompt; the size is --max-res pixels in
    the SMPL video's aspect, longer videos than 81 frames are made as overlapping windows. The
    result has the sound of the frames it shows (from the pose videos, which render-poses gives the
    dance's sound; --audio FILE or --no-audio to change it). With --retarget, POSES is a pose
    track whose dance is first re-posed on the reference's own body (see `rdance retarget`).
    """
    from realisdance_cli import animation
    from realisdance_cli.rendering import parse_size

    is_dit = model is Model.dit
    layout = "--no-channels-last" if channels_last is False else "--channels-last"
    sd_flags = {"--dwpose": dwpose, "--stride": stride, "--schedule": schedule, "--uncond": uncond,
                "--context-batch": context_batch, layout: channels_last is not None}  # fmt: skip
    dit_flags = {"--prompt": prompt, "--prompt-file": prompt_file, "--negative-prompt": negative_prompt,
                 "--max-res": max_res, "--fps": fps, "--teacache": teacache,
                 "--teacache-thresh": teacache_thresh, "--offload": offload,
                 "--fp8": fp8, "--vae-tiling": vae_tiling, "--compile": compile_blocks}  # fmt: skip
    wrong = _given(sd_flags) if is_dit else _given(dit_flags)
    if wrong:
        raise UserError(
            f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not for --model {model.value}."
        )
    inputs = animation.PoseInputs(
        poses, {k: v for k, v in (("dwpose", dwpose), ("hamer", hamer), ("smpl", smpl)) if v}
    )
    frames = None if max_frames == 0 else max_frames
    dit = None
    if is_dit:
        from realisdance_cli.dit.job import TEACACHE_THRESHOLD, DiTOptions

        if size is not None and max_res is not None:
            raise UserError("--size and --max-res both set the video's size; give one of them.")
        defaults = DiTOptions()
        dit = DiTOptions(
            prompt=_prompt(prompt, prompt_file),
            negative_prompt=negative_prompt or "",
            max_resolution=_or_default(max_res, defaults.max_resolution),
            frames=frames if max_frames is not None else defaults.frames,
            fps=_or_default(fps, defaults.fps),
            steps=_or_default(steps, defaults.steps),
            guidance=guidance,
            teacache=_or_default(teacache_thresh, TEACACHE_THRESHOLD)
            if teacache or teacache_thresh is not None
            else None,
            context=_or_default(context, defaults.context),
            overlap=_or_default(overlap, defaults.overlap),
            faithful=faithful,
            offload=offload.value if offload else None,
            fp8=fp8,
            vae_tiling=vae_tiling,
            compile=compile_blocks,
        )
        dit.check()
    target = out or animation.default_out(reference, inputs)
    model_options = dit or animation.SDOptions(
        stride=_or_default(stride, 4),
        max_frames=frames if max_frames is not None else 80,
        channels_last=_or_default(channels_last, True),
        sampling=_sampling(steps, guidance, uncond, context, overlap, schedule, context_batch, faithful),
    )
    options = animation.AnimateOptions(
        size=parse_size(size),
        start=start,
        audio=audio_choice(audio, no_audio),
        seed=seed,
        dtype=plain(dtype),
        device=device,
        grid=grid,
        crf=crf,
        weights_root=weights_dir,
        checkpoint=checkpoint,
        model=model_options,
        retarget=_retarget(weights_dir, device) if retarget else None,
    )
    with progress_bars() as progress:
        written = animation.animate(reference, inputs, target, options, progress, force=force)
    for path in written:
        console.print(f"wrote {escape(str(path))}: {_video_summary(path)}")


def _video_summary(path: Path) -> str:
    """Frames, size, rate and length of a written video: --stride and --max-frames shorten a dance
    without a word otherwise ("6 frames, 64x64 (height x width), 12 fps, 0.5 s")."""
    from realisdance_cli.video import FrameSource

    info = FrameSource(path).info
    return (
        f"{counted(info.frame_count, 'frame')}, {info.height}x{info.width} (height x width), "
        f"{float(info.fps):g} fps, {float(info.frame_count / info.fps):.1f} s"
    )


T = TypeVar("T")


def _retarget(weights_dir: Path | None, device: str) -> RetargetOptions:
    """--retarget's settings (its module brings torch: imported only when asked for)."""
    from realisdance_cli.retargeting.job import RetargetOptions

    return RetargetOptions(weights_root=weights_dir, device=device)


def _or_default(value: T | None, default: T) -> T:
    """A flag's value when given (0 too, which the checks then refuse), else its default."""
    return default if value is None else value


def _sampling(
    steps: int | None,
    guidance: float,
    uncond: Uncond | None,
    context: int | None,
    overlap: int | None,
    schedule: Schedule | None,
    context_batch: int | None,
    faithful: bool,
) -> SamplingOptions:
    """The SD model's sampling settings, its defaults where a flag was not given."""
    from realisdance_cli.animator.sampling import SamplingOptions

    defaults = SamplingOptions()
    return SamplingOptions(
        steps=_or_default(steps, defaults.steps),
        guidance=guidance,
        uncond=(uncond or Uncond.fake).value,
        context=_or_default(context, defaults.context),
        overlap=_or_default(overlap, defaults.overlap),
        schedule=(schedule or Schedule.sliding).value,
        context_batch=_or_default(context_batch, defaults.context_batch),
        faithful=faithful,
    )
