"""The sampling loop: reference picture + three pose videos -> animated video.

DDIM (zero-SNR rescaled betas, v-prediction, linspace spacing) over temporal context windows,
classifier-free guidance against the original's unconditional branch (no reference attention and
zeroed DINOv2 tokens, or, "real", the tokens of an all-black picture), VAE decode in chunks, and the
colour restore to the reference's statistics.

`faithful=True` repeats the original's compute pattern (reference UNet, clip projector and pose
guider re-run for every window of every step, separate conditional and unconditional passes, one
VAE decode of all frames). The default computes the same thing once where it cannot change:
the reference pass is at t=0 so it runs once per video, the tokens are projected once, the pose
features of the fixed sliding windows are kept between steps, and both guidance branches of
`context_batch` windows share one UNet call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline

from realisdance_cli.animator import windows as windowing
from realisdance_cli.animator.network import RealisDanceNet
from realisdance_cli.progress import ProgressFn, no_progress

SCHEDULER_OVERRIDES = {
    "rescale_betas_zero_snr": True,
    "prediction_type": "v_prediction",
    "timestep_spacing": "linspace",
    "clip_sample": False,
}
POSE_CACHE_FRAMES = 256  # beyond this, pose features are recomputed instead of kept (memory)


@dataclass(frozen=True)
class SamplingOptions:
    steps: int = 50
    guidance: float = 2.0
    uncond: Literal["fake", "real"] = "fake"
    context: int = 16
    overlap: int = 4
    stride: int = 1
    schedule: Literal["sliding", "uniform"] = "sliding"
    context_batch: int = 1
    decode_chunk: int = 8
    faithful: bool = False


@dataclass
class PoseVideos:
    """The three conditions, each (1, 3, F, H, W) in [0, 1], in the order the network takes them."""

    dwpose: torch.Tensor
    hamer: torch.Tensor
    smpl: torch.Tensor

    def window(self, frames: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = list(frames)
        return self.dwpose[:, :, index], self.hamer[:, :, index], self.smpl[:, :, index]


def zero_snr_ddim(config: dict) -> DDIMScheduler:
    """The original's DDIM: the base model's betas with the RealisDance overrides."""
    return DDIMScheduler.from_config({**config, **SCHEDULER_OVERRIDES})


def restore_colour(video: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Matches each channel's mean/std to the reference's; (F, 3, H, W) and (3, H, W) in [-1, 1] -> [0, 1]."""
    mean_v = video.mean(dim=(0, 2, 3), keepdim=True)
    std_v = video.std(dim=(0, 2, 3), keepdim=True)
    mean_r = reference.mean(dim=(1, 2), keepdim=True)
    std_r = reference.std(dim=(1, 2), keepdim=True)
    video = (video - mean_v) * std_r / std_v.clamp(min=1e-10) + mean_r
    return (video / 2 + 0.5).clamp(0, 1)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class RealisDancePipeline(DiffusionPipeline):
    """Reference picture + pose videos -> video, with the RealisDance network."""

    def __init__(
        self,
        vae: AutoencoderKL,
        image_encoder: torch.nn.Module,
        network: RealisDanceNet,
        scheduler: DDIMScheduler,
    ) -> None:
        super().__init__()
        self.register_modules(vae=vae, image_encoder=image_encoder, network=network, scheduler=scheduler)

    def to_channels_last(self) -> RealisDancePipeline:
        """Convolution weights in NHWC, the layout cuDNN's fp16/bf16 kernels and oneDNN's CPU
        kernels run fastest in; the results are the same up to rounding (the golden pipeline case
        passes either way)."""
        for model in (self.network, self.vae):
            model.to(memory_format=torch.channels_last)
        return self

    # -- conditions ----------------------------------------------------------------------------

    def _tokens(self, ref_clip: torch.Tensor, uncond: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw DINOv2 tokens of the reference and of the unconditional branch."""
        tokens = self.image_encoder(ref_clip).last_hidden_state
        if uncond == "real":
            return tokens, self.image_encoder(torch.zeros_like(ref_clip)).last_hidden_state
        return tokens, torch.zeros_like(tokens)

    def _reference_latents(self, ref_image: torch.Tensor) -> torch.Tensor:
        posterior = self.vae.encode(ref_image.to(self.vae.dtype)).latent_dist
        return posterior.mode() * self.vae.config.scaling_factor

    # -- one denoising step --------------------------------------------------------------------

    def _faithful_predictions(
        self, x: torch.Tensor, t: torch.Tensor, window: Sequence[int], c: _Conditions
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        poses = c.poses.window(window)
        cond = self.network(x, c.ref_latents, *poses, t, c.tokens)
        if c.uncond_tokens is None:
            return cond, None
        return cond, self.network(x, c.ref_latents, *poses, t, c.uncond_tokens, drop_reference=True)

    def _batched_predictions(
        self, x: torch.Tensor, t: torch.Tensor, group: Sequence[Sequence[int]], c: _Conditions
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One UNet call for `group` windows (stacked in x) and both guidance branches."""
        net = self.network
        features = [torch.cat(level) for level in zip(*(c.pose_features(w) for w in group), strict=True)]
        count, frames = x.shape[0], x.shape[2]
        tokens = c.projected.expand(count, -1, -1)
        rows = torch.zeros(count * frames, dtype=torch.long, device=x.device)
        if c.uncond_projected is not None:
            x = torch.cat([x, x])
            features = [torch.cat([f, f]) for f in features]
            tokens = torch.cat([tokens, c.uncond_projected.expand(count, -1, -1)])
            rows = torch.cat([rows, torch.full_like(rows, -1)])
        out = net.denoise(x, t.expand(x.shape[0]), tokens, features, rows)
        if c.uncond_projected is None:
            return out, None
        cond, uncond = out.chunk(2)
        return cond, uncond

    def _guided_prediction(
        self,
        latents: torch.Tensor,
        t: torch.Tensor,
        windows: list[windowing.Window],
        c: _Conditions,
        o: SamplingOptions,
    ) -> torch.Tensor:
        """Averages every window's predictions per frame, then applies guidance."""
        frames = latents.shape[2]
        cond_sum = torch.zeros_like(latents)
        uncond_sum = torch.zeros_like(latents)
        count = torch.zeros(frames, device=latents.device, dtype=latents.dtype)
        group_size = 1 if o.faithful else o.context_batch
        dtype = self.network.dtype
        for group in _chunks(windows, group_size):
            x = torch.cat([latents[:, :, list(w)] for w in group]).to(dtype)
            if o.faithful:
                cond, uncond = self._faithful_predictions(x, t, group[0], c)
            else:
                cond, uncond = self._batched_predictions(x, t, group, c)
            for i, window in enumerate(group):
                index = list(window)
                cond_sum[:, :, index] += cond[i : i + 1].to(latents.dtype)
                if uncond is not None:
                    uncond_sum[:, :, index] += uncond[i : i + 1].to(latents.dtype)
                count[index] += 1
            c.report(len(group))
        scale = count.view(1, 1, frames, 1, 1)
        if c.uncond_tokens is None:
            return cond_sum / scale
        uncond_mean = uncond_sum / scale
        return uncond_mean + o.guidance * (cond_sum / scale - uncond_mean)

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, latents: torch.Tensor, chunk: int, progress: ProgressFn = no_progress) -> torch.Tensor:
        """(1, 4, F, h, w) latents -> (F, 3, H, W) on the CPU, decoding `chunk` frames at a time."""
        frames = latents[0].transpose(0, 1) / self.vae.config.scaling_factor
        report = _counter(progress, "decoding", len(frames))
        pictures = []
        for part in frames.split(chunk):
            pictures.append(self.vae.decode(part.to(self.vae.dtype)).sample.float().cpu())
            report(len(part))
        return torch.cat(pictures)

    # -- the whole loop ------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        ref_image: torch.Tensor,
        ref_clip: torch.Tensor,
        poses: PoseVideos,
        latents: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        options: SamplingOptions = SamplingOptions(),
        progress: ProgressFn = no_progress,
    ) -> torch.Tensor:
        """The video (F, 3, H, W) in [0, 1] on the CPU.

        `ref_image` (1, 3, H, W) in [-1, 1]; `ref_clip` (1, 3, h, w) DINOv2-normalised; `latents`
        (1, 4, F, H/8, W/8) replaces the initial noise.
        """
        device = self._execution_device
        frames, height, width = poses.dwpose.shape[2:]
        scale = self.vae_scale_factor
        if latents is None:
            shape = (1, self.network.unet_main.config.in_channels, frames, height // scale, width // scale)
            latents = torch.randn(shape, generator=generator, dtype=torch.float32).to(device)
        latents = latents.to(device, torch.float32) * self.scheduler.init_noise_sigma

        dtype = self.network.dtype
        tokens, uncond_tokens = self._tokens(ref_clip.to(device, self.image_encoder.dtype), options.uncond)
        self.scheduler.set_timesteps(options.steps, device=device)
        schedule = windowing.schedule(options.schedule, options.context, options.overlap, options.stride)
        plan = [schedule(i, frames) for i in range(options.steps)]
        c = _Conditions(
            network=self.network,
            poses=PoseVideos(*(v.to(device, dtype) for v in (poses.dwpose, poses.hamer, poses.smpl))),
            ref_latents=self._reference_latents(ref_image.to(device)).to(dtype),
            tokens=tokens.to(dtype),
            uncond_tokens=uncond_tokens.to(dtype) if options.guidance > 1 else None,
            cache_poses=options.schedule == "sliding"
            and frames <= POSE_CACHE_FRAMES
            and not options.faithful,
            report=_counter(progress, "denoising", sum(len(w) for w in plan)),
        )
        try:
            if not options.faithful:  # at t=0 the reference pass never changes: record it once
                self.network.encode_reference(c.ref_latents, c.projected)
            for i, t in enumerate(self.scheduler.timesteps):
                prediction = self._guided_prediction(latents, t, plan[i], c, options)
                latents = self.scheduler.step(prediction, t, latents).prev_sample
        finally:
            self.network.bank.clear()

        video = self.decode(latents, frames if options.faithful else options.decode_chunk, progress)
        return restore_colour(video, ref_image[0].float().cpu())

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)


def _counter(progress: ProgressFn, task: str, total: int) -> Callable[[int], None]:
    done = 0
    progress(task, 0, total)

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(task, done, total)

    return advance


@dataclass
class _Conditions:
    """What stays fixed during sampling."""

    network: RealisDanceNet
    poses: PoseVideos
    ref_latents: torch.Tensor
    tokens: torch.Tensor  # raw DINOv2 tokens (the faithful path projects them on every call)
    uncond_tokens: torch.Tensor | None  # None: no guidance
    cache_poses: bool
    report: Callable[[int], None]
    _features: dict[tuple[int, ...], list[torch.Tensor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        projector = self.network.clip_projector
        self.projected = projector(self.tokens)
        self.uncond_projected = None if self.uncond_tokens is None else projector(self.uncond_tokens)

    def pose_features(self, window: Sequence[int]) -> list[torch.Tensor]:
        key = tuple(window)
        if key in self._features:
            return self._features[key]
        features = self.network.pose_guider(*self.poses.window(window))
        if self.cache_poses:
            self._features[key] = features
        return features
