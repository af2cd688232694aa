"""`rdance eval GENERATED... TRUTH`: score generated videos against the truth, resumably.

    <out>/inputs.json   what the folder's evaluation is of (written first: a stopped run resumes)
    <out>/scores.json   inputs, protocol, per video and overall columns per method, plot data
    <out>/scores.md     the same as Markdown tables (the overall one printed, turned)
    <out>/scores.svg    pose error and flicker over time, a line per method (when measured)
    <out>/records/      one record per measured video (resume: a finished one is reused)
    <out>/poses/        pose tracks of the videos, named by their contents (resumable like
                        `rdance extract`, shared by every run that meets the same video)

Everything is checked before any work: names, the weights the metrics need, and whether a set
metric has enough frames or clips. The folder is locked while a run writes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from realisdance_cli import __version__, weights
from realisdance_cli.conditions import chosen
from realisdance_cli.errors import UserError
from realisdance_cli.evaluation import METRICS, SET_METRICS, inputs, plot, report
from realisdance_cli.evaluation.features import NEEDS, FeatureNetworks
from realisdance_cli.evaluation.inputs import Pair
from realisdance_cli.evaluation.protocol import DEFAULT_PROTOCOL, Protocol, get_protocol
from realisdance_cli.evaluation.scoring import (
    ENTRIES,
    Record,
    measure_generated,
    measure_truth,
    truth_view,
    truth_views,
)
from realisdance_cli.files import atomic_write_bytes, contents, folder_lock, load_npz, save_npz
from realisdance_cli.progress import ProgressFn, counter, no_progress
from realisdance_cli.track import Track, named
from realisdance_cli.video import FrameSource

log = logging.getLogger(__name__)
SCORES = "scores"
INPUTS = "inputs.json"
# What --force removes (the pose tracks stay: they are named by the videos' contents and checked
# against their weights as `rdance extract` checks them).
REPLACED = ("records", INPUTS, f"{SCORES}.json", f"{SCORES}.md", f"{SCORES}.svg")
# The Frechet distance needs two samples for a covariance.
MIN_SAMPLES = 2
# Characters of a value a refusal shows of what differs.
SHOWN_CHARACTERS = 80


@dataclass
class EvalOptions:
    """How `evaluate` scores. `protocol`: how frames are compared, disco (the default) or
    disco-legacy (`evaluation.protocol`); `metrics`: some of ssim, psnr, l1, lpips, fid, fid-vid,
    fvd, pose, hands3d, identity, smoothness (a name, a comma-separated text or a list; None: every
    one these videos allow). `device`: auto, cpu, cuda, cuda:N or mps. A name that is not one is a
    `UserError` here, before any work."""

    protocol: str = DEFAULT_PROTOCOL
    metrics: Sequence[str] | None = None  # None: every metric these videos allow
    reference: Path | None = None  # the picture(s) animated; default the truth's first frame
    truth_fps: Fraction | None = None  # the frame rate of a truth of frame folders (else unknown)
    device: str = "auto"
    weights_root: Path | None = None

    def __post_init__(self) -> None:
        get_protocol(self.protocol)
        self.metrics = chosen(self.metrics, METRICS, "metrics", flag="--metrics")

    def chosen_metrics(self) -> list[str]:
        """The metrics asked for, in table order."""
        return list(METRICS if self.metrics is None else self.metrics)


def default_out(generated: Sequence[Path], truth: Path) -> Path:
    """`<first GENERATED>_eval` (`.` and `..` named as the folders they stand for)."""
    first = named(generated[0])
    return Path(f"{first.stem if first.is_file() else first.name}_eval")


def file_name(name: str) -> str:
    """A method's or video's name as one file name, one to one ('/' and '%' escaped)."""
    return quote(name, safe=" ._-+@=,()[]")


def feasible(asked: list[str], explicit: bool, pairs: dict[str, list[Pair]], protocol: Protocol) -> list[str]:
    """The asked metrics, less the set metrics a method has too few frames or clips for: refused
    when they were asked for by name, left out with a warning otherwise. Videos shorter than a
    clip, which add none to FID-VID and FVD, are named."""
    lengths = {
        method: {pair.name: _compared_frames(pair, protocol) for pair in method_pairs}
        for method, method_pairs in pairs.items()
    }
    kept = []
    for metric in asked:
        if metric not in SET_METRICS:
            kept.append(metric)
            continue
        _, unit, dimension = SET_METRICS[metric]
        fewest = min(
            sum(len(protocol.clips(n)) if unit == "clips" else n for n in counts.values())
            for counts in lengths.values()
        )
        clip = f" of {protocol.clip_length} frames" if unit == "clips" else ""
        if fewest < MIN_SAMPLES:
            needs = f"{metric.upper()} needs at least {MIN_SAMPLES} {unit}{clip} per method"
            problem = f"{needs}; these videos give {fewest}"
            if explicit:
                raise UserError(f"{problem}: give more or longer videos, or leave {metric} out of --metrics.")
            warnings.warn(f"{problem}, so it is left out.", stacklevel=3)
            continue
        if fewest < dimension:
            warnings.warn(
                f"{metric.upper()} from {fewest} {unit} (fewer than its {dimension} features) is biased "
                "upward: compare it only with numbers from the same videos.",
                stacklevel=3,
            )
        kept.append(metric)
    clipped = [m.upper() for m in kept if m in SET_METRICS and SET_METRICS[m][1] == "clips"]
    short = sorted(
        {name for counts in lengths.values() for name, n in counts.items() if not protocol.clips(n)}
    )
    if clipped and short:
        warnings.warn(
            f"videos shorter than a clip of {protocol.clip_length} frames add none to "
            f"{' and '.join(clipped)}: {inputs.listing(short)}.",
            stacklevel=3,
        )
    return kept


def _compared_frames(pair: Pair, protocol: Protocol) -> int:
    """The frames a pair is compared on: the shorter of the generated video and its truth as the
    generated video sees it (`truth_view`: resampled to its rate if need be)."""
    truth = truth_view(pair, protocol).source(pair.truth).info.frame_count
    return min(FrameSource(pair.generated).info.frame_count, truth)


@dataclass
class _Recorded:
    """A record and, for each metric whose entries it holds, the digest of the weights they were
    measured with."""

    record: Record
    held: dict[str, str]

    def missing(self, weights: dict[str, str]) -> list[str]:
        """The metrics of `weights` (metric -> digest) this record lacks or holds from other weights."""
        return [metric for metric, digest in weights.items() if self.held.get(metric) != digest]

    def completed(self, fresh: Record, weights: dict[str, str]) -> _Recorded:
        """With the `fresh` measurements of the metrics of `weights`. A held metric whose entries
        the fresh ones change (the DWPose points pose, hands3d and smoothness share) is held no more."""
        changed = {
            name
            for name, value in fresh.items()
            if name in self.record and not np.array_equal(self.record[name], value, equal_nan=True)
        }
        held = {
            metric: digest
            for metric, digest in self.held.items()
            if metric not in weights and not changed & set(ENTRIES[metric])
        }
        return _Recorded(self.record | fresh, held | weights)

    def only(self, metrics: Sequence[str]) -> Record:
        """The entries of `metrics` (and the frame count): what the tables are made of."""
        entries = {"frame_count", *(entry for metric in metrics for entry in ENTRIES[metric])}
        return {name: value for name, value in self.record.items() if name in entries}


def _read(path: Path) -> tuple[Record, Any]:
    """A record and what it says it holds, or one sentence: it is damaged and measured again."""
    remedy = "its video is measured again"
    record = load_npz(path, remedy)
    try:
        return record, json.loads(str(record.pop("held", "{}")))
    except ValueError as err:
        raise UserError(f"{path} is damaged ({err}); {remedy}.") from None


class _Records:
    """Measured videos in `<out>/records/`: `truth/<name>[view].npz` and `methods/<method>/
    <name>.npz`, each saved with the key of the videos it was measured from and the weights of
    each metric it holds."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, method: str | None, name: str) -> Path:
        side = self.folder / "truth" if method is None else self.folder / "methods" / file_name(method)
        return side / f"{file_name(name)}.npz"

    def get(self, method: str | None, name: str, key: str) -> _Recorded:
        """The record measured from `key`; an empty one when there is none, it is of other
        videos, or it is damaged (said: it is measured again)."""
        path = self.path(method, name)
        if not path.exists():
            return _Recorded({}, {})
        try:
            record, held = _read(path)
        except UserError as err:  # "<path> is damaged (why); its video is measured again."
            warnings.warn(str(err), stacklevel=3)
            return _Recorded({}, {})
        if str(record.pop("key", "")) != key or not isinstance(held, dict):
            return _Recorded({}, {})
        return _Recorded(record, held)

    def put(self, method: str | None, name: str, key: str, recorded: _Recorded) -> _Recorded:
        arrays = {**recorded.record, "key": np.array(key), "held": np.array(json.dumps(recorded.held))}
        save_npz(self.path(method, name), arrays)
        return recorded


