"""`rdance animate`: a reference picture and the three pose videos -> the animated video.

Inputs are fitted to the target size the same way: scaled to cover it, then centre-cropped (the
reference too, so it should show the whole character in roughly the target's aspect). DINOv2
sees the fitted reference at 5/12 of the target size (320x240 for 768x576, as the original).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from realisdance_cli import weights
from realisdance_cli.devices import resolve_device
from realisdance_cli.errors import UserError
from realisdance_cli.files import existing_file
from realisdance_cli.progress import ProgressFn, no_progress
from realisdance_cli.video import FrameSource, Selection, VideoWriter, check_crf

if TYPE_CHECKING:
    import torch

    from realisdance_cli.animator.pipeline import RealisDancePipeline, SamplingOptions

POSE_NAMES = ("dwpose", "hamer", "smpl")
CONVERTED = "realisdance/stage_2_hamer_release.safetensors"
CLIP_SCALE = 5 / 12
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class AnimateOptions:
    size: tuple[int, int] = (768, 576)  # (height, width)
    stride: int = 4
    max_frames: int | None = 80
    seed: int = 42
    dtype: str | None = None  # default: fp16 on a GPU, fp32 on the CPU
    device: str | None = None  # default: cuda when available
    grid: bool = False
    crf: int = 18
    weights_root: Path | None = None
    checkpoint: Path | None = None  # original .ckpt or converted .safetensors
    channels_last: bool = True  # NHWC convolutions: faster on GPUs and on this CPU
    sampling: SamplingOptions | None = None


@dataclass
class PoseInputs:
    """Where the three pose videos come from: a folder from `render-poses` and/or explicit files."""

    folder: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)  # name -> .mp4 (dwpose also .pkl)

    def path(self, name: str) -> Path:
        if name in self.files:
            return self.files[name]
        if self.folder is None:
            raise UserError(f"no {name} video: give a pose folder or --{name}.")
        path = self.folder / f"{name}.mp4"
        if not path.is_file():
            raise UserError(
                f"{path} not found; `rdance render-poses {self.folder}` makes it from a pose track."
            )
        return path


def fit(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale an RGB picture to cover (height, width), then crop the centre."""
    height, width = size
    scale = max(height / picture.shape[0], width / picture.shape[1])
    new_w, new_h = max(width, round(picture.shape[1] * scale)), max(height, round(picture.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(picture, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def read_reference(path: Path, size: tuple[int, int]) -> np.ndarray:
    existing_file(path, "the reference picture")
    picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if picture is None:
        raise UserError(f"{path} is not a picture OpenCV can read (use PNG or JPEG).")
    return fit(cv2.cvtColor(picture, cv2.COLOR_BGR2RGB), size)


def _skeleton_frames(path: Path, selection: Selection) -> tuple[int, Iterator[np.ndarray]]:
    from realisdance_cli.original import load_dwpose_pkl
    from realisdance_cli.renderers.skeleton import draw_pose

    poses = load_dwpose_pkl(path)
    wanted = selection.indices(len(poses))
    return len(poses), (draw_pose(poses[i], int(poses[i]["H"]), int(poses[i]["W"])) for i in wanted)


@dataclass
class PoseFrames:
    frames: dict[str, list[np.ndarray]]  # name -> fitted RGB frames
    fps: Fraction | None  # of the selected frames


def read_poses(inputs: PoseInputs, options: AnimateOptions) -> PoseFrames:
    """The three pose videos, frame-selected and fitted; they must have equal frame counts."""
    selection = Selection(start=0, stride=options.stride, max_frames=options.max_frames)
    counts: dict[str, int] = {}
    frames: dict[str, list[np.ndarray]] = {}
    fps = None
    for name in POSE_NAMES:
        path = existing_file(inputs.path(name), f"the {name} pose video")
        if path.suffix == ".pkl":
            if name != "dwpose":
                raise UserError(f"--{name} must be an mp4 video; only --dwpose may be an original .pkl.")
            counts[name], pictures = _skeleton_frames(path, selection)
        else:
            source = FrameSource(path, selection)
            counts[name], pictures = source.info.source_frame_count, iter(source)
            fps = fps or source.info.fps
        frames[name] = [fit(p, options.size) for p in pictures]
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{name} {count}" for name, count in counts.items())
        raise UserError(f"the pose videos must have the same number of frames, got {listed}.")
    if not frames["dwpose"]:
        raise UserError("the pose videos have no frames to animate.")
    return PoseFrames(frames, fps)


def quiet_libraries() -> None:
    """diffusers and transformers say only errors, and draw no loading bars of their own."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("diffusers").setLevel(logging.ERROR)


def load_pipeline(options: AnimateOptions, device: torch.device, dtype: torch.dtype) -> RealisDancePipeline:
    """The pipeline from the weights root (or --checkpoint), every missing file named at once."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import Dinov2Model

    from realisdance_cli.animator.checkpoint import load_network
    from realisdance_cli.animator.pipeline import RealisDancePipeline, zero_snr_ddim

    quiet_libraries()
    root = weights.weights_root(options.weights_root)
    checkpoint = options.checkpoint
    if checkpoint is None and (root / CONVERTED).is_file():
        checkpoint = root / CONVERTED
    needed = ["base-model", "dinov2"] + ([] if checkpoint else ["realisdance"])
    paths = weights.require_all(needed, root)
    checkpoint = existing_file(checkpoint or paths["realisdance"], "the RealisDance checkpoint")
    base = paths["base-model"]
    encoder = Dinov2Model.from_pretrained(paths["dinov2"], torch_dtype=dtype)
    unet_config = json.loads((base / "unet" / "config.json").read_text())
    network = load_network(checkpoint, unet_config, encoder.config.hidden_size)
    vae_config = json.loads((base / "vae" / "config.json").read_text())
    vae_dtype = torch.float32 if vae_config.get("force_upcast") and dtype == torch.float16 else dtype
    vae = AutoencoderKL.from_pretrained(base / "vae", torch_dtype=vae_dtype)
    scheduler = zero_snr_ddim(json.loads((base / "scheduler" / "scheduler_config.json").read_text()))
    pipeline = RealisDancePipeline(vae.to(device), encoder.to(device), network.to(device, dtype), scheduler)
    pipeline.set_progress_bar_config(disable=True)
    if options.channels_last:
        pipeline.to_channels_last()
    return pipeline


def to_tensors(
    reference: np.ndarray, poses: PoseFrames
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """(reference in [-1, 1], its DINOv2 input, the pose videos (1, 3, F, H, W) in [0, 1])."""
    import torch

    ref = torch.from_numpy(reference).permute(2, 0, 1)[None].float() / 127.5 - 1
    videos = [
        torch.from_numpy(np.stack(poses.frames[name])).permute(3, 0, 1, 2)[None].float() / 255
        for name in POSE_NAMES
    ]
    return ref, clip_input(reference)[None], videos


def clip_input(picture: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
    """DINOv2's view (3, h, w) of a fitted RGB picture: resized to `size` (height, width; default
    5/12 of the picture, 320x240 for 768x576 as the original) and ImageNet-normalised."""
    import torch

    height, width = size or (round(picture.shape[0] * CLIP_SCALE), round(picture.shape[1] * CLIP_SCALE))
    clip = torch.from_numpy(cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)).float() / 255
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    return ((clip - mean) / std).permute(2, 0, 1)


def frame_pixels(picture: torch.Tensor) -> np.ndarray:
    """A generated frame (3, H, W) in [0, 1] as the (H, W, 3) uint8 picture written to video."""
    import torch

    return (picture * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def default_out(reference: Path, inputs: PoseInputs) -> Path:
    """`<reference>_<poses>.mp4` in the current folder."""
    poses = inputs.folder or inputs.path("smpl")
    return Path(f"{reference.stem}_{poses.stem or poses.name}.mp4")


MIN_SIDE = 64  # pixels: DINOv2 sees 5/12 of it (at least one 14-pixel patch), the UNet 1/64


def check_options(options: AnimateOptions, sampling: SamplingOptions) -> None:
    """Every option that needs no file, checked before any work."""
    height, width = options.size
    if height % 8 or width % 8 or min(height, width) < MIN_SIDE:
        raise UserError(
            f"--size must be a multiple of 8 on both sides and at least {MIN_SIDE}x{MIN_SIDE}, "
            f"got {height}x{width}."
        )
    if not math.isfinite(sampling.guidance) or sampling.guidance < 0:
        raise UserError(f"--guidance must be a number of 0 or more, got {sampling.guidance}.")
    check_crf(options.crf)


def check_network_fits(
    pipeline: RealisDancePipeline, size: tuple[int, int], sampling: SamplingOptions, frames: int
) -> None:
    """The deepest UNet level must give its group norms more than one value per group: with a
    small network (as many channels as groups) at a small size, one-frame windows and no guidance
    batch, it would not. Checked once the network is known, before denoising."""
    import torch

    config = pipeline.network.unet_main.config
    scale = pipeline.vae_scale_factor * 2 ** (len(config.block_out_channels) - 1)
    cells = (size[0] // scale) * (size[1] // scale)
    norms = [m for m in pipeline.network.modules() if isinstance(m, torch.nn.GroupNorm)]
    per_group = min(m.num_channels // m.num_groups for m in norms) * cells
    samples = (2 if sampling.guidance > 1 else 1) * min(sampling.context, frames)
    if per_group * samples <= 1:
        raise UserError(
            f"at --size {size[0]}x{size[1]} this network's deepest layer would normalise single values "
            "with one-frame windows and no guidance; use a larger --size, --context 2 or more, "
            "or --guidance above 1."
        )


def animate(
    reference_path: Path,
    inputs: PoseInputs,
    out: Path,
    options: AnimateOptions,
    progress: ProgressFn = no_progress,
) -> list[Path]:
    """Runs the whole job; returns the written videos (the result, and the grid when asked)."""
    import torch

    from realisdance_cli.animator.pipeline import PoseVideos, SamplingOptions

    sampling = options.sampling or SamplingOptions()
    check_options(options, sampling)
    device, dtype = resolve_device(options.device, options.dtype)
    reference = read_reference(reference_path, options.size)
    poses = read_poses(inputs, options)
    pipeline = load_pipeline(options, device, dtype)
    check_network_fits(pipeline, options.size, sampling, len(poses.frames[POSE_NAMES[0]]))
    ref, clip, videos = to_tensors(reference, poses)
    generator = torch.Generator().manual_seed(options.seed)
    video = pipeline(ref, clip, PoseVideos(*videos), generator=generator, options=sampling, progress=progress)
    fps = poses.fps or Fraction(8)
    paths = [out] + ([out.with_name(f"{out.stem}_grid{out.suffix}")] if options.grid else [])
    with ExitStack() as stack:  # a failure aborts every writer: no partial file is left
        writers = [stack.enter_context(VideoWriter(path, fps, crf=options.crf)) for path in paths]
        for index, picture in enumerate(video):  # frame by frame: no second copy of the video
            frame = frame_pixels(picture)
            writers[0].write(frame)
            if options.grid:
                poses_now = (poses.frames[name][index] for name in POSE_NAMES)
                writers[1].write(np.hstack([reference, *poses_now, frame]))
            progress("encoding", index + 1, len(video))
    return paths
