"""The animate job (`rdance animate`, `realisdance_cli.animate`): a reference picture and the
three pose videos -> the animated video, with the pose videos' sound.

Inputs are fitted to the target size the same way: scaled to cover it, then centre-cropped (the
reference too, so it should show the whole character in roughly the target's aspect). DINOv2
sees the fitted reference at 5/12 of the target size (320x240 for 768x576, as the original).
"""

from __future__ import annotations

import logging
import os
import shlex
import warnings
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from realisdance_cli import weights
from realisdance_cli.animator.processing import (
    SIZE,
    check_frame_size,
    fit,
    frame_pixels,
    video_tensor,
)
from realisdance_cli.audio import AudioChoice, audio_source
from realisdance_cli.conditions import BY_NAME, POSE_NAMES
from realisdance_cli.devices import resolve_device
from realisdance_cli.errors import UserError, counted
from realisdance_cli.files import claimed_output, existing_file, paths_from_strings
from realisdance_cli.pictures import read_picture
from realisdance_cli.progress import ProgressFn, no_progress
from realisdance_cli.rendering import parse_size
from realisdance_cli.track import FPS_RANGE, named
from realisdance_cli.video import FrameSource, Selection, VideoInfo
from realisdance_cli.video_writer import VideoWriter, check_crf, publish_together

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

    from realisdance_cli.animator.pipeline import RealisDancePipeline
    from realisdance_cli.animator.sampling import SamplingOptions
    from realisdance_cli.dit.job import DiTOptions
    from realisdance_cli.dit.parallel import World
    from realisdance_cli.retargeting.job import RetargetOptions

FLAGS = {  # `SamplingOptions` fields as `rdance animate` names them
    "steps": "--steps",
    "guidance": "--guidance",
    "uncond": "--uncond",
    "context": "--context",
    "overlap": "--overlap",
    "schedule": "--schedule",
    "context_batch": "--context-batch",
}
SD_SEED = 42
PIPELINE_FOLDER = "realisdance/pipeline"  # what `rdance weights convert` writes
CONVERTED = "realisdance/stage_2_hamer_release.safetensors"  # the single-file form of earlier versions


@dataclass
class SDOptions:
    """What the SD-1.5 RealisDance adds to `AnimateOptions`; the defaults are the original's
    settings (`sampling` None: `SamplingOptions()`, 50 DDIM steps, guidance 2, windows of 16)."""

    stride: int = 4  # every stride-th pose frame from `start`
    max_frames: int | None = 80  # None: every selected frame
    channels_last: bool = True  # NHWC convolutions: faster on GPUs and on this CPU
    sampling: SamplingOptions | None = None

    def resolved_sampling(self) -> SamplingOptions:
        """`sampling`, or the original's settings where it is None."""
        from realisdance_cli.animator.sampling import SamplingOptions

        return self.sampling or SamplingOptions()


