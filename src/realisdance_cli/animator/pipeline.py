"""The sampling loop: reference picture + three pose videos -> animated video.

DDIM (zero-SNR rescaled betas, v-prediction, linspace spacing) over temporal context windows,
classifier-free guidance against the original's unconditional branch (no reference attention and
zeroed DINOv2 tokens, or, "real", DINOv2's tokens of an all-zero input, a mean-grey picture), VAE
decode in chunks, and the colour restore to the reference's statistics.

`faithful=True` repeats the original's compute pattern (reference UNet, clip projector and pose
guider re-run for every window of every step, separate conditional and unconditional passes, one
VAE decode of all frames). The default computes the same thing once where it cannot change:
the reference pass is at t=0 so it runs once per video, the tokens are projected once, the pose
features of the fixed sliding windows are kept between steps, and both guidance branches of
`context_batch` windows share one UNet call.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DiffusionPipeline, UNet2DConditionModel
from diffusers.utils import BaseOutput

from realisdance_cli.animator import windows as windowing
from realisdance_cli.animator.loading import DINOV2, NETWORK, VAE, original_loading
from realisdance_cli.animator.network import ClipProjector, RealisDanceNet, RealisDanceUNet
from realisdance_cli.animator.pose_guider import PoseGuider
from realisdance_cli.animator.processing import (
    SIZE,
    as_pil,
    check_frame_size,
    clip_input,
    picture_array,
    reference_tensor,
    video_arrays,
    video_tensor,
)
from realisdance_cli.animator.sampling import SamplingOptions
from realisdance_cli.conditions import POSE_NAMES as CONDITIONS
from realisdance_cli.errors import UserError
from realisdance_cli.pipeline_checks import (
    check_latents,
    check_output_type,
    check_pixel_range,
    check_size_given,
    check_step_callback,
    single_generator,
    step_result,
)
from realisdance_cli.progress import Loading, ProgressFn, counter, no_progress, pipeline_bar
from realisdance_cli.state_dicts import loading_from, read_config

if TYPE_CHECKING:
    from realisdance_cli.animator.processing import PictureInput, VideoInput
    from realisdance_cli.pipeline_checks import GeneratorInput, StepCallback

SCHEDULER_OVERRIDES = {
    "rescale_betas_zero_snr": True,
    "prediction_type": "v_prediction",
    "timestep_spacing": "linspace",
    "clip_sample": False,
}
POSE_CACHE_FRAMES = 256  # beyond this, pose features are recomputed instead of kept (memory)


@dataclass
class PoseVideos:
    """The three conditions, each (1, 3, F, H, W) in [0, 1], in the order the network takes them."""

    dwpose: torch.Tensor
    hamer: torch.Tensor
    smpl: torch.Tensor

    def window(
        self, frames: Sequence[int], device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The frames of one window, on the device (the whole videos stay where they are)."""
        index = list(frames)
        return tuple(v[:, :, index].to(device, dtype) for v in (self.dwpose, self.hamer, self.smpl))  # type: ignore[return-value]


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


def _check_pose_videos(pose_videos: object) -> None:
    """A `PoseVideos` or a dict naming the three conditions (a list has no names to read them by)."""
    if isinstance(pose_videos, PoseVideos):
        return
    if not isinstance(pose_videos, Mapping):
        raise UserError(
            f"pose_videos must be a dict of {', '.join(CONDITIONS)} (or a PoseVideos), "
            f"got {type(pose_videos).__name__}."
        )
    missing = [name for name in CONDITIONS if name not in pose_videos]
    if missing:
        raise UserError(f"pose_videos needs {', '.join(CONDITIONS)}; missing {', '.join(missing)}.")


def _frame_size(
    pose_videos: PoseVideos | Mapping[str, Any], height: int | None, width: int | None
) -> tuple[int, int]:
    """The asked size (both sides, see `check_size_given`), else the pose tensors' size, else
    the original's 768x576."""
    if height is not None and width is not None:
        return height, width
    first = pose_videos.dwpose if isinstance(pose_videos, PoseVideos) else pose_videos.get("dwpose")
    size = tuple(first.shape[-2:]) if isinstance(first, torch.Tensor) and first.ndim >= 4 else SIZE
    return int(size[0]), int(size[1])


