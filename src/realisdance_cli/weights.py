"""Every weight file the pipeline uses: what it is for, where it lives, where to get it.

The weights root is `--weights DIR`, else `$RDANCE_HOME`, else `~/.cache/realisdance`. Files on
the Hugging Face hub are downloaded with `huggingface_hub` (resumable, pinned to a revision,
honouring `HF_ENDPOINT` and `HF_HUB_OFFLINE`); licence-gated files (SMPL-X, MANO) and files off
the hub come with exact instructions instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from realisdance_cli import weight_files
from realisdance_cli.errors import UserError
from realisdance_cli.progress import ProgressFn, no_progress

DEFAULT_ROOT = Path("~/.cache/realisdance")


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face repository."""

    repo: str
    filename: str
    revision: str = "main"


@dataclass(frozen=True)
class HubFolder:
    """The files of a Hugging Face repository matching `patterns` (a diffusers/transformers folder)."""

    repo: str
    patterns: tuple[str, ...]
    required: tuple[str, ...]  # relative paths that must exist for the folder to count as present
    revision: str = "main"
    weight_dirs: tuple[str, ...] = ()  # relative folders that must hold weights ("" is the folder)


@dataclass(frozen=True)
class Manual:
    """A file the user fetches by hand (licence registration, or an archive off the hub)."""

    url: str
    steps: str


Source = HubFile | HubFolder | Manual


@dataclass(frozen=True)
class WeightFile:
    name: str
    group: str
    purpose: str
    path: str  # relative to the weights root
    source: Source
    licence: str
    size: int | None = None
    sha256: str | None = None

    @property
    def is_folder(self) -> bool:
        return isinstance(self.source, HubFolder)

    def where(self) -> str:
        source = self.source
        if isinstance(source, HubFile):
            return f"hf://{source.repo}/{source.filename}@{source.revision}"
        if isinstance(source, HubFolder):
            return f"hf://{source.repo}@{source.revision}"
        return source.url


_HAMER_DATA = "https://www.cs.utexas.edu/~pavlakos/hamer/data/hamer_demo_data.tar.gz"
_HAMER_STEPS = (
    "download {url} (about 6 GB), then extract _DATA/hamer_ckpts/checkpoints/hamer.ckpt, "
    "_DATA/hamer_ckpts/model_config.yaml and _DATA/data/mano_mean_params.npz into {root}/hamer/"
)
_MANO_STEPS = (
    "register and accept the MANO licence at https://mano.is.tue.mpg.de, download 'Models & Code', "
    "and copy mano_v1_2/models/MANO_RIGHT.pkl to {root}/mano/MANO_RIGHT.pkl"
)
_SMPLX_STEPS = (
    "register and accept the SMPL-X licence at https://smpl-x.is.tue.mpg.de, download "
    "'SMPL-X v1.1 (NPZ+PKL)', and copy models/smplx/SMPLX_NEUTRAL.npz to {root}/smplx/SMPLX_NEUTRAL.npz"
)

