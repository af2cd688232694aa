"""`rdance dataset build`: a folder of dance videos -> pose tracks, pose videos and a manifest.

Pictures in the folder are taken as one-frame videos (manifest key `image`): stage 1 trains on
them like on single frames of the videos.

Each video gets `<out>/<name>.rdance/` (extraction, resumable) with its three pose videos, and one
manifest line (paths relative to the manifest's folder); what the folder holds besides videos and
pictures is named in one warning. `--shard i/n` takes every n-th video from the i-th, so n
machines (any scheduler) build one training set; each writes `manifest-i-of-n.jsonl`, and the
shards concatenate. A video that fails is reported and left out; finished videos are skipped on a
re-run. A video whose track another process is writing is not a failed one: the build does the
others, then stops with one sentence and writes no manifest (one that silently lacked it would
train on part of the set), and the next run finishes it. What every video needs (the --out
folder, the device, the weight files) is checked once before the first, so a missing file is one
sentence rather than the same failure for each video.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from realisdance_cli import weights
from realisdance_cli.conditions import BY_STAGE, CONDITIONS
from realisdance_cli.errors import InUse, UserError
from realisdance_cli.extraction import NETWORK_STAGES, ExtractOptions, StageSummary, extract
from realisdance_cli.files import AtomicFile, claimed_output
from realisdance_cli.progress import ProgressFn, no_progress
from realisdance_cli.rendering import RenderOptions, render_poses
from realisdance_cli.track import Track
from realisdance_cli.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, FrameSource


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if not text:
            return cls()
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise UserError(f"--shard must look like 0/4, got {text!r}.") from None
        if count < 1:
            raise UserError(f"--shard {text}: n, the number of shards, must be 1 or more.")
        if not 0 <= index < count:
            raise UserError(f"--shard {text}: the index must be 0 to {count - 1}.")
        return cls(index, count)

    @property
    def manifest_name(self) -> str:
        return "manifest.jsonl" if self.count == 1 else f"manifest-{self.index}-of-{self.count}.jsonl"


@dataclass
class BuildReport:
    manifest: Path
    built: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    busy: dict[str, str] = field(default_factory=dict)  # video -> why: another process holds it


SUFFIXES = (*sorted(VIDEO_SUFFIXES), *sorted(IMAGE_SUFFIXES))
LISTED = 5  # busy videos named in the sentence that stops a build


def _taken(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in SUFFIXES


def sources(folder: Path) -> list[Path]:
    """The videos and pictures of `folder` that the build takes, in order."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder of videos.")
    found = sorted(p for p in folder.iterdir() if _taken(p))
    if not found:
        kinds = ", ".join(SUFFIXES)
        raise UserError(f"{folder} holds no videos or pictures ({kinds}).")
    stems = [path.stem for path in found]
    twins = sorted(path.name for path in found if stems.count(path.stem) > 1)
    if twins:  # each becomes <stem>.rdance: one would be refused as "made from other frames"
        raise UserError(
            f"{folder} holds {', '.join(twins)}: one name apart from the suffix, so one pose track "
            "for them; rename one of each."
        )
    return found


def skipped(folder: Path) -> list[str]:
    """What of `folder` the build does not take (sub-folders, other files), by name; hidden files
    (`.DS_Store` ...) are not worth a word."""
    others = (p for p in folder.iterdir() if not _taken(p) and not p.name.startswith("."))
    return sorted(f"{p.name}/" if p.is_dir() else p.name for p in others)


def manifest_path(path: Path, folder: Path) -> str:
    """`path` as a manifest in `folder` names it: relative to that folder, so the data folder and
    the videos beside it can move together."""
    return os.path.relpath(path.resolve(), folder.resolve())


def _stale(track: Track, stages: list[StageSummary]) -> bool:
    """Whether the pose videos must be rendered (again): one is missing, this run's extraction
    (re)made a stage (say with other weights or options), or a stream is newer than a video
    (`rdance extract` was run again by hand since)."""
    videos = [track.path / c.video for c in CONDITIONS]
    if not all(video.is_file() for video in videos) or not all(stage.skipped for stage in stages):
        return True
    streams = [track.path / f"{c.stream}.npz" for c in CONDITIONS]
    newest = max((stream.stat().st_mtime_ns for stream in streams if stream.is_file()), default=0)
    return newest > min(video.stat().st_mtime_ns for video in videos)


def _open(path: Path) -> Track | None:
    """The track at `path`, or None when there is none yet (or it cannot be read: the video's own
    extraction then says why)."""
    try:
        return Track.open(path)
    except UserError:
        return None


