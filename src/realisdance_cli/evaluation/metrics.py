"""The metric maths of `rdance eval`: pure functions on arrays, no feature networks.

Conventions:
- frames are float arrays in [0, data_range] (1 by default), (H, W, C) for one frame or
  (N, H, W, C) for a batch, which gives one value per frame;
- keypoints are (F, K, 2) x, y in pixels, one person per frame, NaN where unknown (the caller
  makes a DWPose point scoring under 0.3, the original's drawing threshold, unknown);
- errors and jitter are in units of a scale (F,) in pixels, e.g. `body_size`.
Where a metric has a standard reference it equals it to 1e-6 (tests/test_eval_metrics.py): SSIM
and PSNR scikit-image's, the Frechet distance the usual `scipy.linalg.sqrtm` formula (pytorch-fid).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

from realisdance_cli.errors import UserError
from realisdance_cli.track import BODY, DWPOSE_POINTS, FACE, LEFT_HAND, RIGHT_HAND

# SSIM's stabilising constants (Wang et al. 2004), as fractions of the data range.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
SSIM_WINDOW = 7  # the side of its uniform window
PCK_THRESHOLDS = (0.05, 0.1)
# A part's box (the scale of its errors) needs at least this fraction of the part's points known:
# a box through two or three points says little about the part's size.
MIN_BOX_FRACTION = 0.5
# An eigenvalue of a covariance below -this x its largest is not round-off: the input is wrong.
NEGATIVE_EIGENVALUE = 1e-6
# Frames a batch-wise metric holds as float64 at a time.
CHUNK = 32
# DisCo's PSNR for identical frames (an infinite mean would say nothing about the other frames).
IDENTICAL_PSNR = 100.0
# Luma of ITU-R BT.601 (OpenCV's and Pillow's grey) from R, G, B.
LUMA = np.array([0.299, 0.587, 0.114])


def _frame_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Both as float64 (N, H, W, C), and whether a batch was given."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim not in (3, 4):
        raise ValueError(
            f"expected two frames (H, W, C) or batches (N, H, W, C) of one shape, got {a.shape} and {b.shape}"
        )
    return (a, b, True) if a.ndim == 4 else (a[None], b[None], False)


def _per_frame(values: np.ndarray, batched: bool) -> float | np.ndarray:
    return values if batched else float(values[0])


def known_mean(values: np.ndarray) -> float:
    """The mean of the values that are not NaN; NaN when none is (without numpy's warning)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float | np.ndarray:
    """Peak signal-to-noise ratio 10 log10(data_range² / MSE), the MSE over each frame's pixels and
    channels; equal to scikit-image's `peak_signal_noise_ratio(a, b, data_range=data_range)`.

    Args:
        a, b: frames (H, W, C) or batches (N, H, W, C), float in [0, data_range].
        data_range: the span of the values (1 for [0, 1]).

    Returns:
        dB, a float for one frame or (N,) per frame; inf for identical frames.
    """
    a, b, batched = _frame_pair(a, b)
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return _per_frame(10 * np.log10(data_range**2 / mse), batched)


def psnr_8bit(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DisCo's PSNR of 8-bit frames (its code since commit 6190108): `psnr` with data range 255,
    100 dB for identical frames; `psnr_8bit_wrapped` is the one before.

    Args:
        a, b: uint8 batches (N, H, W, C).

    Returns:
        (N,) dB.
    """
    chunks = [
        np.asarray(psnr(a[i : i + CHUNK].astype(np.float64), b[i : i + CHUNK].astype(np.float64), 255.0))
        for i in range(0, len(a), CHUNK)
    ]
    values = np.concatenate(chunks) if chunks else np.zeros(0)
    return np.where(np.isinf(values), IDENTICAL_PSNR, values)


def disco_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DisCo's L1: the mean absolute difference of 8-bit values divided once more by the pixel
    count H x W (why its tables print L1 near 3e-4).

    Args:
        a, b: uint8 batches (N, H, W, C).

    Returns:
        (N,).
    """
    height, width = a.shape[1:3]
    return np.array(
        [np.abs(x.astype(np.int16) - y).mean() / (height * width) for x, y in zip(a, b, strict=True)]
    )


def psnr_8bit_wrapped(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DisCo's first PSNR code (until its commit 6190108), which MagicAnimate, Animate Anyone and
    Champ copied: the difference and its square are taken in 8 bits, so both wrap modulo 256, every
    pixel's "squared error" is below 256 and the result is at least 24.07 dB (about 28-30 for
    typical errors). Only for comparing with the tables made with it.

    Args:
        a, b: uint8 batches (N, H, W, C).

    Returns:
        (N,) dB; 100 for identical frames, as that code gave.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != np.uint8 or b.dtype != np.uint8 or a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"expected two uint8 batches (N, H, W, C) of one shape, got {a.shape} and {b.shape}")
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))  # uint8 arithmetic on purpose: that code's wrap-around
    with np.errstate(divide="ignore"):
        return np.where(mse == 0, IDENTICAL_PSNR, 20 * np.log10(255 / np.sqrt(mse)))


