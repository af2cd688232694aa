"""`rdance eval run BENCHMARK --model sd|dit`: animate a whole test set, then score it.

    <out>/run.json          the test set, model and settings the folder's videos are of
    <out>/videos/<id>.mp4   the animations (a finished one is kept: runs resume)
    <out>/truth/<id>.mp4    the truth frames the model animated (its frame selection), lossless
    <out>/pose-videos/<id>/ pose videos made from the truth where the test set has none
    <out>/records/, poses/, scores.json/.md/.svg   the evaluation, as `rdance eval` writes it
    <out>/cache/            frames decoded from DisCo's image table

Work is split by `--shard i/n` (machines sharing the folder) and, inside a shard, over the
processes `accelerate launch` or `torchrun` starts (one GPU and one whole video each). Every
process animates and measures its own videos; whichever finds the whole set measured writes the
table, so the last shard to finish (or any later run) merges them.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from realisdance_cli.animation import AnimateOptions, PoseInputs, SDOptions, animate
from realisdance_cli.errors import UserError, counted
from realisdance_cli.evaluation import job
from realisdance_cli.evaluation.benchmarks import Benchmark, Sample, open_benchmark, parse_shard, shard
from realisdance_cli.evaluation.inputs import Pair
from realisdance_cli.evaluation.protocol import get_protocol
from realisdance_cli.files import atomic_write_bytes, folder_lock
from realisdance_cli.progress import ProgressFn, counter, no_progress
from realisdance_cli.track import named
from realisdance_cli.video import FrameSource
from realisdance_cli.video_writer import VideoWriter

if TYPE_CHECKING:
    from realisdance_cli.dit.job import DiTOptions

# What --force removes from a run folder (the decoded test set and the pose tracks, named by
# their contents, stay).
REPLACED = ("run.json", "videos", "truth", "pose-videos", *job.REPLACED)
CACHE = "cache"
SHARDS = "shards"  # a lock folder for each process of each shard: held while it works


@dataclass
class RunOptions:
    """How `run_benchmark` runs: `shard` is this machine's part, the 0-based (index, count) or
    `--shard`'s text ("1/4" is (0, 4)); `animation` and `evaluation` are the animate and eval
    options (checked when made)."""

    shard: tuple[int, int] = (0, 1)  # 0-based index and count (`--shard 1/4` is (0, 4))
    max_frames: int | None = None  # None: the test set's way (`frames_animated`); 0: every frame
    animation: AnimateOptions = field(default_factory=AnimateOptions)  # its frame selection is set here
    evaluation: job.EvalOptions = field(default_factory=job.EvalOptions)

    def __post_init__(self) -> None:
        self.shard = checked_shard(self.shard)

    @property
    def model(self) -> Literal["sd", "dit"]:
        """The model's name: the methods' row in the table, the folder's default name."""
        return "sd" if self.animation.dit is None else "dit"


def checked_shard(shard: str | tuple[int, int]) -> tuple[int, int]:
    """`RunOptions.shard` as the 0-based (index, count): `--shard`'s text read as the CLI reads it,
    a pair checked (a shard past the count would silently animate nothing)."""
    if isinstance(shard, str):
        return parse_shard(shard)
    pair = shard if isinstance(shard, tuple | list) else ()
    whole = len(pair) == 2 and all(isinstance(value, int) and not isinstance(value, bool) for value in pair)
    if not whole or not 0 <= pair[0] < pair[1]:
        raise UserError(
            f"shard is the 0-based (index, count) with 0 <= index < count, or --shard's text i/n "
            f"(1/4 is (0, 4)); got {shard!r}."
        )
    return int(pair[0]), int(pair[1])


def frames_animated(benchmark: Benchmark, options: RunOptions) -> AnimateOptions:
    """The animation options with the test set's frames: DisCo's TikTok set and frame folders are
    scored on every frame (DisCo's protocol; RealisDance-DiT at its 16 fps), RealisDance-Val on the
    model's own selection (SD: every 4th frame, 80 at most; DiT: 16 fps, 81). `max_frames` caps
    either (0: every frame)."""
    animation, every_frame = options.animation, benchmark.kind != "realisdance-val"
    limit, model = options.max_frames, animation.model
    if isinstance(model, SDOptions):
        default = None if every_frame else model.max_frames
        stride = 1 if every_frame else model.stride
        chosen: SDOptions | DiTOptions = replace(
            model, stride=stride, max_frames=default if limit is None else limit or None
        )
    else:
        default = None if every_frame else model.frames
        chosen = replace(model, frames=default if limit is None else limit or None)
    return replace(animation, model=chosen)