@dataclass
class AnimateOptions:
    """Everything `animate` needs besides its files. `model` is the network with its own settings:
    `SDOptions()` (the default) or `DiTOptions` for RealisDance-DiT; the rest apply to both.
    `size`: (height, width) or "768x576" text; `device`: auto, cpu, cuda, cuda:N or mps; `dtype`:
    fp16, bf16 or fp32."""

    size: tuple[int, int] | None = None  # (height, width); SD default 768x576, DiT: from max_resolution
    start: int = 0  # the first pose frame used
    seed: int | None = None  # default: the model's (42 for SD, the original DiT's 1024)
    dtype: str | None = None  # default: fp16 on a GPU, fp32 on the CPU
    device: str | None = None  # default: cuda when available
    grid: bool = False
    crf: int = 18
    weights_root: Path | None = None
    checkpoint: Path | None = None  # SD: a pipeline folder, .ckpt or .safetensors; DiT: the release folder
    audio: AudioChoice = None  # a file's sound, or False for none; default: the pose videos'
    model: SDOptions | DiTOptions = field(default_factory=SDOptions)
    retarget: RetargetOptions | None = None  # the poses' track's dance on the reference's body first

    def __post_init__(self) -> None:
        from realisdance_cli.dit.job import DiTOptions

        paths_from_strings(self, "weights_root", "checkpoint", "audio")
        if not isinstance(self.model, SDOptions | DiTOptions):
            raise TypeError(f"AnimateOptions.model is SDOptions() or DiTOptions(...), got {self.model!r}")
        self.size = parse_size(self.size)

    @property
    def dit(self) -> DiTOptions | None:
        """RealisDance-DiT's settings, None for the SD model."""
        return None if isinstance(self.model, SDOptions) else self.model

    @property
    def frame_size(self) -> tuple[int, int]:
        """The SD model's frame: `size`, else the original's 768x576."""
        return self.size or SIZE

    def selection(self) -> Selection:
        """The pose frames the model animates (and so the truth frames its result is compared
        with): SD's from `start` every `stride`-th, DiT's resampled to its frame rate."""
        if isinstance(self.model, SDOptions):
            return Selection(start=self.start, stride=self.model.stride, max_frames=self.model.max_frames)
        return Selection(start=self.start, max_frames=self.model.frames, fps=Fraction(self.model.fps))


def sd_options(options: AnimateOptions) -> SDOptions:
    """The SD model's settings of a job known to be an SD one."""
    assert isinstance(options.model, SDOptions), "an SD job"
    return options.model


@dataclass
class PoseInputs:
    """Where the three pose videos come from: a folder from `render-poses` and/or explicit files."""

    folder: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)  # name -> .mp4 (dwpose also .pkl)

    def __post_init__(self) -> None:
        paths_from_strings(self, "folder")
        self.files = {name: Path(path) for name, path in self.files.items()}

    def sources(self) -> list[Path]:
        """Every file these inputs could be read from."""
        in_folder = [self.folder / c.video for c in BY_NAME.values()] if self.folder is not None else []
        return [*self.files.values(), *in_folder]

    def path(self, name: str) -> Path:
        if name in self.files:
            return self.files[name]
        if self.folder is None:
            raise UserError(f"no {name} video: give a pose folder or --{name}.")
        if self.folder.is_file():
            raise UserError(
                f"POSES must be a folder of pose videos (`rdance render-poses` makes one), not the file "
                f"{self.folder}; give single pose videos with --dwpose, --hamer and --smpl."
            )
        path = self.folder / BY_NAME[name].video
        if not path.is_file():
            raise UserError(
                f"{path} not found; `{shlex.join(['rdance', 'render-poses', str(self.folder)])}` makes it "
                "from a pose track."
            )
        return path


def retargeted(
    reference_path: Path, inputs: PoseInputs, options: AnimateOptions, progress: ProgressFn
) -> PoseInputs:
    """`inputs`, or with `options.retarget` the pose videos of the dance of the track
    `inputs.folder` re-posed on the reference's body (`retargeting.job.retargeted_poses`)."""
    if options.retarget is None:
        return inputs
    from dataclasses import replace

    from realisdance_cli.retargeting.job import retargeted_poses

    if inputs.files or inputs.folder is None:
        raise UserError(
            "--retarget makes the three pose videos from POSES, a pose track; "
            "give no --dwpose, --hamer or --smpl with it."
        )
    retarget = replace(options.retarget, weights_root=options.retarget.weights_root or options.weights_root)
    return PoseInputs(retargeted_poses(inputs.folder, reference_path, retarget, progress))


def read_reference(path: Path, size: tuple[int, int]) -> np.ndarray:
    return fit(read_picture(path, "the reference picture"), size)


def _skeleton_frames(path: Path, selection: Selection) -> tuple[int, Iterator[np.ndarray]]:
    from realisdance_cli.original import load_dwpose_pkl
    from realisdance_cli.renderers.skeleton import draw_pose

    poses = load_dwpose_pkl(path)
    wanted = selection.indices(len(poses))
    return len(poses), (draw_pose(poses[i], int(poses[i]["H"]), int(poses[i]["W"])) for i in wanted)