def gray(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) RGB uint8 -> (N, H, W, 1) uint8 BT.601 grey, rounded as OpenCV rounds it (DisCo
    scores SSIM on `cv2.cvtColor(..., COLOR_BGR2GRAY)` of its frames)."""
    import cv2

    return np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames])[..., None]


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float | np.ndarray:
    """Mean structural similarity (Wang et al. 2004): each channel's SSIM map, less a border of the
    window's radius, averaged over pixels and channels; equal to scikit-image's
    `structural_similarity(a, b, channel_axis=-1, data_range=data_range)`, whose defaults DisCo
    scores with: a 7x7 uniform window, sample covariance, K1 0.01, K2 0.03.

    Args:
        a, b: frames (H, W, C) or batches (N, H, W, C), float in [0, data_range]; H and W at least
            the window's side.
        data_range: the span of the values (1 for [0, 1]).

    Returns:
        a float for one frame or (N,) per frame, in [-1, 1]; 1 for identical frames.
    """
    a, b, batched = _frame_pair(a, b)
    radius = SSIM_WINDOW // 2
    if min(a.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs frames of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {a.shape[1]}x{a.shape[2]}"
        )

    def window(x: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(x, size=(SSIM_WINDOW, SSIM_WINDOW, 1), mode="reflect")

    weights = SSIM_WINDOW * SSIM_WINDOW
    covariance_norm = weights / (weights - 1)  # the sample covariance
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    values = np.empty(len(a))
    for index, (x, y) in enumerate(zip(a, b, strict=True)):  # a frame at a time: bounded memory
        mean_x, mean_y = window(x), window(y)
        var_x = covariance_norm * (window(x * x) - mean_x * mean_x)
        var_y = covariance_norm * (window(y * y) - mean_y * mean_y)
        cov_xy = covariance_norm * (window(x * y) - mean_x * mean_y)
        similarity = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
            (mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)
        )
        values[index] = similarity[radius:-radius, radius:-radius].mean()
    return _per_frame(values, batched)


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of feature vectors, what the Frechet distance compares.

    Args:
        features: (N, D), one vector per sample (a frame for FID, a clip for FID-VID and FVD), N >= 2.

    Returns:
        mu (D,) and sigma (D, D), the unbiased (N - 1) covariance, float64.
    """
    features = _samples(features)
    return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def _samples(features: np.ndarray) -> np.ndarray:
    """(N, D) features as float64, N >= 2 (a covariance needs two)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"expected features (N, D), got shape {features.shape}")
    if len(features) < 2:
        raise UserError(
            "The Frechet distance (FID, FID-VID, FVD) needs at least 2 samples (frames or clips) "
            f"to estimate a covariance, got {len(features)}."
        )
    return features


def _covariance_eigen(sigma: np.ndarray, size: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (round-off below 0 made 0) and eigenvectors of a (size, size) covariance matrix."""
    sigma = np.asarray(sigma, dtype=np.float64)
    if sigma.shape != (size, size):
        raise ValueError(f"expected {name} of shape {(size, size)}, got {sigma.shape}")
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    if values[0] < -NEGATIVE_EIGENVALUE * max(abs(values[0]), abs(values[-1])):
        raise ValueError(
            f"{name} is not a covariance matrix: it has the eigenvalue {values[0]:.3g} "
            f"(its largest is {values[-1]:.3g})"
        )
    return np.clip(values, 0.0, None), vectors


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between two Gaussians, |mu1 - mu2|² + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^½):
    FID on InceptionV3 features, FID-VID and FVD on video features. Equal (1e-6 relative) to the
    usual formula with `scipy.linalg.sqrtm` (pytorch-fid's), and faster (at D = 2048, 5 s against 17 s
    on two CPU cores).

    tr (sigma1 sigma2)^½ is the sum of the square roots of the eigenvalues of the symmetric
    sigma1^½ sigma2 sigma1^½, which has those of sigma1 sigma2. The usual safeguards of `sqrtm` on
    the non-symmetric product take another form here:
    - where the product is near singular (fewer samples than dimensions), `sqrtm` fails and
      pytorch-fid adds eps to the diagonals; symmetric eigen-decompositions do not fail there and
      need no eps (they equal the reference to about 1e-8 on rank-deficient covariances);
    - round-off that `sqrtm` shows as a negligible imaginary part (dropped) shows here as slightly
      negative eigenvalues (made 0); what it shows as a large one (refused) is a matrix with an
      eigenvalue below -1e-6 of its largest, not a covariance, refused with a ValueError.

    Args:
        mu1, mu2: means (D,) of the two feature sets (see `feature_statistics`).
        sigma1, sigma2: their covariances (D, D), symmetric positive semi-definite.

    Returns:
        the distance, >= 0 (round-off below 0 made 0); 0 for identical statistics.
    """
    mu1 = np.asarray(mu1, dtype=np.float64)
    mu2 = np.asarray(mu2, dtype=np.float64)
    if mu1.ndim != 1 or mu1.shape != mu2.shape:
        raise ValueError(f"expected means of one shape (D,), got {mu1.shape} and {mu2.shape}")
    size = len(mu1)
    values1, vectors1 = _covariance_eigen(sigma1, size, "sigma1")
    values2, vectors2 = _covariance_eigen(sigma2, size, "sigma2")
    root1 = (vectors1 * np.sqrt(values1)) @ vectors1.T
    middle = root1 @ ((vectors2 * values2) @ vectors2.T) @ root1
    product_eigenvalues = np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)
    difference = mu1 - mu2
    distance = (
        difference @ difference + values1.sum() + values2.sum() - 2 * np.sqrt(product_eigenvalues).sum()
    )
    return max(float(distance), 0.0)


def features_frechet_distance(ours: np.ndarray, theirs: np.ndarray) -> float:
    """`frechet_distance` of two feature sets' statistics, from the features (N, D) themselves.

    With fewer samples than dimensions on both sides (FID of a few videos' frames), exactly and
    without a D x D matrix: with A and B the centred features divided by sqrt(N - 1), so that
    sigma1 = AᵀA and sigma2 = BᵀB, sigma1 sigma2 has the non-zero eigenvalues of (A Bᵀ)(A Bᵀ)ᵀ, so
    tr (sigma1 sigma2)^½ is the sum of the singular values of the small A Bᵀ, and tr sigma1 = |A|².
    At D = 2048 and a few hundred samples that takes milliseconds, the eigen-decompositions of
    `frechet_distance` a minute on two CPU cores. With more samples, through the covariances.

    Args:
        ours, theirs: (N1, D) and (N2, D) features, N1, N2 >= 2.

    Returns:
        the distance, >= 0 (round-off below 0 made 0).
    """
    ours, theirs = _samples(ours), _samples(theirs)
    if ours.shape[1] != theirs.shape[1]:
        raise ValueError(f"expected features of one dimension, got {ours.shape} and {theirs.shape}")
    if max(len(ours), len(theirs)) >= ours.shape[1]:
        return frechet_distance(*feature_statistics(ours), *feature_statistics(theirs))
    mu1, mu2 = ours.mean(axis=0), theirs.mean(axis=0)
    a = (ours - mu1) / np.sqrt(len(ours) - 1)
    b = (theirs - mu2) / np.sqrt(len(theirs) - 1)
    product_roots = np.linalg.svd(a @ b.T, compute_uv=False)
    difference = mu1 - mu2
    distance = difference @ difference + (a * a).sum() + (b * b).sum() - 2 * product_roots.sum()
    return max(float(distance), 0.0)


def _box_diagonal(points: np.ndarray) -> np.ndarray:
    """(F, K, 2) -> (F,): the diagonal of each frame's box around its known points; NaN where fewer
    than MIN_BOX_FRACTION of the K points are known."""
    known = np.isfinite(points).all(axis=-1)
    low = np.where(known[..., None], points, np.inf).min(axis=1)
    high = np.where(known[..., None], points, -np.inf).max(axis=1)
    enough = known.sum(axis=1) >= MIN_BOX_FRACTION * points.shape[1]
    return np.where(enough, np.linalg.norm(high - low, axis=-1), np.nan)


def _whole_body(keypoints: np.ndarray) -> np.ndarray:
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (DWPOSE_POINTS, 2):
        raise ValueError(f"expected DWPose keypoints (F, {DWPOSE_POINTS}, 2), got shape {keypoints.shape}")
    return keypoints


def body_size(keypoints: np.ndarray) -> np.ndarray:
    """The scale of body and face errors: the diagonal of the box around a frame's known body points.

    Why this box: it exists in half-body shots (TikTok dances), where the hips and so the torso
    length are out of the frame, and it does not shrink when the torso bends towards the camera.
    Its cost: raised or spread arms make it up to about 1.4 times longer than arms down.

    Args:
        keypoints: (F, 134, 2) DWPose points in pixels (body = the OpenPose 18, feet not
            included), NaN where unknown; for `pose_fidelity`, the truth's.

    Returns:
        (F,) pixels; NaN in a frame with fewer than half of the 18 body points known.
    """
    return _box_diagonal(_whole_body(keypoints)[:, BODY])


def _normalised_errors(
    predicted: np.ndarray, truth: np.ndarray, scale: np.ndarray, visible: np.ndarray
) -> np.ndarray:
    """The counted points' distances in units of their frame's scale, flat; inf for a missing
    prediction. Counted: visible truth points with coordinates, in frames whose scale is > 0."""
    predicted = np.asarray(predicted, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    scale = np.asarray(scale, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    if truth.ndim != 3 or truth.shape[2] != 2 or predicted.shape != truth.shape:
        raise ValueError(
            f"expected predicted and truth (F, K, 2) of one shape, got {predicted.shape}, {truth.shape}"
        )
    if scale.shape != truth.shape[:1] or visible.shape != truth.shape[:2]:
        raise ValueError(f"expected scale (F,) and visible (F, K), got {scale.shape} and {visible.shape}")
    good_scale = np.isfinite(scale) & (scale > 0)
    counted = visible & np.isfinite(truth).all(axis=-1) & good_scale[:, None]
    distance = np.linalg.norm(predicted - truth, axis=-1)[counted]
    errors = distance / np.broadcast_to(scale[:, None], counted.shape)[counted]
    return np.where(np.isnan(errors), np.inf, errors)


def pck(
    predicted: np.ndarray, truth: np.ndarray, scale: np.ndarray, threshold: float, visible: np.ndarray
) -> float:
    """Percentage of correct keypoints, as a fraction: of the visible truth points, those whose
    prediction is within `threshold` x their frame's scale (inclusive). A missing prediction (NaN)
    counts as wrong; a visible point without coordinates, or in a frame whose scale is NaN or not
    positive, is not counted.

    Args:
        predicted, truth: (F, K, 2) pixels, NaN where unknown.
        scale: (F,) pixels, e.g. `body_size(truth)`.
        threshold: e.g. 0.05 or 0.1.
        visible: (F, K) bool, the truth points to score.

    Returns:
        a fraction in [0, 1]; NaN when no point is counted (nothing to score is not a score of 0).
    """
    return known_mean(_normalised_errors(predicted, truth, scale, visible) <= threshold)


def mean_error(predicted: np.ndarray, truth: np.ndarray, scale: np.ndarray, visible: np.ndarray) -> float:
    """Mean distance of the counted points (as in `pck`) that have a prediction, in units of their
    frame's scale; missing predictions have no distance and are left out (`pck` counts them).

    Returns:
        >= 0; NaN when no counted point has a prediction.
    """
    errors = _normalised_errors(predicted, truth, scale, visible)
    return known_mean(errors[np.isfinite(errors)])


def _parts(predicted: np.ndarray, truth: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Body, hands (both pooled along the frame axis) and face: predicted, truth and scale each."""
    size = body_size(truth)
    hands = (LEFT_HAND, RIGHT_HAND)
    return {
        "body": (predicted[:, BODY], truth[:, BODY], size),
        "hands": (
            np.concatenate([predicted[:, hand] for hand in hands]),
            np.concatenate([truth[:, hand] for hand in hands]),
            np.concatenate([_box_diagonal(truth[:, hand]) for hand in hands]),
        ),
        "face": (predicted[:, FACE], truth[:, FACE], size),
    }


def _pose_pair(predicted: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted, truth = _whole_body(predicted), _whole_body(truth)
    if predicted.shape != truth.shape:
        raise ValueError(
            f"expected predicted and truth of one shape, got {predicted.shape} and {truth.shape}"
        )
    return predicted, truth


def pose_fidelity(predicted: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    """How well a generated video follows its driving pose: body, hands and face scored apart.

    Body and face errors are in units of `body_size(truth)`. Each hand's are in units of the
    diagonal of its own truth box (NaN, so not counted, in a frame with fewer than 11 of its 21
    points known): a hand is a tenth to a fifth of the body, so 0.05 of the body box is about a
    palm's width and any hand in the right place would pass, whereas its own box judges the
    fingers, which RealisDance is about. The two hands are pooled.

    Args:
        predicted: (F, 134, 2) DWPose points of the generated frames, pixels, NaN where unknown.
        truth: (F, 134, 2) the driving pose's, the same frames; its known points are scored.

    Returns:
        {"body" | "hands" | "face": {"pck@0.05", "pck@0.1", "mean_error", "missing"}}, where
        "missing" is the fraction of scored points without a prediction; NaN where nothing is scored.
    """
    scores = {}
    for name, (part_predicted, part_truth, scale) in _parts(*_pose_pair(predicted, truth)).items():
        points = (part_predicted, part_truth, scale)
        visible = np.isfinite(part_truth).all(axis=-1)
        scores[name] = {f"pck@{threshold}": pck(*points, threshold, visible) for threshold in PCK_THRESHOLDS}
        scores[name]["mean_error"] = mean_error(*points, visible)
        scores[name]["missing"] = known_mean(np.isinf(_normalised_errors(*points, visible)))
    return scores


def pose_error_per_frame(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each frame's mean error over its scored points of every part, each part in its own scale
    (as `pose_fidelity`); points without a prediction are left out (`pose_fidelity`'s "missing"
    counts them). For plotting a video's pose error over time.

    Returns:
        (F,) in units of the parts' scales; NaN in a frame with no scored, predicted point.
    """
    predicted, truth = _pose_pair(predicted, truth)
    frames = len(truth)
    totals, counts = np.zeros(frames), np.zeros(frames)
    for part_predicted, part_truth, scale in _parts(predicted, truth).values():
        repeats = len(part_truth) // frames  # the hands part holds both hands: two rows per frame
        with np.errstate(divide="ignore", invalid="ignore"):
            errors = np.linalg.norm(part_predicted - part_truth, axis=-1) / scale[:, None]
        counted = np.isfinite(errors) & (scale[:, None] > 0)
        totals += np.where(counted, errors, 0).sum(axis=1).reshape(repeats, frames).sum(axis=0)
        counts += counted.sum(axis=1).reshape(repeats, frames).sum(axis=0)
    with np.errstate(invalid="ignore"):
        return totals / np.where(counts > 0, counts, np.nan)


def keypoint_jitter(keypoints: np.ndarray, scale: np.ndarray | float) -> float:
    """Mean magnitude of the second temporal difference p[t+1] - 2 p[t] + p[t-1] of the points, in
    units of the middle frame's scale: 0 for still or steadily moving points, 4 r sin²(w/2) / scale
    for a point circling at radius r and w radians a frame. A triple of frames counts for a point
    known in all three, where the middle frame's scale is > 0. Real motion accelerates too: compare
    with the jitter of the driving pose.

    Args:
        keypoints: (F, K, 2) pixels, NaN where unknown.
        scale: (F,) pixels, e.g. `body_size`, or one number for every frame.

    Returns:
        >= 0; NaN when nothing counts (fewer than 3 frames, say).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[2] != 2:
        raise ValueError(f"expected keypoints (F, K, 2), got shape {keypoints.shape}")
    middle_scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), keypoints.shape[:1])[1:-1, None]
    second = keypoints[2:] - 2 * keypoints[1:-1] + keypoints[:-2]
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.linalg.norm(second, axis=-1) / middle_scale
    return known_mean(magnitude[np.isfinite(magnitude) & (middle_scale > 0)])


def flicker(frames: np.ndarray) -> np.ndarray:
    """Frame-to-frame change of brightness: the mean absolute difference of BT.601 luma between
    consecutive frames. 0 for a still video; real motion changes pixels too, so compare with the
    truth's flicker.

    Args:
        frames: (F, H, W, 3) RGB, uint8 or float in [0, 1].

    Returns:
        (F - 1,) in [0, 1], of frames t and t + 1.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"expected RGB frames (F, H, W, 3), got shape {frames.shape}")
    scale = 255.0 if frames.dtype == np.uint8 else 1.0
    luma = [(frame @ LUMA) / scale for frame in frames]  # a frame at a time: bounded memory
    return np.array([np.abs(b - a).mean() for a, b in itertools.pairwise(luma)])


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of the angle between feature vectors: identity, each frame's DINOv2 features against
    the reference picture's.

    Args:
        a: (N, D).
        b: (D,), compared with every row of `a`, or (N, D), row by row.

    Returns:
        (N,) in [-1, 1]; NaN where a vector is zero.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.shape not in (a.shape[1:], a.shape):
        raise ValueError(f"expected a (N, D) and b (D,) or (N, D), got {a.shape} and {b.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a * b).sum(axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def procrustes_error(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """PA-MPJPE, the hand-pose benchmarks' error (FreiHAND, HO-3D): each predicted point set
    aligned to its truth by the similarity (scale, rotation, translation) that fits it best in
    least squares (Umeyama 1991, no reflection), then the mean distance of the points. What is
    left is articulation: where the hand is and how it is turned does not count.

    Args:
        predicted, truth: (N, K, 3) point sets, e.g. HaMeR's 21 MANO keypoints in metres.

    Returns:
        (N,) in the points' unit; NaN where either set has a NaN.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if predicted.shape != truth.shape or predicted.ndim != 3 or predicted.shape[2] != 3:
        raise ValueError(
            f"expected two (N, K, 3) point sets of one shape, got {predicted.shape}, {truth.shape}"
        )
    errors = np.full(len(truth), np.nan)
    for index, (a, b) in enumerate(zip(predicted, truth, strict=True)):
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            continue
        a_centred, b_centred = a - a.mean(axis=0), b - b.mean(axis=0)
        u, singular, vt = np.linalg.svd(b_centred.T @ a_centred)
        turn = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])  # a rotation, never a mirror
        rotation = u @ turn @ vt
        variance = (a_centred**2).sum()
        scale = (singular * np.diag(turn)).sum() / variance if variance > 0 else 0.0
        aligned = scale * a_centred @ rotation.T + b.mean(axis=0)
        errors[index] = np.linalg.norm(aligned - b, axis=-1).mean()
    return errors
