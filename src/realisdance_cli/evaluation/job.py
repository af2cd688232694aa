"""`rdance eval GENERATED... TRUTH`: score generated videos against the truth, resumably.

    <out>/inputs.json   what the folder's evaluation is of (written first: a stopped run resumes)
    <out>/scores.json   inputs, protocol, per video and overall columns per method, plot data
    <out>/scores.md     the same as Markdown tables (printed too)
    <out>/scores.svg    pose error and flicker over time, a line per method
    <out>/records/      one record per measured video (resume: a finished one is reused)
    <out>/poses/        pose tracks of the videos, named by their contents (resumable like
                        `rdance extract`, shared by every run that meets the same video)

Everything is checked before any work: names, the weights the metrics need, and whether a set
metric has enough frames or clips. The folder is locked while a run writes it.
"""

from __future__ import annotations

import json
import logging
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from realisdance_cli import weights
from realisdance_cli.errors import UserError
from realisdance_cli.evaluation import METRICS, SET_METRICS, inputs, plot, report
from realisdance_cli.evaluation.features import NEEDS, FeatureNetworks
from realisdance_cli.evaluation.inputs import Pair
from realisdance_cli.evaluation.protocol import DEFAULT_PROTOCOL, Protocol, get_protocol
from realisdance_cli.evaluation.scoring import Record, measure_generated, measure_truth, truth_view
from realisdance_cli.files import atomic_write_bytes, contents, folder_lock, load_npz, save_npz
from realisdance_cli.progress import ProgressFn, counter, no_progress
from realisdance_cli.track import Track
from realisdance_cli.video import FrameSource, Selection

log = logging.getLogger(__name__)
SCORES = "scores"
INPUTS = "inputs.json"
# What --force removes (the pose tracks stay: they are named by the videos' contents).
REPLACED = ("records", INPUTS, f"{SCORES}.json", f"{SCORES}.md", f"{SCORES}.svg")
# The Frechet distance needs two samples for a covariance.
MIN_SAMPLES = 2


@dataclass
class EvalOptions:
    protocol: str = DEFAULT_PROTOCOL
    metrics: Sequence[str] | None = None  # None: every metric these videos allow
    reference: Path | None = None  # the picture(s) animated; default the truth's first frame
    device: str = "auto"
    weights_root: Path | None = None

    def chosen_metrics(self) -> list[str]:
        """The metrics asked for, in table order; one sentence for a name that is not one."""
        if self.metrics is None:
            return list(METRICS)
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise UserError(
                f"--metrics takes a comma-separated list of {', '.join(METRICS)}; "
                f"got {', '.join(self.metrics)}."
            )
        return [m for m in METRICS if m in self.metrics]


def default_out(generated: Sequence[Path], truth: Path) -> Path:
    first = generated[0]
    return Path(f"{first.stem if first.is_file() else first.name}_eval")


def _file_name(name: str) -> str:
    """A method's or video's name as one file name, one to one ('/' and '%' escaped)."""
    return quote(name, safe=" ._-+@=,()[]")