@dataclass
class PoseFrames:
    frames: dict[str, np.ndarray]  # name -> (F, H, W, 3) fitted RGB frames
    fps: Fraction  # of the selected frames
    audio: Path | None = None  # the file whose sound the result carries
    start_time: float = 0.0  # seconds into the pose videos (and the sound) of the first frame used


def read_poses(inputs: PoseInputs, options: AnimateOptions) -> PoseFrames:
    """The model's pose videos (SD: all three, fitted to its frame size; DiT: SMPL-CS and HaMeR as
    they are), frame-selected; they must agree in frame count and rate, checked before any frame
    is decoded. The sound the result carries: `options.audio`, else that of the first pose video
    that has any."""
    from realisdance_cli.dit.job import POSES as DIT_POSES

    selection = options.selection()
    names = DIT_POSES if options.dit is not None else POSE_NAMES
    counts: dict[str, int] = {}
    sources: dict[str, Iterable[np.ndarray]] = {}
    for name in names:
        path = existing_file(inputs.path(name), f"the {name} pose video")
        if path.suffix == ".pkl":
            if name != "dwpose":
                raise UserError(f"--{name} must be an mp4 video; only --dwpose may be an original .pkl.")
            counts[name], sources[name] = _skeleton_frames(path, selection)
        else:
            sources[name] = source = FrameSource(path, selection)
            counts[name] = source.info.source_frame_count
    if len(set(counts.values())) > 1:
        raise UserError(f"the pose videos must have the same number of frames, got {_listed(counts)}.")
    videos = {name: source.info for name, source in sources.items() if isinstance(source, FrameSource)}
    sizes = {name: f"{info.height}x{info.width}" for name, info in videos.items()}
    if len(set(sizes.values())) > 1:  # each would be cropped its own way: hands off the body
        listed = ", ".join(f"{name} {size}" for name, size in sizes.items())
        raise UserError(f"the pose videos must have the same size, got {listed} (height x width).")
    selected = {name: info.frame_count for name, info in videos.items()}  # differ where rates do
    if len(set(selected.values())) > 1:
        rates = {name: info.source_fps for name, info in videos.items()}
        raise UserError(
            f"the pose videos must have the same frame rate, got {_listed(rates)} (at "
            f"{selection.fps} fps they have {_listed(selected)} frames)."
        )
    first = next(iter(videos.values()))  # SMPL-CS and HaMeR are always videos
    own = _own_frames(first, selection)
    _check_stretch(first, selection, own)
    size = None if options.dit is not None else options.frame_size
    frames = {}
    for name, pictures in sources.items():
        count = videos[name].frame_count if name in videos else selection.count(counts[name])
        frames[name] = _gathered((fit(p, size) if size else p for p in pictures), count)
    if not len(frames[names[0]]):
        raise UserError("the pose videos have no frames to animate.")
    _warn_black({name: frames[name] for name in videos}, {name: info.path for name, info in videos.items()})
    audio = audio_source(options.audio, lambda: next((v.path for v in videos.values() if v.has_audio), None))
    if selection.fps is not None and first.fps != selection.fps:
        warnings.warn(
            f"the dance has {counted(own, 'frame')} at {selection.fps} fps, fewer than the "
            f"{selection.max_frames} asked: they are stretched over {selection.max_frames}, which "
            f"play at {float(first.fps):.4g} fps so that the dance keeps its speed and its sound "
            f"(--max-frames 0 makes its own {counted(own, 'frame')} at {selection.fps} fps)",
            stacklevel=2,
        )
    start = selection.indices(first.source_frame_count, first.source_fps)[0]
    return PoseFrames(frames, first.fps, audio, float(start / first.source_fps))


BLACK_LEVEL = 8  # the brightest value (of 255) in a pose video that shows nothing: codec noise at most