def default_out(benchmark: Path, model: str) -> Path:
    """`<test set>_<model>` (`.` and `..` named as the folders they stand for)."""
    benchmark = named(benchmark)
    return Path(f"{benchmark.stem if benchmark.is_file() else benchmark.name}_{model}")


def _process() -> tuple[int, int, Any]:
    """This process's rank, the number of processes, and its device (one GPU each under a
    launcher on a GPU machine; the options' otherwise)."""
    import torch

    from realisdance_cli.dit.parallel import world_from_environment

    world = world_from_environment()
    if world is None:
        return 0, 1, None
    if not torch.cuda.is_available():
        return world.rank, world.size, "cpu"
    torch.cuda.set_device(world.local_rank)  # what else lands on "cuda" lands on this GPU too
    return world.rank, world.size, f"cuda:{world.local_rank}"


def _truth(sample: Sample, options: AnimateOptions, out: Path) -> Path:
    """`<out>/truth/<id>.mp4`: the truth frames the model animates, written once, losslessly."""
    target = out / "truth" / f"{job.file_name(sample.name)}.mp4"
    if not target.exists():
        source = FrameSource(sample.truth, options.selection())
        with VideoWriter(target, source.info.fps, lossless=True) as writer:
            for frame in source:
                writer.write(frame)
    return target


def _pose_inputs(
    sample: Sample, model: str, options: AnimateOptions, out: Path, progress: ProgressFn
) -> PoseInputs:
    """The test set's own pose videos, and those it lacks made from its truth (extracted, then
    rendered as `rdance render-poses` does)."""
    from realisdance_cli.extraction import ExtractOptions, extract
    from realisdance_cli.rendering import RenderOptions, render_poses

    given = {name: path for name, path in (("smpl", sample.smpl), ("hamer", sample.hamer)) if path}
    needed = ["smpl", "hamer"] + (["dwpose"] if model == "sd" else [])
    missing = [name for name in needed if name not in given]
    if not missing:
        return PoseInputs(files=given)
    stages = {"dwpose": "dwpose", "smpl": "smplerx", "hamer": "hamer"}
    wanted = {stages[name] for name in missing} | ({"dwpose"} if "hamer" in missing else set())
    extract_options = ExtractOptions(
        stages=[stage for stage in ("dwpose", "smplerx", "hamer") if stage in wanted],
        device=options.device or "auto",
        weights_root=options.weights_root,
    )
    folder = out / "pose-videos" / job.file_name(sample.name)
    track, _ = extract(sample.truth, folder.with_suffix(".rdance"), extract_options, progress=progress)
    paths = [folder / f"{name}.mp4" for name in missing]
    if not all(path.exists() for path in paths):
        render = RenderOptions(videos=missing, weights_root=options.weights_root, audio=False)
        render_poses(track.path, folder, render, progress)
    return PoseInputs(files={**given, **dict(zip(missing, paths, strict=True))})


def _load(animation: AnimateOptions) -> Any:
    """The model, loaded once for every video of this process."""
    from realisdance_cli.animation import load_pipeline
    from realisdance_cli.devices import resolve_device
    from realisdance_cli.dit import job as dit_job

    if animation.dit is not None:
        device, dtype = resolve_device(animation.device, animation.dtype, gpu_dtype="bf16")
        return dit_job.load_pipeline(animation, device, dtype)  # each process animates its own videos
    return load_pipeline(animation, *resolve_device(animation.device, animation.dtype))


def _settings(animation: AnimateOptions) -> dict[str, Any]:
    """What decides the videos (not where they are computed), as JSON holds it."""
    chosen = {key: value for key, value in asdict(animation).items() if key not in ("device", "weights_root")}
    return json.loads(json.dumps(chosen, default=str))


