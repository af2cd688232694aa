"""The RealisDance-DiT sampling loop: reference picture + SMPL-CS and HaMeR videos + a prompt ->
video, as the authors' `RealisDanceDiTPipeline` computes it.

Flow matching with the scheduler the weights name (UniPC, flow shift 5, in the release),
classifier-free guidance against the negative prompt with CLIP tokens and VAE latents of an
all-zero reference (the pose is kept), Wan's I2V input layout (noise latents, 4 zero mask
channels, the latents of an all-zero video), the VAE's mode normalised by its latent statistics.

`faithful=True` repeats the original's compute pattern (every condition re-encoded by every
call, a separate unconditional call). The default encodes the conditions once per video and
runs both guidance branches as one batch; the results agree to float rounding. The frames come
back on the CPU.
"""

from __future__ import annotations

import html
import inspect
import logging
import math
import numbers
import os
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np
import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, UniPCMultistepScheduler
from diffusers.pipelines.wan.pipeline_output import WanPipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor

from realisdance_cli.animator.windows import sliding
from realisdance_cli.dit.processing import (
    clip_view,
    picture_tensor,
    reference_size,
    resize_crop,
    resize_to_area,
    video_size,
    video_tensor,
)
from realisdance_cli.dit.teacache import TeaCache
from realisdance_cli.dit.transformer import DiTConditions, RealisDanceDiT, check_positions_fit
from realisdance_cli.dit.vae import decode_streamed, encode_streamed
from realisdance_cli.dit.windows import blend_weights, check_context
from realisdance_cli.errors import UserError
from realisdance_cli.pipeline_checks import (
    check_guidance,
    check_latents,
    check_output_type,
    check_size_given,
    check_step_callback,
    check_steps,
    check_whole,
    single,
    single_generator,
    step_result,
)
from realisdance_cli.progress import Loading, ProgressFn, counter, no_progress, pipeline_bar
from realisdance_cli.state_dicts import read_config

if TYPE_CHECKING:
    from realisdance_cli.dit.processing import PictureInput, VideoInput
    from realisdance_cli.pipeline_checks import GeneratorInput, StepCallback

logger = logging.getLogger(__name__)

WINDOW_FRAMES = 81  # the clip length the network was trained on
WINDOW_OVERLAP = 16  # video frames shared by neighbouring windows (4 latent frames)


def clean_prompt(text: str) -> str:
    """The original's prompt cleaning: mojibake fixed (ftfy, when installed), HTML entities
    decoded twice, runs of white space made one space."""
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:
        pass
    return re.sub(r"\s+", " ", html.unescape(html.unescape(text)).strip()).strip()


def single_text(text: str | Sequence[str] | None, name: str) -> str | None:
    """The one text of the batch of one video (see `pipeline_checks.single`)."""
    return single(text, name, str, "str")


def _check_num_frames(num_frames: object) -> None:
    """None (every pose frame) or a count: 0 would silently mean every frame, -3 fail in torch."""
    if num_frames is None:
        return
    check_whole(num_frames, "num_frames")
    assert isinstance(num_frames, numbers.Integral)
    if int(num_frames) < 1:
        raise UserError(f"num_frames must be 1 or more (None for every pose frame), got {num_frames}.")


def _check_teacache(threshold: object) -> None:
    """None (off) or a positive number: 0 or less would silently mean off, NaN never skip."""
    if threshold is None:
        return
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, numbers.Real)
        or not (math.isfinite(threshold) and float(threshold) > 0)
    ):
        raise UserError(
            f"teacache_threshold must be a number more than 0 (None turns TeaCache off), got {threshold!r}."
        )


def scheduler_from_folder(folder: Path) -> Any:
    """The scheduler its config names (`_class_name`, a diffusers scheduler)."""
    import diffusers
    from diffusers import SchedulerMixin

    config = folder / "scheduler_config.json"
    name = read_config(config).get("_class_name", "")
    found = getattr(diffusers, name, None)
    if not (isinstance(found, type) and issubclass(found, SchedulerMixin)):
        raise UserError(f"{config} names {name!r}, which is not a diffusers scheduler.")
    scheduler_class: Any = found
    return scheduler_class.from_pretrained(folder)


