"""The training loop on accelerate: one process or many (`accelerate launch`, DDP over gloo/NCCL).

Per step: the VAE encodes the clip and the reference, DINOv2 the reference crop (both frozen), the
pose videos may be shuffled (stage 2), a whole batch may drop its conditions (classifier-free
guidance), and the objective of `objective.py` is minimised with AdamW (constant learning rate
after a warm-up, gradients clipped to 1.0, accumulated over `accumulate` batches). The noise and
timesteps of step k come from a generator seeded by (seed, k, rank), and the clips from (seed,
epoch, index), so a run stopped and resumed from a checkpoint takes the same steps as one that ran
straight through.

Optionally an exponential moving average of the trained weights (diffusers' `EMAModel`, decay
warmed up as (1 + n) / (10 + n)) is kept, saved with the state (`ema.py`: never pickled) and
exported as `stageN_ema.*`; validation then uses it. Loss (a step's: the mean over its accumulated
batches and the processes) and learning rate go to TensorBoard (`OUT/logs`).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from realisdance_cli.animator.checkpoint import save_network
from realisdance_cli.animator.network import RealisDanceNet
from realisdance_cli.errors import UserError
from realisdance_cli.files import sync_files, sync_folder
from realisdance_cli.state_dicts import read_weights
from realisdance_cli.training.data import ValidationClip
from realisdance_cli.training.ema import MovingAverage
from realisdance_cli.training.objective import Batch, diffusion_loss
from realisdance_cli.training.options import TrainOptions
from realisdance_cli.training.run_folder import LOGS, STATE_FOLDER, VALIDATION, saved_state
from realisdance_cli.training.stages import save_original, select_trainable

log = logging.getLogger(__name__)


def shuffle_poses(poses: torch.Tensor, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """The original's pose shuffle: with probability `ratio`, one random frame of the clip is
    overwritten by another (`pose[:, :, i] = pose[:, :, perm[i]]` with `i = perm[0]`); the paper
    calls it a swap, but the original code copies one frame onto another."""
    if torch.rand((), generator=generator).item() >= ratio:
        return poses
    perm = torch.randperm(poses.shape[2], generator=generator)
    i = int(perm[0])
    poses = poses.clone()
    poses[:, :, i] = poses[:, :, int(perm[i])]
    return poses


class Encoders:
    """The frozen VAE and DINOv2 that turn a data batch into the network's inputs."""

    def __init__(self, vae: Any, image_encoder: Any) -> None:
        self.vae, self.image_encoder = (
            vae.requires_grad_(False).eval(),
            image_encoder.requires_grad_(False).eval(),
        )

    @torch.no_grad()
    def __call__(self, sample: dict[str, torch.Tensor], generator: torch.Generator) -> Batch:
        pixels = sample["pixels"]  # (B, 3, F, H, W)
        batch, _, frames = pixels.shape[:3]
        scale = self.vae.config.scaling_factor
        flat = pixels.transpose(1, 2).flatten(0, 1).to(self.vae.dtype)
        latents = self.vae.encode(flat).latent_dist.sample(generator) * scale
        latents = latents.unflatten(0, (batch, frames)).transpose(1, 2).float()
        ref = self.vae.encode(sample["reference"].to(self.vae.dtype)).latent_dist.mode() * scale
        tokens = self.image_encoder(sample["reference_clip"].to(self.image_encoder.dtype)).last_hidden_state
        return Batch(latents, ref.float(), tokens.float(), sample["dwpose"], sample["hamer"], sample["smpl"])


def _batches(
    loader: Any, start_step: int, accumulate: int, set_epoch: Callable[[int], None]
) -> Iterator[Any]:
    """Batches from optimiser step `start_step` on, epoch after epoch, in a resumable order."""
    per_epoch = len(loader)
    if per_epoch == 0:
        raise UserError("the training set holds fewer clips than one batch; lower the batch size.")
    done = start_step * accumulate
    epoch, skip = divmod(done, per_epoch)
    while True:
        set_epoch(epoch)
        for index, item in enumerate(loader):
            if index >= skip:
                yield item
        epoch, skip = epoch + 1, 0