def _warn_black(frames: dict[str, np.ndarray], paths: dict[str, Path]) -> None:
    """A pose video black in every frame used (drawn from a stream that found nothing, by an older
    render-poses or the authors' code) guides nothing, which the result would not say: said once
    per video, from the pixels already read."""
    for name, pictures in frames.items():
        if pictures.max(initial=0) <= BLACK_LEVEL:
            warnings.warn(
                f"{paths[name]} is black in every frame used: {BY_NAME[name].unguided}", stacklevel=3
            )


def _check_stretch(info: VideoInfo, selection: Selection, own: int) -> None:
    """A short dance stretched over --max-frames plays faster (DiT); past the highest rate a video
    can have it would be refused when written, after all the work: said before it."""
    highest = FPS_RANGE[1]
    if info.fps <= highest:
        return
    most = int(highest * info.source_frame_count / info.source_fps)
    raise UserError(
        f"stretched over the {selection.max_frames} frames asked, the dance ({own} at {selection.fps} "
        f"fps) would play at {float(info.fps):.4g} fps, more than a video can have ({highest}); give "
        f"--max-frames {most} or fewer, or 0 for its own frames."
    )


def _own_frames(info: VideoInfo, selection: Selection) -> int:
    """How many frames the pose video has at the selection's rate, unstretched (DiT's resampling;
    the selected frames otherwise)."""
    if selection.fps is None:
        return info.frame_count
    return Selection(fps=selection.fps).count(info.source_frame_count, info.source_fps)


def _gathered(pictures: Iterable[np.ndarray], count: int) -> np.ndarray:
    """The `count` pictures in one (count, H, W, 3) array, filled as they are decoded: a long
    dance's frames are held once, not as a list and then a stacked copy of it."""
    gathered = np.empty(0, np.uint8)
    done = 0
    for done, picture in enumerate(pictures, start=1):
        if done == 1:
            gathered = np.empty((count, *picture.shape), picture.dtype)
        gathered[done - 1] = picture
    return gathered[:done]


def _listed(values: dict[str, int] | dict[str, Fraction]) -> str:
    return ", ".join(f"{name} {float(value):g}" for name, value in values.items())


def quiet_libraries() -> None:
    """diffusers and transformers say only errors, and draw no loading bars of their own."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()  # "Loading checkpoint shards" of a sharded model
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("diffusers").setLevel(logging.ERROR)


def pipeline_files(options: AnimateOptions) -> Path | tuple[Path, Path, Path]:
    """What `load_pipeline` loads: a pipeline folder (--checkpoint, else the converted one in the
    weights root), or the original network file with the base model and DINOv2 it builds on; every
    missing file named at once. Asked before any work, so a missing download is said first."""
    root = weights.weights_root(options.weights_root)
    checkpoint = options.checkpoint
    folder = checkpoint if checkpoint is not None and checkpoint.is_dir() else None
    if folder is not None and not (folder / "model_index.json").is_file():
        raise UserError(
            f"{folder} is a folder but not a pipeline folder (no model_index.json); give --checkpoint "
            "a folder `rdance weights convert` wrote, an original .ckpt or a trained .safetensors."
        )
    if checkpoint is None and (root / PIPELINE_FOLDER / "model_index.json").is_file():
        folder = root / PIPELINE_FOLDER
    if folder is not None:
        return folder
    if checkpoint is None and (root / CONVERTED).is_file():
        checkpoint = root / CONVERTED
    needed = ["base-model", "dinov2"] + ([] if checkpoint else ["realisdance"])
    paths = weights.require_all(needed, root)
    checkpoint = existing_file(checkpoint or paths["realisdance"], "the RealisDance checkpoint")
    return checkpoint, paths["base-model"], paths["dinov2"]


def load_pipeline(
    options: AnimateOptions, device: torch.device, dtype: torch.dtype, progress: ProgressFn = no_progress
) -> RealisDancePipeline:
    """The pipeline of `pipeline_files`, on `device` in `dtype`; `progress` is told of the
    megabytes loaded from the start, before diffusers' import (seconds of silence otherwise)."""
    import torch

    from realisdance_cli.animator.loading import FOLDER, folder_loading, original_loading

    files = pipeline_files(options)
    if isinstance(files, Path):
        loading = folder_loading(progress, files)
    else:
        log.info("no converted pipeline folder: the pipeline is built from the original checkpoint "
                 "(`rdance weights convert` makes one, which loads faster)")  # fmt: skip
        loading = original_loading(progress, *files)
    quiet_libraries()
    from realisdance_cli.animator.pipeline import RealisDancePipeline

    if isinstance(files, Path):  # `weights convert --fp16` writes the fp16 variant's files
        variant = "fp16" if any(files.glob("*/*.fp16.safetensors")) else None
        with loading.part(FOLDER):
            pipeline = RealisDancePipeline.from_pretrained(files, dtype=dtype, variant=variant)
    else:
        pipeline = RealisDancePipeline.load_original(*files, dtype, loading)
    if pipeline.vae.config.get("force_upcast") and dtype == torch.float16:
        pipeline.vae.to(torch.float32)
    pipeline.to(device)
    pipeline.set_progress_bar_config(disable=True)
    if sd_options(options).channels_last:
        pipeline.to_channels_last()
    return pipeline