def _needs(
    track: Track | None, extract_options: ExtractOptions, render_options: RenderOptions
) -> dict[Path, set[str]]:
    """The weight files (by weights folder) one video still needs: none when its track is finished
    and its pose videos are current; else those of its unfinished stages (with the body models
    extraction checks for them) and the body models that render its pose videos."""
    stages = extract_options.stages
    if track is not None and all(track.has(BY_STAGE[s].stream) for s in stages) and not _stale(track, []):
        return {}

    def unfinished(stage: str) -> bool:
        return track is None or not track.has(BY_STAGE[stage].stream)

    extracting = weights.weights_root(extract_options.weights_root)
    rendering = weights.weights_root(render_options.weights_root)
    needs: dict[Path, set[str]] = defaultdict(set)
    if "dwpose" in stages and unfinished("dwpose"):
        detector = {"dwpose-det": extract_options.dwpose_det, "dwpose-pose": extract_options.dwpose_pose}
        needs[extracting] |= {name for name, path in detector.items() if path is None}
    body_model = {"mano": render_options.mano_model, "smplx": render_options.smplx_model}
    for name, stage in NETWORK_STAGES.items():
        if name in stages and unfinished(name):
            needs[extracting] |= {*stage.network, stage.renderer}
        if name in stages and body_model[stage.renderer] is None:
            needs[rendering].add(stage.renderer)
    return needs


def _check_ready(
    mine: list[Path], out: Path, extract_options: ExtractOptions, render_options: RenderOptions
) -> None:
    """Once for all videos: the device, and every weight file one of them still needs."""
    if any(stage in NETWORK_STAGES for stage in extract_options.stages):
        from realisdance_cli.devices import resolve_device

        resolve_device(extract_options.device, extract_options.dtype)
    needs: dict[Path, set[str]] = defaultdict(set)
    for video in mine:
        track = _open(out / f"{video.stem}.rdance")
        for root, names in _needs(track, extract_options, render_options).items():
            needs[root] |= names
    for root, names in needs.items():
        weights.require_all(sorted(names), root)


def _entry(video: Path, track: Track, out: Path) -> dict:
    info = FrameSource(video).info
    kind = "image" if video.suffix.lower() in IMAGE_SUFFIXES else "video"
    line: dict[str, str | int] = {kind: manifest_path(video, out)}
    line |= {c.name: str((track.path / c.video).relative_to(out)) for c in CONDITIONS}
    line |= {"frames": info.frame_count, "fps": str(info.fps), "width": info.width, "height": info.height}
    return line


def _refuse_busy(report: BuildReport) -> None:
    """One sentence when other processes held videos of this build: the manifest would silently
    lack them, so none is written (an earlier one is kept) until a run finds them free."""
    if not report.busy:
        return
    names = list(report.busy)
    listed = ", ".join(names[:LISTED]) + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")
    verb, them = ("is", "it") if len(names) == 1 else ("are", "them")
    why = next(iter(report.busy.values())).rstrip(".")  # "...; wait for it to finish"
    raise InUse(
        f"{report.manifest} is not written, as {listed} {verb} busy: {why}, then run the build again "
        f"(it finishes {them} and skips the videos done)."
    )


def build(
    videos: Path,
    out: Path,
    extract_options: ExtractOptions,
    render_options: RenderOptions,
    shard: Shard = Shard(),
    progress: ProgressFn = no_progress,
    warn: Callable[[str], None] = lambda message: None,
    tell: Callable[[str], None] = lambda message: None,
) -> BuildReport:
    """Extracts and renders every video of this shard; the manifest lists those that succeeded.
    What all videos need is checked first (see the module's docstring). `tell` hears which video
    is built now, since the stage bars under the videos' bar say only the stage."""
    mine = sources(videos)[shard.index :: shard.count]
    left = skipped(videos)
    if left:
        warn(f"skipped {len(left)} entries of {videos} that are not videos or pictures: {', '.join(left)}")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder for the data (it is made if missing).")
    _check_ready(mine, out, extract_options, render_options)
    report = BuildReport(out / shard.manifest_name)
    lines = []
    with claimed_output(report.manifest, force=True):  # writable, and no other build writes it
        for number, video in enumerate(mine):
            progress("videos", number, len(mine))
            tell(f"{video.name} ({number + 1} of {len(mine)})")
            try:
                track, stages = extract(
                    video, out / f"{video.stem}.rdance", extract_options, progress=progress
                )
                if _stale(track, stages):
                    render_poses(track.path, track.path, render_options, progress=progress)
                lines.append(_entry(video, track, out))
                report.built.append(video.name)
            except InUse as error:
                report.busy[video.name] = str(error)
                warn(f"{video.name} is busy: {error}")
            except UserError as error:
                report.failed[video.name] = str(error)
                warn(f"{video.name} left out: {error}")
        progress("videos", len(mine), len(mine))
        _refuse_busy(report)
        with AtomicFile(report.manifest) as partial:
            partial.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return report
