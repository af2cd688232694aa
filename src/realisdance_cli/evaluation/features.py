"""The feature networks of `rdance eval`, loaded once and only for the metrics asked for.

Every network takes frames as `rdance eval` holds them, RGB uint8 (N, H, W, 3) at the protocol's
size, and runs in float32 (FID and FVD move with the arithmetic) a batch at a time without
gradients; outputs come back as float64 NumPy arrays.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from realisdance_cli import weights
from realisdance_cli.devices import resolve_device, run_batched
from realisdance_cli.evaluation import SET_METRICS
from realisdance_cli.files import file_sha256
from realisdance_cli.track import Stream

# The registry entries each metric needs.
DWPOSE = ("dwpose-det", "dwpose-pose")
NEEDS: dict[str, tuple[str, ...]] = {
    "lpips": ("lpips-vgg16", "lpips-heads"),
    "fid": ("fid-inception",),
    "fid-vid": ("resnet3d-50",),
    "fvd": ("i3d",),
    "pose": DWPOSE,
    "hands3d": (*DWPOSE, "hamer", "hamer-config", "mano"),  # HaMeR on the DWPose hand boxes
    "identity": ("dinov2",),
    "smoothness": DWPOSE,
}
FRAME_BATCH = 16
CLIP_BATCH = 4
# DINOv2's image processor: the shorter side to 256, the centre 224 x 224, ImageNet's mean and deviation.
DINO_RESIZE = 256
DINO_SIZE = 224
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def needed_weights(metrics: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(name for metric in metrics for name in NEEDS.get(metric, ())))


def _as_tensor(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255


class FeatureNetworks:
    """The networks the chosen metrics need, on one device: their weights are found at once (a
    missing file is said before any work), each network is loaded when first used (a resumed run
    whose videos are all measured loads none)."""

    def __init__(self, metrics: Iterable[str], root: Path, device: str = "auto") -> None:
        self.device, self.dtype = resolve_device(device, None, gpu_dtype="fp32")
        metrics = set(metrics)
        self._paths = paths = weights.require_all(needed_weights(metrics), root)
        loaders: Mapping[str, Callable[[], Any]] = {
            "lpips": lambda: _lpips(paths),
            "fid": lambda: _inception(paths),
            "fid-vid": lambda: _resnet3d(paths),
            "fvd": lambda: _i3d(paths),
            "identity": lambda: _dinov2(paths),
            "hands3d": lambda: _mano(paths),
        }
        self._loaders = {metric: load for metric, load in loaders.items() if metric in metrics}
        self._networks: dict[str, Callable[..., torch.Tensor]] = {}

    def weights_digest(self, metric: str) -> str:
        """The sha256 of the weight files `metric` is measured with ('' for a metric without
        networks): measurements keyed by it are not reused once a file is replaced. Each file is
        hashed once per process (`files.file_sha256`)."""
        names = NEEDS.get(metric, ())
        if not names:
            return ""
        digest = hashlib.sha256()
        for name in names:
            path = self._paths[name]
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                digest.update(f"{name}/{file.relative_to(path).as_posix()}\0{file_sha256(file)}\0".encode())
        return digest.hexdigest()

    def _network(self, metric: str) -> Callable[..., torch.Tensor]:
        if metric not in self._networks:
            self._networks[metric] = self._loaders[metric]().to(self.device)
        return self._networks[metric]

    def _run(self, metric: str, inputs: torch.Tensor, batch: int, *more: torch.Tensor) -> np.ndarray:
        network = self._network(metric)
        if more:
            paired = torch.stack([inputs, *more], dim=1)  # batched together, split again inside
            outputs = run_batched(lambda x: network(*x.unbind(1)), paired, batch, self.device, self.dtype)
        else:
            outputs = run_batched(network, inputs, batch, self.device, self.dtype)
        return torch.cat([o.float().cpu() for o in outputs]).double().numpy()

    def lpips(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(N,) LPIPS distances of two frame batches, fed in [0, 1] as DisCo feeds them (LPIPS
        was trained on [-1, 1]: the numbers are comparable with DisCo's tables only this way)."""
        return self._run("lpips", _as_tensor(a), FRAME_BATCH, _as_tensor(b))

    def inception(self, frames: np.ndarray) -> np.ndarray:
        """(N, 2048) pool3 features for FID."""
        return self._run("fid", _as_tensor(frames), FRAME_BATCH)

    def _clips(self, metric: str, frames: np.ndarray, clips: list[slice], size: int) -> np.ndarray:
        """The network's features of each clip. The frames are resized once to the network's input
        (its own resize then leaves them as they are), and the windows, which overlap, are cut a
        batch at a time, so a long video's clips never sit in memory together."""
        from realisdance_cli.evaluation.video_layers import resize_frames

        if not clips:  # a video shorter than a clip adds no sample
            return np.zeros((0, SET_METRICS[metric][2]))
        video = resize_frames(_as_tensor(frames).transpose(0, 1)[None], size)[0]  # (3, F, size, size)
        network, outputs = self._network(metric), []
        for start in range(0, len(clips), CLIP_BATCH):
            batch = torch.stack([video[:, clip] for clip in clips[start : start + CLIP_BATCH]])
            outputs += list(run_batched(network, batch, CLIP_BATCH, self.device, self.dtype))
        return torch.cat([o.float().cpu() for o in outputs]).double().numpy()

    def resnet3d(self, frames: np.ndarray, clips: list[slice]) -> np.ndarray:
        """(M, 2048) 3-D ResNet-50 features of the clips, for FID-VID."""
        from realisdance_cli.evaluation import resnet3d

        return self._clips("fid-vid", frames, clips, resnet3d.INPUT_SIZE)

    def i3d(self, frames: np.ndarray, clips: list[slice]) -> np.ndarray:
        """(M, 400) I3D logits of the clips, for FVD."""
        from realisdance_cli.evaluation import i3d

        return self._clips("fvd", frames, clips, i3d.INPUT_SIZE)

    def hand_points(self, hands: Stream) -> np.ndarray:
        """(F, 2, 21, 3) each frame's left and right hand's 21 MANO keypoints (HaMeR's 3-D
        output, in its own frame, metres; the first valid hand of each side), NaN where none."""
        from realisdance_cli.bodies import mano_points

        points = np.full((hands.frame_count, 2, 21, 3), np.nan)
        chosen: dict[tuple[int, int], int] = {}
        for frame in range(hands.frame_count):
            lo = int(hands.offsets[frame])
            found = hands.frame(frame)
            for item in np.flatnonzero(found["valid"])[::-1]:  # the first of a side wins
                chosen[(frame, int(found["is_right"][item]))] = lo + int(item)
        if chosen:
            items = np.array(list(chosen.values()))
            fields = {
                name: hands.fields[name][items]
                for name in ("global_orient", "hand_pose", "betas", "is_right")
            }
            for (frame, side), keypoints in zip(
                chosen, mano_points(self._network("hands3d"), fields), strict=True
            ):
                points[frame, side] = keypoints
        return points

    def dinov2(self, frames: np.ndarray) -> np.ndarray:
        """(N, D) DINOv2 class-token features (after the final layer norm), for identity."""
        return self._run("identity", _as_tensor(frames), FRAME_BATCH)


