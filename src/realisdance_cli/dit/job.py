"""`rdance animate --model dit`: the reference picture, the SMPL-CS and HaMeR pose videos and a
prompt -> the RealisDance-DiT video, with the original's defaults (pose videos resampled to 16
fps, 81 frames, 768*768 pixels of area in the SMPL video's aspect, 40 steps, guidance 2).

More frames than one window (81) are made as overlapping windows; on a GPU the models rest on
the CPU and come to the GPU one at a time (model offload, as the original), or layer group by
layer group (`offload="group"`), optionally with fp8 weight storage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from realisdance_cli import weights
from realisdance_cli.dit.windows import check_context
from realisdance_cli.errors import UserError
from realisdance_cli.files import read_text
from realisdance_cli.pipeline_checks import check_guidance, check_steps
from realisdance_cli.progress import ProgressFn, no_progress
from realisdance_cli.track import FPS_RANGE

if TYPE_CHECKING:
    import torch

    from realisdance_cli.animation import AnimateOptions
    from realisdance_cli.dit.parallel import World
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

POSES = ("smpl", "hamer")  # the two pose videos RealisDance-DiT takes, in its channel order
WEIGHTS = "realisdance-dit"  # the registry entry of the release folder
SEED = 1024  # the original's default
Offload = Literal["model", "group", "none"]
SIZE_MULTIPLE = 16  # pixels: the Wan VAE's 8-pixel cells in the transformer's 2x2 patches
MAX_RESOLUTION = 4096 * 4096  # pixels of area: twice a 4K frame, far past what any GPU holds
TEACACHE_THRESHOLD = 0.2  # the original's, when TeaCache is asked for without one


@dataclass
class DiTOptions:
    """What `--model dit` adds to `AnimateOptions` (whose start, seed, device, grid, crf, audio
    and weights apply; its size, when given, replaces `max_resolution`)."""

    prompt: str = ""
    negative_prompt: str = ""
    max_resolution: int = 768 * 768  # pixels of area
    frames: int | None = 81  # None: every frame of the pose videos at `fps`
    fps: int = 16
    steps: int = 40
    guidance: float = 2.0
    teacache: float | None = None  # TeaCache's threshold (the original's: TEACACHE_THRESHOLD), None: off
    context: int = 81  # frames per window
    overlap: int = 16  # frames shared by neighbouring windows
    faithful: bool = False
    offload: Offload | None = None  # default: "model" on a GPU, nothing on the CPU
    fp8: bool = False  # the transformer's weights stored in fp8, computed in the run's dtype
    vae_tiling: bool = False
    compile: bool = False  # torch.compile the transformer's blocks (one compilation serves all 40)

    def check(self, needs_prompt: bool = True) -> None:
        """Every setting that needs no file, named as the command's flags (`needs_prompt` off: the
        prompts come with the videos, as in a test set)."""
        if needs_prompt and not self.prompt.strip():
            raise UserError("--model dit needs a --prompt (or --prompt-file) describing the video.")
        if not 256 <= self.max_resolution <= MAX_RESOLUTION:
            raise UserError(
                f"--max-res must be 256 to {MAX_RESOLUTION} pixels of area, got {self.max_resolution}."
            )
        if self.frames is not None and self.frames < 1:
            raise UserError(f"--max-frames must be 1 or more (0 for all), got {self.frames}.")
        for flag, value in (("--fps", self.fps), ("--steps", self.steps)):
            if value < 1:
                raise UserError(f"{flag} must be 1 or more, got {value}.")
        if self.fps > FPS_RANGE[1]:  # the rate of the video written, after all the work
            raise UserError(f"--fps must be at most {FPS_RANGE[1]}, got {self.fps}.")
        check_guidance(self.guidance, "--guidance")
        if self.negative_prompt.strip() and self.guidance == 1:
            raise UserError("--negative-prompt takes effect only with --guidance above 1.")
        check_context(self.context, self.overlap, names=("--context", "--overlap"))
        if self.teacache is not None and not (math.isfinite(self.teacache) and self.teacache > 0):
            raise UserError(f"--teacache-thresh must be more than 0, got {self.teacache}.")

    @staticmethod
    def check_size(size: tuple[int, int] | None) -> None:
        """--size, when given, in whole patches of the network (before it loads)."""
        if size is not None and (size[0] % SIZE_MULTIPLE or size[1] % SIZE_MULTIPLE):
            raise UserError(
                f"--size must be a multiple of {SIZE_MULTIPLE} on both sides for --model dit, "
                f"got {size[0]}x{size[1]}."
            )


def read_prompt(path: Path) -> str:
    """A prompt file as the authors' inference.py reads it, each line stripped and joined with
    nothing; one sentence when it is no UTF-8 text (--prompt-file, a test set's prompt/<id>.txt)
    or holds no prompt (the file named, not the flags it stands for: it is what to put right)."""
    lines = read_text(path, "a text file holding the prompt").split("\n")  # universal newlines
    prompt = "".join(line.strip() for line in lines)
    if not prompt:
        raise UserError(f"{path} is empty; write the prompt describing the video in it.")
    return prompt


def check_sizes(
    reference: tuple[int, int],
    poses: tuple[int, int],
    frames: int,
    options: DiTOptions,
    size: tuple[int, int] | None,
    transformer: Mapping[str, Any],
) -> None:
    """The video (--size, else the pose videos' aspect at --max-res) and the reference scaled to its
    area have whole patches on both sides, and the windows of `frames` frames and the reference fit
    the `transformer` config's rotary positions (sizes height x width): refused before the model
    loads, not after."""
    from realisdance_cli.dit.processing import reference_size, video_size
    from realisdance_cli.dit.transformer import check_positions_fit

    out = size or video_size(*poses, options.max_resolution, SIZE_MULTIPLE)
    if min(out) < SIZE_MULTIPLE:
        raise UserError(
            f"the pose videos ({poses[0]}x{poses[1]}, height x width) are too narrow for --max-res "
            f"{options.max_resolution}: a side of the video would be under {SIZE_MULTIPLE} pixels; give "
            "a larger --max-res, or --size."
        )
    scaled = reference_size(reference, out, SIZE_MULTIPLE)
    check_positions_fit(transformer, min(frames, options.context), out, scaled, window_name="--context")


def transformer_config(options: AnimateOptions) -> dict[str, Any]:
    """The release's transformer settings (its config.json), read before the weights load."""
    return _settings(release_folder(options) / "transformer" / "config.json")


def check_release(options: AnimateOptions) -> None:
    """The release folder is whole (`release_folder`), and --steps are at most its scheduler's
    training steps (more would repeat timesteps): said before the poses are read or the weights load."""
    assert options.dit is not None
    scheduler = _settings(release_folder(options) / "scheduler" / "scheduler_config.json")
    check_steps(options.dit.steps, scheduler.get("num_train_timesteps"), "--steps")


def _settings(path: Path) -> dict[str, Any]:
    """A release config read before the weights load (damage named as loading would name it)."""
    from realisdance_cli.state_dicts import loading_from, read_config

    with loading_from(path.parent):
        return read_config(path)


def release_folder(options: AnimateOptions) -> Path:
    """The release folder to load (--checkpoint, else the registry's in the weights folder or the
    Hugging Face cache), or one sentence on what is wrong with it."""
    entry = weights.get(WEIGHTS)
    assert isinstance(entry.source, weights.HubFolder)
    root = weights.weights_root(options.weights_root)
    folder = options.checkpoint or root / entry.path
    if options.checkpoint is None and not folder.is_dir():
        folder = weights.require_all([WEIGHTS], root)[WEIGHTS]  # the cache's, or how to get it
    if not folder.exists():
        raise UserError(f"{folder} does not exist.")
    if not folder.is_dir():
        raise UserError(
            f"--model dit needs --checkpoint to be a RealisDance-DiT folder, got the file {folder}."
        )
    needed = [path for path in entry.source.required if path != "model_index.json"]  # the hub's listing
    lacking = [path for path in needed if not (folder / path).is_file()]
    if lacking:
        remedy = (
            f"give the folder of the release ({entry.source.repo})"
            if options.checkpoint
            else weights.instructions(entry, root)
        )
        raise UserError(
            f"{folder} is not a whole RealisDance-DiT folder: it lacks {', '.join(lacking)}; {remedy}."
        )
    return folder


def load_pipeline(
    options: AnimateOptions,
    device: torch.device,
    dtype: torch.dtype,
    world: World | None = None,
    progress: ProgressFn = no_progress,
) -> RealisDanceDiTPipeline:
    """The release folder (--checkpoint FOLDER, else the registry's in the weights folder or the
    Hugging Face cache), placed for `device` as `options.dit.offload` says; with the `world` of a
    `torchrun` job, on this process's device with the sequence split across the processes.
    `progress` is told of the megabytes loaded."""
    from realisdance_cli.animation import quiet_libraries
    from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

    assert options.dit is not None
    dit = options.dit
    if world is not None and dit.offload not in (None, "none"):
        raise UserError(f"--offload {dit.offload} cannot be combined with several processes; leave it out.")
    quiet_libraries()
    folder = release_folder(options)
    pipeline = RealisDanceDiTPipeline.from_pretrained(folder, dtype=dtype, progress=progress)
    pipeline.set_progress_bar_config(disable=True)
    if dit.vae_tiling:
        pipeline.vae.enable_tiling()
    if dit.compile:
        pipeline.transformer.compile_repeated_blocks()
    if world is not None:
        place(pipeline, "none", world.device, dtype, fp8=dit.fp8)
        from realisdance_cli.dit.parallel import start_parallel

        start_parallel(pipeline, world)
        return pipeline
    place(pipeline, dit.offload or ("model" if device.type == "cuda" else "none"), device, dtype, fp8=dit.fp8)
    return pipeline


def place(
    pipeline: RealisDanceDiTPipeline,
    offload: str,
    device: torch.device,
    dtype: torch.dtype,
    *,
    fp8: bool = False,
) -> None:
    """The pipeline's weights stored (`fp8`: the transformer's in float8_e4m3fn, computed in
    `dtype` layer by layer) and placed for `device` (what `rdance animate` and the benchmark run):
    - "model": each model comes to the GPU whole while it runs (diffusers' model CPU offload);
    - "group": the transformer's layers come to the GPU just ahead of use on a CUDA stream
      (every layer on its own, also those `encode_conditions` calls outside `forward`), the
      other models whole while they run, each sending the one before back;
    - "none": everything on `device`."""
    import torch

    if fp8:  # before group offloading, whose hooks then wrap the casting
        pipeline.transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    if offload == "model":
        pipeline.enable_model_cpu_offload(device=device)
    elif offload == "group":
        from accelerate import cpu_offload_with_hook

        pipeline.transformer.enable_group_offload(
            onload_device=device,
            offload_device=torch.device("cpu"),
            offload_type="leaf_level",
            use_stream=True,
        )
        hook = None
        for model in (pipeline.text_encoder, pipeline.image_encoder, pipeline.vae):
            if model is not None:
                _, hook = cpu_offload_with_hook(model, device, prev_module_hook=hook)
    else:
        pipeline.to(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()


def check_device(dit: DiTOptions, device: torch.device) -> None:
    if dit.offload in ("model", "group") and device.type != "cuda":
        raise UserError(
            f"--offload {dit.offload} moves models to a CUDA GPU; on {device.type} use --offload none."
        )