def digest(path: Path | None) -> str | None:
    """The sha256 of a video's contents (each file hashed once per process while it is unchanged)."""
    from realisdance_cli.extraction import source_digest

    return None if path is None else source_digest(FrameSource(path))


class _PoseTracks:
    """Pose tracks of every frame of the compared videos in `<out>/poses/`, named by the video's
    contents: DWPose, and HaMeR's hands for "hands3d" (a resampled truth picks its frames)."""

    def __init__(self, folder: Path, options: EvalOptions, metrics: list[str], progress: ProgressFn) -> None:
        self.folder, self.options, self.progress = folder, options, progress
        self.stages = ["dwpose", "hamer"] if "hands3d" in metrics else ["dwpose"]

    def __call__(self, video: Path) -> Track:
        from realisdance_cli.extraction import ExtractOptions, extract

        out = self.folder / f"{str(digest(video))[:20]}.rdance"
        extract_options = ExtractOptions(
            stages=self.stages, device=self.options.device, weights_root=self.options.weights_root
        )
        return extract(video, out, extract_options, progress=self.progress)[0]


_ABSENT = object()  # a key one description has and the other lacks


def _shown(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    text = "none" if value is None else json.dumps(value)
    return text if len(text) <= SHOWN_CHARACTERS else f"{text[: SHOWN_CHARACTERS - 3]}..."


def _differences(earlier: Any, described: Any, where: str = "") -> list[str]:
    """What differs between two JSON descriptions, for people: 'truth "/a" (now "/b")' for each
    value that differs, nested names joined by dots."""
    if earlier == described:
        return []
    if isinstance(earlier, dict) and isinstance(described, dict):
        return [
            said
            for name in sorted(earlier.keys() | described.keys())
            for said in _differences(
                earlier.get(name, _ABSENT), described.get(name, _ABSENT), f"{where}.{name}".lstrip(".")
            )
        ]
    return [f"{where} {_shown(earlier)} (now {_shown(described)})"]


def claim(
    out: Path,
    described: dict[str, Any],
    force: bool,
    *,
    record: str = INPUTS,
    replaced: Sequence[str] = REPLACED,
    kept: Sequence[str] = (),
    keep_same: bool = False,
    other: Callable[[dict[str, Any]], str] = lambda earlier: "the evaluation of other videos",
    replacing: Callable[[], AbstractContextManager[Any]] = nullcontext,
) -> None:
    """`out` holds nothing (or only the `kept` entries, caches named by their contents), or the
    work `described` (resumed, finished or not), or `force` starts it over, removing the
    `replaced` entries; `record` (JSON) then says what the folder is of. `keep_same`: `force`
    replaces only other work (processes that each pass it must not undo each other). A folder
    of other work is refused in one sentence saying what it holds (`other`) and what differs.
    `replacing` is entered before anything is removed and held until the record is written: it
    refuses (one sentence) when other processes still work in `out` beyond the caller's own lock,
    so that a `force` never pulls files from under them."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder.")
    path = out / record
    earlier: Any = None
    if path.exists():
        try:
            earlier = json.loads(path.read_text())
        except (OSError, ValueError):
            earlier = "unreadable"
    same = earlier == described
    if same and (keep_same or not force):
        return
    held = [entry for entry in contents(out) if entry.name not in kept]
    if not same and held and not force:
        if isinstance(earlier, dict):
            said = _differences(earlier, described)
            more = f"; and {len(said) - inputs.LISTED} more" if len(said) > inputs.LISTED else ""
            what = f"{other(earlier)} ({'; '.join(said[: inputs.LISTED])}{more})"
        else:
            what = "other files"
        raise UserError(f"{out} holds {what}; pass --force to replace it, or choose another --out.")
    with replacing():
        for name in replaced:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        atomic_write_bytes(path, (json.dumps(described, indent=2) + "\n").encode())


def described_inputs(methods: dict[str, Path], truth: Path, options: EvalOptions) -> dict[str, Any]:
    """What an evaluation folder is of: its videos, wherever they are given from. A later run on
    other videos is refused; one with other metrics or protocol measures what it lacks."""
    return {
        "generated": {method: str(path.resolve()) for method, path in methods.items()},
        "truth": str(truth.resolve()),
        "reference": None if options.reference is None else str(options.reference.resolve()),
    }


def networks_for(metrics: list[str], options: EvalOptions) -> FeatureNetworks:
    """The feature networks of `metrics`, every weight file they (and DWPose, HaMeR) need found
    first."""
    return FeatureNetworks(metrics, weights.weights_root(options.weights_root), options.device)


def with_weights(metrics: list[str], explicit: bool, options: EvalOptions) -> list[str]:
    """`metrics`, less "hands3d" when it was not asked by name and HaMeR's or MANO's files are not
    there (MANO needs a licence): the hands are then scored in 2-D only."""
    if "hands3d" not in metrics or explicit:
        return metrics
    root = weights.weights_root(options.weights_root)
    if all(weights.status(weights.get(name), root, structure="none").found for name in NEEDS["hands3d"]):
        return metrics
    log.info("hands3d left out: HaMeR or MANO weights are not there (rdance weights list)")
    return [metric for metric in metrics if metric != "hands3d"]


@dataclass(frozen=True)
class Measured:
    """method -> video name -> (its truth's record as it sees the truth, its own record), and the
    fingerprint of what the records hold (the videos, protocol, metrics and weights they were
    measured from) and of the version of rdance: a table made from the same fingerprint is the
    same table."""

    videos: dict[str, dict[str, tuple[Record, Record]]]
    fingerprint: str


def measure(
    pairs: dict[str, list[Pair]],
    out: Path,
    protocol: Protocol,
    asked: list[str],
    networks: FeatureNetworks,
    options: EvalOptions,
    progress: ProgressFn,
    *,
    only_recorded: bool = False,
) -> Measured | None:
    """Every truth and generated video of `pairs` measured, or its record in `<out>/records`
    reused: whole, or completed with the metrics it lacks or holds from other weights (with
    `only_recorded`, None when one lacks any). Records are replaced atomically, so processes
    measuring the same video never clash."""
    records = _Records(out / "records")
    poses = _PoseTracks(out / "poses", options, asked, progress)
    weights_of = {metric: networks.weights_digest(metric) for metric in asked}
    all_pairs = [(method, p) for method, method_pairs in pairs.items() for p in method_pairs]
    step = counter(progress, "scoring videos", len(all_pairs))
    truths: dict[str, Record] = {}
    videos: dict[str, dict[str, tuple[Record, Record]]] = {method: {} for method in pairs}
    keys = []
    views = truth_views([p for _, p in all_pairs], protocol)
    for (method, p), view in zip(all_pairs, views, strict=True):
        truth_name = p.name + view.suffix()
        truth_key = json.dumps([digest(p.truth), digest(p.reference), protocol.name, view.suffix()])
        if truth_name not in truths:
            recorded = records.get(None, truth_name, truth_key)
            if missing := recorded.missing(weights_of):
                if only_recorded:
                    return None
                fresh = measure_truth(p.truth, view, protocol, missing, networks, poses, p.reference)
                completed = recorded.completed(fresh, {metric: weights_of[metric] for metric in missing})
                recorded = records.put(None, truth_name, truth_key, completed)
            truths[truth_name] = recorded.only(asked)
        key = json.dumps([digest(p.generated), truth_key])
        recorded = records.get(method, p.name, key)
        if missing := recorded.missing(weights_of):
            if only_recorded:
                return None
            fresh = measure_generated(p, view, truths[truth_name], protocol, missing, networks, poses)
            completed = recorded.completed(fresh, {metric: weights_of[metric] for metric in missing})
            recorded = records.put(method, p.name, key, completed)
        videos[method][p.name] = (truths[truth_name], recorded.only(asked))
        keys.append([method, p.name, key])
        step(1)
    fingerprint = hashlib.sha256(json.dumps([__version__, keys, weights_of]).encode()).hexdigest()
    return Measured(videos, fingerprint)


def warn_unequal_truth_sets(measured: Measured, asked: Sequence[str]) -> None:
    """FID, FID-VID and FVD compare a method with the truth frames it was compared on: methods whose
    videos were cut to other lengths are then scored against different truth sets (said once)."""
    named = [metric.upper() for metric in SET_METRICS if metric in asked]
    compared = {
        method: sum(int(record["frame_count"]) for _, record in videos.values())
        for method, videos in measured.videos.items()
    }
    if named and len(set(compared.values())) > 1:
        counts = ", ".join(f"{method} {count}" for method, count in compared.items())
        verb = "measure" if len(named) > 1 else "measures"
        warnings.warn(
            f"the methods are compared over different numbers of truth frames ({counts}), so "
            f"{' and '.join(named)} {verb} them against different truth sets: compare those with care.",
            stacklevel=3,
        )


def _finished(out: Path, described: dict[str, Any], measured: Measured) -> dict[str, Any] | None:
    """What scores.json holds when the tables in `out` were made from these very measurements
    (a finished evaluation run again); None otherwise."""
    try:
        earlier = json.loads((out / f"{SCORES}.json").read_text())
    except (OSError, ValueError):
        return None
    same = (
        isinstance(earlier, dict)
        and earlier.get("inputs") == described
        and earlier.get("measurements") == measured.fingerprint
        and (out / f"{SCORES}.md").exists()
        and (out / f"{SCORES}.svg").exists() == plotted(earlier.get("curves", {}))
    )
    return earlier if same else None


def plotted(curves: dict[str, dict[str, Any]]) -> bool:
    """Whether the curves (method -> name -> per frame) hold any to draw: scores.svg is written
    only then (pose or smoothness measured)."""
    return any(curves.values())


def _write_plot(out: Path, curves: dict[str, dict[str, list[float]]]) -> None:
    """scores.svg of the curves, or none (a stale one removed) when there are none to draw."""
    path = out / f"{SCORES}.svg"
    if plotted(curves):
        atomic_write_bytes(path, plot.svg(curves).encode())
    else:
        path.unlink(missing_ok=True)


def write_scores(
    out: Path,
    described: dict[str, Any],
    protocol: Protocol,
    asked: list[str],
    measured: Measured,
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """scores.json, scores.md and scores.svg (`_write_plot`) from the measured records (kept as they
    are when they were made from the same measurements); returns what the JSON holds."""
    warn_unequal_truth_sets(measured, asked)
    if (finished := _finished(out, described, measured)) is not None:
        return finished
    step = counter(progress, "making the tables", len(measured.videos))  # FID of many frames: seconds
    table = {}
    for method, videos in measured.videos.items():
        table[method] = report.rows(protocol, asked, videos)
        step(1)
    curves = {method: report.curves(protocol, videos) for method, videos in measured.videos.items()}
    result = {
        "inputs": described,
        "protocol": {
            "name": protocol.name,
            "size": list(protocol.size),
            "clip_length": protocol.clip_length,
            "clip_stride": protocol.clip_stride,
            "summary": protocol.summary,
        },
        "measurements": measured.fingerprint,
        "methods": {
            method: {name: report.plain(columns) for name, columns in rows.items()}
            for method, rows in table.items()
        },
        "curves": {method: {k: report.plain(v) for k, v in c.items()} for method, c in curves.items()},
    }
    atomic_write_bytes(out / f"{SCORES}.md", report.markdown(table, protocol).encode())
    _write_plot(out, curves)
    atomic_write_bytes(
        out / f"{SCORES}.json", (json.dumps(result, indent=2, allow_nan=False) + "\n").encode()
    )
    return result


def evaluate(
    generated: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    truth: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    options: EvalOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Score each generated set (a method: a folder of videos, or one video) against `truth`;
    returns what scores.json holds."""
    sets = [Path(generated)] if isinstance(generated, str | os.PathLike) else [Path(one) for one in generated]
    truth, out, options = Path(truth), None if out is None else Path(out), options or EvalOptions()
    methods = inputs.method_names(sets)
    pairs = inputs.pair(methods, truth, options.reference, options.truth_fps)
    protocol = get_protocol(options.protocol)
    explicit = options.metrics is not None
    asked = feasible(with_weights(options.chosen_metrics(), explicit, options), explicit, pairs, protocol)
    networks = networks_for(asked, options)
    out = out or default_out(sets, truth)
    described = described_inputs(methods, truth, options)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder.")
    with folder_lock(out, "the evaluation folder"):
        claim(out, described, force)
        measured = measure(pairs, out, protocol, asked, networks, options, progress)
        assert measured is not None
        scored = described | {"protocol": protocol.name, "metrics": asked}
        return write_scores(out, scored, protocol, asked, measured, progress)
