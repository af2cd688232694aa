"""`rdance eval GENERATED... TRUTH`: score generated videos against the truth, resumably.

    <out>/scores.json   inputs, protocol, per video and overall columns per method, plot data
    <out>/scores.md     the same as Markdown tables (printed too)
    <out>/scores.svg    pose error and flicker over time, a line per method
    <out>/records/      one record per measured video (resume: a finished one is reused)
    <out>/poses/        DWPose tracks of the videos (resumable like `rdance extract`)

Everything is checked before any work: names, lengths, the weights the metrics need, and whether a
set metric has enough frames or clips. The folder is locked while a run writes it.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realisdance_cli import weights
from realisdance_cli.errors import UserError
from realisdance_cli.evaluation import METRICS, SET_METRICS, inputs, plot, report
from realisdance_cli.evaluation.features import NEEDS, FeatureNetworks
from realisdance_cli.evaluation.inputs import Pair
from realisdance_cli.evaluation.protocol import DEFAULT_PROTOCOL, Protocol, get_protocol
from realisdance_cli.evaluation.scoring import Record, measure_generated, measure_truth
from realisdance_cli.files import atomic_write_bytes, folder_lock, load_npz, save_npz
from realisdance_cli.progress import ProgressFn, counter, no_progress
from realisdance_cli.track import Track
from realisdance_cli.video import FrameSource

log = logging.getLogger(__name__)
SCORES = "scores"
# What --force removes from an evaluation folder (an `eval run` folder's videos are kept: they
# are checked against the test set by name, and are the costly part).
REPLACED = ("records", "poses", f"{SCORES}.json", f"{SCORES}.md", f"{SCORES}.svg")
# The Frechet distance needs two samples for a covariance; below the features' dimension it is
# biased upward, comparable only with numbers from the same test set.
MIN_SAMPLES = 2
SET_SAMPLES = {"fid": ("frames", 2048), "fid-vid": ("clips", 2048), "fvd": ("clips", 400)}


@dataclass
class EvalOptions:
    protocol: str = DEFAULT_PROTOCOL
    metrics: Sequence[str] | None = None  # None: every metric these videos allow
    reference: Path | None = None  # the picture(s) animated; default the truth's first frame
    device: str = "auto"
    weights_root: Path | None = None

    def chosen_metrics(self) -> list[str]:
        if self.metrics is None:
            return list(METRICS)
        unknown = [m for m in self.metrics if m not in METRICS]
        if unknown or not self.metrics:
            raise UserError(f"--metrics takes a list of {', '.join(METRICS)}; got {', '.join(self.metrics)}.")
        return [m for m in METRICS if m in self.metrics]


def default_out(generated: Sequence[Path], truth: Path) -> Path:
    first = generated[0]
    return Path(f"{first.stem if first.is_file() else first.name}_eval")


def _side_name(side: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", side)


def _frame_count(path: Path) -> int:
    return FrameSource(path).info.frame_count


def feasible(asked: list[str], explicit: bool, pairs: dict[str, list[Pair]], protocol: Protocol) -> list[str]:
    """The asked metrics, less the set metrics a method has too few frames or clips for: refused
    when they were asked for by name, left out with a warning otherwise."""
    lengths: dict[Path, int] = {}
    for method_pairs in pairs.values():
        for p in method_pairs:
            for path in (p.generated, p.truth):
                if path not in lengths:
                    lengths[path] = _frame_count(path)
    kept = []
    for metric in asked:
        if metric not in SET_METRICS:
            kept.append(metric)
            continue
        unit, dimension = SET_SAMPLES[metric]
        fewest = min(
            sum(
                len(protocol.clips(n)) if unit == "clips" else n
                for n in (min(lengths[p.generated], lengths[p.truth]) for p in method_pairs)
            )
            for method_pairs in pairs.values()
        )
        clip = f" of {protocol.clip_length} frames" if unit == "clips" else ""
        if fewest < MIN_SAMPLES:
            problem = (
                f"{metric.upper()} needs at least {MIN_SAMPLES} {unit}{clip} per method; "
                f"these videos give {fewest}"
            )
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


class _Records:
    """Measured videos in `<out>/records`, each saved with the key of what it was measured from."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, side: str, name: str) -> Path:
        return self.folder / f"{_side_name(side)}--{_side_name(name)}.npz"

    def get(self, side: str, name: str, key: str) -> Record | None:
        path = self.path(side, name)
        if not path.exists():
            return None
        record = load_npz(path)
        return record if str(record.pop("key", "")) == key else None

    def put(self, side: str, name: str, key: str, record: Record) -> Record:
        save_npz(self.path(side, name), {**record, "key": np.array(key)})
        return record


def _digest(path: Path | None) -> str | None:
    if path is None:
        return None
    from realisdance_cli.extraction import source_digest

    return source_digest(FrameSource(path))


