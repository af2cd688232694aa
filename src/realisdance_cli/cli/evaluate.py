"""`rdance eval`: score generated videos against the truth (`rdance eval GENERATED... TRUTH`, short
for `rdance eval score`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from realisdance_cli.cli.animate import Model
from realisdance_cli.cli.shared import (
    RESUMES,
    DeviceOption,
    ForceOption,
    WeightsOption,
    choice,
    command,
    console,
    progress_bars,
    seed_option,
)
from realisdance_cli.errors import UserError
from realisdance_cli.evaluation import METRICS
from realisdance_cli.evaluation.protocol import DEFAULT_PROTOCOL, PROTOCOLS, get_protocol

DEFAULT_COMMAND = "score"


class _ScoreByDefault(TyperGroup):
    """`rdance eval A B` is `rdance eval score A B`: anything but a command name or --help goes to
    the score command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click Context
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_ScoreByDefault,
    help="Score generated videos against the truth: image, video, pose, identity and smoothness "
    "metrics. `rdance eval GENERATED... TRUTH` is short for `rdance eval score` (a folder named like a "
    "sub-command, run or score, is written ./run).",
    no_args_is_help=True,
)


def parse_protocol(value: str) -> str:
    return get_protocol(value).name


ProtocolOption = Annotated[
    str,
    typer.Option(
        "--protocol",
        parser=parse_protocol,
        metavar=f"<{'|'.join(PROTOCOLS)}>",
        help="How frames are compared: "
        + "; ".join(f"{p.name}: {p.summary}" for p in PROTOCOLS.values())
        + ".",
    ),
]
MetricsOption = Annotated[
    str | None,
    typer.Option(
        "--metrics",
        help=f"Which metrics, comma-separated (default: all these videos allow): {', '.join(METRICS)}.",
        show_default=False,
    ),
]


@command(
    app,
    "eval score",
    "rdance eval score ours.mp4 truth.mp4",
    "rdance eval score ours/ baseline/ truth/ --reference refs/ --out eval_tiktok",
    "rdance eval score ours/ truth/ --protocol disco-legacy --metrics ssim,psnr,lpips,pose",
)
def score(
    videos: Annotated[
        list[Path],
        typer.Argument(
            metavar="GENERATED... TRUTH",
            help="One or more generated videos or folders of videos (a method each), then the truth "
            "video or folder; folders are matched by video name. A video is a file or a folder of frames.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Folder for scores.json/.md/.svg (default: <first GENERATED>_eval)."
        ),
    ] = None,
    protocol: ProtocolOption = DEFAULT_PROTOCOL,
    metrics: MetricsOption = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference",
            help="The picture animated, or a folder of them by video name, for identity "
            "(default: each truth's first frame, as DisCo does).",
        ),
    ] = None,
    truth_fps: Annotated[
        float | None,
        typer.Option(
            "--truth-fps",
            help="The frame rate of a TRUTH of frame folders, so that a generated video of another rate "
            "is compared with it resampled (default: none known; frame t meets frame t, said).",
            show_default=False,
        ),
    ] = None,
    force: ForceOption = False,
    device: DeviceOption = "auto",
    weights_dir: WeightsOption = None,
) -> None:
    """Score generated videos against the truth and print the table.

    Under the chosen protocol, frames are fitted to one size and compared one to one: SSIM, PSNR,
    LPIPS; FID over all frames, FID-VID and FVD over 16-frame clips. Pose fidelity re-extracts
    DWPose from both and scores the generated pose against the truth's (PCK and error, body, hands
    and face apart); identity is DINOv2's similarity to the reference picture; smoothness is the
    keypoints' jitter and the frames' flicker beside the truth's. Finished videos are kept: run
    the same command again to resume (other --metrics measure only what the kept videos lack;
    --force starts over).
    """
    from realisdance_cli.evaluation.job import EvalOptions, default_out, evaluate
    from realisdance_cli.video import as_fraction

    if len(videos) < 2:
        raise UserError("give at least one GENERATED video or folder and then the TRUTH.")
    *generated, truth = videos
    options = EvalOptions(
        protocol=protocol,
        metrics=metrics,
        reference=reference,
        truth_fps=None if truth_fps is None else as_fraction(truth_fps, "--truth-fps"),
        device=device,
        weights_root=weights_dir,
    )
    folder = out or default_out(generated, truth)
    with progress_bars(RESUMES) as progress:
        result = evaluate(generated, truth, folder, options, force=force, progress=progress)
    show_scores(folder, result)