def feasible(asked: list[str], explicit: bool, pairs: dict[str, list[Pair]], protocol: Protocol) -> list[str]:
    """The asked metrics, less the set metrics a method has too few frames or clips for: refused
    when they were asked for by name, left out with a warning otherwise."""
    lengths = {
        method: [min(FrameSource(p.generated).info.frame_count, _truth_frames(p)) for p in method_pairs]
        for method, method_pairs in pairs.items()
    }
    kept = []
    for metric in asked:
        if metric not in SET_METRICS:
            kept.append(metric)
            continue
        _, unit, dimension = SET_METRICS[metric]
        fewest = min(
            sum(len(protocol.clips(n)) if unit == "clips" else n for n in counts)
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
    return kept


def _truth_frames(pair: Pair) -> int:
    """The truth's frames as its generated video sees them (resampled to its rate if need be)."""
    generated, truth = FrameSource(pair.generated).info, FrameSource(pair.truth).info
    if pair.generated.is_file() and pair.truth.is_file() and generated.fps != truth.fps:
        return Selection(fps=generated.fps).count(truth.frame_count, truth.fps)
    return truth.frame_count


class _Records:
    """Measured videos in `<out>/records/`: `truth/<name>[view].npz` and `methods/<method>/
    <name>.npz`, each saved with the key of what it was measured from."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, method: str | None, name: str) -> Path:
        side = self.folder / "truth" if method is None else self.folder / "methods" / _file_name(method)
        return side / f"{_file_name(name)}.npz"

    def get(self, method: str | None, name: str, key: str) -> Record | None:
        path = self.path(method, name)
        if not path.exists():
            return None
        record = load_npz(path)
        return record if str(record.pop("key", "")) == key else None

    def put(self, method: str | None, name: str, key: str, record: Record) -> Record:
        save_npz(self.path(method, name), {**record, "key": np.array(key)})
        return record


@cache
def _digest(path: Path, size: int, modified: int) -> str:
    from realisdance_cli.extraction import source_digest

    return source_digest(FrameSource(path))


def digest(path: Path | None) -> str | None:
    """The sha256 of a video's contents (hashed once per run while the file is unchanged)."""
    if path is None:
        return None
    stat = path.stat()
    return _digest(path, stat.st_size, stat.st_mtime_ns)


class _PoseTracks:
    """Pose tracks of the compared videos in `<out>/poses/`, named by the video's contents and
    frame selection: DWPose, and HaMeR's hands for "hands3d"."""

    def __init__(self, folder: Path, options: EvalOptions, metrics: list[str], progress: ProgressFn) -> None:
        self.folder, self.options, self.progress = folder, options, progress
        self.stages = ["dwpose", "hamer"] if "hands3d" in metrics else ["dwpose"]

    def __call__(self, video: Path, selection: Selection | None) -> Track:
        from realisdance_cli.extraction import ExtractOptions, extract

        rate = "" if selection is None or selection.fps is None else f"@{float(selection.fps):g}fps"
        out = self.folder / f"{str(digest(video))[:20]}{rate}.rdance"
        extract_options = ExtractOptions(
            selection=selection or Selection(),
            stages=self.stages,
            device=self.options.device,
            weights_root=self.options.weights_root,
        )
        return extract(video, out, extract_options, progress=self.progress)[0]


def claim(
    out: Path,
    described: dict[str, Any],
    force: bool,
    *,
    record: str = INPUTS,
    replaced: Sequence[str] = REPLACED,
    other: Callable[[dict[str, Any]], str] = lambda earlier: "the evaluation of other videos",
) -> None:
    """`out` holds nothing, or the work `described` (resumed, finished or not), or `force`
    replaces what it holds (the `replaced` entries); `record` (JSON) then says what the folder
    is of. A folder of other work is refused in one sentence saying what it holds (`other`)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder.")
    path = out / record
    earlier: Any = None
    if path.exists():
        try:
            earlier = json.loads(path.read_text())
        except (OSError, ValueError):
            earlier = "unreadable"
    if earlier == described:
        return
    if contents(out) and not force:
        what = other(earlier) if isinstance(earlier, dict) else "other files"
        raise UserError(f"{out} holds {what}; pass --force to replace it, or choose another --out.")
    for name in replaced:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    atomic_write_bytes(path, (json.dumps(described, indent=2) + "\n").encode())


def described_inputs(
    methods: dict[str, Path], truth: Path, options: EvalOptions, asked: list[str]
) -> dict[str, Any]:
    """What an evaluation folder is of: a later run on other inputs is refused."""
    return {
        "generated": {method: str(path) for method, path in methods.items()},
        "truth": str(truth),
        "reference": None if options.reference is None else str(options.reference),
        "protocol": options.protocol,
        "metrics": asked,
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


Measured = dict[str, dict[str, tuple[Record, Record]]]
"""method -> video name -> (its truth's record as it sees the truth, its own record)."""


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
    reused (with `only_recorded`, None when one is missing). Records are replaced atomically, so
    processes measuring the same video never clash."""
    records = _Records(out / "records")
    poses = _PoseTracks(out / "poses", options, asked, progress)
    all_pairs = [(method, p) for method, method_pairs in pairs.items() for p in method_pairs]
    step = counter(progress, "scoring videos", len(all_pairs))
    truths: dict[str, Record] = {}
    measured: Measured = {method: {} for method in pairs}
    for done, (method, p) in enumerate(all_pairs, start=1):
        view = truth_view(p, protocol)
        truth_name = p.name + view.suffix()
        truth_key = json.dumps([digest(p.truth), digest(p.reference), protocol.name, view.suffix(), asked])
        if truth_name not in truths:
            found = records.get(None, truth_name, truth_key)
            if found is None and only_recorded:
                return None
            truths[truth_name] = found or records.put(
                None,
                truth_name,
                truth_key,
                measure_truth(p.truth, view, protocol, asked, networks, poses, p.reference),
            )
        truth = truths[truth_name]
        key = json.dumps([digest(p.generated), truth_key])
        record = records.get(method, p.name, key)
        if record is None and only_recorded:
            return None
        if record is None:
            record = records.put(
                method, p.name, key, measure_generated(p, view, truth, protocol, asked, networks, poses)
            )
        measured[method][p.name] = (truth, record)
        step(done)
    return measured


def warn_unequal_truth_sets(measured: Measured, asked: Sequence[str]) -> None:
    """FID, FID-VID and FVD compare a method with the truth frames it was compared on: methods whose
    videos were cut to other lengths are then scored against different truth sets (said once)."""
    named = [metric.upper() for metric in SET_METRICS if metric in asked]
    compared = {
        method: sum(int(record["frame_count"]) for _, record in videos.values())
        for method, videos in measured.items()
    }
    if named and len(set(compared.values())) > 1:
        counts = ", ".join(f"{method} {count}" for method, count in compared.items())
        verb = "measure" if len(named) > 1 else "measures"
        warnings.warn(
            f"the methods are compared over different numbers of truth frames ({counts}), so "
            f"{' and '.join(named)} {verb} them against different truth sets: compare those with care.",
            stacklevel=3,
        )


def write_scores(
    out: Path, described: dict[str, Any], protocol: Protocol, asked: list[str], measured: Measured
) -> dict[str, Any]:
    """scores.json, scores.md and scores.svg from the measured records; returns what the JSON holds."""
    warn_unequal_truth_sets(measured, asked)
    table = {method: report.rows(protocol, asked, videos) for method, videos in measured.items()}
    curves = {method: report.curves(protocol, videos) for method, videos in measured.items()}
    result = {
        "inputs": described,
        "protocol": {
            "name": protocol.name,
            "size": list(protocol.size),
            "clip_length": protocol.clip_length,
            "clip_stride": protocol.clip_stride,
            "summary": protocol.summary,
        },
        "methods": {
            method: {name: report.plain(columns) for name, columns in rows.items()}
            for method, rows in table.items()
        },
        "curves": {method: {k: report.plain(v) for k, v in c.items()} for method, c in curves.items()},
    }
    atomic_write_bytes(out / f"{SCORES}.md", report.markdown(table, protocol).encode())
    atomic_write_bytes(out / f"{SCORES}.svg", plot.svg(curves).encode())
    atomic_write_bytes(
        out / f"{SCORES}.json", (json.dumps(result, indent=2, allow_nan=False) + "\n").encode()
    )
    return result


def evaluate(
    generated: Sequence[Path],
    truth: Path,
    out: Path | None = None,
    options: EvalOptions | None = None,
    *,
    force: bool = False,
    progress: ProgressFn = no_progress,
) -> dict[str, Any]:
    """Score each generated set (a method) against `truth`; returns what scores.json holds."""
    options = options or EvalOptions()
    methods = inputs.method_names(list(generated))
    pairs = inputs.pair(methods, truth, options.reference)
    protocol = get_protocol(options.protocol)
    explicit = options.metrics is not None
    asked = feasible(with_weights(options.chosen_metrics(), explicit, options), explicit, pairs, protocol)
    networks = networks_for(asked, options)
    out = out or default_out(list(generated), truth)
    described = described_inputs(methods, truth, options, asked)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; give a folder.")
    with folder_lock(out, "the evaluation folder"):
        claim(out, described, force)
        measured = measure(pairs, out, protocol, asked, networks, options, progress)
        assert measured is not None
        return write_scores(out, described, protocol, asked, measured)