REGISTRY: tuple[WeightFile, ...] = (
    WeightFile(
        "dwpose-det",
        "dwpose",
        "YOLOX-L person detector for DWPose (ONNX)",
        "dwpose/yolox_l.onnx",
        HubFile("yzd-v/DWPose", "yolox_l.onnx"),
        "Apache-2.0",
    ),
    WeightFile(
        "dwpose-pose",
        "dwpose",
        "DWPose RTMPose-l whole-body keypoints, 133 points (ONNX)",
        "dwpose/dw-ll_ucoco_384.onnx",
        HubFile("yzd-v/DWPose", "dw-ll_ucoco_384.onnx"),
        "Apache-2.0",
    ),
    WeightFile(
        "hamer",
        "hamer",
        "HaMeR hand mesh recovery network (ViT-H)",
        "hamer/hamer.ckpt",
        Manual(_HAMER_DATA, _HAMER_STEPS),
        "HaMeR release (MIT code; see the HaMeR repository for model terms)",
    ),
    WeightFile(
        "hamer-config",
        "hamer",
        "HaMeR model configuration",
        "hamer/model_config.yaml",
        Manual(_HAMER_DATA, _HAMER_STEPS),
        "HaMeR release",
    ),
    WeightFile(
        "hamer-mean",
        "hamer",
        "MANO mean parameters HaMeR starts from",
        "hamer/mano_mean_params.npz",
        Manual(_HAMER_DATA, _HAMER_STEPS),
        "HaMeR release",
    ),
    WeightFile(
        "mano",
        "mano",
        "MANO right-hand model (left hands are mirrored)",
        "mano/MANO_RIGHT.pkl",
        Manual("https://mano.is.tue.mpg.de", _MANO_STEPS),
        "MANO licence (non-commercial research; registration)",
    ),
    WeightFile(
        "smplerx",
        "smplerx",
        "SMPLer-X H32 whole-body SMPL-X estimator",
        "smplerx/smpler_x_h32.pth.tar",
        HubFile("caizhongang/SMPLer-X", "smpler_x_h32.pth.tar"),
        "S-Lab License 1.0 (non-commercial)",
    ),
    WeightFile(
        "smplx",
        "smplx",
        "SMPL-X neutral body model",
        "smplx/SMPLX_NEUTRAL.npz",
        Manual("https://smpl-x.is.tue.mpg.de", _SMPLX_STEPS),
        "SMPL-X licence (non-commercial research; registration)",
    ),
    WeightFile(
        "smplx-colors",
        "smplx",
        "per-vertex colours of the SMPL-X colourful surface (SMPL-CS)",
        "smplx/smplx_color.pt",
        Manual(
            "https://github.com/theFoxofSky/RealisDance",
            "copy prepare_pose/smplerX/**/render_color_weight/smplx_color.pt from the RealisDance repository "
            "(branch RealisDance-SD) to {root}/smplx/smplx_color.pt",
        ),
        "Apache-2.0",
    ),
    WeightFile(
        "realisdance",
        "realisdance",
        "RealisDance network (reference UNet, pose guider, 3-D UNet)",
        "realisdance/stage_2_hamer_release.ckpt",
        HubFile("theFoxofSky/RealisDance", "stage_2_hamer_release.ckpt"),
        "Apache-2.0",
    ),
    WeightFile(
        "base-model",
        "realisdance",
        "Realistic Vision 5.1 base model (UNet config, VAE, scheduler)",
        "base/rv51",
        HubFolder(
            "SG161222/Realistic_Vision_V5.1_noVAE",
            ("model_index.json", "unet/config.json", "vae/*", "scheduler/*"),
            ("unet/config.json", "vae/config.json", "scheduler/scheduler_config.json"),
            weight_dirs=("vae",),
        ),
        "CreativeML OpenRAIL-M",
    ),
    WeightFile(
        "vae-ft-mse",
        "realisdance",
        "optional fine-tuned SD VAE (sharper faces)",
        "base/sd-vae-ft-mse",
        HubFolder(
            "stabilityai/sd-vae-ft-mse",
            ("config.json", "*.safetensors", "*.safetensors.index.json"),  # index: sharded weights
            ("config.json",),
            weight_dirs=("",),
        ),
        "MIT",
    ),
    WeightFile(
        "dinov2",
        "realisdance",
        "DINOv2-large image encoder for the reference picture",
        "dinov2-large",
        HubFolder(
            "facebook/dinov2-large",
            ("config.json", "*.safetensors", "*.safetensors.index.json"),  # index: sharded weights
            ("config.json",),
            weight_dirs=("",),
        ),
        "Apache-2.0",
    ),
    WeightFile(
        "base-unet",
        "training",
        "Realistic Vision 5.1 UNet weights (stage-1 training init)",
        "base/rv51/unet/diffusion_pytorch_model.safetensors",
        HubFile("SG161222/Realistic_Vision_V5.1_noVAE", "unet/diffusion_pytorch_model.safetensors"),
        "CreativeML OpenRAIL-M",
    ),
    WeightFile(
        "motion-prior",
        "training",
        "AnimateDiff v2 motion modules (stage-2 training init)",
        "animatediff/mm_sd_v15_v2.ckpt",
        HubFile("guoyww/animatediff", "mm_sd_v15_v2.ckpt"),
        "Apache-2.0",
    ),
)

GROUPS: tuple[str, ...] = tuple(dict.fromkeys(entry.group for entry in REGISTRY))