def show_scores(folder: Path, result: dict[str, Any]) -> None:
    """The overall table turned (a row per metric, a column per method: it fits a terminal), what
    its columns mean, and where the per-video tables and the plot are."""
    from rich import box
    from rich.table import Table

    from realisdance_cli.evaluation import report
    from realisdance_cli.evaluation.job import SCORES

    compared = report.overall(result["methods"])
    table = Table(title=escape(f"rdance eval ({result['protocol']['summary']})"), box=box.SIMPLE_HEAD)
    table.add_column("")
    for method in compared:
        table.add_column(escape(method), justify="right", no_wrap=True)
    for row in report.by_metric(compared):
        table.add_row(*map(escape, row))
    console.print(table)
    if said := report.notes(compared):
        console.print(escape(said))
    written = [f"{SCORES}.md (per video)", f"{SCORES}.json (every number)"]
    if (folder / f"{SCORES}.svg").exists():
        written.append(f"{SCORES}.svg (the curves)")
    console.print(escape(f"in {folder}: {', '.join(written)}"))


@command(
    app,
    "eval run",
    "rdance eval run RealisDance-Val/ --model dit --out val_dit",
    "rdance eval run TikTok_finetuning/TiktokDance/new10val_images.tsv --model sd",
    "rdance eval run RealisDance-Val/ --model dit --shard 2/4",
    "rdance eval run frames/ --model sd --size 512x384 --max-frames 16 --metrics ssim,psnr,lpips,pose",
)
def run(
    benchmark: Annotated[
        Path,
        typer.Argument(
            help="The test set: RealisDance-Val's folder (ref/, smpl/, hamer/, prompt/, gt/), DisCo's TikTok "
            "*_images.tsv (or its folder), or a folder of per-video frame folders."
        ),
    ],
    model: Annotated[
        Model, choice(Model, "--model", "Which RealisDance animates: sd (SD-1.5) or dit.")
    ] = Model.sd,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The run's folder (default: <test set>_<model>).")
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option("--shard", help="This machine's share i/n of the test set (1/4 .. 4/4), same --out."),
    ] = None,
    protocol: ProtocolOption = DEFAULT_PROTOCOL,
    metrics: MetricsOption = None,
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help="dit: the prompt for videos the test set gives none."),
    ] = None,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Denoising steps (default: the model's, 50 sd, 40 dit).")
    ] = None,
    size: Annotated[
        str | None,
        typer.Option("--size", help="HEIGHTxWIDTH of the videos (default: the model's, as animate)."),
    ] = None,
    max_frames: Annotated[
        int | None,
        typer.Option(
            "--max-frames",
            help="At most this many frames a video, 0 for all (default: every frame of DisCo's TikTok set "
            "and frame folders; RealisDance-Val: sd 80 at stride 4, dit 81 at 16 fps).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Replace a run of other settings in --out (its videos too).")
    ] = False,
    seed: Annotated[int | None, seed_option("Noise seed (default: the model's).")] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Other weights for the model, as animate takes them.")
    ] = None,
    device: DeviceOption = "auto",
    weights_dir: WeightsOption = None,
) -> None:
    """Animate a whole test set with one model and score it; finished videos are kept.

    The model animates each test video's poses from its reference picture (RealisDance-Val's own,
    else the video's first frame, as DisCo does), with its own frame selection; the truth is cut
    to the same frames. Poses a test set lacks are extracted from its truth and rendered. Split
    the work with --shard over machines that share the folder, or start it with `accelerate
    launch -m realisdance_cli eval run ...` (or torchrun) for one process per GPU; the table is
    written once every video is measured, so the last to finish merges them (or run again
    without --shard).
    """
    from dataclasses import replace

    from realisdance_cli.animation import AnimateOptions, SDOptions
    from realisdance_cli.animator.sampling import SamplingOptions
    from realisdance_cli.dit.job import DiTOptions
    from realisdance_cli.evaluation.benchmarks import parse_shard
    from realisdance_cli.evaluation.job import EvalOptions
    from realisdance_cli.evaluation.run import RunOptions, default_out, run_benchmark
    from realisdance_cli.rendering import parse_size

    is_dit = model is Model.dit
    if max_frames is not None and max_frames < 0:
        raise UserError(f"--max-frames must be 0 (all) or more, got {max_frames}.")
    chosen: SDOptions | DiTOptions = DiTOptions(prompt=prompt or "") if is_dit else SDOptions()
    if steps is not None:
        chosen = (
            replace(chosen, steps=steps)
            if isinstance(chosen, DiTOptions)
            else replace(chosen, sampling=SamplingOptions(steps=steps))
        )
    animation = AnimateOptions(
        size=parse_size(size), seed=seed, device=device, weights_root=weights_dir, checkpoint=checkpoint,
        model=chosen,
    )  # fmt: skip
    options = RunOptions(
        shard=parse_shard(shard) if shard is not None else (0, 1),
        max_frames=max_frames,
        animation=animation,
        evaluation=EvalOptions(protocol=protocol, metrics=metrics, device=device, weights_root=weights_dir),
    )
    folder = out or default_out(benchmark, model.value)
    with progress_bars(RESUMES) as progress:
        result = run_benchmark(benchmark, folder, options, force=force, progress=progress)
    if result is not None:
        show_scores(folder, result)
