"""One video's measurements: what `rdance eval` keeps per video before the tables are made.

A truth video is measured once for every method that is compared with it (its features, its
pose, its flicker); a generated video is measured against its truth's record. Records are flat
name -> array mappings, saved as they are (`files.save_npz`) so that a run resumes where it
stopped, and keyed by what they were computed from so that a stale one is never reused.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from realisdance_cli.evaluation import POSE_METRICS, metrics
from realisdance_cli.evaluation.features import FeatureNetworks
from realisdance_cli.evaluation.inputs import Pair
from realisdance_cli.evaluation.protocol import Protocol
from realisdance_cli.track import DWPOSE_POINTS, Stream, Track
from realisdance_cli.video import FrameSource

Record = dict[str, np.ndarray]
# A DWPose point scoring under this is unknown: the original's drawing threshold.
SCORE_THRESHOLD = 0.3
# Frames read and fitted at a time: a long high-resolution video never sits whole in memory.
READ_CHUNK = 32


def read_fitted(path: Path, protocol: Protocol) -> tuple[np.ndarray, tuple[int, int]]:
    """The frames of a video fitted to the protocol's size, uint8 (F, h, w, 3), and the video's
    own (height, width)."""
    source = FrameSource(path)
    parts, chunk = [], []
    for frame in source:
        chunk.append(frame)
        if len(chunk) == READ_CHUNK:
            parts.append(protocol.fit_frames(np.stack(chunk)))
            chunk = []
    if chunk:
        parts.append(protocol.fit_frames(np.stack(chunk)))
    return np.concatenate(parts), (source.info.height, source.info.width)


def dancer_points(stream: Stream) -> np.ndarray:
    """(F, 134, 2): each frame's first (largest) person's DWPose points, NaN where unknown."""
    points = np.full((stream.frame_count, DWPOSE_POINTS, 2), np.nan)
    for index in range(stream.frame_count):
        people = stream.frame(index)
        if len(people["keypoints"]):
            known = people["scores"][0] >= SCORE_THRESHOLD
            points[index, known] = people["keypoints"][0][known]
    return points


PoseReader = Callable[[Path, str], Track]
"""(video, cache name) -> its pose track: DWPose, and HaMeR's hands for "hands3d" (extracted once
into the evaluation's cache)."""


def measure_truth(
    path: Path,
    protocol: Protocol,
    metrics_asked: Iterable[str],
    networks: FeatureNetworks,
    poses: PoseReader,
    reference: Path | None,
) -> Record:
    """Everything about a truth video that its generated videos are compared with."""
    asked = set(metrics_asked)
    frames, (height, width) = read_fitted(path, protocol)
    record: Record = {"frame_count": np.array(len(frames)), "size": np.array([height, width])}
    if "fid" in asked:
        record["inception"] = networks.inception(frames)
    clips = protocol.clips(len(frames))
    if "fid-vid" in asked:
        record["resnet3d"] = networks.resnet3d(frames, clips)
    if "fvd" in asked:
        record["i3d"] = networks.i3d(frames, clips)
    if "smoothness" in asked:
        record["flicker"] = metrics.flicker(frames / 255).per_pair
    if asked & set(POSE_METRICS):
        track = poses(path, "truth")
        record["keypoints"] = protocol.map_points(dancer_points(track.load("dwpose")), height, width)
        if "hands3d" in asked:
            record["hands3d"] = networks.hand_points(track.load("mano"))
    if "identity" in asked:  # DisCo's reference picture is the truth's first frame
        picture = read_fitted(reference, protocol)[0] if reference is not None else frames
        record["reference_features"] = networks.dinov2(picture[:1])[0]
    return record


def compared_length(name: str, generated: int, truth: int) -> int:
    """Videos of different lengths are compared over the shorter one's frames (said once)."""
    if generated != truth:
        warnings.warn(
            f"{name}: the generated video has {generated} frames and the truth {truth}; "
            f"the first {min(generated, truth)} of each are compared.",
            stacklevel=2,
        )
    return min(generated, truth)


def measure_generated(
    pair: Pair,
    truth: Record,
    protocol: Protocol,
    metrics_asked: Iterable[str],
    networks: FeatureNetworks,
    poses: PoseReader,
    method: str,
) -> Record:
    """A generated video's per-frame scores against its truth, and its features for the set
    metrics; the truth's frames are cut to the compared length where needed."""
    asked = set(metrics_asked)
    name = pair.name
    frames, (height, width) = read_fitted(pair.generated, protocol)
    truth_frames = read_fitted(pair.truth, protocol)[0]
    truth_height, truth_width = (int(v) for v in truth["size"])
    if (height, width) != (truth_height, truth_width):
        warnings.warn(
            f"{name}: the generated video is {width}x{height} and the truth {truth_width}x{truth_height}; "
            f"both are fitted to {protocol.size[1]}x{protocol.size[0]} ({protocol.fit}) as the "
            f"{protocol.name} protocol does.",
            stacklevel=2,
        )
    count = compared_length(name, len(frames), len(truth_frames))
    frames, truth_frames = frames[:count], truth_frames[:count]
    generated, expected = frames / 255, truth_frames / 255
    record: Record = {"frame_count": np.array(count)}
    if "ssim" in asked:
        seen = (
            (metrics.gray(frames), metrics.gray(truth_frames))
            if protocol.ssim_gray
            else (frames, truth_frames)
        )
        ours, theirs = (side.astype(np.float64) for side in seen)
        record["ssim"] = np.asarray(metrics.ssim(ours, theirs, data_range=255))
    if "psnr" in asked:
        values = np.asarray(metrics.psnr(generated, expected))
        record["psnr"] = np.where(np.isinf(values), metrics.IDENTICAL_PSNR, values)
        if protocol.psnr_uint8:
            record["psnr_uint8"] = metrics.psnr_uint8_wrap(frames, truth_frames)
    if "lpips" in asked:
        record["lpips"] = networks.lpips(frames, truth_frames, signed=protocol.lpips_signed)
    if "fid" in asked:
        record["inception"] = networks.inception(frames)
    clips = protocol.clips(count)
    if "fid-vid" in asked:
        record["resnet3d"] = networks.resnet3d(frames, clips)
    if "fvd" in asked:
        record["i3d"] = networks.i3d(frames, clips)
    if "identity" in asked:
        record["identity"] = metrics.cosine_similarity(networks.dinov2(frames), truth["reference_features"])
    if "smoothness" in asked:
        record["flicker"] = metrics.flicker(generated).per_pair
    if asked & set(POSE_METRICS):
        track = poses(pair.generated, method)
        record["keypoints"] = protocol.map_points(dancer_points(track.load("dwpose")), height, width)[:count]
        if "hands3d" in asked:
            record["hands3d"] = networks.hand_points(track.load("mano"))[:count]
    return record
