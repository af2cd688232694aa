"""The table of every weight file: what it is for, where it lives in the weights folder, where to
get it and under which licence; and the weights folder itself (`--weights DIR`, else
`$RDANCE_HOME`, else `~/.cache/realisdance`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from realisdance_cli.errors import UserError

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


def root_chosen(root: Path) -> bool:
    """Whether the user named the weights folder (`--weights`, `$RDANCE_HOME`): downloads then go
    there; otherwise into the Hugging Face cache, where diffusers and transformers find them too."""
    return bool(os.environ.get("RDANCE_HOME")) or root != DEFAULT_ROOT.expanduser()