def _check(benchmark: Benchmark, animation: AnimateOptions, evaluation: job.EvalOptions) -> None:
    """What can be said before the folder is claimed (run.json records the settings): the
    prompts, the model's settings and weights, the metrics."""
    if animation.dit is not None:
        from realisdance_cli.dit.job import DiTOptions, check_release

        unprompted = [s.name for s in benchmark.samples if not (s.prompt or animation.dit.prompt)]
        if unprompted:
            raise UserError(
                f"RealisDance-DiT needs a prompt, and {counted(len(unprompted), 'video')} of "
                f"{benchmark.root} {'has' if len(unprompted) == 1 else 'have'} none "
                f"({', '.join(unprompted[:5])}); give one for them with --prompt."
            )
        animation.dit.check(needs_prompt=False)
        DiTOptions.check_size(animation.size)
        check_release(animation)
    else:
        from realisdance_cli.animation import check_options, pipeline_files

        check_options(animation)
        pipeline_files(animation)
    evaluation.chosen_metrics()


def run_benchmark(
    benchmark_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    options: RunOptions,
    *,
    force: bool = False,
    progress: ProgressFn = no_progress,
) -> dict[str, Any] | None:
    """Animate this process's share of the test set, measure it, and write the table once every
    video is measured (returns what scores.json holds then, else None)."""
    benchmark_path = Path(benchmark_path)
    out = Path(out) if out is not None else default_out(benchmark_path, options.model)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder.")
    benchmark = open_benchmark(benchmark_path, out / CACHE, prompts=options.model == "dit")
    animation = frames_animated(benchmark, options)
    _check(benchmark, animation, options.evaluation)
    rank, processes, device = _process()
    evaluation = options.evaluation if device is None else replace(options.evaluation, device=device)
    protocol = get_protocol(evaluation.protocol)
    # measured in full; the table shows what the whole set allows
    metrics = job.with_weights(evaluation.chosen_metrics(), evaluation.metrics is not None, evaluation)
    networks = job.networks_for(metrics, evaluation)
    described: dict[str, Any] = {
        "test set": benchmark.root.name,
        "kind": benchmark.kind,
        "videos": [sample.name for sample in benchmark.samples],
        "model": options.model,
        "animation": _settings(animation),
    }
    if device is not None:
        animation = replace(animation, device=device)
    index, count = options.shard
    mine = shard(benchmark.samples, index * processes + rank, count * processes)
    with _claim(out, described, force, _shard_folder(out, index, count, rank)):
        _animate(mine, options.model, animation, out, progress)
        pairs: dict[str, list[Pair]] = {options.model: _pairs(mine, animation, out)}  # the row: the model
        job.measure(pairs, out, protocol, metrics, networks, evaluation, progress)
        return _merge(
            benchmark, options.model, animation, out, described, metrics, networks, evaluation, progress
        )


def _shard_folder(out: Path, index: int, count: int, rank: int) -> Path:
    """Where the process of this rank of shard `index` of `count` holds its lock."""
    return out / SHARDS / f"{index + 1}-of-{count}-{rank}"


@contextmanager
def _claim(out: Path, described: dict[str, Any], force: bool, mine: Path) -> Iterator[None]:
    """The run folder claimed for the run `described` (`job.claim`), and this process's shard
    `mine` held until the context ends. Shards and launched processes each claim the folder, one
    at a time, and each passes --force: it replaces a run of other settings, never the one another
    of them has just claimed. The shard is taken before the run folder is let go, and a claim
    that replaces the run first takes every shard (`_idle_shards`): a --force therefore never
    removes or relabels what a living process animates, measures or makes the table from."""
    with ExitStack() as held:
        with folder_lock(out, "the run folder", wait=True):
            _upgrade_record(out / "run.json")
            job.claim(
                out,
                described,
                force,
                record="run.json",
                replaced=REPLACED,
                kept=(CACHE,),
                keep_same=True,
                other=lambda earlier: (
                    f"the run of {earlier.get('model')} on {earlier.get('test set')} with other settings"
                ),
                replacing=lambda: _idle_shards(out),
            )
            held.enter_context(folder_lock(mine, "this shard of the run"))
        yield