def resolve_dtype(dtype: torch.dtype | None, torch_dtype: torch.dtype | None) -> torch.dtype | None:
    """`torch_dtype`, the name diffusers and transformers took before `dtype` (and still take),
    as `dtype`, as `DiffusionPipeline.from_pretrained` reads it; both at once is a mistake."""
    if torch_dtype is None:
        return dtype
    if dtype is not None:
        raise ValueError("give dtype or torch_dtype (its older name), not both.")
    return torch_dtype


def _loaders(dtype: torch.dtype | None, variant: str | None) -> dict[str, Callable[[Path], Any]]:
    """How each component loads from its subfolder, by name. As the original: the VAE and CLIP in
    float32, the transformer and the text encoder in `dtype`."""
    from transformers import AutoTokenizer, CLIPVisionModel, UMT5EncoderModel

    return {
        "tokenizer": lambda path: AutoTokenizer.from_pretrained(path),
        "text_encoder": lambda path: UMT5EncoderModel.from_pretrained(path, dtype=dtype, variant=variant),
        "image_encoder": lambda path: CLIPVisionModel.from_pretrained(
            path, dtype=torch.float32, variant=variant
        ),
        "transformer": lambda path: RealisDanceDiT.from_pretrained(path, dtype=dtype, variant=variant),
        "vae": lambda path: AutoencoderKLWan.from_pretrained(path, dtype=torch.float32, variant=variant),
        "scheduler": scheduler_from_folder,
    }


def _check_keywords(method: Callable[..., Any], components: dict[str, Any], names: Collection[str]) -> None:
    """Every extra keyword names a component: a misspelt option would otherwise be taken for one,
    after minutes of loading the others."""
    unknown = [name for name in components if name not in names]
    if unknown:
        _folder, *rest = inspect.signature(method).parameters.values()
        options = [
            parameter.name for parameter in rest if parameter.kind is not inspect.Parameter.VAR_KEYWORD
        ]
        raise TypeError(
            f"from_pretrained() got an unexpected keyword argument {unknown[0]!r}; it takes the components "
            f"{', '.join(names)} and the options {', '.join(options)}."
        )


def _located(name: str | os.PathLike[str], hub: dict[str, Any]) -> Path:
    """The folder `name` names: a folder here, else the snapshot of the hub model of that id. A
    name that cannot be a hub id (more than one "/", a leading "." or "/") is a missing folder,
    said as such, not sent to the hub."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    path = Path(name)
    if path.is_dir():
        return path
    if path.exists():
        raise UserError(f"{path} is a file, not a RealisDance-DiT folder.")
    try:
        validate_repo_id(os.fspath(name))
    except HFValidationError:
        raise UserError(f"the folder {path} does not exist.") from None
    return _snapshot(os.fspath(name), hub)


def _snapshot(repo: str, hub: dict[str, Any]) -> Path:
    """The hub model `repo`, downloaded or from the cache; one sentence when it is neither there
    nor a folder here (a typed local path looks like a hub id as often as not)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(repo, **hub))
    except GatedRepoError:  # there, but not open to this token: the hub's sentence says how to get access
        raise
    except RepositoryNotFoundError:
        raise UserError(
            f"there is no folder {repo}, and the hub has no model {repo} (a private one needs token=)."
        ) from None
    except LocalEntryNotFoundError:
        raise UserError(
            f"there is no folder {repo}, and the hub model {repo} is not in the cache (the hub cannot be "
            "reached, or local_files_only is set)."
        ) from None


@dataclass
class RealisDanceDiTPipelineOutput(WanPipelineOutput):
    """The frames, and how many transformer block passes TeaCache skipped (0 with it off)."""

    teacache_skipped: int = 0


class Branch(NamedTuple):
    """One side of classifier-free guidance: text, CLIP tokens and reference latents."""

    text: torch.Tensor
    image_tokens: torch.Tensor
    reference: torch.Tensor