def _lpips(paths: Mapping[str, Path]) -> torch.nn.Module:
    from realisdance_cli.evaluation.lpips import load_lpips

    return load_lpips(paths["lpips-vgg16"], paths["lpips-heads"])


def _inception(paths: Mapping[str, Path]) -> torch.nn.Module:
    from realisdance_cli.evaluation.inception import load_fid_inception

    return load_fid_inception(paths["fid-inception"])


def _resnet3d(paths: Mapping[str, Path]) -> torch.nn.Module:
    from realisdance_cli.evaluation.resnet3d import load_resnet3d

    return load_resnet3d(paths["resnet3d-50"])


def _i3d(paths: Mapping[str, Path]) -> torch.nn.Module:
    from realisdance_cli.evaluation.i3d import load_i3d

    return load_i3d(paths["i3d"])


class DinoFeatures(torch.nn.Module):
    """DINOv2's class token (after its last norm) for frames (N, 3, H, W) in [0, 1], seen as its
    image processor shows it a picture: the shorter side resized to 256 (bicubic, antialiased),
    the centre 224 x 224, normalised like ImageNet."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        height, width = frames.shape[2:]
        scale = DINO_RESIZE / min(height, width)
        size = (round(height * scale), round(width * scale))
        x = torch.nn.functional.interpolate(frames, size=size, mode="bicubic", antialias=True)
        top, left = (size[0] - DINO_SIZE) // 2, (size[1] - DINO_SIZE) // 2
        x = x[:, :, top : top + DINO_SIZE, left : left + DINO_SIZE].clamp(0, 1)
        return self.encoder(pixel_values=(x - self.mean) / self.std).pooler_output


def _mano(paths: Mapping[str, Path]) -> torch.nn.Module:
    from realisdance_cli.bodies import mano_layer

    return mano_layer(paths["mano"])


def _dinov2(paths: Mapping[str, Path]) -> torch.nn.Module:
    from transformers import Dinov2Model

    from realisdance_cli.animation import quiet_libraries
    from realisdance_cli.state_dicts import loading_from

    quiet_libraries()  # transformers' "Loading weights" bar showed under -q
    with loading_from(paths["dinov2"]):  # damage named as animate and train name it
        encoder = Dinov2Model.from_pretrained(paths["dinov2"])
    return DinoFeatures(encoder.eval()).eval()