@contextmanager
def _idle_shards(out: Path) -> Iterator[None]:
    """Every shard lock of the run in `out` held, or one sentence naming the shard another process
    works on (and nothing removed). Entered under the run-folder lock, which each process holds
    until it has its own shard's, so no shard can start while these are checked."""
    folders = sorted(path for path in (out / SHARDS).glob("*") if path.is_dir())
    with ExitStack() as held:
        for folder in folders:
            held.enter_context(folder_lock(folder, f"--force would replace the run in {out}, but its shard"))
        yield


# The model's own settings in a run.json of rdance before AnimateOptions.model held them.
_SD_SETTINGS = ("stride", "max_frames", "channels_last", "sampling")


def _upgrade_record(path: Path) -> None:
    """A run.json written before the animation settings held the model's own under "model" (the
    SD model's beside the others, DiT's under "dit") is rewritten in today's shape, so that the
    same run resumes instead of reading as one of other settings."""
    try:
        record = json.loads(path.read_text())
        animation = record["animation"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # none, or not ours: `claim` says so
    if not isinstance(animation, dict) or "model" in animation or "dit" not in animation:
        return
    dit = animation.pop("dit")
    sd = {key: animation.pop(key, None) for key in _SD_SETTINGS}
    animation["model"] = dit if dit is not None else sd
    atomic_write_bytes(path, (json.dumps(record, indent=2) + "\n").encode())


def _video(out: Path, sample: Sample) -> Path:
    return out / "videos" / f"{job.file_name(sample.name)}.mp4"


def _animate(
    samples: list[Sample], model: str, animation: AnimateOptions, out: Path, progress: ProgressFn
) -> None:
    """Each sample not yet animated, with one model loaded for them all."""
    todo = [sample for sample in samples if not _video(out, sample).exists()]
    if not todo:
        return
    pipeline = _load(animation)
    step = counter(progress, "animating test videos", len(samples))
    if len(todo) < len(samples):
        step(len(samples) - len(todo))  # those animated before
    for sample in todo:
        settings = animation
        if settings.dit is not None and sample.prompt:
            settings = replace(settings, model=replace(settings.dit, prompt=sample.prompt))
        inputs = _pose_inputs(sample, model, settings, out, no_progress)
        animate(sample.reference, inputs, _video(out, sample), settings, no_progress, pipeline)
        step(1)


def _merge(
    benchmark: Benchmark,
    model: str,
    animation: AnimateOptions,
    out: Path,
    described: dict[str, Any],
    metrics: list[str],
    networks: Any,
    evaluation: job.EvalOptions,
    progress: ProgressFn,
) -> dict[str, Any] | None:
    """The table, when every video of the set is animated and measured; None (said) otherwise:
    a shard still at work writes it when it finishes."""
    pairs = {model: _pairs(benchmark.samples, animation, out)}
    if len(pairs[model]) < len(benchmark.samples):
        warnings.warn(
            f"{len(pairs[model])} of {counted(len(benchmark.samples), 'video')} animated; the table is "
            "written when every shard has finished (or run again without --shard to finish them here).",
            stacklevel=3,
        )
        return None
    protocol = get_protocol(evaluation.protocol)
    shown = job.feasible(metrics, False, pairs, protocol)
    # Waits while another process writes the table: from the same records, it is then kept as it is.
    with folder_lock(out, "the run folder", wait=True):
        measured = job.measure(  # the records read, not made: nothing to show
            pairs, out, protocol, metrics, networks, evaluation, no_progress, only_recorded=True
        )
        if measured is None:
            warnings.warn(
                "other processes are still measuring their videos; the last to finish writes the table.",
                stacklevel=3,
            )
            return None
        scored = described | {"protocol": protocol.name, "metrics": shown}
        return job.write_scores(out, scored, protocol, shown, measured, progress)


def _pairs(samples: list[Sample], animation: AnimateOptions, out: Path) -> list[Pair]:
    """The animated videos with the truth frames they were animated from."""
    return [
        Pair(s.name, _video(out, s), _truth(s, animation, out), s.reference)
        for s in samples
        if _video(out, s).exists()
    ]
