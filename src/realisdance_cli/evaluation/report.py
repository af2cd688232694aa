"""The tables of `rdance eval`: per video and overall, per method, from the measured records.

Frame metrics (SSIM, PSNR, LPIPS, identity) are means over every compared frame; FID over all
frames of a method at once, FID-VID and FVD over all its clips; pose fidelity pools every frame's
points (`metrics.pose_fidelity`); smoothness sets the generated video's keypoint jitter and
flicker beside the truth's, since real motion has both too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from realisdance_cli.evaluation import metrics
from realisdance_cli.evaluation.protocol import Protocol
from realisdance_cli.evaluation.scoring import Record

# name, label, better ("up", "down" or "" for compare-with-truth), digits.
COLUMNS = (
    ("ssim", "SSIM", "up", 3),
    ("psnr", "PSNR", "up", 2),
    ("psnr_uint8", "PSNR (8-bit wrap)", "up", 2),
    ("lpips", "LPIPS", "down", 3),
    ("fid", "FID", "down", 2),
    ("fid-vid", "FID-VID", "down", 2),
    ("fvd", "FVD", "down", 1),
    ("pck_body", "PCK body", "up", 3),
    ("pck_hands", "PCK hands", "up", 3),
    ("pck_face", "PCK face", "up", 3),
    ("pose_error", "pose error", "down", 3),
    ("hands3d", "hands 3-D (mm)", "down", 1),
    ("identity", "identity", "up", 3),
    ("jitter", "jitter", "", 4),
    ("flicker", "flicker", "", 4),
)
ARROWS = {"up": " ↑", "down": " ↓", "": ""}
SET_FEATURES = {"fid": "inception", "fid-vid": "resnet3d", "fvd": "i3d"}
PCK_TABLE_THRESHOLD = 0.05


def _mean(parts: Sequence[np.ndarray]) -> float:
    values = np.concatenate([np.ravel(p) for p in parts]) if parts else np.zeros(0)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


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
    return metrics.keypoint_jitter(keypoints, metrics.body_size(truth_keypoints))


def rows(
    protocol: Protocol,
    asked: Sequence[str],
    truths: Mapping[str, Record],
    generated: Mapping[str, Record],
) -> dict[str, dict[str, float]]:
    """name -> columns for each video, and "overall" for them all. FID, FID-VID and FVD are only
    overall: they compare distributions, and one video's frames are too few and too alike."""
    per_video = [metric for metric in asked if metric not in SET_FEATURES]
    result = {
        name: _columns(protocol, per_video, [truths[name]], [record]) for name, record in generated.items()
    }
    result["overall"] = _columns(protocol, asked, [truths[n] for n in generated], list(generated.values()))
    return result


def _columns(
    protocol: Protocol, asked: Sequence[str], truths: Sequence[Record], records: Sequence[Record]
) -> dict[str, float]:
    cuts = [_truth_cut(protocol, t, r) for t, r in zip(truths, records, strict=True)]
    columns: dict[str, float] = {}
    for name in ("ssim", "psnr", "psnr_uint8", "lpips", "identity"):
        if name in records[0]:
            columns[name] = _mean([r[name] for r in records])
    for name, feature in SET_FEATURES.items():
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
    """The Frechet distance of the two feature sets; NaN with fewer than two of either."""
    ours, theirs = np.concatenate(generated), np.concatenate(truth)
    if len(ours) < 2 or len(theirs) < 2:
        return math.nan
    return metrics.frechet_distance(*metrics.feature_statistics(ours), *metrics.feature_statistics(theirs))


def curves(
    protocol: Protocol, truths: Mapping[str, Record], generated: Mapping[str, Record]
) -> dict[str, list[float]]:
    """Per frame index, the mean over a method's videos of the pose error and of the flicker (and
    the truth's flicker): what the plot shows."""
    result: dict[str, list[float]] = {}
    series: dict[str, list[np.ndarray]] = {"pose_error": [], "flicker": [], "truth_flicker": []}
    for name, record in generated.items():
        cut = _truth_cut(protocol, truths[name], record)
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
    with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as quiet:
        quiet.filter(RuntimeWarning)
        return [float(v) for v in np.nanmean(padded, axis=0)]


def plain_number(value: float) -> Any:
    """JSON has no NaN or infinity: NaN (nothing to score) is null, infinity the string "inf"."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _cell(value: float | None, digits: int) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "∞" if math.isinf(value) else f"{value:.{digits}f}"


def markdown(table: Mapping[str, Mapping[str, Mapping[str, float]]], protocol: Protocol) -> str:
    """The overall table (a row per method), then each method's per-video table."""
    present = [c for c in COLUMNS if any(c[0] in rows["overall"] for rows in table.values())]
    header = "| | " + " | ".join(f"{label}{ARROWS[better]}" for _, label, better, _ in present) + " |"
    rule = "|---|" + "---:|" * len(present)

    def line(name: str, columns: Mapping[str, float]) -> str:
        cells = [_cell(columns.get(key), digits) for key, _, _, digits in present]
        return f"| {name} | " + " | ".join(cells) + " |"

    text = [f"# rdance eval ({protocol.summary})", "", header, rule]
    text += [line(method, rows["overall"]) for method, rows in table.items()]
    first = next(iter(table.values()))["overall"]
    if "truth/jitter" in first or "truth/flicker" in first:
        truth = {
            "jitter": first.get("truth/jitter", math.nan),
            "flicker": first.get("truth/flicker", math.nan),
        }
        text.append(line("truth", truth))
    for method, rows in table.items():
        text += ["", f"## {method}", "", header, rule]
        text += [line(name, columns) for name, columns in rows.items() if name != "overall"]
    notes = [
        "",
        f"PCK at {PCK_TABLE_THRESHOLD} of the body size (hands: of their own size); pose error in the "
        "same units; hands 3-D: HaMeR's keypoints, PA-MPJPE. Jitter and flicker: closer to the "
        "truth's is better.",
    ]
    return "\n".join(text + notes) + "\n"
