"""The tables of `rdance eval`: per video and overall, per method, from the measured records.

Frame metrics (SSIM, PSNR, L1, LPIPS, identity) are means over every compared frame; FID over all
frames of a method at once, FID-VID and FVD over all its clips; pose fidelity pools every frame's
points (`metrics.pose_fidelity`); smoothness sets the generated video's body jitter and flicker
beside the truth's, since real motion has both too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from realisdance_cli.evaluation import SET_METRICS, metrics
from realisdance_cli.evaluation.protocol import Protocol
from realisdance_cli.evaluation.scoring import Record
from realisdance_cli.track import BODY

# name, label, better ("up", "down" or "" for compare-with-truth), number format.
COLUMNS = (
    ("ssim", "SSIM", "up", ".3f"),
    ("psnr", "PSNR", "up", ".2f"),
    ("psnr_uint8", "PSNR (8-bit wrap)", "up", ".2f"),
    ("l1", "L1", "down", ".2e"),
    ("lpips", "LPIPS", "down", ".3f"),
    ("fid", "FID", "down", ".2f"),
    ("fid-vid", "FID-VID", "down", ".2f"),
    ("fvd", "FVD", "down", ".1f"),
    ("pck_body", "PCK body", "up", ".3f"),
    ("pck_hands", "PCK hands", "up", ".3f"),
    ("pck_face", "PCK face", "up", ".3f"),
    ("pose_error", "pose error", "down", ".3f"),
    ("pose_missing", "points missing", "down", ".3f"),
    ("hands3d", "hands 3-D (mm)", "down", ".1f"),
    ("identity", "identity", "up", ".3f"),
    ("jitter", "jitter", "", ".4f"),
    ("flicker", "flicker", "", ".4f"),
)
ARROWS = {"up": " ↑", "down": " ↓", "": ""}
FRAME_METRICS = ("ssim", "psnr", "psnr_uint8", "l1", "lpips", "identity")
PCK_TABLE_THRESHOLD = 0.05
Videos = Mapping[str, tuple[Record, Record]]  # video name -> (its truth's record, its own)
Rows = Mapping[str, Mapping[str, float | None]]  # row name -> columns (NaN or None: nothing to score)


def _mean(parts: Sequence[np.ndarray]) -> float:
    """The mean of every known (not NaN) value of the parts pooled."""
    return metrics.known_mean(np.concatenate([np.ravel(p) for p in parts]) if parts else np.zeros(0))


def _truth_cut(protocol: Protocol, truth: Record, generated: Record) -> dict[str, np.ndarray]:
    """The truth's features over the frames and clips its generated video is compared on."""
    count = int(generated["frame_count"])
    clips = len(protocol.clips(count))
    cut = {
        "inception": count,
        "resnet3d": clips,
        "i3d": clips,
        "keypoints": count,
        "hands3d": count,
        "flicker": count - 1,
    }
    return {name: truth[name][:length] for name, length in cut.items() if name in truth}


def _jitter(keypoints: np.ndarray, truth_keypoints: np.ndarray) -> float:
    """Of the body points (face and hands, five times as many, would make it DWPose's landmark
    noise), in units of the truth's body size."""
    return metrics.keypoint_jitter(keypoints[:, BODY], metrics.body_size(truth_keypoints))


def rows(protocol: Protocol, asked: Sequence[str], videos: Videos) -> dict[str, dict[str, float]]:
    """name -> columns for each video, and "overall" for them all. FID, FID-VID and FVD are only
    overall: they compare distributions, and one video's frames are too few and too alike."""
    per_video = [metric for metric in asked if metric not in SET_METRICS]
    result = {name: _columns(protocol, per_video, [pair]) for name, pair in videos.items()}
    result["overall"] = _columns(protocol, asked, list(videos.values()))
    return result


def _columns(
    protocol: Protocol, asked: Sequence[str], pairs: Sequence[tuple[Record, Record]]
) -> dict[str, float]:
    records = [record for _, record in pairs]
    cuts = [_truth_cut(protocol, truth, record) for truth, record in pairs]
    columns: dict[str, float] = {}
    for name in FRAME_METRICS:
        if name in records[0]:
            columns[name] = _mean([r[name] for r in records])
    for name, (feature, _, _) in SET_METRICS.items():
        if name in asked:
            columns[name] = _frechet([r[feature] for r in records], [c[feature] for c in cuts])
    if "pose" in asked:
        predicted = np.concatenate([r["keypoints"] for r in records])
        expected = np.concatenate([c["keypoints"] for c in cuts])
        fidelity = metrics.pose_fidelity(predicted, expected)
        for part, values in fidelity.items():
            columns[f"pck_{part}"] = values[f"pck@{PCK_TABLE_THRESHOLD}"]
            for key, value in values.items():
                columns[f"{part}/{key}"] = value
        columns["pose_error"] = _mean([metrics.pose_error_per_frame(predicted, expected)])
        known = np.isfinite(expected).all(axis=-1)
        missing = known & ~np.isfinite(predicted).all(axis=-1)
        columns["pose_missing"] = float(missing.sum() / known.sum()) if known.any() else math.nan
    if "hands3d" in asked:
        columns |= _hands3d(
            np.concatenate([r["hands3d"] for r in records]), np.concatenate([c["hands3d"] for c in cuts])
        )
    if "smoothness" in asked:
        columns["jitter"] = _mean(
            [np.array(_jitter(r["keypoints"], c["keypoints"])) for r, c in zip(records, cuts, strict=True)]
        )
        columns["truth/jitter"] = _mean([np.array(_jitter(c["keypoints"], c["keypoints"])) for c in cuts])
        columns["flicker"] = _mean([r["flicker"] for r in records])
        columns["truth/flicker"] = _mean([c["flicker"] for c in cuts])
    return columns