class RealisDanceDiTPipeline(DiffusionPipeline):
    """Reference picture + SMPL-CS and HaMeR videos + prompt -> video, with RealisDance-DiT.

    `from_pretrained(folder_or_hub_id)` reads the release's layout (`transformer/`, `vae/`,
    `image_encoder/`, `text_encoder/`, `tokenizer/`, `scheduler/`; a model_index.json is not
    needed). As the original: the VAE and CLIP run in float32, the transformer and the text
    encoder in `dtype` (bfloat16 for the release).
    """

    model_cpu_offload_seq = "text_encoder->image_encoder->transformer->vae"
    _optional_components: ClassVar[list[str]] = ["tokenizer", "text_encoder"]
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents"]

    def __init__(
        self,
        tokenizer: Any,
        text_encoder: Any,
        image_encoder: Any,
        transformer: RealisDanceDiT,
        vae: AutoencoderKLWan,
        scheduler: Any,
    ):
        super().__init__()
        self.register_modules(
            tokenizer=tokenizer,
            text_encoder=text_encoder,
            image_encoder=image_encoder,
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
        )
        self.temporal_factor = 2 ** sum(vae.config.temperal_downsample)
        self.spatial_factor = 2 ** len(vae.config.temperal_downsample)
        self.video_processor = VideoProcessor(vae_scale_factor=self.spatial_factor)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        dtype: torch.dtype | None = None,
        progress: ProgressFn = no_progress,
        *,
        torch_dtype: torch.dtype | None = None,
        variant: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        token: str | bool | None = None,
        local_files_only: bool = False,
        force_download: bool = False,
        **components: Any,
    ) -> RealisDanceDiTPipeline:
        """Each component from its subfolder (a hub id is downloaded first, with `revision`,
        `cache_dir`, `token`, `local_files_only` and `force_download`); components given as
        keyword arguments are used instead, `None` leaves an optional one out. `torch_dtype` is
        diffusers' older name of `dtype`; `variant` picks the weight files of that name
        (`model.fp16.safetensors`). `progress` is told of the megabytes of weights loaded,
        component by component (minutes for the 14B release). A keyword that is none of these is
        a TypeError before anything loads."""
        loaders = _loaders(resolve_dtype(dtype, torch_dtype), variant)
        _check_keywords(cls.from_pretrained, components, loaders)
        hub = {
            "revision": revision,
            "cache_dir": cache_dir,
            "token": token,
            "local_files_only": local_files_only,
            "force_download": force_download,
        }
        folder = _located(pretrained_model_name_or_path, hub)
        wanted = [name for name in loaders if name not in components]
        missing = [
            f"{name}/"
            for name in wanted
            if not (folder / name).is_dir() and name not in cls._optional_components
        ]
        if missing:
            raise UserError(f"{folder} is not a RealisDance-DiT folder: it has no {', '.join(missing)}.")
        loading = Loading(progress, "loading RealisDance-DiT (MB)", {name: folder / name for name in wanted})
        for name in wanted:
            with loading.part(name):
                components[name] = loaders[name](folder / name) if (folder / name).is_dir() else None
        return cls(**components)

    # -- the steps of the algorithm --------------------------------------------------------------

    def set_timesteps(self, steps: int) -> None:
        """The scheduler's steps. UniPC with flow sigmas gets the sigmas of diffusers 0.33, which
        the original ran (`1 - linspace(1, 1/N, steps + 1)`, reversed, the last dropped, then
        shifted); later diffusers start at sigma 1 - 1e-6 instead of 0.999 and land elsewhere."""
        config = self.scheduler.config
        if (
            isinstance(self.scheduler, UniPCMultistepScheduler)
            and config.use_flow_sigmas
            and not config.get("use_dynamic_shifting")
        ):
            unshifted = np.flip(1.0 - np.linspace(1, 1 / config.num_train_timesteps, steps + 1))[:-1]
            self.scheduler.set_timesteps(sigmas=unshifted.copy(), device=self._execution_device)
        else:
            self.scheduler.set_timesteps(steps, device=self._execution_device)

    @property
    def size_multiple(self) -> int:
        """Pixels per side of a transformer patch (the VAE's cells times the patch)."""
        return self.spatial_factor * self.transformer.config.patch_size[1]

    def check_inputs(
        self,
        prompt: str | Sequence[str] | None,
        negative_prompt: str | Sequence[str] | None,
        prompt_embeds: torch.Tensor | None,
        negative_prompt_embeds: torch.Tensor | None,
        guidance_scale: float,
        height: int | None,
        width: int | None,
        max_resolution: int,
        num_frames: int | None,
        num_inference_steps: int,
        generator: GeneratorInput,
        output_type: str,
        callback_on_step_end: StepCallback | None,
        callback_on_step_end_tensor_inputs: Sequence[str],
        teacache_threshold: float | None,
        context: tuple[int, int],
        faithful: bool = False,
        max_sequence_length: int = 512,
    ) -> None:
        """Every setting that needs no picture, before any video is read; one sentence each."""
        check_guidance(guidance_scale)
        self._check_prompts(
            prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, guidance_scale > 1, faithful,
            max_sequence_length,
        )  # fmt: skip
        self._check_size(height, width, max_resolution)
        _check_num_frames(num_frames)
        check_steps(num_inference_steps, self.scheduler.config.get("num_train_timesteps"))
        single_generator(generator)
        check_output_type(output_type)
        check_step_callback(
            callback_on_step_end, callback_on_step_end_tensor_inputs, self._callback_tensor_inputs
        )
        _check_teacache(teacache_threshold)
        check_whole(context[0], "context_frames")
        check_whole(context[1], "context_overlap")
        check_context(*context, self.temporal_factor)

    def _check_prompts(
        self,
        prompt: str | Sequence[str] | None,
        negative_prompt: str | Sequence[str] | None,
        prompt_embeds: torch.Tensor | None,
        negative_prompt_embeds: torch.Tensor | None,
        guided: bool,
        faithful: bool,
        max_sequence_length: int,
    ) -> None:
        """One prompt or its embeddings; a negative one only where guidance uses it (the original
        ignores it at guidance 1 or less), encodable, and both of one shape to run as one batch."""
        prompt, negative_prompt = (
            single_text(prompt, "prompt"),
            single_text(negative_prompt, "negative_prompt"),
        )
        if (prompt is None) == (prompt_embeds is None):
            raise UserError("give a prompt or prompt_embeds (exactly one).")
        written = bool((negative_prompt or "").strip())  # a blank one is the default: none
        if not guided and (written or negative_prompt_embeds is not None):
            raise UserError(
                "guidance_scale 1 turns guidance off, which would ignore the negative prompt: leave "
                "negative_prompt and negative_prompt_embeds out, or give guidance_scale above 1."
            )
        if written and negative_prompt_embeds is not None:
            raise UserError("give negative_prompt or negative_prompt_embeds, not both.")
        if self.tokenizer is None or self.text_encoder is None:
            if prompt is not None:
                raise UserError(
                    "this pipeline has no tokenizer and text encoder; give prompt_embeds instead of a prompt."
                )
            if guided and negative_prompt_embeds is None:
                raise UserError(
                    "this pipeline has no tokenizer and text encoder; give negative_prompt_embeds too "
                    "(guidance above 1 needs them)."
                )
        encoded = (1, max_sequence_length, self.transformer.config.text_dim)  # a prompt's, encoded
        positive = self._embeds_shape(prompt_embeds, "prompt_embeds") or encoded
        negative = self._embeds_shape(negative_prompt_embeds, "negative_prompt_embeds") or encoded
        if guided and not faithful and positive != negative:
            raise UserError(
                f"prompt_embeds and negative_prompt_embeds must have one shape to run as one batch, got "
                f"{positive} and {negative}; pad them to one length (the text encoder's are "
                "max_sequence_length long) or pass faithful=True."
            )

    def _embeds_shape(self, embeds: object, name: str) -> tuple[int, ...] | None:
        """The shape of given text embeddings, (1, tokens, text_dim) for the one video; None if not given."""
        if embeds is None:
            return None
        text_dim = self.transformer.config.text_dim
        shape = tuple(embeds.shape) if isinstance(embeds, torch.Tensor) else None
        if shape is None or len(shape) != 3 or shape[0] != 1 or shape[2] != text_dim:
            got = shape if shape is not None else type(embeds).__name__
            raise UserError(f"{name} must be a tensor (1, tokens, {text_dim}) for the one video, got {got}.")
        return shape

    def _check_size(self, height: int | None, width: int | None, max_resolution: int) -> None:
        """height and width together in whole patches, or the area to find them by."""
        check_size_given(height, width, "max_resolution pixels in the SMPL-CS video's aspect")
        multiple = self.size_multiple
        if height is not None and width is not None:
            if height % multiple or width % multiple or min(height, width) < multiple:
                raise UserError(f"height and width must be multiples of {multiple}, got {height}x{width}.")
            return
        check_whole(max_resolution, "max_resolution", " of pixels")
        if max_resolution < multiple**2:
            raise UserError(
                f"max_resolution must be at least {multiple**2} pixels (one {multiple}x{multiple} patch), "
                f"got {max_resolution}."
            )

    def output_size(
        self, smpl: torch.Tensor, height: int | None, width: int | None, max_resolution: int
    ) -> tuple[int, int]:
        """height x width if given, else `max_resolution` pixels in the SMPL-CS video's aspect (the
        original's rule), or one sentence when that aspect leaves a side without a whole patch."""
        if height is not None and width is not None:
            return height, width
        multiple = self.size_multiple
        size = video_size(smpl.shape[3], smpl.shape[4], max_resolution, multiple)
        if min(size) < multiple:
            raise UserError(
                f"max_resolution {max_resolution} is too small for the SMPL-CS video's aspect "
                f"({smpl.shape[3]}x{smpl.shape[4]}, height x width): a side would be under {multiple} "
                "pixels; give a larger max_resolution, or height and width."
            )
        return size

    def check_videos(
        self, image: torch.Tensor, smpl: torch.Tensor, hamer: torch.Tensor, size: tuple[int, int], window: int
    ) -> None:
        """The loaded inputs (see `check_inputs` for the rest): one video, pose videos of one length,
        a reference that scales to whole patches, and token grids (`window` frames) the rotary tables
        hold."""
        if image.shape[0] != 1 or smpl.shape[0] != 1 or hamer.shape[0] != 1:
            raise UserError("the pipeline animates one video at a time: give a batch of one.")
        if smpl.shape[2] != hamer.shape[2]:
            raise UserError(
                f"the SMPL-CS and HaMeR videos must have the same number of frames, got {smpl.shape[2]} "
                f"and {hamer.shape[2]}."
            )
        reference = reference_size((image.shape[3], image.shape[4]), size, self.size_multiple)
        check_positions_fit(
            self.transformer.config, window, size, reference,
            temporal_factor=self.temporal_factor, spatial_factor=self.spatial_factor,
        )  # fmt: skip

    def encode_prompt(self, prompt: str, max_sequence_length: int) -> torch.Tensor:
        """UMT5's embeddings (1, max_sequence_length, dim) of the cleaned prompt, cut to its own
        length and zero-padded back (as the original: padding tokens carry no embedding)."""
        assert self.tokenizer is not None and self.text_encoder is not None
        tokens = self.tokenizer(
            [clean_prompt(prompt)],
            padding="max_length",
            max_length=max_sequence_length,
            truncation=True,
            add_special_tokens=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        return self.text_embeddings(tokens.input_ids, tokens.attention_mask)

    def text_embeddings(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens -> (B, L, dim): each row's embeddings up to its length, zeros after."""
        device = self._execution_device
        hidden = self.text_encoder(input_ids.to(device), attention_mask.to(device)).last_hidden_state
        keep = (
            torch.arange(hidden.shape[1], device=device)[None]
            < attention_mask.to(device).gt(0).sum(1)[:, None]
        )
        return hidden * keep[..., None].to(hidden.dtype)

    def encode_image(self, picture: torch.Tensor) -> torch.Tensor:
        """CLIP's second-to-last hidden states (1, 257, dim) of the reference (1, 3, 1, H, W)."""
        pixels = clip_view(picture).to(self._execution_device, self.image_encoder.dtype)
        return self.image_encoder(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]

    def _latent_statistics(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE's per-channel latent mean and 1 / std (1, C, 1, 1, 1), as the original holds
        them (it multiplies by the inverse to normalise and divides by it to restore)."""
        config = self.vae.config
        mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1, 1).to(like)
        return mean, 1.0 / torch.tensor(config.latents_std).view(1, -1, 1, 1, 1).to(like)

    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """VAE latents (mode), normalised by the VAE's latent statistics; the video may stay on
        the CPU (it reaches the accelerator a few frames at a time)."""
        latents = encode_streamed(self.vae, video, self._execution_device)
        mean, inverse_std = self._latent_statistics(latents)
        return (latents - mean) * inverse_std

    def decode(self, latents: torch.Tensor, progress: ProgressFn = no_progress) -> torch.Tensor:
        """Normalised latents -> the video (1, 3, F, H, W) in [-1, 1] on the CPU (`progress`
        told of each latent frame decoded, as "decoding": minutes for a long video)."""
        latents = latents.to(self.vae.dtype)
        mean, inverse_std = self._latent_statistics(latents)
        report = counter(progress, "decoding", latents.shape[2])
        return decode_streamed(self.vae, latents / inverse_std + mean, report)

    def i2v_condition(self, frames: int, size: tuple[int, int]) -> torch.Tensor:
        """Wan I2V's image-condition channels for a clip of `frames` frames with no image: 4 zero
        mask channels, then the latents of an all-zero video."""
        latents = self.encode_video(torch.zeros(1, 3, frames, *size))
        return torch.cat([latents.new_zeros(1, 4, *latents.shape[2:]), latents], dim=1)

    def _frame_count(self, frames: int, num_frames: int | None) -> int:
        """The frames to make: `num_frames` (default: all pose frames), down to 4k+1."""
        wanted = min(frames, num_frames or frames)
        usable = (wanted - 1) // self.temporal_factor * self.temporal_factor + 1
        if usable != wanted:
            logger.warning("using %d of %d frames: the frame count must be 4k+1", usable, wanted)
        return usable

    def _prompt_embeds(self, prompt: str | None, embeds: torch.Tensor | None, length: int) -> torch.Tensor:
        """The given embeddings, else the prompt's (`check_inputs` made sure one of them is there)."""
        if embeds is not None:
            return embeds
        assert prompt is not None
        return self.encode_prompt(prompt, length)

    def encode_branches(
        self,
        image: torch.Tensor,
        size: tuple[int, int],
        prompt_embeds: torch.Tensor,
        negative_prompt_embeds: torch.Tensor | None,
    ) -> list[Branch]:
        """The conditioned branch (the prompt, CLIP's tokens of the reference and the VAE's latents of
        it scaled to the output's area) and, where guidance runs (negative embeddings given), the
        unconditioned one: the negative prompt with CLIP's and the VAE's view of an all-zero reference."""
        reference = resize_to_area(image, size[0] * size[1], self.size_multiple)
        branches = [Branch(prompt_embeds, self.encode_image(image), self.encode_video(reference))]
        if negative_prompt_embeds is not None:
            blank = Branch(
                negative_prompt_embeds,
                self.encode_image(torch.zeros_like(image)),
                self.encode_video(torch.zeros_like(reference)),
            )
            branches.append(blank)
        return branches

    def encode_pose(
        self, smpl: torch.Tensor, hamer: torch.Tensor, frames: int, size: tuple[int, int]
    ) -> torch.Tensor:
        """The first `frames` of both pose videos, scaled to cover `size` and centre-cropped, as VAE
        latents side by side in the channels (1, 2 z_dim, latent frames, h, w)."""
        videos = (resize_crop(video[:, :, :frames], size) for video in (smpl, hamer))
        return torch.cat([self.encode_video(video) for video in videos], dim=1)

    def prepare_latents(
        self, latents: torch.Tensor | None, shape: tuple[int, ...], generator: GeneratorInput
    ) -> torch.Tensor:
        """The starting noise in float32 on the execution device: given, or drawn from `generator`."""
        device = self._execution_device
        if latents is not None:
            return latents.to(device, torch.float32)
        return randn_tensor(shape, generator=single_generator(generator), device=device, dtype=torch.float32)

    # -- the whole loop ------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        image: PictureInput,
        smpl: VideoInput,
        hamer: VideoInput,
        prompt: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = "",
        height: int | None = None,
        width: int | None = None,
        max_resolution: int = 768 * 768,
        num_frames: int | None = None,
        num_inference_steps: int = 40,
        guidance_scale: float = 2.0,
        generator: GeneratorInput = None,
        latents: torch.Tensor | None = None,
        prompt_embeds: torch.Tensor | None = None,
        negative_prompt_embeds: torch.Tensor | None = None,
        output_type: str = "np",
        return_dict: bool = True,
        callback_on_step_end: StepCallback | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
        max_sequence_length: int = 512,
        teacache_threshold: float | None = None,
        use_timestep_proj: bool = True,
        context_frames: int = WINDOW_FRAMES,
        context_overlap: int = WINDOW_OVERLAP,
        faithful: bool = False,
        progress: ProgressFn | None = None,
    ) -> RealisDanceDiTPipelineOutput | tuple:
        """Animate `image` with the `smpl` and `hamer` pose videos, described by `prompt`.

        Pictures and videos: PIL, arrays of uint8 or of floats in [0, 1] (a video as a list of
        frames or one (F, H, W, 3) array), files, image folders, or tensors in either of two forms: the
        original's, (1, 3, F, H, W) in [-1, 1] (the reference (1, 3, 1, H, W); one with no value
        below 0 is warned about, as if it were in [0, 1]), or `RealisDancePipeline`'s, frames
        (F, 3, H, W) and a reference (3, H, W) in [0, 1]. The size is `max_resolution` pixels in
        the SMPL video's aspect (multiples of 16) unless height and width are given; the pose
        videos are scaled to cover it and centre-cropped, the reference is scaled to the same area
        in its own aspect.
        `prompt`: a str (or a list of one: the batch is one video). `guidance_scale` 1 turns
        guidance off, and with it the negative prompt. `num_frames` (default: every pose frame) is
        cut to 4k+1; more than `context_frames` are made as overlapping windows (`context_overlap`
        frames shared). `teacache_threshold` turns TeaCache on (None: off; the original's is 0.2;
        faster, slightly different); `faithful` repeats the original's compute pattern.
        `callback_on_step_end` returns a dict of the tensors it replaces (None: none). A bad
        input is one `UserError`: the settings before any video is read, the videos before any
        network runs.
        """
        self.check_inputs(
            prompt, negative_prompt, prompt_embeds, negative_prompt_embeds, guidance_scale, height, width,
            max_resolution, num_frames, num_inference_steps, generator, output_type, callback_on_step_end,
            callback_on_step_end_tensor_inputs, teacache_threshold, (context_frames, context_overlap),
            faithful, max_sequence_length,
        )  # fmt: skip
        prompt = single_text(prompt, "prompt")
        negative_prompt = single_text(negative_prompt, "negative_prompt") or ""
        image = picture_tensor(image)
        smpl, hamer = video_tensor(smpl, "the SMPL-CS video"), video_tensor(hamer, "the HaMeR video")
        size = self.output_size(smpl, height, width, max_resolution)
        frames = self._frame_count(smpl.shape[2], num_frames)
        self.check_videos(image, smpl, hamer, size, min(frames, context_frames))
        guided = guidance_scale > 1
        progress = progress or pipeline_bar(self, num_inference_steps)
        device, dtype = self._execution_device, self.transformer.dtype

        shape = (
            1,
            self.vae.config.z_dim,
            (frames - 1) // self.temporal_factor + 1,
            size[0] // self.spatial_factor,
            size[1] // self.spatial_factor,
        )
        check_latents(latents, shape)

        length, factor = max_sequence_length, self.temporal_factor
        text = self._prompt_embeds(prompt, prompt_embeds, length)
        negative = self._prompt_embeds(negative_prompt, negative_prompt_embeds, length) if guided else None
        branches = self.encode_branches(image, size, text, negative)
        windows = sliding(shape[2], (context_frames - 1) // factor + 1, context_overlap // factor)
        denoiser = _Denoiser(
            self.transformer,
            self.encode_pose(smpl, hamer, frames, size).to(dtype),
            self.i2v_condition(min(frames, context_frames), size).to(dtype),
            windows,
            [Branch(*(part.to(device, dtype) for part in branch)) for branch in branches],
            guidance_scale,
            faithful,
            teacache_threshold,
            use_timestep_proj,
        )
        latents = self.prepare_latents(latents, shape, generator)
        self.set_timesteps(num_inference_steps)
        report = counter(progress, "denoising", num_inference_steps)
        for i, t in enumerate(self.scheduler.timesteps):
            prediction = denoiser.predict(latents, t)
            latents = self.scheduler.step(prediction, t, latents, return_dict=False)[0]
            if callback_on_step_end is not None:
                named = {name: {"latents": latents}[name] for name in callback_on_step_end_tensor_inputs}
                latents = step_result(callback_on_step_end(self, i, t, named)).get("latents", latents)
            report(1)

        if output_type == "latent":
            video: Any = latents
        else:
            # on the CPU: the postprocessing's float32 copies of a minute of 768x768 video would
            # take another ~7 GB each on the accelerator
            decoded = self.decode(latents, progress)
            video = self.video_processor.postprocess_video(decoded, output_type=output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (video,)
        return RealisDanceDiTPipelineOutput(frames=video, teacache_skipped=denoiser.skipped())


class _Denoiser:
    """One guided prediction for all latent frames per step: each window's branches through the
    transformer, guidance, then the windows blended.

    Unless faithful, the conditions are encoded once, both branches as one batch sharing the pose
    tokens. The windows of a long video share all of them but the pose tokens (same prompt,
    reference and window length, so the same rotary tables): the first window's are kept, the
    others' are encoded again each time their window runs. Kept for every window they would hold
    ~0.5 GB each on the accelerator at 768x768 (7 GB for a minute of video); kept on the CPU, the
    copy back (0.5 GB over PCIe: 10-50 ms, and as much host memory per window) costs more than
    making them again (two layers over the window's tokens, ~2.5 TFLOP: a few ms on an H200),
    and either is nothing next to the 14B forward that follows (seconds). A video of one window
    (81 frames, the common case) encodes nothing after the start.
    """

    def __init__(
        self,
        transformer: RealisDanceDiT,
        pose: torch.Tensor,
        i2v: torch.Tensor,
        windows: list[range],
        branches: list[Branch],
        guidance: float,
        faithful: bool,
        teacache_threshold: float | None,
        use_timestep_proj: bool,
    ):
        self.transformer, self.pose, self.i2v, self.windows = transformer, pose, i2v, windows
        self.branches, self.guidance, self.faithful = branches, guidance, faithful
        self.weights = blend_weights(windows)
        calls = len(branches) if faithful else 1
        self.caches = [
            [TeaCache(teacache_threshold, use_timestep_proj) for _ in range(calls)]
            if teacache_threshold
            else [None] * calls
            for _ in windows
        ]
        self.conditions: DiTConditions | None = None  # the first window's; faithful: none kept
        if not faithful:
            text, image_tokens, reference = (torch.cat(parts) for parts in zip(*branches, strict=True))
            self.conditions = transformer.encode_conditions(text, image_tokens, self._pose(0), reference)

    def _pose(self, index: int) -> torch.Tensor:
        """The pose latents of window `index`."""
        window = self.windows[index]
        return self.pose[:, :, window.start : window.stop]

    def _conditions(self, index: int) -> DiTConditions:
        """The encoded conditions of window `index`: the first window's, with the window's own pose
        tokens (see the class)."""
        assert self.conditions is not None
        if index == 0:
            return self.conditions
        return replace(self.conditions, pose=self.transformer.encode_pose(self._pose(index)))

    def skipped(self) -> int:
        """Transformer block passes TeaCache skipped."""
        return sum(cache.skipped for caches in self.caches for cache in caches if cache is not None)

    def _window(self, index: int, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        window = self.windows[index]
        model_input = torch.cat([latents[:, :, window.start : window.stop], self.i2v], dim=1)
        model_input = model_input.to(self.transformer.dtype)
        caches = self.caches[index]
        if self.faithful:
            outputs = [
                self.transformer(
                    model_input, t.expand(1), text, tokens, self._pose(index), ref, return_dict=False,
                    teacache=cache,
                )[0]
                for (text, tokens, ref), cache in zip(self.branches, caches, strict=True)
            ]  # fmt: skip
        else:
            batch = len(self.branches)
            output = self.transformer(
                model_input.expand(batch, *model_input.shape[1:]), t.expand(batch), return_dict=False,
                conditions=self._conditions(index), teacache=caches[0],
            )[0]  # fmt: skip
            outputs = list(output.chunk(batch))
        if len(outputs) == 1:
            return outputs[0]
        cond, uncond = outputs
        return uncond + self.guidance * (cond - uncond)

    def predict(self, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if len(self.windows) == 1:
            return self._window(0, latents, t)
        total = torch.zeros_like(latents)
        weight_sum = torch.zeros(latents.shape[2], device=latents.device)
        for index, (window, weight) in enumerate(zip(self.windows, self.weights, strict=True)):
            weight = weight.to(latents.device)
            total[:, :, window.start : window.stop] += self._window(index, latents, t).float() * weight.view(
                -1, 1, 1
            )
            weight_sum[window.start : window.stop] += weight
        return total / weight_sum.view(-1, 1, 1)