def output_paths(out: Path, grid: bool) -> list[Path]:
    """The videos `animate` writes: the result, and `<out>_grid.mp4` with `grid`."""
    return [out] + ([out.with_name(f"{out.stem}_grid{out.suffix}")] if grid else [])


def default_out(reference: Path, inputs: PoseInputs) -> Path:
    """`<reference>_<poses>.mp4` in the current folder (`.` as poses: the folder's name)."""
    poses = named(inputs.folder or inputs.path("smpl"))
    return Path(f"{reference.stem}_{poses.stem or poses.name}.mp4")


def check_options(options: AnimateOptions) -> None:
    """Every option of an SD job that needs no file, checked before any work (named as the
    command's flags)."""
    sd = sd_options(options)
    check_frame_size(*options.frame_size, "--size")
    sd.resolved_sampling().check(FLAGS)
    for flag, value, least in (
        ("--start", options.start, 0),
        ("--stride", sd.stride, 1),
        ("--max-frames", sd.max_frames, 1),
    ):
        if value is not None and value < least:
            for_all = " (0 for all)" if flag == "--max-frames" else ""
            raise UserError(f"{flag} must be {least} or more{for_all}, got {value}.")
    check_crf(options.crf)
    resolve_device(options.device, options.dtype)  # a GPU that is not there: said before any download


def check_network_fits(
    pipeline: RealisDancePipeline, size: tuple[int, int], sampling: SamplingOptions, frames: int
) -> None:
    """The deepest UNet level must give its group norms more than one value per group: with a
    small network (as many channels as groups) at a small size, one-frame windows and no guidance
    batch, it would not. Checked once the network is known, before denoising, with --steps
    against its scheduler's training steps."""
    import torch

    sampling.check(FLAGS, most_steps=pipeline.scheduler.config.num_train_timesteps)

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


@dataclass
class Made:
    """A generated video and what goes with it into the files."""

    video: torch.Tensor  # (F, 3, H, W) in [0, 1]
    fps: Fraction
    reference: np.ndarray  # the grid's first column
    poses: list[np.ndarray]  # the grid's pose columns, (F, H, W, 3) each
    audio: Path | None
    start_time: float  # seconds into the sound of the first frame


def _check_job(options: AnimateOptions) -> None:
    """Every option of either model that needs no file, before the outputs are claimed."""
    dit = options.dit
    if dit is None:
        check_options(options)
        return
    from realisdance_cli.dit import job

    dit.check()
    dit.check_size(options.size)
    check_crf(options.crf)
    job.check_device(dit, resolve_device(options.device, options.dtype, gpu_dtype="bf16")[0])