def _postprocess(video: torch.Tensor, output_type: str) -> Any:
    """(F, 3, H, W) in [0, 1] on the CPU -> the batch of one video `output_type` names."""
    if output_type == "pt":
        return video[None]
    if output_type == "pil":
        return [as_pil(video)]
    return video.permute(0, 2, 3, 1)[None].numpy()


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class RealisDancePipelineOutput(BaseOutput):
    """`frames`: (1, F, H, W, 3) numpy in [0, 1], (1, F, 3, H, W) tensor in [0, 1], [[PIL images]],
    or the final latents (1, 4, F, H/8, W/8), by `output_type`."""

    frames: Any


class RealisDancePipeline(DiffusionPipeline):
    """Reference picture + pose videos -> video, with the RealisDance network.

    Load with `from_pretrained(folder_or_hub_id)` (a folder `save_pretrained` or
    `rdance weights convert` wrote) or `from_original(checkpoint, base_model, dinov2)` (the
    authors' release). The reference UNet and DINOv2 run once per video, so with
    `enable_model_cpu_offload()` they leave the GPU before denoising starts.
    """

    model_cpu_offload_seq = "image_encoder->projector->reference_unet->pose_guider->unet->vae"
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents"]

    def __init__(
        self,
        vae: AutoencoderKL,
        image_encoder: Any,
        reference_unet: UNet2DConditionModel,
        unet: RealisDanceUNet,
        pose_guider: PoseGuider,
        projector: ClipProjector,
        scheduler: DDIMScheduler,
    ) -> None:
        super().__init__()
        self.register_modules(
            vae=vae,
            image_encoder=image_encoder,
            reference_unet=reference_unet,
            unet=unet,
            pose_guider=pose_guider,
            projector=projector,
            scheduler=scheduler,
        )
        self.network = RealisDanceNet(reference_unet, unet, pose_guider, projector)

    @classmethod
    def from_network(
        cls, network: RealisDanceNet, vae: AutoencoderKL, image_encoder: Any, scheduler: DDIMScheduler
    ) -> RealisDancePipeline:
        """A pipeline around a network being trained (its parts are shared, not copied)."""
        return cls(
            vae, image_encoder, network.unet_ref, network.unet_main, network.pose_guider,
            network.clip_projector, scheduler,
        )  # fmt: skip

    @classmethod
    def from_original(
        cls,
        checkpoint: str | os.PathLike[str],
        base_model: str | os.PathLike[str],
        dinov2: str | os.PathLike[str],
        dtype: torch.dtype | None = None,
        progress: ProgressFn = no_progress,
    ) -> RealisDancePipeline:
        """The authors' release: their stage-2 `.ckpt` (or a `.safetensors` `rdance train` wrote), the SD-1.5
        base folder (its VAE and scheduler; its UNet config) and the DINOv2 folder. `progress` is
        told of the megabytes of weights loaded, part by part."""
        paths = Path(checkpoint), Path(base_model), Path(dinov2)
        return cls.load_original(*paths, dtype, original_loading(progress, *paths))

    @classmethod
    def load_original(
        cls, checkpoint: Path, base: Path, dinov2: Path, dtype: torch.dtype | None, loading: Loading
    ) -> RealisDancePipeline:
        """`from_original` with its `loading` task already reported (`rdance animate` reports it
        before importing this module)."""
        from transformers import Dinov2Model

        from realisdance_cli.animator.checkpoint import load_network

        with loading.part(DINOV2):
            encoder = Dinov2Model.from_pretrained(dinov2, dtype=dtype)
        with loading.part(NETWORK, settings=base / "unet"):
            unet_config = read_config(base / "unet" / "config.json")
            network = load_network(checkpoint, unet_config, encoder.config.hidden_size)
        with loading.part(VAE):
            vae = AutoencoderKL.from_pretrained(base / "vae", dtype=dtype)
        with loading_from(base / "scheduler"):
            scheduler = zero_snr_ddim(read_config(base / "scheduler" / "scheduler_config.json"))
        if dtype is not None:
            network.to(dtype)
        return cls.from_network(network, vae, encoder, scheduler)

    def to_channels_last(self) -> RealisDancePipeline:
        """Convolution weights in NHWC, the layout cuDNN's fp16/bf16 kernels and oneDNN's CPU
        kernels run fastest in; the results are the same up to rounding (the golden pipeline case
        passes either way)."""
        for model in (self.reference_unet, self.unet, self.pose_guider, self.projector, self.vae):
            model.to(memory_format=torch.channels_last)
        return self

    def enable_vae_slicing(self) -> None:
        """Decode one frame at a time (least memory)."""
        self.vae.enable_slicing()

    def disable_vae_slicing(self) -> None:
        self.vae.disable_slicing()

    def enable_vae_tiling(self) -> None:
        """Encode and decode in overlapping tiles (large frames in little memory)."""
        self.vae.enable_tiling()

    def disable_vae_tiling(self) -> None:
        self.vae.disable_tiling()

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    # -- inputs --------------------------------------------------------------------------------

    def check_inputs(
        self,
        pose_videos: PoseVideos | Mapping[str, VideoInput],
        height: int | None,
        width: int | None,
        output_type: str,
        options: SamplingOptions,
        callback_on_step_end_tensor_inputs: Sequence[str],
        generator: GeneratorInput = None,
        clip_image: torch.Tensor | None = None,
        callback_on_step_end: StepCallback | None = None,
    ) -> None:
        """Every setting that needs no picture, checked before any work: one clear error."""
        _check_pose_videos(pose_videos)
        check_size_given(height, width, "the pose tensors' size (else 768x576)")
        check_frame_size(*_frame_size(pose_videos, height, width), "height and width")
        options.check(most_steps=self.scheduler.config.num_train_timesteps)
        single_generator(generator)
        if clip_image is not None:
            self._check_clip_image(clip_image)
        check_output_type(output_type)
        check_step_callback(
            callback_on_step_end, callback_on_step_end_tensor_inputs, self._callback_tensor_inputs
        )

    def _check_clip_image(self, clip_image: object) -> None:
        """DINOv2 takes a float batch of one with room for a patch each way; else it fails deep inside."""
        channels, patch = self.image_encoder.config.num_channels, self.image_encoder.config.patch_size
        tensor = clip_image if isinstance(clip_image, torch.Tensor) else None
        if (
            tensor is not None
            and tensor.is_floating_point()
            and tensor.ndim == 4
            and tuple(tensor.shape[:2]) == (1, channels)
            and min(tensor.shape[2:]) >= patch
        ):
            return
        got = type(clip_image).__name__ if tensor is None else f"{tuple(tensor.shape)} {tensor.dtype}"
        raise UserError(
            f"clip_image must be a float tensor (1, {channels}, h, w), ImageNet-normalised, with h and w "
            f"at least {patch}, got {got}."
        )

    def prepare_poses(
        self, pose_videos: PoseVideos | Mapping[str, VideoInput], size: tuple[int, int]
    ) -> PoseVideos:
        """The three conditions (1, 3, F, H, W) in [0, 1] on the CPU; they move to the device per window.
        `pose_videos` has passed `check_inputs`."""
        if isinstance(pose_videos, PoseVideos):
            videos = pose_videos
            for name in CONDITIONS:
                check_pixel_range(getattr(videos, name), f"pose_videos.{name}")
        else:
            videos = PoseVideos(
                *(video_tensor(video_arrays(pose_videos[n], size, f"the {n} pose video")) for n in CONDITIONS)
            )
        shapes = {name: tuple(getattr(videos, name).shape) for name in CONDITIONS}
        frames = {shape[2] for shape in shapes.values()}
        if len(set(shapes.values())) > 1 or not all(len(s) == 5 and s[1] == 3 for s in shapes.values()):
            listed = ", ".join(f"{name} {shape}" for name, shape in shapes.items())
            raise UserError(f"the pose videos must have the same frame count and size, got {listed}.")
        if frames == {0}:
            raise UserError("the pose videos have no frames to animate.")
        if tuple(videos.dwpose.shape[3:]) != size:
            raise UserError(
                f"the pose videos are {videos.dwpose.shape[3]}x{videos.dwpose.shape[4]}, "
                f"not {size[0]}x{size[1]} (height x width)."
            )
        return videos

    def encode_image(self, clip: torch.Tensor, uncond: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw DINOv2 tokens of the reference and of the unconditional branch."""
        clip = clip.to(self._execution_device, self.image_encoder.dtype)
        tokens = self.image_encoder(clip).last_hidden_state
        if uncond == "real":
            return tokens, self.image_encoder(torch.zeros_like(clip)).last_hidden_state
        return tokens, torch.zeros_like(tokens)

    def encode_reference(self, reference: torch.Tensor) -> torch.Tensor:
        """The reference picture's VAE latents (mode of the posterior, scaled)."""
        reference = reference.to(self._execution_device, self.vae.dtype)
        return self.vae.encode(reference).latent_dist.mode() * self.vae.config.scaling_factor

    def prepare_latents(
        self, shape: tuple[int, ...], generator: GeneratorInput, latents: torch.Tensor | None
    ) -> torch.Tensor:
        """Initial noise in float32, drawn where `generator` lives (a CPU generator, the default,
        gives the same video on any machine)."""
        generator = single_generator(generator)
        check_latents(latents, shape)
        if latents is None:
            device = generator.device if generator is not None else torch.device("cpu")
            latents = torch.randn(shape, generator=generator, dtype=torch.float32, device=device)
        return latents.to(self._execution_device, torch.float32) * self.scheduler.init_noise_sigma

    # -- one denoising step --------------------------------------------------------------------

    def _faithful_predictions(
        self, x: torch.Tensor, t: torch.Tensor, window: Sequence[int], c: _Conditions
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        poses = c.poses.window(window, x.device, x.dtype)
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

    def decode(self, latents: torch.Tensor, chunk: int, progress: ProgressFn) -> torch.Tensor:
        """(1, 4, F, h, w) latents -> (F, 3, H, W) on the CPU, decoding `chunk` frames at a time."""
        frames = latents[0].transpose(0, 1) / self.vae.config.scaling_factor
        report = counter(progress, "decoding", len(frames))
        pictures = []
        for part in frames.split(chunk):
            pictures.append(self.vae.decode(part.to(self.vae.dtype)).sample.float().cpu())
            report(len(part))
        return torch.cat(pictures)

    # -- the whole loop ------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        image: PictureInput,
        pose_videos: PoseVideos | Mapping[str, VideoInput],
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 2.0,
        generator: GeneratorInput = None,
        latents: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: StepCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        unconditional: Literal["fake", "real"] = "fake",
        context_frames: int = 16,
        context_overlap: int = 4,
        context_stride: int = 1,
        context_schedule: Literal["sliding", "uniform"] = "sliding",
        context_batch_size: int = 1,
        decode_chunk_size: int = 8,
        faithful: bool = False,
        clip_image: torch.Tensor | None = None,
        progress: ProgressFn | None = None,
    ) -> RealisDancePipelineOutput | tuple:
        """Animate `image` with `pose_videos` ({"dwpose", "hamer", "smpl"}: each frames, an array,
        a tensor (F, 3, H, W) in [0, 1] or a video file; or a `PoseVideos`).

        Pictures are scaled to cover height x width (both or neither; default: the pose tensors'
        size, else 768x576) and centre-cropped; tensors are taken as they are, and must hold values
        in [0, 1]. `generator`: one, or diffusers' list of one. Temporal windows of
        `context_frames` frames overlap by `context_overlap`; `unconditional` picks the guidance
        branch (zeroed DINOv2 tokens, the original's, or its tokens of an all-zero, mean-grey input);
        `faithful` repeats the original's compute pattern (slower, same video). `clip_image`
        replaces DINOv2's input (1, 3, h, w), normalised; `progress(task, done, total)` replaces
        the progress bar. `callback_on_step_end` returns a dict of the tensors it replaces (None:
        none). A bad input is one `UserError`, before any network runs.
        """
        options = SamplingOptions(
            steps=num_inference_steps,
            guidance=guidance_scale,
            uncond=unconditional,
            context=context_frames,
            overlap=context_overlap,
            stride=context_stride,
            schedule=context_schedule,
            context_batch=context_batch_size,
            decode_chunk=decode_chunk_size,
            faithful=faithful,
        )
        self.check_inputs(
            pose_videos, height, width, output_type, options, callback_on_step_end_tensor_inputs,
            generator, clip_image, callback_on_step_end,
        )  # fmt: skip
        height, width = _frame_size(pose_videos, height, width)
        picture = picture_array(image, (height, width))
        reference = reference_tensor(picture)
        clip = clip_image if clip_image is not None else clip_input(picture)[None]
        poses = self.prepare_poses(pose_videos, (height, width))
        frames = poses.dwpose.shape[2]
        shape = (
            1,
            self.unet.config.in_channels,
            frames,
            height // self.vae_scale_factor,
            width // self.vae_scale_factor,
        )
        latents = self.prepare_latents(shape, generator, latents)  # its shape said before any network runs
        progress = progress or pipeline_bar(self, num_inference_steps)

        tokens, uncond_tokens = self.encode_image(clip, options.uncond if options.guidance > 1 else "fake")
        dtype = self.network.dtype
        self.scheduler.set_timesteps(options.steps, device=self._execution_device)
        schedule = windowing.schedule(options.schedule, options.context, options.overlap, options.stride)
        plan = [schedule(i, frames) for i in range(options.steps)]
        c = _Conditions(
            network=self.network,
            device=self._execution_device,
            poses=poses,
            ref_latents=self.encode_reference(reference).to(dtype),
            tokens=tokens.to(dtype),
            uncond_tokens=uncond_tokens.to(dtype) if options.guidance > 1 else None,
            cache_poses=options.schedule == "sliding"
            and frames <= POSE_CACHE_FRAMES
            and not options.faithful,
            report=counter(progress, "denoising", sum(len(w) for w in plan)),
        )
        try:
            if not options.faithful:  # at t=0 the reference pass never changes: record it once
                self.network.encode_reference(c.ref_latents, c.projected)
                c.prepare(plan[0])
            for i, t in enumerate(self.scheduler.timesteps):
                prediction = self._guided_prediction(latents, t, plan[i], c, options)
                latents = self.scheduler.step(prediction, t, latents).prev_sample
                if callback_on_step_end is not None:
                    state = {"latents": latents}
                    named = {name: state[name] for name in callback_on_step_end_tensor_inputs}
                    latents = step_result(callback_on_step_end(self, i, t, named)).get("latents", latents)
        finally:
            self.network.bank.clear()
            c.release()

        if output_type == "latent":
            video: Any = latents
        else:
            decoded = self.decode(latents, frames if options.faithful else options.decode_chunk, progress)
            video = _postprocess(restore_colour(decoded, reference[0]), output_type)
        self.maybe_free_model_hooks()
        return RealisDancePipelineOutput(frames=video) if return_dict else (video,)


@dataclass
class _Conditions:
    """What stays fixed during sampling."""

    network: RealisDanceNet
    device: torch.device  # where the networks run (with model offload, not where they rest)
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
        net = self.network
        features = net.pose_guider(*self.poses.window(window, self.device, net.dtype))
        if self.cache_poses:
            self._features[key] = features
        return features

    def prepare(self, windows: Sequence[Sequence[int]]) -> None:
        """Computes the cached pose features of `windows` up front (with model offload the pose
        guider then leaves the GPU once, not once per window)."""
        if self.cache_poses:
            for window in windows:
                self.pose_features(window)

    def release(self) -> None:
        """Frees the pose features before decoding."""
        self._features.clear()
