"""`rdance train`: everything a training run needs, gathered from files, then the loop."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from realisdance_cli import weights
from realisdance_cli.animator.loading import DINOV2, NETWORK, VAE
from realisdance_cli.animator.processing import SIZE
from realisdance_cli.devices import MAX_SEED
from realisdance_cli.errors import UserError
from realisdance_cli.files import existing_file, folder_lock
from realisdance_cli.progress import Loading, ProgressFn, no_progress
from realisdance_cli.state_dicts import loading_from, read_config, read_state_dict, read_weights
from realisdance_cli.training.data import (
    ClipDataset,
    ClipSampling,
    Entry,
    ValidationClip,
    read_manifest,
    validation_clip,
)
from realisdance_cli.training.options import TrainOptions

# DataLoader worker processes per training process, at most. Fixed rather than from os.cpu_count(),
# so that a config reads the same on every machine (torch itself warns of more workers than cores);
# far above what feeding one GPU takes (a handful to 16), it stops a typo such as 100000 from
# starting that many processes, each a copy of the data set, before the first step.
MAX_WORKERS = 64


@dataclass
class TrainJob:
    manifest: Path
    out: Path
    options: TrainOptions = field(default_factory=TrainOptions)
    sampling: ClipSampling = field(default_factory=ClipSampling)
    weights_root: Path | None = None
    stage1: Path | None = None  # stage 2: stage-1 weights, our .safetensors or the original .ckpt
    motion: Path | None = None  # stage 2: AnimateDiff motion modules (default: the registry's)
    resume: bool = False  # continue the run saved in `out`, even with other settings
    force: bool = False  # start over in an `out` that holds a run
    validation_manifest: Path | None = None  # default: the training manifest's first entry


def job_from_settings(settings: dict[str, Any]) -> TrainJob:
    """A job from the `rdance train` settings (options and config file merged), checked."""
    from realisdance_cli.animator.processing import CLIP_SCALE, check_frame_size
    from realisdance_cli.animator.windows import MAX_FRAMES  # (motion.py: diffusers, seconds)
    from realisdance_cli.rendering import parse_size

    s = settings
    if s["manifest"] is None:
        raise UserError("give the training manifest, as an argument or as `manifest:` in the config.")
    finite = {k: math.isfinite(s[k]) for k in ("lr", "max_grad_norm", "weight_decay", "adam_epsilon")}
    checks = {
        "--stage must be 1 or 2": s["stage"] in (1, 2),
        "stage 2 starts from stage-1 weights: give --stage1 PATH": s["stage"] == 1 or s["stage1"] is not None,
        "--lr and --max-grad-norm must be positive numbers": finite["lr"]
        and finite["max_grad_norm"]
        and min(s["lr"], s["max_grad_norm"]) > 0,
        "--weight-decay must be 0 or more": finite["weight_decay"] and s["weight_decay"] >= 0,
        "the Adam betas must be 0 to below 1 and its epsilon positive": 0 <= s["adam_beta1"] < 1
        and 0 <= s["adam_beta2"] < 1
        and finite["adam_epsilon"]
        and s["adam_epsilon"] > 0,
        "--cfg-uncond and --pose-shuffle are chances: 0 to 1": 0 <= s["cfg_uncond"] <= 1
        and 0 <= s["pose_shuffle"] <= 1,
        "--warmup and --validate-every must be 0 or more": min(s["warmup"], s["validate_every"]) >= 0,
        f"--workers must be 0 to {MAX_WORKERS}, got {s['workers']}": 0 <= s["workers"] <= MAX_WORKERS,
        "--frames, --frame-stride and --validation-ddim-steps must be 1 or more": min(
            1 if s["frames"] is None else s["frames"], s["frame_stride"], s["validation_ddim_steps"]
        )
        >= 1,
        f"--frames {s['frames']}: the motion modules see at most {MAX_FRAMES} frames at once; give "
        f"{MAX_FRAMES} or fewer": s["stage"] == 1 or s["frames"] is None or s["frames"] <= MAX_FRAMES,
        "--mixed-precision must be no, fp16 or bf16": s["mixed_precision"] in ("no", "fp16", "bf16"),
        "--ref-mode must be random or first": s["ref_mode"] in ("random", "first"),
        "--log-with must be tensorboard or none": s["log_with"] in ("tensorboard", "none"),
        "--steps, --batch-size, --accumulate and --checkpoint-every must be 1 or more": min(
            s["steps"], s["batch_size"], s["accumulate"], s["checkpoint_every"]
        )
        >= 1,
        "--ema-decay must be 0 (off) or between 0 and 1": 0 <= s["ema_decay"] < 1,
        f"--seed must be 0 to {MAX_SEED}, got {s['seed']}": 0 <= s["seed"] <= MAX_SEED,
    }
    for message, ok in checks.items():
        if not ok:
            raise UserError(f"{message}.")
    if s["log_with"] == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise UserError(
            "TensorBoard logging needs the training extras: pip install 'realisdance-cli[train]' "
            "(or pass --log-with none)."
        )
    for name, what in (("stage1", "the stage-1 checkpoint"), ("motion", "the motion-module checkpoint")):
        if s[name] is not None:
            existing_file(Path(s[name]), what)
    height, width = parse_size(s["size"]) or SIZE
    check_frame_size(height, width, "--size")  # the VAE's 8-pixel cells: said now, not in the first step
    options = TrainOptions(
        stage=s["stage"],
        steps=s["steps"],
        learning_rate=s["lr"],
        warmup_steps=s["warmup"],
        batch_size=s["batch_size"],
        accumulate=s["accumulate"],
        adam_beta1=s["adam_beta1"],
        adam_beta2=s["adam_beta2"],
        weight_decay=s["weight_decay"],
        adam_epsilon=s["adam_epsilon"],
        max_grad_norm=s["max_grad_norm"],
        cfg_uncond_ratio=s["cfg_uncond"],
        pose_shuffle_ratio=s["pose_shuffle"],
        mixed_precision=s["mixed_precision"],
        gradient_checkpointing=s["gradient_checkpointing"],
        ema_decay=s["ema_decay"],
        checkpoint_every=s["checkpoint_every"],
        validate_every=s["validate_every"],
        validation_ddim_steps=s["validation_ddim_steps"],
        log_with=s["log_with"],
        seed=s["seed"],
        workers=s["workers"],
    )
    sampling = ClipSampling(
        frames=s["frames"] or (1 if s["stage"] == 1 else 16),
        stride=s["frame_stride"],
        size=(height, width),
        clip_size=(round(height * CLIP_SCALE), round(width * CLIP_SCALE)),
        ref_mode=s["ref_mode"],
    )
    return TrainJob(
        manifest=s["manifest"],
        out=s["out"],
        options=options,
        sampling=sampling,
        weights_root=s["weights_dir"],
        stage1=s["stage1"],
        motion=s["motion"],
        resume=s["resume"],
        force=s["force"],
        validation_manifest=s["validation_manifest"],
    )


def _stage1_state(path: Path) -> Mapping[str, torch.Tensor]:
    from realisdance_cli.animator.checkpoint import read_original

    if path.suffix == ".safetensors":
        return read_state_dict(path, "a stage-1 network", "give one `rdance train --stage 1` wrote")
    return read_original(path)


def _motion_state(path: Path) -> dict[str, torch.Tensor]:
    raw = read_weights(path, "a motion-module checkpoint", mmap=False)  # AnimateDiff's may predate zip files
    return raw.get("state_dict", raw) if isinstance(raw, dict) else {}


def build_network(job: TrainJob, unet_config: dict[str, Any], token_width: int, root: Path) -> Any:
    from realisdance_cli.training.stages import stage1_network, stage2_network

    if job.options.stage == 1:
        entry = weights.get("base-unet")
        refetch = f"delete it, then {weights.instructions(entry, root)}"
        base = read_state_dict(weights.require(entry.name, root), entry.purpose, refetch)
        return stage1_network(unet_config, token_width, base)
    assert job.stage1 is not None  # checked with the other settings
    motion = job.motion or weights.require("motion-prior", root)
    return stage2_network(unet_config, token_width, _stage1_state(job.stage1), _motion_state(motion))


def weights_digest(net: torch.nn.Module) -> str:
    """A short digest of every parameter, to see that all ranks hold the same network."""
    digest = hashlib.sha256()
    for name, value in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def run_settings(job: TrainJob, base_model: Path) -> dict[str, Any]:
    """What makes a run's steps: saved with its state, compared when the command is run again.
    Files by where they are (a relative and an absolute spelling are one file), the base model's
    folder among them."""
    paths = {"manifest": job.manifest, "stage1": job.stage1, "motion": job.motion, "base_model": base_model}
    files = {name: None if path is None else str(path.resolve()) for name, path in paths.items()}
    settings = {**asdict(job.options), **asdict(job.sampling), **files}
    return json.loads(json.dumps(settings))  # as it reads back from step.json (tuples as lists)


@dataclass(frozen=True)
class RunPlan:
    resume: bool  # continue the run saved in the folder
    clear: list[Path]  # what an earlier run of this stage left there, removed before training


def plan_run(job: TrainJob, settings: dict[str, Any]) -> RunPlan:
    """Whether `job` continues the run saved in its folder, and what it removes there; changes
    nothing. A folder that holds a run is never overwritten silently: the same settings resume,
    other ones need --resume or --force (which clears the run's outputs). What a run stopped
    before its first checkpoint left (logs, a half-written state) holds nothing to keep and is
    cleared. Only this stage's outputs are ever removed (see `outputs_of_a_run`)."""
    from realisdance_cli.training.run_folder import outputs_of_a_run, saved_state

    if job.resume and job.force:
        raise UserError("--resume and --force contradict each other; give one.")
    saved, earlier = saved_state(job.out), outputs_of_a_run(job.out, job.options.stage)
    if saved is not None:
        _check_stage(job, saved[1].get("settings", {}))
    checkpoints = [path for path in earlier if path.suffix in (".safetensors", ".ckpt")]
    if saved is None and job.resume:
        raise UserError(f"{job.out} holds no saved state to resume; leave out --resume to start a new run.")
    if saved is None and checkpoints and not job.force:
        raise UserError(
            f"{job.out} holds checkpoints of an earlier run ({checkpoints[0].name}, ...) but no state to "
            "resume; pass --force to replace them or --out to train elsewhere."
        )
    if saved is None or job.force:
        _check_inputs_kept(job, earlier)
        return RunPlan(resume=False, clear=earlier)
    step, before = saved[1]["step"], saved[1].get("settings", {})
    if job.resume or before == settings:
        return RunPlan(resume=True, clear=[])
    changed = ", ".join(name for name, value in settings.items() if before.get(name) != value)
    raise UserError(
        f"{job.out} holds a run saved at step {step} with other settings ({changed}); pass --resume to "
        "continue it with these settings, or --force to start over."
    )


def _check_stage(job: TrainJob, before: dict[str, Any]) -> None:
    """A saved state holds one stage's network: the other stage can neither resume it nor
    replace it (the released configs send both stages to one folder, the stage-1 run in it)."""
    stage = before.get("stage", job.options.stage)
    if stage != job.options.stage:
        raise UserError(
            f"{job.out} holds a stage-{stage} run; train stage {job.options.stage} in another --out."
        )


def _check_inputs_kept(job: TrainJob, removed: list[Path]) -> None:
    """None of the run's own input files is among what it removes."""
    inputs = {
        "--stage1": job.stage1, "--motion": job.motion, "the manifest": job.manifest,
        "--validation-manifest": job.validation_manifest,
    }  # fmt: skip
    for name, path in inputs.items():
        if path is None:
            continue
        where = path.resolve()
        for output in removed:
            if output.resolve() == where or output.resolve() in where.parents:
                raise UserError(
                    f"{name} {path} is among what this run removes of the earlier one in {job.out}; "
                    "copy it elsewhere first, or train in another --out."
                )


def _check_batches(clips: int, batch_size: int) -> None:
    """Every process needs one whole batch of its own (the last, short one is dropped): said
    before --force clears the run folder and the models load, not in the first step."""
    from realisdance_cli.dit.parallel import world_from_environment

    world = world_from_environment()
    processes = world.size if world else 1
    if clips < batch_size * processes:
        per = f" on each of {processes} processes" if processes > 1 else ""
        raise UserError(
            f"the training set holds {clips} clips, fewer than one batch of {batch_size}{per}; "
            "lower --batch-size or add clips."
        )


def run(
    job: TrainJob,
    report: Any = lambda step, loss: None,
    tell: Callable[[str], None] = lambda message: None,
    progress: ProgressFn = no_progress,
) -> tuple[list[float], str]:
    """Trains (resuming the run saved in the folder, see `plan_run`; the folder is locked on the
    main process); returns the losses of this run's steps and the digest of the final weights.
    Every input is read and checked before anything of an earlier run is removed; `tell` hears
    what was, `progress` the megabytes of the networks loaded."""
    from realisdance_cli.animation import quiet_libraries

    entries = read_manifest(job.manifest, job.sampling.span)  # the data, before the run folder is made
    _check_batches(len(entries), job.options.batch_size)
    held_out = read_manifest(job.validation_manifest) if job.validation_manifest else entries[:1]
    main_process = os.environ.get("RANK", "0") == "0"
    with folder_lock(job.out, "the run folder") if main_process else nullcontext():
        root = weights.weights_root(job.weights_root)
        paths = weights.require_all(_weight_names(job), root)  # before loading anything
        settings = run_settings(job, paths["base-model"])
        plan = plan_run(job, settings)
        loading = Loading(progress, "loading networks (MB)", _parts(job, paths))  # before diffusers' import
        quiet_libraries()
        from realisdance_cli.training.loop import train
        from realisdance_cli.training.run_folder import remove_outputs

        loaded = _load(job, paths, root, entries, held_out, loading)
        if main_process and plan.clear:
            remove_outputs(job.out, plan.clear)
            tell(f"removed from {job.out}: {', '.join(str(p.relative_to(job.out)) for p in plan.clear)}")
        losses = train(
            loaded.net, loaded.encoders, loaded.scheduler, loaded.dataset, job.options, job.out,
            loaded.network_config, plan.resume, report, loaded.clips, settings=settings,
        )  # fmt: skip
    return losses, weights_digest(loaded.net)


def _parts(job: TrainJob, paths: dict[str, Path]) -> dict[str, Path | tuple[Path, ...]]:
    """What `_load` reads, by the names its -v log gives them."""
    if job.options.stage == 1:
        network: Path | tuple[Path, ...] = paths["base-unet"]
    else:
        assert job.stage1 is not None  # checked with the other settings
        network = (job.stage1, job.motion or paths["motion-prior"])
    return {DINOV2: paths["dinov2"], NETWORK: network, VAE: paths["base-model"] / "vae"}


def _weight_names(job: TrainJob) -> list[str]:
    stage_weights = ["base-unet"] if job.options.stage == 1 else [] if job.motion else ["motion-prior"]
    return ["base-model", "dinov2", *stage_weights]


@dataclass
class _Loaded:
    """What the loop trains with, every file of it read and checked."""

    net: Any
    encoders: Any
    scheduler: Any
    dataset: ClipDataset
    clips: list[ValidationClip]
    network_config: dict[str, Any]


def _load(
    job: TrainJob,
    paths: dict[str, Path],
    root: Path,
    entries: list[Entry],
    held_out: list[Entry],
    loading: Loading,
) -> _Loaded:
    from diffusers import AutoencoderKL
    from transformers import Dinov2Model

    from realisdance_cli.training.loop import Encoders
    from realisdance_cli.training.objective import noise_scheduler

    base = paths["base-model"]
    with loading_from(base / "unet"):
        unet_config = read_config(base / "unet" / "config.json")
    with loading.part(DINOV2):
        encoder = Dinov2Model.from_pretrained(paths["dinov2"])
    with torch.random.fork_rng(devices=[]), loading.part(NETWORK, settings=base / "unet"):
        torch.manual_seed(job.options.seed)  # freshly initialised layers depend on the seed alone
        net = build_network(job, unet_config, encoder.config.hidden_size, root)
    with loading.part(VAE):
        vae = AutoencoderKL.from_pretrained(base / "vae")
    with loading_from(base / "scheduler"):
        scheduler = noise_scheduler(read_config(base / "scheduler" / "scheduler_config.json"))
    validating = job.options.validate_every > 0
    return _Loaded(
        net=net,
        encoders=Encoders(vae, encoder),
        scheduler=scheduler,
        dataset=ClipDataset(entries, job.sampling, job.options.seed),
        clips=[validation_clip(entry, job.sampling) for entry in held_out] if validating else [],
        network_config={"unet": unet_config, "token_width": encoder.config.hidden_size},
    )
