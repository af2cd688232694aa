"""Every weight file the pipeline uses: what it is for, where it lives, where to get it.

A file is looked for in the weights folder (`--weights DIR`, else `$RDANCE_HOME`, else
`~/.cache/realisdance`), at its registry path, and then, for files on the Hugging Face hub, in the
Hugging Face cache (`HF_HOME`, `HF_HUB_CACHE`) at the registry's revision, so that a model a user
already has from diffusers or transformers is used where it lies instead of being fetched again.

Downloads are pinned to the registry's revision and honour `HF_ENDPOINT` and `HF_HUB_OFFLINE`:
into the weights folder when the user named one, else into the Hugging Face cache, shared with
those libraries. A single file bound for the weights folder is fetched here, with huggingface_hub's
public API only (`hf_hub_url`, `get_hf_file_metadata`, and `http_stream_backoff` on the session
huggingface_hub itself uses): its bytes gather in `.<name>.<etag>.partial` beside it, so a later
run, even after the process was killed, continues them with a `Range` request, and a file changed
upstream (another etag) is never appended to old bytes; size and sha256 (the registry's, else the
etag of an LFS file) are checked before the file is renamed into place. Folders go through
`snapshot_download` and files bound for the cache through `hf_hub_download`: huggingface_hub
continues a transfer that drops within a run and keeps the finished files of a folder, but a killed
run fetches its unfinished file again from the start, because huggingface_hub (2.x) writes each
transfer to a file of that process alone (huggingface_hub issue #4196), and it offers no public way
to put a file into the cache's blob layout, which is its own to write. Licence-gated files (SMPL-X,
MANO) and files off the hub come with exact instructions instead.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import shlex
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO, Literal

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
            "https://github.com/damo-cv/RealisDance/raw/e916e67a379ce049cb7ac4186be2a76332af6c7a/"
            "prepare_pose/smplerX/common/utils/smplx_color.pt",
            "download {url} (the authors' repository) to {root}/smplx/smplx_color.pt",
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
    WeightFile(
        "realisdance-dit",
        "dit",
        "RealisDance-DiT (Wan2.1-I2V-14B + pose input), tens of GB",
        "realisdance-dit",
        HubFolder(
            "theFoxofSky/RealisDance-DiT",
            (
                "model_index.json",
                "transformer/*",
                "vae/*",
                "image_encoder/*",
                "image_processor/*",  # the CLIP image processor's settings, where the release has them
                "text_encoder/*",
                "tokenizer/*",
                "scheduler/*",
            ),
            (
                "model_index.json",
                *(f"{part}/config.json" for part in ("transformer", "vae", "image_encoder", "text_encoder")),
                "tokenizer/tokenizer_config.json",
                "tokenizer/tokenizer.json",
                "scheduler/scheduler_config.json",
            ),
            weight_dirs=("transformer", "vae", "image_encoder", "text_encoder"),
        ),
        "academic use only (RealisDance-DiT README); Wan2.1 base: Apache-2.0",
    ),
    # `rdance eval`'s feature networks: the files their metrics were published with, from hub
    # mirrors pinned to a revision whose file matches the release byte for byte (the sha256
    # below; the release names carry its first digits).
    WeightFile(
        "fid-inception",
        "eval",
        "InceptionV3 for FID: TensorFlow's 2015-12-05 weights as pytorch-fid released them",
        "eval/pt_inception-2015-12-05-6726825d.pth",
        HubFile(
            "RaphaelLiu/EvalCrafter-Models",
            "pt_inception-2015-12-05-6726825d.pth",
            "6040b4d40fdcde446a0cf753b0527585b6b77c54",
        ),
        "Apache-2.0 (pytorch-fid; TensorFlow's Inception weights)",
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    ),
    WeightFile(
        "lpips-vgg16",
        "eval",
        "VGG16 ImageNet weights (torchvision's vgg16-397923af.pth), the LPIPS backbone",
        "eval/auxiliary/vgg16-397923af.pth",
        HubFile(
            "ByteDance/LatentSync-1.5",
            "auxiliary/vgg16-397923af.pth",
            "32a20d29aead0498e3e885e90dbbe8027da1b61b",
        ),
        "BSD-3-Clause (torchvision)",
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
    ),
    WeightFile(
        "lpips-heads",
        "eval",
        "LPIPS v0.1 learned layer weights for VGG (the lpips package's weights/v0.1/vgg.pth)",
        "eval/LPIPS_v0.1_vgg-a78928a0.pth",
        HubFile(
            "chaofengc/IQA-PyTorch-Weights",
            "LPIPS_v0.1_vgg-a78928a0.pth",
            "e03d58097b4b231515f900fa8006a2168becc745",
        ),
        "BSD-2-Clause (LPIPS, Zhang et al.)",
        sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    ),
    # The two video networks, as DisCo's evaluation reads them from its `eval_fvd/` folder; one
    # mirror keeps that folder. The I3D digest is the release's as two other copies' LFS pointers
    # give it; the 3-D ResNet's was not seen on the hub, so the file is checked by its LFS etag.
    WeightFile(
        "i3d",
        "eval",
        "I3D for FVD: DeepMind's Kinetics-400 I3D as VideoGPT converted it (i3d_pretrained_400.pt)",
        "eval/eval_fvd/i3d_pretrained_400.pt",
        HubFile(
            "Sony/humangif",
            "eval_fvd/i3d_pretrained_400.pt",
            "43f43ae2fd82c392839768ae89b9f7aa72fa5b73",
        ),
        "Apache-2.0 (DeepMind's I3D weights); MIT (VideoGPT's conversion)",
        sha256="55095f049e706479d48e221adcdb145b2b9dc930ba28b081ed72367ffaa32343",
    ),
    WeightFile(
        "resnet3d-50",
        "eval",
        "3-D ResNet-50 for FID-VID: Hara et al.'s Kinetics-400 model (resnet-50-kinetics.pth)",
        "eval/eval_fvd/resnet-50-kinetics.pth",
        HubFile(
            "Sony/humangif",
            "eval_fvd/resnet-50-kinetics.pth",
            "43f43ae2fd82c392839768ae89b9f7aa72fa5b73",
        ),
        "MIT (kenshohara/3D-ResNets-PyTorch)",
    ),
)

GROUPS: tuple[str, ...] = tuple(dict.fromkeys(entry.group for entry in REGISTRY))
# Fetched and checked only when named: RealisDance-DiT is tens of GB and only `--model dit` reads it;
# the evaluation networks only `rdance eval` reads.
OPTIONAL_GROUPS = ("dit", "eval")


def weights_root(override: str | os.PathLike[str] | None = None) -> Path:
    """`--weights DIR` > `$RDANCE_HOME` > `~/.cache/realisdance`."""
    chosen = Path(override or os.environ.get("RDANCE_HOME") or DEFAULT_ROOT).expanduser()
    if chosen.exists() and not chosen.is_dir():
        raise UserError(f"the weights folder {chosen} is a file; give a folder (--weights or $RDANCE_HOME).")
    return chosen


def select(names: Iterable[str] = ()) -> list[WeightFile]:
    """Entries by name or group; everything but the optional groups when `names` is empty."""
    names = list(names)
    if not names:
        return [entry for entry in REGISTRY if entry.group not in OPTIONAL_GROUPS]
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
    in_cache: bool = False  # found in the Hugging Face cache rather than in the weights folder

    @property
    def ok(self) -> bool:
        return self.found and self.problem is None

    @property
    def place(self) -> str:
        """Where the entry was found (or looked for first), for people."""
        return "Hugging Face cache" if self.in_cache else "weights folder"


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)


def status(
    entry: WeightFile, root: Path, *, verify_hash: bool = False, structure: Structure = "quick"
) -> Status:
    """Whether `entry` is present and whole: in the weights folder `root` first, else (hub files)
    in the Hugging Face cache at the entry's revision. A whole copy wins over a damaged one; with
    none, the damaged copy is reported (the weights folder's first), else "not found" at `root`.
    Whole means its structure (see weight_files.py; the registry knows no checksums for most
    files, so a truncated download is caught this way) and, with `verify_hash`, its checksum where
    one is known."""
    local = _inspect(entry, root / entry.path, verify_hash=verify_hash, structure=structure)
    if local.ok or isinstance(entry.source, Manual):
        return local
    cached = _cache_path(entry.source)
    if cached is None:
        return local
    found = _inspect(entry, cached, in_cache=True, verify_hash=verify_hash, structure=structure)
    return found if found.ok or not local.found else local


def _cache_path(source: HubFile | HubFolder) -> Path | None:
    """Where the Hugging Face cache holds `source` at its revision, without a request (None: not
    there). A folder's snapshot may be partial; the structural check judges it."""
    from huggingface_hub import snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError

    if isinstance(source, HubFile):
        cached = try_to_load_from_cache(source.repo, source.filename, revision=source.revision)
        return Path(cached) if isinstance(cached, str) else None
    try:
        folder = snapshot_download(
            source.repo, revision=source.revision, allow_patterns=list(source.patterns), local_files_only=True
        )
    except LocalEntryNotFoundError:  # not cached, or a snapshot known to miss files
        return None
    return Path(folder)


def _inspect(
    entry: WeightFile,
    path: Path,
    *,
    in_cache: bool = False,
    verify_hash: bool = False,
    structure: Structure = "quick",
) -> Status:
    """The state of the copy of `entry` at `path`. A damaged file in the cache is named by its
    blob, the file to delete (its snapshot entry is a link to it)."""
    found = _inspect_copy(entry, path, structure)
    if verify_hash and found.ok:
        found = replace(_checksum_problem(entry, path) or found, size=found.size, note=found.note)
    if not in_cache:
        return found
    culprit = found.culprit.resolve() if found.culprit else None
    return replace(found, culprit=culprit, in_cache=True)


def _announced_sha256(path: Path, folder: Path | None) -> str | None:
    """The sha256 the hub announced for a file huggingface_hub downloaded (its LFS object id),
    where huggingface_hub keeps it: a cache blob is named by it, a download into `folder` records
    it in `.cache/huggingface/download/<file>.metadata` (the ETag, second line). None for small
    git-stored files and files put there by hand."""
    blob = path.resolve().name
    if _LFS_ETAG.fullmatch(blob):
        return blob
    if folder is None:
        return None
    relative = path.relative_to(folder).as_posix()
    try:
        etag = (folder / ".cache/huggingface/download" / f"{relative}.metadata").read_text().split("\n")[1]
    except (OSError, IndexError):
        return None
    return etag if _LFS_ETAG.fullmatch(etag) else None


def _checksum_problem(entry: WeightFile, path: Path) -> Status | None:
    """A file whose bytes are not the ones announced for it (the published checksum, or the hub's
    sha256, which huggingface_hub records but does not compare): its Status, else None."""
    from realisdance_cli.files import file_sha256

    if isinstance(entry.source, HubFolder):  # the folder's own files, not another entry's inside
        files = weight_files.folder_files(path, entry.source.patterns)
        announced = {file: _announced_sha256(file, path) for file in files}
    else:
        announced = {path: entry.sha256 or _announced_sha256(path, None)}
    for file, expected in announced.items():
        if expected is not None and file_sha256(file) != expected:
            where = f"{file.relative_to(path).as_posix()}: " if file != path else ""
            return Status(entry, path, True, None, f"{where}sha256 does not match the published one", file)
    return None


def _inspect_copy(entry: WeightFile, path: Path, structure: Structure) -> Status:
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
    return Status(entry, path, True, size, note=note)


def instructions(entry: WeightFile, root: Path) -> str:
    """How to get a file by hand (licence-gated or off the hub)."""
    if isinstance(entry.source, Manual):
        return entry.source.steps.format(url=entry.source.url, root=root)
    where = f" --weights {shlex.quote(str(root))}" if _chosen(root) else ""  # else it goes elsewhere
    return f"run `rdance weights download {entry.group}{where}`"


def refetch(found: Status, root: Path) -> str:
    """How to replace a damaged or incomplete file: delete the bad file first, so that
    `rdance weights download` (which skips what looks present) fetches it again."""
    if found.culprit is None:
        return instructions(found.entry, root)
    return f"delete {found.culprit}, then {instructions(found.entry, root)}"


def require(name: str, root: Path, explicit: str | os.PathLike[str] | None = None) -> Path:
    """The path of weight file `name`, or one clear sentence about how to get it."""
    entry = get(name)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise UserError(f"{path} does not exist.")
        if path.is_dir() != entry.is_folder:
            kind = "folder" if entry.is_folder else "file"
            raise UserError(
                f"{path} is {'a file' if path.is_file() else 'a folder'}; give the {kind} of {entry.purpose}."
            )
        return path
    found = status(entry, root, structure="none")
    if not found.found:
        raise UserError(
            f"{entry.purpose} is missing: {not_found(found)}; {instructions(entry, root)} "
            f"(licence: {entry.licence})."
        )
    return found.path


def require_all(names: Iterable[str], root: Path) -> dict[str, Path]:
    """The paths of several weight files, or one sentence naming every missing one and its fix."""
    found = {name: status(get(name), root, structure="none") for name in names}
    missing = [
        f"{s.entry.purpose} ({not_found(s)}: {instructions(s.entry, root)})"
        for s in found.values()
        if not s.found
    ]
    if missing:
        raise UserError("missing weights: " + "; ".join(missing) + ".")
    return {name: s.path for name, s in found.items()}


def not_found(missing: Status) -> str:
    """Where a missing entry was looked for, for people."""
    if isinstance(missing.entry.source, Manual):
        return f"{missing.path} not found"
    return f"{missing.path} not found, nor in the Hugging Face cache"


class ManualDownload(UserError):
    """The file cannot be fetched automatically; the message says how to get it."""


def _progress_bar_class(progress: ProgressFn, label: str) -> type:
    """A tqdm class that forwards the bytes huggingface_hub writes to our progress callback: a
    file's, or snapshot_download's sum over a folder's files. Its network-transfer bars (bytes
    received, which can differ) and file-count bars are left out, so each byte counts once."""
    from huggingface_hub.utils import tqdm

    class Forward(tqdm):
        def __init__(
            self,
            *args: object,
            name: str | None = None,
            unit: str = "it",
            total: float | None = None,
            initial: float = 0,
            **kwargs: object,
        ) -> None:
            super().__init__(total=total, initial=initial, disable=True)
            self.counts_bytes = unit == "B" and not (name or "").endswith(".transfer")
            self._report()

        def update(self, n: float | None = 1) -> bool | None:
            self.n += n or 0
            self._report()
            return None

        def _report(self) -> None:
            if self.counts_bytes:
                progress(label, int(self.n), int(self.total) if self.total else None)

    return Forward


def _chosen(root: Path) -> bool:
    """Whether the user named the weights folder (`--weights`, `$RDANCE_HOME`): downloads then go
    there; otherwise into the Hugging Face cache, where diffusers and transformers find them too."""
    return bool(os.environ.get("RDANCE_HOME")) or root != DEFAULT_ROOT.expanduser()


def _network_error(err: Exception) -> bool:
    """A failure of the connection (httpx's transport errors have no common base with OSError)."""
    return type(err).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore"}


def _transfer_error(err: Exception) -> bool:
    """A failure of the network or the disk, which another run can get past."""
    return isinstance(err, OSError) or _network_error(err)


_RETRIES = 5  # tries in a row that bring no new byte before a transfer gives up
_LFS_ETAG = re.compile(r"[0-9a-f]{64}")  # the hub's etag of an LFS file is its sha256


def _partial_path(target: Path, etag: str) -> Path:
    """Where the bytes of `target` at version `etag` gather: beside it, hidden, named by the etag."""
    tag = re.sub(r"[^0-9A-Za-z]", "", etag)[:16]
    return target.with_name(f".{target.name}.{tag}.partial")


@contextmanager
def _held(partial: Path, target: Path) -> Iterator[BinaryIO]:
    """`partial`, opened for writing under an advisory lock (the kernel frees it when the process
    dies), so that two processes never write it at once."""
    with open(os.open(partial, os.O_RDWR | os.O_CREAT, 0o666), "r+b") as out:
        try:
            fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another process is downloading {target}; wait for it to finish.") from None
        yield out


def _restart(out: BinaryIO) -> None:
    out.seek(0)
    out.truncate()


def _receive(url: str, out: BinaryIO, report: Callable[[int], None]) -> None:
    """One GET of `url` into `out`: the bytes after those `out` holds (a `Range` request), or the
    whole file from the start when the server answers with all of it (a 200)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_stream_backoff

    start = out.tell()
    headers = {**build_hf_headers(), "Accept-Encoding": "identity"}  # ranges count stored bytes
    if start:
        headers["Range"] = f"bytes={start}-"
    timeout = constants.HF_HUB_DOWNLOAD_TIMEOUT
    with http_stream_backoff("GET", url, headers=headers, timeout=timeout, retry_on_exceptions=()) as answer:
        hf_raise_for_status(answer)
        if start and not answer.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
            _restart(out)
            report(0)
        for chunk in answer.iter_bytes():
            out.write(chunk)
            out.flush()  # what arrived is on disk for the next run, should this one be killed
            report(out.tell())


def _receive_all(url: str, out: BinaryIO, size: int | None, report: Callable[[int], None]) -> None:
    """Fill `out` up to `size` bytes, continuing with a `Range` request when the connection drops
    or stalls, until _RETRIES tries in a row bring no new byte. Of unknown size: one transfer."""
    idle = 0
    while size is None or out.tell() < size:
        before = out.tell()
        try:
            return _receive(url, out, report)
        except Exception as err:
            idle = 0 if out.tell() > before else idle + 1
            if size is None or idle > _RETRIES or not _network_error(err):
                raise
        time.sleep(1)


def _fetch_file(entry: WeightFile, source: HubFile, target: Path, progress: ProgressFn) -> Path:
    """Download `source` to `target`, continuing the bytes an earlier run of the same version left
    (a killed one too); checked for size and sha256, then renamed into place. The GETs name the
    commit the metadata request resolved the revision to, so every byte is of that version."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    from realisdance_cli.files import FILE_MODE, file_sha256, sync_folder

    url = hf_hub_url(source.repo, source.filename, revision=source.revision)
    meta = get_hf_file_metadata(url, retry_on_errors=True)
    if meta.commit_hash is None or meta.etag is None:
        raise UserError(
            f"{url} was answered without the ETag and X-Repo-Commit headers of a Hugging Face hub; "
            "point HF_ENDPOINT at a hub or mirror."
        )
    url = hf_hub_url(source.repo, source.filename, revision=meta.commit_hash)
    partial = _partial_path(target, meta.etag)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.partial"):
        if stale != partial:  # the bytes of another version
            stale.unlink(missing_ok=True)
    size = meta.size
    with _held(partial, target) as out:
        if size is None or out.seek(0, os.SEEK_END) > size:  # nothing to check a continuation by
            _restart(out)
        progress(entry.name, out.tell(), size)
        _receive_all(url, out, size, lambda done: progress(entry.name, done, size))
        got = out.tell()
        if size is not None and got < size:
            raise UserError(
                f"downloading {entry.name} from {entry.where()} stopped after {got} of {size} bytes; "
                "run the command again to continue."
            )
        expected = entry.sha256 or (meta.etag if _LFS_ETAG.fullmatch(meta.etag) else None)
        too_long = size is not None and got > size
        if too_long or (expected is not None and file_sha256(partial) != expected):
            partial.unlink()
            raise UserError(
                f"downloading {entry.name} from {entry.where()} gave {got} bytes that are not the file the "
                "hub announced (size or sha256); run the command again."
            )
        os.fsync(out.fileno())
        os.chmod(partial, FILE_MODE)
        os.replace(partial, target)
    sync_folder(target.parent)
    return target


def _reason(err: BaseException) -> str:
    """The error in one line; for huggingface_hub's "not found locally either", its cause."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    if isinstance(err, LocalEntryNotFoundError) and err.__cause__ is not None:
        err = err.__cause__
    return " ".join(str(err).split()).rstrip(".") or type(err).__name__


def download(entry: WeightFile, root: Path, progress: ProgressFn = no_progress) -> Path:
    """Fetch `entry` at its pinned revision into the weights folder `root` when the user chose it,
    else into the Hugging Face cache; returns its path. A damaged copy at the destination is
    fetched again."""
    source = entry.source
    if isinstance(source, Manual):
        raise ManualDownload(f"{entry.name} must be fetched by hand: {instructions(entry, root)}.")
    from huggingface_hub import constants, hf_hub_download, snapshot_download

    into_cache = not _chosen(root)
    if constants.HF_HUB_OFFLINE:
        what = "folder" if entry.is_folder else "file"
        raise UserError(
            f"{entry.name} is neither in {root / entry.path} nor in the Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) and downloads are off (HF_HUB_OFFLINE is set); unset it and "
            f"run the command again, or copy the {what} to {root / entry.path}."
        )
    present = _cache_path(source) if into_cache else root / entry.path
    if present is not None and isinstance(source, HubFolder):  # only a damaged file is fetched again
        damaged = _inspect(entry, present, in_cache=into_cache).culprit
        if damaged is not None:  # (huggingface_hub fetches a file it lacks; a missing one is fetched)
            damaged.unlink(missing_ok=True)
    bar = _progress_bar_class(progress, entry.name)
    try:
        if isinstance(source, HubFile) and not into_cache:
            fetched: str | Path = _fetch_file(entry, source, root / entry.path, progress)
        elif isinstance(source, HubFile):
            whole = present is None or _inspect(entry, present, in_cache=True).problem is None
            fetched = hf_hub_download(
                source.repo,
                source.filename,
                revision=source.revision,
                force_download=not whole,
                tqdm_class=bar,
            )
        else:
            fetched = snapshot_download(
                source.repo,
                revision=source.revision,
                allow_patterns=list(source.patterns),
                local_dir=None if into_cache else root / entry.path,
                tqdm_class=bar,
            )
    except Exception as err:
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        if isinstance(err, GatedRepoError):
            raise UserError(
                f"{entry.where()} is gated: accept its terms on huggingface.co and log in (`hf auth login`), "
                "then run the command again."
            ) from None
        not_there = RepositoryNotFoundError | RevisionNotFoundError | EntryNotFoundError
        if isinstance(err, not_there) and not isinstance(err, LocalEntryNotFoundError):  # not "unreachable"
            raise UserError(
                f"{entry.where()} has no {entry.name} at the pinned revision ({_reason(err)}); the hub "
                "(or the HF_ENDPOINT mirror) no longer serves it: fetch it by hand into "
                f"{root / entry.path}."
            ) from None
        from realisdance_cli.files import write_failure

        full_or_read_only = write_failure(err, "--weights") if isinstance(err, OSError) else None
        if full_or_read_only is not None:  # no second run gets past these: write elsewhere
            raise full_or_read_only from None
        if not _transfer_error(err):
            raise
        raise UserError(
            f"downloading {entry.name} from {entry.where()} failed ({_reason(err)}); "
            "run the command again to continue."
        ) from None
    path = Path(fetched) if into_cache else root / entry.path
    result = _inspect(entry, path, in_cache=into_cache, verify_hash=True)
    if not result.found:
        missing = ", ".join(source.required) if isinstance(source, HubFolder) else source.filename
        raise UserError(f"{entry.where()} was downloaded to {path} but lacks {missing}.")
    if result.problem and result.culprit is not None:  # the hub sent other bytes than it announced
        result.culprit.unlink(missing_ok=True)
        raise UserError(
            f"{path} was downloaded but is wrong ({result.problem}); the file was removed: run the "
            "command again."
        )
    if result.problem:
        raise UserError(f"{path} was downloaded but is wrong: {result.problem}; {refetch(result, root)}.")
    return path