def _hands3d(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """HaMeR's 3-D hands of the generated frames against the truth's, side by side (F, 2, 21, 3):
    the mean PA-MPJPE in millimetres where both have the hand, and the fraction of the truth's
    hands the generated frames lack."""
    ours, theirs = (np.isfinite(points).all(axis=(-1, -2)) for points in (predicted, truth))
    both = ours & theirs
    errors = metrics.procrustes_error(predicted[both], truth[both]) * 1000
    return {
        "hands3d": _mean([errors]),
        "hands3d/missing": float((theirs & ~ours).sum() / theirs.sum()) if theirs.any() else math.nan,
    }


def _frechet(generated: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> float:
    """The Frechet distance of the two feature sets; NaN with fewer than two of either (a video
    shorter than a clip adds none)."""
    ours, theirs = np.concatenate(generated), np.concatenate(truth)
    if len(ours) < 2 or len(theirs) < 2:
        return math.nan
    return metrics.features_frechet_distance(ours, theirs)


def curves(protocol: Protocol, videos: Videos) -> dict[str, list[float]]:
    """Per frame index, the mean over a method's videos of the pose error and of the flicker (and
    the truth's flicker): what the plot shows."""
    result: dict[str, list[float]] = {}
    series: dict[str, list[np.ndarray]] = {"pose_error": [], "flicker": [], "truth_flicker": []}
    for truth, record in videos.values():
        cut = _truth_cut(protocol, truth, record)
        if "keypoints" in record and "keypoints" in cut:
            series["pose_error"].append(metrics.pose_error_per_frame(record["keypoints"], cut["keypoints"]))
        if "flicker" in record:
            series["flicker"].append(record["flicker"])
            series["truth_flicker"].append(cut["flicker"])
    for key, parts in series.items():
        if parts:
            result[key] = _mean_by_index(parts)
    return result


def _mean_by_index(parts: Sequence[np.ndarray]) -> list[float]:
    length = max(len(p) for p in parts)
    padded = np.full((len(parts), length), np.nan)
    for row, part in zip(padded, parts, strict=True):
        row[: len(part)] = part
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice": NaN, as meant
        return [float(v) for v in np.nanmean(padded, axis=0)]


def plain(values: Any) -> Any:
    """Columns or a curve for JSON, which has no NaN: NaN (nothing to score) is null."""
    if isinstance(values, Mapping):
        return {key: plain(value) for key, value in values.items()}
    if isinstance(values, list):
        return [plain(value) for value in values]
    return None if math.isnan(values) else values


def _cell(columns: Mapping[str, float | None], key: str, spec: str) -> str:
    """'' for a column this row lacks (the truth's row has smoothness only); "n/a" for nothing to
    score (NaN in the tables, null in scores.json)."""
    if key not in columns:
        return ""
    value = columns[key]
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def _present(rows: Rows) -> list[tuple[str, str, str, str]]:
    """The columns (name, label, better, format) any of the rows has, in table order."""
    return [column for column in COLUMNS if any(column[0] in columns for columns in rows.values())]


def _table(rows: Rows) -> list[str]:
    """A Markdown table of `rows` with the columns any row has."""
    present = _present(rows)
    lines = [
        "| | " + " | ".join(f"{label}{ARROWS[better]}" for _, label, better, _ in present) + " |",
        "|---|" + "---:|" * len(present),
    ]
    for name, columns in rows.items():
        lines.append(
            f"| {name} | " + " | ".join(_cell(columns, key, spec) for key, _, _, spec in present) + " |"
        )
    return lines


def overall(table: Mapping[str, Rows]) -> dict[str, Mapping[str, float | None]]:
    """method -> its overall columns, and "truth" -> the truth's smoothness when measured: the
    comparison of the methods. `table`: method -> rows, as `rows` makes them or scores.json
    holds them."""
    result = {method: rows["overall"] for method, rows in table.items()}
    first = next(iter(result.values()))
    if "truth/jitter" in first:
        result["truth"] = {key: first[f"truth/{key}"] for key in ("jitter", "flicker")}
    return result


def by_metric(rows: Rows) -> list[list[str]]:
    """`rows` turned for a terminal: a line per column present (its label, then each row's cell),
    so that a few methods fit 80 characters whatever the number of metrics."""
    return [
        [f"{label}{ARROWS[better]}", *(_cell(columns, key, spec) for columns in rows.values())]
        for key, label, better, spec in _present(rows)
    ]


def notes(rows: Rows) -> str:
    """What the columns present mean, where their names do not say it."""
    keys = {key for key, _, _, _ in _present(rows)}
    said = []
    if keys & {"pck_body", "pck_hands", "pck_face", "pose_error", "pose_missing"}:
        said.append(
            f"PCK at {PCK_TABLE_THRESHOLD} of the body size (hands: of their own size); pose error in the "
            "same units, over the points found (points missing: the truth's points the generated video's "
            "DWPose did not find)."
        )
    if "hands3d" in keys:
        said.append("Hands 3-D: HaMeR's keypoints, PA-MPJPE.")
    if keys & {"jitter", "flicker"}:
        said.append("Jitter (body points) and flicker: closer to the truth's is better.")
    return " ".join(said)


def markdown(table: Mapping[str, Rows], protocol: Protocol) -> str:
    """The overall table (a row per method, and the truth's smoothness), then each method's
    per-video table, then what the columns mean."""
    compared = overall(table)
    text = [f"# rdance eval ({protocol.summary})", "", *_table(compared)]
    for method, rows in table.items():
        text += ["", f"## {method}", "", *_table({n: c for n, c in rows.items() if n != "overall"})]
    if said := notes(compared):
        text += ["", said]
    return "\n".join(text) + "\n"