def train(
    net: RealisDanceNet,
    encoders: Encoders,
    scheduler: Any,
    dataset: Any,
    options: TrainOptions,
    out: Path,
    network_config: dict[str, Any],
    resume: bool = False,
    report: Callable[[int, float], None] = lambda step, loss: None,
    validation: Sequence[ValidationClip] = (),
    settings: Mapping[str, Any] | None = None,
) -> list[float]:
    """Runs (or resumes) training into `out`; returns the losses of the steps it ran. `settings`
    (default: the options) are saved with the state, so a later run can tell whether it continues
    this one."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from diffusers.optimization import get_scheduler

    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),  # without it, CPU processes under torchrun train alone
        mixed_precision=options.mixed_precision,
        gradient_accumulation_steps=options.accumulate,
        # stage 1 trains the reference UNet, whose layers after its last self-attention get no gradient
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=options.stage == 1)],
        log_with=None if options.log_with == "none" else options.log_with,
        project_dir=out,
    )
    log.info(
        "training on %s with mixed precision %s, %d process(es)",
        accelerator.device, accelerator.mixed_precision, accelerator.num_processes,
    )  # fmt: skip
    named = select_trainable(net, options.stage)
    trainable = [p for _, p in named]
    if options.gradient_checkpointing:
        net.unet_main.enable_gradient_checkpointing()
        net.unet_ref.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(
        trainable,
        lr=options.learning_rate,
        betas=(options.adam_beta1, options.adam_beta2),
        weight_decay=options.weight_decay,
        eps=options.adam_epsilon,
    )
    schedule = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=options.warmup_steps)
    sampler_generator = torch.Generator()

    def set_epoch(epoch: int) -> None:
        dataset.epoch = epoch
        sampler_generator.manual_seed(options.seed * 1_000_003 + epoch)

    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=options.batch_size,
        shuffle=True,
        generator=sampler_generator,
        num_workers=options.workers,
        drop_last=True,
    )
    net, optimizer, schedule, loader = accelerator.prepare(net, optimizer, schedule, loader)
    encoders.vae.to(accelerator.device)
    encoders.image_encoder.to(accelerator.device)
    restored, step = _restore(accelerator, out) if resume else (None, 0)
    ema = MovingAverage(named, options.ema_decay) if options.ema_decay > 0 else None
    if ema is not None and restored is not None:
        ema.load(restored)
    exports = Exports(accelerator, net, out, options.stage, network_config, ema)
    if restored is not None and step >= options.steps:
        exports.refresh(step)
    record = dict(settings) if settings is not None else asdict(options)
    if options.log_with != "none":
        accelerator.init_trackers(LOGS, config=asdict(options))
    losses = []
    batches = _batches(loader, step, options.accumulate, set_epoch)
    while step < options.steps:
        generator = torch.Generator().manual_seed(
            hash((options.seed, step, accelerator.process_index)) % 2**63
        )
        total = torch.zeros((), device=accelerator.device)  # the step's batches, summed where they are
        for _ in range(options.accumulate):
            with accelerator.accumulate(net):
                loss = _loss(net, encoders(next(batches), generator), scheduler, options, generator)
                total += loss.detach()
                accelerator.backward(loss)
                if accelerator.sync_gradients:  # all parameters: FSDP then clips over its shards
                    accelerator.clip_grad_norm_(net.parameters(), options.max_grad_norm)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
        if ema is not None:
            ema.step()
        step += 1
        value = accelerator.gather((total / options.accumulate).reshape(1)).mean().item()
        losses.append(value)
        accelerator.log({"loss": value, "lr": schedule.get_last_lr()[0]}, step=step)
        report(step, value)
        if step % options.checkpoint_every == 0 or step == options.steps:
            _save(accelerator, out, step, exports, record)
        if validation and options.validate_every and step % options.validate_every == 0:
            with _averaged(ema), accelerator.autocast():
                _validate(accelerator, net, encoders, scheduler, validation, out, step, options)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return losses


def _loss(
    net: Any, batch: Batch, scheduler: Any, options: TrainOptions, generator: torch.Generator
) -> torch.Tensor:
    """One batch's objective with this step's augmentations, noise and timesteps."""
    if options.stage == 2:
        poses = (batch.dwpose, batch.hamer, batch.smpl)
        batch.dwpose, batch.hamer, batch.smpl = (
            shuffle_poses(p, options.pose_shuffle_ratio, generator) for p in poses
        )
    drop = torch.rand((), generator=generator).item() < options.cfg_uncond_ratio
    noise = torch.randn(batch.latents.shape, generator=generator).to(batch.latents.device)
    timesteps = torch.randint(
        0, scheduler.config.num_train_timesteps, (batch.latents.shape[0],), generator=generator
    ).to(batch.latents.device)
    return diffusion_loss(net, scheduler, batch, noise, timesteps, drop=drop)[0]


def _restore(accelerator: Any, out: Path) -> tuple[Path, int]:
    """Loads the run folder's last state; returns its folder and the step it was saved at."""
    saved = saved_state(out)
    if saved is None:
        raise UserError(f"{out} holds no saved state to resume.")
    _refuse_pickles(saved[0])
    accelerator.load_state(str(saved[0]))
    return saved[0], int(saved[1]["step"])