def weights_root(override: str | os.PathLike[str] | None = None) -> Path:
    """`--weights DIR` > `$RDANCE_HOME` > `~/.cache/realisdance`."""
    chosen = Path(override or os.environ.get("RDANCE_HOME") or DEFAULT_ROOT).expanduser()
    if chosen.exists() and not chosen.is_dir():
        raise UserError(f"the weights folder {chosen} is a file; give a folder (--weights or $RDANCE_HOME).")
    return chosen


def select(names: Iterable[str] = ()) -> list[WeightFile]:
    """Entries by name or group; everything when `names` is empty."""
    names = list(names)
    if not names:
        return list(REGISTRY)
    chosen: list[WeightFile] = []
    for name in names:
        matches = [entry for entry in REGISTRY if name in (entry.name, entry.group)]
        if not matches:
            known = ", ".join(sorted({*GROUPS, *(entry.name for entry in REGISTRY)}))
            raise UserError(f"no weight file or group is called {name!r}; known names: {known}.")
        chosen.extend(entry for entry in matches if entry not in chosen)
    return chosen


def get(name: str) -> WeightFile:
    (entry,) = (entry for entry in REGISTRY if entry.name == name)
    return entry


# How closely `status` looks at a file that is present: not at all, its headers and directories
# (cheap), or every byte (zip CRCs, every array). See weight_files.py.
Structure = Literal["none", "quick", "full"]


@dataclass(frozen=True)
class Status:
    entry: WeightFile
    path: Path
    found: bool
    size: int | None  # bytes on disk (all files of a folder)
    problem: str | None = None  # damaged or truncated, size or checksum mismatch: one short phrase
    culprit: Path | None = None  # the file to delete before fetching it again (None: nothing to delete)
    note: str | None = None  # what the structural check could not verify

    @property
    def ok(self) -> bool:
        return self.found and self.problem is None


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)


def status(
    entry: WeightFile, root: Path, *, verify_hash: bool = False, structure: Structure = "quick"
) -> Status:
    """Whether `entry` is present under `root` and whole: its structure (see weight_files.py; the
    registry knows no checksums for most files, so a truncated download is caught this way) and,
    with `verify_hash`, its checksum where one is known."""
    path = root / entry.path
    full = structure == "full"
    if isinstance(entry.source, HubFolder):
        found = all((path / rel).is_file() for rel in entry.source.required)
        if not found:
            return Status(entry, path, False, None)
        size = _folder_size(path)
        if structure == "none":
            return Status(entry, path, True, size)
        try:
            note = weight_files.check_folder(path, entry.source.weight_dirs, full, entry.source.patterns)
        except weight_files.Broken as err:
            return Status(entry, path, True, size, str(err), err.path)
        return Status(entry, path, True, size, note=note)
    if not path.is_file():
        return Status(entry, path, False, None)
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return Status(entry, path, True, size, f"size {size} bytes, expected {entry.size}", path)
    note = None
    if structure != "none":
        try:
            note = weight_files.check_file(path, full)
        except weight_files.Broken as err:
            return Status(entry, path, True, size, str(err), err.path)
    if verify_hash and entry.sha256 is not None:
        from realisdance_cli.files import file_sha256

        if file_sha256(path) != entry.sha256:
            return Status(entry, path, True, size, "sha256 does not match the published checksum", path)
    return Status(entry, path, True, size, note=note)


def instructions(entry: WeightFile, root: Path) -> str:
    """How to get a file by hand (licence-gated or off the hub)."""
    if isinstance(entry.source, Manual):
        return entry.source.steps.format(url=entry.source.url, root=root)
    return f"run `rdance weights download {entry.group}`"


def refetch(found: Status, root: Path) -> str:
    """How to replace a damaged or incomplete file: delete the bad file first, so that
    `rdance weights download` (which skips what looks present) fetches it again."""
    if found.culprit is None:
        return instructions(found.entry, root)
    return f"delete {found.culprit}, then {instructions(found.entry, root)}"


