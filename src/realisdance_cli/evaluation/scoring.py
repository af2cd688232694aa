"""One video's measurements: what `rdance eval` keeps per video before the tables are made.

A truth video is measured once for every generated video that sees it the same way (its
features, its pose, its flicker); a generated video is measured against that record. Records are
flat name -> array mappings, saved as they are (`files.save_npz`) so that a run resumes where it
stopped, and keyed by what they were computed from so that a stale one is never reused; each
metric fills its own entries (`ENTRIES`), so a record can be completed with more metrics.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from realisdance_cli.errors import counted
from realisdance_cli.evaluation import POSE_METRICS, metrics
from realisdance_cli.evaluation.features import FeatureNetworks
from realisdance_cli.evaluation.inputs import Pair, listing
from realisdance_cli.evaluation.protocol import Protocol
from realisdance_cli.track import DWPOSE_POINTS, Stream, Track
from realisdance_cli.video import DEFAULT_IMAGE_FPS, FrameSource, Selection, VideoInfo

Record = dict[str, np.ndarray]
# The entries of a truth's or a generated video's record each metric fills (besides "frame_count").
ENTRIES: dict[str, tuple[str, ...]] = {
    "ssim": ("ssim",),
    "psnr": ("psnr", "psnr_uint8"),  # psnr_uint8: the wrapped PSNR (scores.json's column name)
    "l1": ("l1",),
    "lpips": ("lpips",),
    "fid": ("inception",),
    "fid-vid": ("resnet3d",),
    "fvd": ("i3d",),
    "pose": ("keypoints",),
    "hands3d": ("keypoints", "hands3d"),
    "identity": ("identity", "reference_features"),
    "smoothness": ("keypoints", "flicker"),
}
# A DWPose point scoring under this is unknown: the original's drawing threshold.
SCORE_THRESHOLD = 0.3
# Frames read and fitted at a time: a long high-resolution video never sits whole in memory.
READ_CHUNK = 32
# Frame rates and aspects closer than this (relative) are the same: containers round them.
RELATIVE_TOLERANCE = 0.01


@dataclass(frozen=True)
class TruthView:
    """How a truth is read for a generated video of another frame rate or shape: resampled to
    the generated rate (RealisDance-DiT's rule: its videos are made that way from the poses),
    and cut to the generated aspect (the centre a scale-to-cover fit keeps), so that frame t
    and pixel (x, y) mean the same on both sides. `source_fps` is the truth's own rate, resampled
    from (a frame folder's as --truth-fps gives it)."""

    fps: Fraction | None = None
    aspect: float | None = None
    source_fps: Fraction | None = None

    @property
    def selection(self) -> Selection:
        return Selection(fps=self.fps)

    def source(self, path: Path) -> FrameSource:
        """The truth at `path` as this view reads it."""
        return FrameSource(path, self.selection, image_fps=self.source_fps or DEFAULT_IMAGE_FPS)

    def frames_of(self, path: Path) -> list[int]:
        """The frames of the video at `path` this view reads, by index (repeated where resampling
        repeats one)."""
        info = self.source(path).info
        return list(self.selection.indices(info.source_frame_count, info.source_fps))

    def suffix(self) -> str:
        """'' for the truth as it is; else what sets this view apart, for file names."""
        rate = ""
        if self.fps is not None and self.source_fps is not None:
            rate = f"@{float(self.fps):g}fps-from{float(self.source_fps):g}"
        return rate + ("" if self.aspect is None else f"@aspect{self.aspect:.4f}")


@dataclass(frozen=True)
class Remark:
    """What is said of one video: alone, "NAME: `alone`"; with other videos of the same `kind`,
    one line "N videos `kind`", its "{videos}" each video's name and `numbers` ("a 16 vs 32")."""

    alone: str
    kind: str
    numbers: str


def _resampled(
    pair: Pair, generated: VideoInfo, truth: VideoInfo, remarks: list[Remark] | None
) -> tuple[Fraction, Fraction] | None:
    """The rate the truth is resampled to (the generated video's) and from (its own), where both
    are known (a frame folder's only from --truth-fps) and differ. What is done is said (to
    `remarks`), and so is a rate met by a frame folder of no known rate, whose frame t is
    compared with frame t."""
    ours = generated.fps if pair.generated.is_file() else None
    theirs = truth.fps if pair.truth.is_file() else pair.truth_fps
    if ours is not None and theirs is not None:
        if abs(ours - theirs) <= RELATIVE_TOLERANCE * theirs:
            return None
        if remarks is not None:
            to, of = f"{float(ours):g}", f"{float(theirs):g}"
            remarks.append(
                Remark(
                    f"the generated video runs at {to} fps and the truth at {of}; the truth is resampled to "
                    f"{to} fps (RealisDance-DiT's rule).",
                    "run at other frame rates than their truths (generated vs truth fps: {videos}); each "
                    "truth is resampled to its video's rate (RealisDance-DiT's rule).",
                    f"{to} vs {of}",
                )
            )
        return ours, theirs
    known = ours if ours is not None else theirs
    if remarks is not None and known is not None:
        folder, other = ("truth", "generated video") if ours is not None else ("generated video", "truth")
        remedy = " (--truth-fps gives its rate, to resample it)" if ours is not None else ""
        remarks.append(
            Remark(
                f"the {folder} is a frame folder, of no known frame rate, and the {other} runs at "
                f"{float(known):g} fps; frame t is compared with frame t{remedy}.",
                f"have a {folder} that is a frame folder, of no known frame rate, and a {other} of a known "
                f"one (fps: {{videos}}); frame t is compared with frame t{remedy}.",
                f"{float(known):g}",
            )
        )
    return None


def _size_remark(generated: VideoInfo, truth: VideoInfo, cut: bool, protocol: Protocol) -> Remark:
    """Sizes that differ, and how both videos are brought to the protocol's."""
    centre = "the truth's centre of the generated shape is compared, " if cut else ""
    size = f"{protocol.size[1]}x{protocol.size[0]}"
    done = f"{centre}both fitted to {size} as the {protocol.name} protocol does."
    ours, theirs = f"{generated.width}x{generated.height}", f"{truth.width}x{truth.height}"
    return Remark(
        f"the generated video is {ours} and the truth {theirs}; {done}",
        f"are of other sizes than their truths (generated vs truth: {{videos}}); {done}",
        f"{ours} vs {theirs}",
    )


def _length_remark(generated: int, truth: int) -> Remark:
    """Lengths that differ: the first frames of the shorter video's length are compared."""
    shortest = min(generated, truth)
    compared = "the first frame of each is" if shortest == 1 else f"the first {shortest} of each are"
    return Remark(
        f"the generated video has {counted(generated, 'frame')} and the truth {truth}; {compared} compared.",
        "have other lengths than their truths (generated vs truth frames: {videos}); each is compared "
        "over the first frames of the shorter.",
        f"{generated} vs {truth}",
    )


def truth_view(pair: Pair, protocol: Protocol, remarks: list[Remark] | None = None) -> TruthView:
    """The view of `pair.truth` its generated video needs; frame rates (`_resampled`), sizes and
    lengths (as the view reads the truth) that differ are said to `remarks`, with what is done."""
    generated, truth = FrameSource(pair.generated).info, FrameSource(pair.truth).info
    fps, source_fps = _resampled(pair, generated, truth, remarks) or (None, None)
    ours, theirs = generated.width / generated.height, truth.width / truth.height
    aspect = ours if abs(ours - theirs) > RELATIVE_TOLERANCE * theirs else None
    view = TruthView(fps, aspect, source_fps)
    if remarks is None:
        return view
    if (generated.width, generated.height) != (truth.width, truth.height):
        remarks.append(_size_remark(generated, truth, aspect is not None, protocol))
    truth_frames = truth.frame_count if fps is None else view.source(pair.truth).info.frame_count
    if generated.frame_count != truth_frames:
        remarks.append(_length_remark(generated.frame_count, truth_frames))
    return view


def said(remarks: Sequence[tuple[str, Remark]]) -> list[str]:
    """The lines that say `remarks` (each of the video it names): what is said of one video alone
    as it is; what is word for word true of several once for them all ("2 videos (a, b): ...");
    remarks of one kind that differ in their numbers as one line listing each video's."""
    kinds: dict[str, dict[tuple[str, Remark], None]] = {}  # kind -> its (video, remark)s, in order
    for name, remark in remarks:
        kinds.setdefault(remark.kind, {})[name, remark] = None
    lines = []
    for kind, of_kind in kinds.items():
        names = list(dict.fromkeys(name for name, _ in of_kind))
        texts = {remark.alone for _, remark in of_kind}
        if len(texts) == 1:
            who = names[0] if len(names) == 1 else f"{len(names)} videos ({listing(names)})"
            lines.append(f"{who}: {texts.pop()}")
        else:
            listed = listing([f"{name} {remark.numbers}" for name, remark in of_kind])
            lines.append(f"{len(names)} videos " + kind.replace("{videos}", listed))
    return lines


def truth_views(pairs: Sequence[Pair], protocol: Protocol) -> list[TruthView]:
    """`truth_view` of every pair, before any measuring; what it says of them is said together
    (`said`): a test set at another frame rate is one line, not one per video."""
    views: list[TruthView] = []
    remarks: list[tuple[str, Remark]] = []
    for pair in pairs:
        of_pair: list[Remark] = []
        views.append(truth_view(pair, protocol, of_pair))
        remarks += [(pair.name, remark) for remark in of_pair]
    for line in said(remarks):
        warnings.warn(line, stacklevel=2)
    return views


def read_fitted(
    path: Path, protocol: Protocol, view: TruthView | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """The frames of a video fitted to the protocol's size, uint8 (F, h, w, 3), and the video's
    own (height, width)."""
    view = view or TruthView()
    source = view.source(path)
    parts, chunk = [], []
    for frame in source:
        chunk.append(frame)
        if len(chunk) == READ_CHUNK:
            parts.append(protocol.fit_frames(chunk, view.aspect))
            chunk = []
    parts.append(protocol.fit_frames(chunk, view.aspect))
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


PoseReader = Callable[[Path], Track]
"""video -> its pose track, of every frame: DWPose, and HaMeR's hands for "hands3d" (extracted
once into the evaluation's cache, whatever rate the video is compared at)."""


def _add_poses(
    record: Record,
    poses: PoseReader,
    path: Path,
    view: TruthView,
    protocol: Protocol,
    size: tuple[int, int],
    asked: set[str],
    networks: FeatureNetworks,
) -> None:
    """The dancer's DWPose points of the video at `path`, on the frames `view` reads, in the
    protocol's frame; and HaMeR's 3-D hands when asked."""
    track, picked = poses(path), view.frames_of(path)
    points = dancer_points(track.load("dwpose"))[picked]
    record["keypoints"] = protocol.map_points(points, *size, view.aspect)
    if "hands3d" in asked:
        record["hands3d"] = networks.hand_points(track.load("mano"))[picked]


def measure_truth(
    path: Path,
    view: TruthView,
    protocol: Protocol,
    metrics_asked: Iterable[str],
    networks: FeatureNetworks,
    poses: PoseReader,
    reference: Path | None,
) -> Record:
    """Everything about a truth video (as `view` sees it) that generated videos are compared with."""
    asked = set(metrics_asked)
    frames, size = read_fitted(path, protocol, view)
    record: Record = {"frame_count": np.array(len(frames))}
    if "fid" in asked:
        record["inception"] = networks.inception(frames)
    clips = protocol.clips(len(frames))
    if "fid-vid" in asked:
        record["resnet3d"] = networks.resnet3d(frames, clips)
    if "fvd" in asked:
        record["i3d"] = networks.i3d(frames, clips)
    if "smoothness" in asked:
        record["flicker"] = metrics.flicker(frames)
    if asked & set(POSE_METRICS):
        _add_poses(record, poses, path, view, protocol, size, asked, networks)
    if "identity" in asked:  # DisCo's reference picture is the truth's first frame
        picture = read_fitted(reference, protocol)[0] if reference is not None else frames
        record["reference_features"] = networks.dinov2(picture[:1])[0]
    return record


def measure_generated(
    pair: Pair,
    view: TruthView,
    truth: Record,
    protocol: Protocol,
    metrics_asked: Iterable[str],
    networks: FeatureNetworks,
    poses: PoseReader,
) -> Record:
    """A generated video's per-frame scores against its truth (as `view` sees it), and its
    features for the set metrics."""
    asked = set(metrics_asked)
    frames, size = read_fitted(pair.generated, protocol)
    truth_frames = read_fitted(pair.truth, protocol, view)[0]
    count = min(len(frames), len(truth_frames))  # lengths that differ are said before (`truth_view`)
    frames, truth_frames = frames[:count], truth_frames[:count]
    record: Record = {"frame_count": np.array(count)}
    if "ssim" in asked:
        record["ssim"] = np.asarray(
            metrics.ssim(metrics.gray(frames), metrics.gray(truth_frames), data_range=255)
        )
    if "psnr" in asked:
        record["psnr"] = metrics.psnr_8bit(frames, truth_frames)
        if protocol.wrapped_psnr:
            record["psnr_uint8"] = metrics.psnr_8bit_wrapped(frames, truth_frames)
    if "l1" in asked:
        record["l1"] = metrics.disco_l1(frames, truth_frames)
    if "lpips" in asked:
        record["lpips"] = networks.lpips(frames, truth_frames)
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
        record["flicker"] = metrics.flicker(frames)
    if asked & set(POSE_METRICS):
        _add_poses(record, poses, pair.generated, TruthView(), protocol, size, asked, networks)
        record["keypoints"] = record["keypoints"][:count]
        if "hands3d" in record:
            record["hands3d"] = record["hands3d"][:count]
    return record