def _refuse_pickles(state: Path) -> None:
    """accelerate loads (with `weights_only=False`) the custom objects of a state, and refuses a
    state with more of them than are registered: none are here, so such a file is said, not run."""
    pickles = sorted(state.glob("custom_checkpoint_*.pkl"))
    if pickles:
        raise UserError(
            f"{pickles[0]} is a pickle, which a resume never loads (an earlier version saved the moving "
            "average so; a planted one could run code); delete it to resume, the moving average then "
            "starts again from the resumed weights."
        )


@contextmanager
def _averaged(ema: MovingAverage | None) -> Iterator[None]:
    """The moving-average weights in place of the trained ones for a while (nothing without EMA)."""
    if ema is None:
        yield
        return
    with ema.applied():
        yield


def _validate(
    accelerator: Any,
    net: Any,
    encoders: Encoders,
    scheduler: Any,
    clips: Sequence[ValidationClip],
    out: Path,
    step: int,
    options: TrainOptions,
) -> None:
    """Every rank runs the clips (sharded networks need all of them); the first writes the grids."""
    from realisdance_cli.training.validation import validate

    folder = out / VALIDATION if accelerator.is_main_process else None
    validate(
        accelerator.unwrap_model(net), encoders.vae, encoders.image_encoder, dict(scheduler.config),
        clips, folder, step, options.validation_ddim_steps, options.seed,
    )  # fmt: skip
    accelerator.wait_for_everyone()


def _save(accelerator: Any, out: Path, step: int, exports: Exports, settings: Mapping[str, Any]) -> None:
    """The resumable state (written beside, then swapped in), then the exports; rank 0 writes the
    files.

    A run killed during a swap leaves state.partial or state.old behind; both are removed before
    the swap, except a state.old without a state: the last whole state (`saved_state` resumed
    from it), kept until the new one is in place. One killed after the swap, before its exports
    were all written, has them written again when resumed (`Exports.refresh`)."""
    state_dir, partial, old = (out / f"{STATE_FOLDER}{tail}" for tail in ("", ".partial", ".old"))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    partial.mkdir(parents=True, exist_ok=True)  # every rank writes its own random states there
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if exports.ema is not None:
            exports.ema.save(partial)
        (partial / "step.json").write_text(json.dumps({"step": step, "settings": settings}))
        sync_files(partial)  # on disk before the rename makes it the state a resume trusts
        if state_dir.exists():
            shutil.rmtree(old, ignore_errors=True)  # else a leftover state.old blocks the rename
            state_dir.replace(old)
        partial.replace(state_dir)
        sync_folder(out)
        shutil.rmtree(old, ignore_errors=True)
    exports.write(step)


@dataclass
class Exports:
    """The network as `stageN.safetensors` (ours) and `stageN.ckpt` (the original's), with EMA also
    as `stageN_ema.*` with the moving-average weights."""

    accelerator: Any
    net: Any
    out: Path
    stage: int
    config: dict[str, Any]
    ema: MovingAverage | None

    def stems(self) -> list[Path]:
        """The files' names without suffix, in the order they are written."""
        stem = self.out / f"stage{self.stage}"
        return [stem] if self.ema is None else [stem, self.out / f"{stem.name}_ema"]

    def write(self, step: int) -> None:
        trained, *averaged = self.stems()
        self._write(trained, step)
        with _averaged(self.ema):
            for stem in averaged:
                self._write(stem, step)

    def hold(self, step: int) -> bool:
        """Whether every export holds the weights of `step`: each .ckpt records it, and is
        written (whole) after its .safetensors, so the pair is of that step's save."""
        for stem in self.stems():
            try:
                saved = read_weights(stem.with_suffix(".ckpt"), "an export")
            except UserError:  # missing or unreadable
                return False
            if not isinstance(saved, dict) or saved.get("global_step") != step:
                return False
        return True

    def refresh(self, step: int) -> None:
        """Writes the exports of the resumed state (at `step`) unless they already are: a run
        killed after its last state swap, before its exports, kept stale ones for ever."""
        current = self.hold(step)
        self.accelerator.wait_for_everyone()  # every rank has looked before any file is replaced
        if not current:
            self.write(step)

    def _write(self, stem: Path, step: int) -> None:
        state = self.accelerator.get_state_dict(self.net)  # on every rank: a sharded network gathers here
        if self.accelerator.is_main_process:
            unet, width = self.config["unet"], self.config["token_width"]
            save_network(state, stem.with_suffix(".safetensors"), unet, width)
            save_original(state, stem.with_suffix(".ckpt"), step)
