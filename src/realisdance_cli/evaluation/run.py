"""`rdance eval run BENCHMARK --model sd|dit`: animate a whole test set, then score it.

    <out>/videos/<id>.mp4   the animations (a finished one is kept: runs resume)
    <out>/truth/<id>.mp4    the truth frames the model animated (its frame selection), lossless
    <out>/poses/<id>/       pose videos made from the truth where the test set has none
    <out>/records/, scores.json/.md/.svg   the evaluation, as `rdance eval` writes it
    <out>/cache/            frames decoded from DisCo's image table

Work is split by `--shard i/n` (machines sharing the folder) and, inside a shard, over the
processes `accelerate launch` or `torchrun` starts (one GPU and one whole video each). Every
process animates and measures its own videos; whichever finds the whole set measured writes the
table, so the last shard to finish (or any later run) merges them.
"""

from __future__ import annotations

import json
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from realisdance_cli.animation import AnimateOptions, PoseInputs, animate
from realisdance_cli.errors import UserError
from realisdance_cli.evaluation import job
from realisdance_cli.evaluation.benchmarks import Benchmark, Sample, open_benchmark, shard
from realisdance_cli.evaluation.inputs import Pair
from realisdance_cli.evaluation.protocol import get_protocol
from realisdance_cli.files import atomic_write_bytes, folder_lock
from realisdance_cli.progress import ProgressFn, counter, no_progress
from realisdance_cli.video import FrameSource, VideoWriter

METHOD = "generated"


@dataclass
class RunOptions:
    model: Literal["sd", "dit"] = "sd"
    shard: tuple[int, int] = (0, 1)  # 0-based index and count (`--shard 1/4` is (0, 4))
    animation: AnimateOptions = field(default_factory=AnimateOptions)
    evaluation: job.EvalOptions = field(default_factory=job.EvalOptions)


def default_out(benchmark: Path, model: str) -> Path:
    return Path(f"{benchmark.stem if benchmark.is_file() else benchmark.name}_{model}")


def _process() -> tuple[int, int, Any]:
    """This process's rank, the number of processes, and its device (one GPU each under a
    launcher on a GPU machine; the options' otherwise)."""
    import torch

    from realisdance_cli.dit.parallel import world_from_environment

    world = world_from_environment()
    if world is None:
        return 0, 1, None
    device = f"cuda:{world.local_rank}" if torch.cuda.is_available() else "cpu"
    return world.rank, world.size, device


def _truth(sample: Sample, options: AnimateOptions, out: Path) -> Path:
    """`<out>/truth/<id>.mp4`: the truth frames the model animates, written once, losslessly."""
    target = out / "truth" / f"{sample.name}.mp4"
    if not target.exists():
        source = FrameSource(sample.truth, options.selection())
        with VideoWriter(target, source.info.fps, lossless=True) as writer:
            for frame in source:
                writer.write(frame)
    return target


def _poses(sample: Sample, model: str, options: RunOptions, out: Path, progress: ProgressFn) -> PoseInputs:
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
        device=options.animation.device or "auto",
        weights_root=options.animation.weights_root,
    )
    folder = out / "poses" / sample.name
    track, _ = extract(sample.truth, folder.with_suffix(".rdance"), extract_options, progress=progress)
    paths = [folder / f"{name}.mp4" for name in missing]
    if not all(path.exists() for path in paths):
        render = RenderOptions(videos=missing, weights_root=options.animation.weights_root, audio=False)
        render_poses(track.path, folder, render, progress)
    return PoseInputs(files={**given, **dict(zip(missing, paths, strict=True))})


def _load(options: RunOptions, device: Any) -> Any:
    """The model, loaded once for every video of this process."""
    from realisdance_cli.animation import load_pipeline
    from realisdance_cli.devices import resolve_device
    from realisdance_cli.dit import job as dit_job

    animation = options.animation
    if options.model == "dit":
        torch_device, dtype = resolve_device(device or animation.device, animation.dtype, gpu_dtype="bf16")
        return dit_job.load_pipeline(animation, torch_device, dtype, split_sequence=False)[0]
    torch_device, dtype = resolve_device(device or animation.device, animation.dtype)
    return load_pipeline(animation, torch_device, dtype)


def _claim(out: Path, described: dict[str, Any]) -> None:
    """`<out>/run.json` names the test set and model the folder's videos belong to: a run of
    another is refused, since its videos would be mixed with these."""
    record = out / "run.json"
    if record.exists():
        earlier = json.loads(record.read_text())
        if earlier != described:
            raise UserError(
                f"{out} holds the run of {earlier['model']} on {earlier['benchmark']}; choose another --out."
            )
        return
    atomic_write_bytes(record, (json.dumps(described, indent=2) + "\n").encode())