def _check_pipeline(options: AnimateOptions, pipeline: Any) -> None:
    """A given pipeline is of the model `options.model` names: the other one's would fail deep
    inside, for want of the parts it lacks."""
    if pipeline is None:
        return
    if options.dit is None:
        from realisdance_cli.animator.pipeline import RealisDancePipeline

        wanted: type = RealisDancePipeline
    else:
        from realisdance_cli.dit.pipeline import RealisDanceDiTPipeline

        wanted = RealisDanceDiTPipeline
    if not isinstance(pipeline, wanted):
        model = type(options.model).__name__
        raise UserError(
            f"pipeline is a {type(pipeline).__name__}, but AnimateOptions.model is {model}, which runs a "
            f"{wanted.__name__}; give the pipeline of that model, or the model of that pipeline."
        )


def _check_weights(options: AnimateOptions) -> None:
    """The weights the job will load are at hand: a missing download is said before the poses are
    read or retargeted (minutes, for a long dance)."""
    if options.dit is None:
        pipeline_files(options)
        return
    from realisdance_cli.dit.job import check_release

    check_release(options)


def _animate_sd(
    reference_path: Path, inputs: PoseInputs, options: AnimateOptions, progress: ProgressFn, pipeline: Any
) -> Made:
    import torch

    sampling = sd_options(options).resolved_sampling()
    device, dtype = resolve_device(options.device, options.dtype)
    inputs = retargeted(reference_path, inputs, options, progress)
    reference = read_reference(reference_path, options.frame_size)
    poses = read_poses(inputs, options)
    pipeline = pipeline or load_pipeline(options, device, dtype, progress)
    from realisdance_cli.animator.pipeline import PoseVideos  # diffusers: imported as the pipeline loads

    check_network_fits(pipeline, options.frame_size, sampling, len(poses.frames[POSE_NAMES[0]]))
    videos = PoseVideos(*(video_tensor(poses.frames[name]) for name in POSE_NAMES))
    generator = torch.Generator().manual_seed(SD_SEED if options.seed is None else options.seed)
    result = pipeline(
        reference,
        videos,
        generator=generator,
        output_type="pt",
        return_dict=False,
        progress=progress,
        **sampling.call_kwargs(),
    )
    columns = [poses.frames[name] for name in POSE_NAMES]
    return Made(result[0][0], poses.fps, reference, columns, poses.audio, poses.start_time)


def _animate_dit(
    reference_path: Path,
    inputs: PoseInputs,
    options: AnimateOptions,
    progress: ProgressFn,
    pipeline: Any,
    world: World | None,
) -> Made:
    import torch

    from realisdance_cli.dit import job

    dit = options.dit
    assert dit is not None, "a DiT job"
    device, dtype = resolve_device(options.device, options.dtype, gpu_dtype="bf16")  # the original's
    inputs = retargeted(reference_path, inputs, options, progress)
    reference = read_picture(reference_path, "the reference picture")
    poses = read_poses(inputs, options)
    smpl = poses.frames["smpl"]
    config = pipeline.transformer.config if pipeline is not None else job.transformer_config(options)
    job.check_sizes(reference.shape[:2], smpl.shape[1:3], len(smpl), dit, options.size, config)
    if world is not None and not world.writes_outputs:  # one of several processes: one draws bars
        progress = no_progress
    pipeline = pipeline or job.load_pipeline(options, device, dtype, world, progress)
    seed = job.SEED if options.seed is None else options.seed
    if world is not None:  # the same noise in every process
        seed = world.common_seed(seed)
    height, width = options.size or (None, None)
    result = pipeline(
        reference,
        poses.frames["smpl"],
        poses.frames["hamer"],
        prompt=dit.prompt,
        negative_prompt=dit.negative_prompt,
        max_resolution=dit.max_resolution,
        num_inference_steps=dit.steps,
        guidance_scale=dit.guidance,
        generator=torch.Generator().manual_seed(seed),
        output_type="pt",
        return_dict=False,
        teacache_threshold=dit.teacache,
        context_frames=dit.context,
        context_overlap=dit.overlap,
        faithful=dit.faithful,
        progress=progress,
        height=height,
        width=width,
    )
    video = result[0][0]
    columns = [poses.frames[name] for name in job.POSES]
    return Made(video, poses.fps, reference, columns, poses.audio, poses.start_time)