class _Poses:
    """DWPose tracks of the compared videos, extracted once into `<out>/poses/<side>/`."""

    def __init__(self, folder: Path, options: EvalOptions, metrics: list[str], progress: ProgressFn) -> None:
        self.folder, self.options, self.progress = folder, options, progress
        self.stages = ["dwpose", "hamer"] if "hands3d" in metrics else ["dwpose"]

    def __call__(self, video: Path, side: str) -> Track:
        from realisdance_cli.extraction import ExtractOptions, extract

        extract_options = ExtractOptions(
            stages=self.stages, device=self.options.device, weights_root=self.options.weights_root
        )
        out = self.folder / _side_name(side) / f"{video.stem}.rdance"
        return extract(video, out, extract_options, progress=self.progress)[0]


def check_out(out: Path, described: dict[str, Any], force: bool) -> None:
    """`out` holds nothing, or an evaluation of these inputs (resumed), or --force was given."""
    scores = out / f"{SCORES}.json"
    if not out.exists() or not any(out.iterdir()):
        return
    earlier = None
    if scores.exists():
        try:
            earlier = json.loads(scores.read_text()).get("inputs")
        except (OSError, ValueError):
            earlier = None
    if earlier == described:
        return
    if not force:
        what = "the evaluation of other videos" if earlier else "other files"
        raise UserError(f"{out} holds {what}; pass --force to replace it, or choose another --out.")
    for name in REPLACED:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def _plain(columns: dict[str, float]) -> dict[str, Any]:
    return {key: report.plain_number(value) for key, value in columns.items()}


def described_inputs(
    methods: dict[str, Path], truth: Path, options: EvalOptions, asked: list[str]
) -> dict[str, Any]:
    """What an evaluation folder was made from: a later run on other inputs is refused."""
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


def measure(
    pairs: dict[str, list[Pair]],
    out: Path,
    protocol: Protocol,
    asked: list[str],
    networks: FeatureNetworks,
    options: EvalOptions,
    progress: ProgressFn,
) -> tuple[dict[str, Record], dict[str, dict[str, Record]]]:
    """Every truth and generated video of `pairs` measured, or its record in `<out>/records` reused;
    records are replaced atomically, so processes measuring the same video never clash."""
    records = _Records(out / "records")
    poses = _Poses(out / "poses", options, asked, progress)
    truths_needed = {p.name: p for method_pairs in pairs.values() for p in method_pairs}
    step = counter(progress, "scoring videos", len(truths_needed) + sum(map(len, pairs.values())))
    done = 0
    truths: dict[str, Record] = {}
    for name, p in truths_needed.items():
        key = json.dumps([_digest(p.truth), _digest(p.reference), protocol.name, asked])
        truths[name] = records.get("truth", name, key) or records.put(
            "truth", name, key, measure_truth(p.truth, protocol, asked, networks, poses, p.reference)
        )
        done += 1
        step(done)
    measured: dict[str, dict[str, Record]] = {}
    for method, method_pairs in pairs.items():
        measured[method] = {}
        for p in method_pairs:
            key = json.dumps([_digest(p.generated), _digest(p.truth), protocol.name, asked])
            measured[method][p.name] = records.get(method, p.name, key) or records.put(
                method,
                p.name,
                key,
                measure_generated(p, truths[p.name], protocol, asked, networks, poses, method),
            )
            done += 1
            step(done)
    return truths, measured


def write_scores(
    out: Path,
    described: dict[str, Any],
    protocol: Protocol,
    asked: list[str],
    truths: dict[str, Record],
    measured: dict[str, dict[str, Record]],
) -> dict[str, Any]:
    """scores.json, scores.md and scores.svg from the measured records; returns what the JSON holds."""
    table = {method: report.rows(protocol, asked, truths, videos) for method, videos in measured.items()}
    curves = {method: report.curves(protocol, truths, videos) for method, videos in measured.items()}
    result = {
        "inputs": described,
        "protocol": {
            "name": protocol.name,
            "size": list(protocol.size),
            "fit": protocol.fit,
            "clip_length": protocol.clip_length,
            "clip_stride": protocol.clip_stride,
            "summary": protocol.summary,
        },
        "methods": {
            method: {name: _plain(columns) for name, columns in rows.items()}
            for method, rows in table.items()
        },
        "curves": {
            method: {k: [report.plain_number(v) for v in values] for k, values in c.items()}
            for method, c in curves.items()
        },
    }
    atomic_write_bytes(out / f"{SCORES}.md", report.markdown(table, protocol).encode())
    atomic_write_bytes(out / f"{SCORES}.svg", plot.svg(curves).encode())
    atomic_write_bytes(out / f"{SCORES}.json", (json.dumps(result, indent=2) + "\n").encode())
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
    check_out(out, described, force)
    with folder_lock(out, "the evaluation folder"), folder_lock(out / "records", "the evaluation folder"):
        truths, measured = measure(pairs, out, protocol, asked, networks, options, progress)
        return write_scores(out, described, protocol, asked, truths, measured)