def require(name: str, root: Path, explicit: str | os.PathLike[str] | None = None) -> Path:
    """The path of weight file `name`, or one clear sentence about how to get it."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise UserError(f"{path} does not exist.")
        return path
    entry = get(name)
    found = status(entry, root, structure="none")
    if not found.found:
        raise UserError(
            f"{entry.purpose} is missing: {found.path} not found; {instructions(entry, root)} "
            f"(licence: {entry.licence})."
        )
    return found.path


def require_all(names: Iterable[str], root: Path) -> dict[str, Path]:
    """The paths of several weight files, or one sentence naming every missing one and its fix."""
    found = {name: status(get(name), root, structure="none") for name in names}
    missing = [
        f"{s.entry.purpose} ({s.path}: {instructions(s.entry, root)})" for s in found.values() if not s.found
    ]
    if missing:
        raise UserError("missing weights: " + "; ".join(missing) + ".")
    return {name: s.path for name, s in found.items()}


class ManualDownload(UserError):
    """The file cannot be fetched automatically; the message says how to get it."""


def _progress_bar_class(progress: ProgressFn, label: str) -> type:
    """A tqdm class that forwards huggingface_hub's byte counts to our progress callback."""
    from tqdm.auto import tqdm

    class Forward(tqdm):
        def __init__(
            self, *args: object, total: int | None = None, initial: int = 0, **kwargs: object
        ) -> None:
            super().__init__(disable=True)
            self.done, self.expected = initial, total
            progress(label, self.done, self.expected)

        def update(self, n: float | None = 1) -> bool | None:
            self.done += int(n or 0)
            progress(label, self.done, self.expected)
            return None

    return Forward


def _fetch(repo: str, filename: str, revision: str, target: Path, progress: ProgressFn, label: str) -> None:
    """Download one hub file to `target`, continuing a `.part` file left by an interrupted run."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    meta = get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision))
    tag = (meta.etag or meta.commit_hash or "unknown").strip('"')[:16]
    part = target.with_name(f".{target.name}.{tag}.part")
    for stale in target.parent.glob(f".{target.name}.*.part"):
        if stale != part:
            stale.unlink()  # a partial download of another version of the file
    target.parent.mkdir(parents=True, exist_ok=True)
    with part.open("ab") as handle:
        http_get(
            meta.location,
            handle,
            resume_size=handle.tell(),
            headers=build_hf_headers(),
            expected_size=meta.size,
            tqdm_class=_progress_bar_class(progress, label),
        )
    if meta.size is not None and part.stat().st_size != meta.size:
        raise OSError(f"got {part.stat().st_size} of {meta.size} bytes")
    os.replace(part, target)


def _folder_files(source: HubFolder) -> tuple[str, list[str]]:
    """The commit `source.revision` points at, and the repository files matching its patterns."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi()
    commit = api.model_info(source.repo, revision=source.revision).sha or source.revision
    names = [
        f.path
        for f in api.list_repo_tree(source.repo, revision=commit, recursive=True)
        if isinstance(f, RepoFile)
    ]
    return commit, sorted(filter_repo_objects(names, allow_patterns=list(source.patterns)))


def download(entry: WeightFile, root: Path, progress: ProgressFn = no_progress) -> Path:
    """Fetch `entry` into `root`, resuming an interrupted download; returns its path."""
    source = entry.source
    if isinstance(source, Manual):
        raise ManualDownload(f"{entry.name} must be fetched by hand: {instructions(entry, root)}.")
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    target = root / entry.path
    if constants.HF_HUB_OFFLINE:
        raise UserError(
            f"{entry.name} is not in {target} and downloads are off (HF_HUB_OFFLINE is set); "
            "unset it and run the command again, or copy the file there."
        )
    try:
        if isinstance(source, HubFile):
            _fetch(source.repo, source.filename, source.revision, target, progress, entry.name)
        else:
            commit, names = _folder_files(source)
            for name in names:
                _fetch(source.repo, name, commit, target / name, progress, f"{entry.name}/{name}")
    except HfHubHTTPError as err:
        raise UserError(
            f"downloading {entry.name} from {entry.where()} failed ({err}); run the command again to resume."
        ) from None
    except (OSError, ConnectionError, TimeoutError) as err:
        raise UserError(
            f"downloading {entry.name} failed ({err}); run the command again to resume."
        ) from None
    except Exception as err:  # httpx transport errors have no common base with OSError
        if type(err).__module__.split(".")[0] not in {"httpx", "httpx2", "httpcore"}:
            raise
        raise UserError(
            f"downloading {entry.name} from {entry.where()} failed ({err}); run the command again to resume."
        ) from None
    result = status(entry, root, verify_hash=True)
    if result.problem:
        raise UserError(f"{target} was downloaded but is wrong: {result.problem}; {refetch(result, root)}.")
    return target