def animate(
    reference_path: str | os.PathLike[str],
    inputs: PoseInputs | str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: AnimateOptions | None = None,
    progress: ProgressFn = no_progress,
    pipeline: Any = None,
    *,
    force: bool = False,
) -> list[Path]:
    """Runs the whole job with the model `options.model` names (SD-1.5 RealisDance by default);
    returns the written videos (the result, and the grid when asked). `pipeline`: one already
    loaded for these options (`load_pipeline`, `dit.job.load_pipeline`), for many videos in a row.
    Existing videos are replaced only with `force`; the outputs are claimed before the work, so a
    second job writing them stops at once. `inputs`: a folder of pose videos stands for
    `PoseInputs(folder=...)`."""
    reference_path, out, options = Path(reference_path), Path(out), options or AnimateOptions()
    if not isinstance(inputs, PoseInputs):
        inputs = PoseInputs(folder=Path(inputs))
    _check_job(options)
    _check_pipeline(options, pipeline)
    paths = output_paths(out, options.grid)
    inputs_read = {source.resolve() for source in (reference_path, *inputs.sources())}
    if any(path.resolve() in inputs_read for path in paths):
        raise UserError(f"--out {out} would replace an input; choose another --out.")
    if out.suffix.lower() != ".mp4":  # what VideoWriter writes, whatever the name says
        raise UserError(f"--out must name an .mp4 file (the video is H.264 in MP4), got {out.name}.")
    world = _world(options, pipeline)
    existing_file(reference_path, "the reference picture")
    if pipeline is None:
        _check_weights(options)
    writes = world is None or world.writes_outputs  # the others compute the same video
    with ExitStack() as stack:  # a failure aborts every writer: no partial file is left
        if world is not None:
            from realisdance_cli.dit.parallel import leave

            stack.callback(leave)  # the process group joined when the pipeline loaded
        for path in paths if writes else []:
            stack.enter_context(claimed_output(path, force=force))
        if options.dit is not None:
            made = _animate_dit(reference_path, inputs, options, progress, pipeline, world)
        else:
            made = _animate_sd(reference_path, inputs, options, progress, pipeline)
        if not writes:
            return []
        _write(made, paths, options, stack, progress)
    return paths


def _write(
    made: Made,
    paths: list[Path],
    options: AnimateOptions,
    stack: ExitStack,
    progress: ProgressFn,
) -> None:
    """The result (and the grid) encoded frame by frame: no second copy of the video. They are
    published as one set, the result first: a stop between the two keeps the result, and a
    `--force` never leaves the new result beside the earlier grid."""
    size = (made.video.shape[2], made.video.shape[3])
    writers = [
        VideoWriter(path, made.fps, crf=options.crf, audio_from=made.audio, audio_start=made.start_time)
        for path in paths
    ]
    for writer in writers:  # what a failure leaves: no temporary
        stack.callback(writer.abort)
    reference = fit(made.reference, size)
    for index, picture in enumerate(made.video):
        frame = frame_pixels(picture)
        writers[0].write(frame)
        if options.grid:
            poses_now = (fit(column[min(index, len(column) - 1)], size) for column in made.poses)
            writers[1].write(np.hstack([reference, *poses_now, frame]))
        progress("encoding", index + 1, len(made.video))
    publish_together(writers)


def _world(options: AnimateOptions, pipeline: Any) -> World | None:
    """The `torchrun` job this process is one of (RealisDance-DiT's sequence split across its
    processes), or None for one process. A given pipeline is this process's own."""
    if pipeline is not None:
        return None
    from realisdance_cli.dit.parallel import world_from_environment

    world = world_from_environment()
    if world is not None and options.dit is None:
        raise UserError(
            "the SD-1.5 model animates a video in one process; start it without torchrun, or use "
            "`rdance eval run`, which shares whole videos out between processes."
        )
    if world is not None and options.retarget is not None:
        raise UserError(
            "--retarget runs in one process; run `rdance retarget` and `rdance render-poses` first, "
            "then start the job on the retargeted track."
        )
    return world