def _check(benchmark: Benchmark, options: RunOptions) -> None:
    """What can be said before any video is animated."""
    animation = options.animation
    if options.model == "dit":
        assert animation.dit is not None
        unprompted = [s.name for s in benchmark.samples if not (s.prompt or animation.dit.prompt)]
        if unprompted:
            raise UserError(
                f"RealisDance-DiT needs a prompt, and {len(unprompted)} videos of {benchmark.root} have none "
                f"({', '.join(unprompted[:5])}); give one for them with --prompt."
            )
        replace(animation.dit, prompt=animation.dit.prompt or "each video's own").check()
    options.evaluation.chosen_metrics()


def run_benchmark(
    benchmark_path: Path,
    out: Path | None,
    options: RunOptions,
    *,
    progress: ProgressFn = no_progress,
) -> dict[str, Any] | None:
    """Animate this process's share of the test set, measure it, and write the table once every
    video is measured (returns what scores.json holds then, else None)."""
    if (options.model == "dit") != (options.animation.dit is not None):
        raise ValueError("a dit run needs AnimateOptions.dit, an sd run none")
    out = out or default_out(benchmark_path, options.model)
    benchmark = open_benchmark(benchmark_path, out / "cache")
    _check(benchmark, options)
    described: dict[str, Any] = {
        "benchmark": str(benchmark_path.resolve()),
        "kind": benchmark.kind,
        "model": options.model,
    }
    _claim(out, described)
    protocol = get_protocol(options.evaluation.protocol)
    explicit = options.evaluation.metrics is not None
    # measured in full; the table shows what the set allows
    metrics = job.with_weights(options.evaluation.chosen_metrics(), explicit, options.evaluation)
    networks = job.networks_for(metrics, options.evaluation)
    rank, processes, device = _process()
    index, count = options.shard
    mine = shard(benchmark.samples, index * processes + rank, count * processes)
    with folder_lock(out / "shards" / f"{index + 1}-of-{count}-{rank}", "this shard of the run"):
        todo = [s for s in mine if not (out / "videos" / f"{s.name}.mp4").exists()]
        if todo:
            pipeline = _load(options, device)
            step = counter(progress, "animating test videos", len(mine))
            step(len(mine) - len(todo))
            for done, sample in enumerate(todo, start=len(mine) - len(todo) + 1):
                animation = replace(options.animation, device=device or options.animation.device)
                if animation.dit is not None and sample.prompt:
                    animation = replace(animation, dit=replace(animation.dit, prompt=sample.prompt))
                inputs = _poses(sample, options.model, options, out, no_progress)
                animate(
                    sample.reference,
                    inputs,
                    out / "videos" / f"{sample.name}.mp4",
                    animation,
                    no_progress,
                    pipeline,
                )
                step(done)
        job.measure(
            {METHOD: _pairs(mine, options, out)},
            out,
            protocol,
            metrics,
            networks,
            options.evaluation,
            progress,
        )
    finished = [s for s in benchmark.samples if (out / "videos" / f"{s.name}.mp4").exists()]
    if len(finished) < len(benchmark.samples):
        warnings.warn(
            f"{len(finished)} of {len(benchmark.samples)} videos are animated; the table is written when "
            "every shard has finished (run again without --shard to merge).",
            stacklevel=2,
        )
        return None
    pairs = {METHOD: _pairs(benchmark.samples, options, out)}
    shown = job.feasible(metrics, False, pairs, protocol)
    described |= {"protocol": protocol.name, "metrics": shown}
    with ExitStack() as held:
        try:
            held.enter_context(folder_lock(out, "the run folder"))
        except UserError:  # another process is merging the same measurements
            warnings.warn("another process is writing the table of this run; it is left to it.", stacklevel=2)
            return None
        truths, measured = job.measure(pairs, out, protocol, metrics, networks, options.evaluation, progress)
        return job.write_scores(out, described, protocol, shown, truths, measured)


def _pairs(samples: list[Sample], options: RunOptions, out: Path) -> list[Pair]:
    """The animated videos with the truth frames they were animated from."""
    return [
        Pair(s.name, out / "videos" / f"{s.name}.mp4", _truth(s, options.animation, out), s.reference)
        for s in samples
        if (out / "videos" / f"{s.name}.mp4").exists()
    ]
