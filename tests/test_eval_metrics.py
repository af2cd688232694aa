"""The metric maths of `rdance eval` against independent references: scikit-image's SSIM and PSNR,
SciPy's matrix square root for the Frechet distance, and numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from conftest import FIXTURES, need

from realisdance_cli.errors import UserError
from realisdance_cli.evaluation.metrics import (
    body_size,
    cosine_similarity,
    feature_statistics,
    features_frechet_distance,
    flicker,
    frechet_distance,
    keypoint_jitter,
    known_mean,
    mean_error,
    pck,
    pose_fidelity,
    procrustes_error,
    psnr,
    ssim,
)
from realisdance_cli.track import BODY, FACE, LEFT_HAND, RIGHT_HAND
from realisdance_cli.video import Selection, read_frames


def skimage_metrics():
    return pytest.importorskip(
        "skimage.metrics", reason="scikit-image (the dev extra) is the SSIM/PSNR reference"
    )


def assert_equal_to_skimage(a: np.ndarray, b: np.ndarray) -> None:
    """Ours on the batch, per frame, equal to scikit-image's (its defaults, DisCo's) on each frame to 1e-6."""
    reference = skimage_metrics()
    ours_ssim = ssim(a, b)
    ours_psnr = psnr(a, b)
    assert isinstance(ours_ssim, np.ndarray) and ours_ssim.shape == (len(a),)
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        expected_ssim = reference.structural_similarity(x, y, channel_axis=-1, data_range=1.0)
        expected_psnr = reference.peak_signal_noise_ratio(x, y, data_range=1.0)
        assert abs(ours_ssim[index] - expected_ssim) <= 1e-6, (index, ours_ssim[index], expected_ssim)
        assert abs(ours_psnr[index] - expected_psnr) <= 1e-6, (index, ours_psnr[index], expected_psnr)
        assert ssim(x, y) == pytest.approx(ours_ssim[index], abs=1e-12)  # one frame: a float


def test_ssim_and_psnr_equal_scikit_image_on_random_frames() -> None:
    rng = np.random.default_rng(7)
    a = rng.random((3, 40, 57, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    b[2] = rng.random(b[2].shape)  # unrelated frames: SSIM near 0
    assert_equal_to_skimage(a, b)


def test_ssim_and_psnr_equal_scikit_image_on_real_frames() -> None:
    frames = read_frames(need(FIXTURES / "dit_smpl.mp4"), Selection(start=40, stride=6, max_frames=3))
    video = np.stack(frames)[:, 500:1012, 300:812] / 255.0  # 512 x 512 around the dancer
    assert_equal_to_skimage(video[:2], video[1:])


def test_identical_frames() -> None:
    frame = np.random.default_rng(0).random((16, 16, 3))
    assert psnr(frame, frame) == np.inf
    assert ssim(frame, frame) == pytest.approx(1.0, abs=1e-12)


def test_frames_that_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match=r"\(8, 8, 3\) and \(8, 9, 3\)"):
        psnr(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))
    with pytest.raises(ValueError, match="at least 7x7 pixels, got 6x9"):
        ssim(np.zeros((6, 9, 3)), np.zeros((6, 9, 3)))


def reference_frechet(x: np.ndarray, y: np.ndarray) -> float:
    """pytorch-fid's formula, with SciPy's sqrtm (and its eps fallback for a near-singular product)."""
    stats = []
    for features in (x, y):
        mu = features.sum(axis=0) / len(features)
        centred = features - mu
        stats.append((mu, centred.T @ centred / (len(features) - 1)))
    (mu1, sigma1), (mu2, sigma2) = stats
    root = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(root).all():
        offset = np.eye(len(mu1)) * 1e-6
        root = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    assert np.allclose(np.diagonal(root).imag, 0, atol=1e-3)
    difference = mu1 - mu2
    return float(difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root.real))


@pytest.mark.parametrize(
    ("samples", "dimensions"), [(400, 24), (20, 32)], ids=["full-rank", "rank-deficient"]
)
def test_frechet_distance_equals_the_sqrtm_reference(samples: int, dimensions: int) -> None:
    rng = np.random.default_rng(samples)
    x = rng.normal(size=(samples, dimensions)) @ rng.normal(size=(dimensions, dimensions))
    y = rng.normal(0.3, 1.2, size=(samples, dimensions))
    ours = frechet_distance(*feature_statistics(x), *feature_statistics(y))
    expected = reference_frechet(x, y)
    assert abs(ours - expected) <= 1e-6 * expected, (ours, expected)
    assert frechet_distance(*feature_statistics(y), *feature_statistics(x)) == pytest.approx(ours, rel=1e-9)


def test_frechet_distance_of_identical_statistics_is_zero() -> None:
    features = np.random.default_rng(3).normal(size=(50, 16))
    mu, sigma = feature_statistics(features)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9 * np.trace(sigma))


def test_frechet_distance_refusals() -> None:
    with pytest.raises(UserError, match="needs at least 2 samples") as refused:
        feature_statistics(np.zeros((1, 8)))
    assert str(refused.value).count(". ") == 0 and str(refused.value).endswith("got 1.")
    with pytest.raises(ValueError, match="sigma2 is not a covariance matrix"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), -np.eye(3))


def scaled_copies(samples: int, dimensions: int) -> tuple[np.ndarray, np.ndarray, float]:
    """x, and y = c + k (x - mean x), whose distance is known exactly: sigma_y = k² sigma_x, so
    tr (sigma_x sigma_y)^½ = k tr sigma_x and the distance is |mean x - c|² + (1 - k)² tr sigma_x."""
    rng = np.random.default_rng(dimensions)
    x = rng.normal(size=(samples, dimensions)) * rng.uniform(0.1, 3.0, dimensions)
    c, k = rng.normal(size=dimensions), 0.6
    y = c + k * (x - x.mean(axis=0))
    sigma_trace = np.trace(np.cov(x, rowvar=False))
    return x, y, float(((x.mean(axis=0) - c) ** 2).sum() + (1 - k) ** 2 * sigma_trace)


@pytest.mark.parametrize(("samples", "dimensions"), [(40, 400), (100, 256)])
def test_frechet_distance_from_fewer_samples_than_dimensions_is_exact(samples: int, dimensions: int) -> None:
    """The singular values of the small cross product give the distance to float64 precision
    (1e-16 relative here); the eigen-decompositions of the D x D covariances (`frechet_distance`)
    agree to their own round-off, 1e-7 here, as pytorch-fid's sqrtm does (square roots of
    eigenvalues that are 0 but come out near 1e-16 of the largest)."""
    x, y, exact = scaled_copies(samples, dimensions)
    fast = features_frechet_distance(x, y)
    assert fast == pytest.approx(exact, rel=1e-12)
    through_covariances = frechet_distance(*feature_statistics(x), *feature_statistics(y))
    assert fast == pytest.approx(through_covariances, rel=1e-6)
    assert features_frechet_distance(y, x) == pytest.approx(fast, rel=1e-12)
    spread = np.trace(np.cov(x, rowvar=False))
    assert features_frechet_distance(x, x) == pytest.approx(0.0, abs=1e-12 * spread)


def test_frechet_distance_from_features_equals_the_covariance_route() -> None:
    """Unrelated sets, fewer samples than dimensions (the fast route) against the sqrtm reference
    and the covariance route, and more samples (the covariance route itself)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 64)) @ rng.normal(size=(64, 64))
    y = rng.normal(0.3, 1.2, size=(25, 64))
    fast = features_frechet_distance(x, y)
    assert fast == pytest.approx(reference_frechet(x, y), rel=1e-6)
    assert fast == pytest.approx(frechet_distance(*feature_statistics(x), *feature_statistics(y)), rel=1e-7)
    many = rng.normal(size=(80, 64))
    assert features_frechet_distance(x, many) == frechet_distance(
        *feature_statistics(x), *feature_statistics(many)
    )
    with pytest.raises(UserError, match="needs at least 2 samples"):
        features_frechet_distance(x[:1], y)


def tiny_case() -> tuple[np.ndarray, ...]:
    """Two frames of three points, scales 10 and 20 pixels; distances by hand:
    frame 0: 1.0 (0.6, 0.8 off), 1.5, missing;  frame 1: 1.5, 5.0, and an invisible point."""
    truth = np.array([[[0, 0], [10, 0], [0, 10]], [[5, 5], [7, 7], [9, 9]]], dtype=float)
    predicted = np.array(
        [[[0.6, 0.8], [10, 1.5], [np.nan, np.nan]], [[5, 6.5], [10, 11], [500, 500]]], dtype=float
    )
    visible = np.array([[True, True, True], [True, True, False]])
    return predicted, truth, np.array([10.0, 20.0]), visible


def test_pck_and_mean_error_by_hand() -> None:
    predicted, truth, scale, visible = tiny_case()
    # Radius 1 px in frame 0 and 2 px in frame 1: 1.0 (inclusive) and 1.5 hit; 1.5, 5.0, missing miss.
    assert pck(predicted, truth, scale, 0.1, visible) == pytest.approx(2 / 5)
    # Radius 2 and 4 px: 1.0, 1.5, 1.5 hit; the missing point and 5.0 miss.
    assert pck(predicted, truth, scale, 0.2, visible) == pytest.approx(3 / 5)
    # (1.0 / 10 + 1.5 / 10 + 1.5 / 20 + 5.0 / 20) / 4; the missing prediction has no distance.
    assert mean_error(predicted, truth, scale, visible) == pytest.approx(0.14375)


def test_pck_edge_cases() -> None:
    predicted, truth, scale, visible = tiny_case()
    assert np.isnan(pck(predicted, truth, scale, 0.1, np.zeros_like(visible)))  # nothing to score
    assert np.isnan(mean_error(predicted, truth, scale, np.zeros_like(visible)))
    # A frame without a scale is left out: frame 1 alone, 1.5 / 20 hits and 5.0 / 20 misses.
    assert pck(predicted, truth, np.array([np.nan, 20.0]), 0.1, visible) == pytest.approx(1 / 2)
    # Nothing predicted: every visible point is a miss, and there is no distance to average.
    missing = np.full_like(predicted, np.nan)
    assert pck(missing, truth, scale, 0.1, visible) == 0.0
    assert np.isnan(mean_error(missing, truth, scale, visible))


def whole_body(frames: int) -> np.ndarray:
    """DWPose points: body in a 30 x 40 box (diagonal 50), left hand's box 6 x 8 (10), right hand's
    12 x 16 (20), the face inside the body's box, feet unknown."""
    points = np.full((frames, 134, 2), np.nan)
    points[:, BODY] = np.linspace([100, 100], [130, 140], 18)
    points[:, FACE] = np.linspace([110, 105], [120, 115], 68)
    points[:, LEFT_HAND] = np.linspace([200, 200], [206, 208], 21)
    points[:, RIGHT_HAND] = np.linspace([300, 300], [312, 316], 21)
    return points


def test_body_size() -> None:
    keypoints = whole_body(3)
    keypoints[1, BODY.start : BODY.start + 10] = np.nan  # 8 of 18 known: too few for a box
    keypoints[2, BODY.start : BODY.start + 9] = np.nan  # 9 known: the box of points 9..17
    np.testing.assert_allclose(body_size(keypoints), [50.0, np.nan, 50.0 * 8 / 17])


def test_pose_fidelity_by_hand() -> None:
    truth = whole_body(2)
    truth[1, LEFT_HAND.start : LEFT_HAND.start + 11] = np.nan  # 10 of 21 known: that hand unscored
    predicted = truth.copy()
    predicted[0, 4] = np.nan  # one body point not found
    predicted[:, RIGHT_HAND, 1] += 1.4  # 0.07 of its box (but 0.028 of the body's)
    predicted[:, FACE, 0] += 3.0  # 0.06 of the body's box
    scores = pose_fidelity(predicted, truth)
    assert scores["body"] == pytest.approx(
        {"pck@0.05": 35 / 36, "pck@0.1": 35 / 36, "mean_error": 0, "missing": 1 / 36}
    )
    # Left hand of frame 0 exact (21 points), right hand of both frames 0.07 off (42 points).
    assert scores["hands"] == pytest.approx(
        {"pck@0.05": 21 / 63, "pck@0.1": 1.0, "mean_error": 42 * 0.07 / 63, "missing": 0.0}
    )
    assert scores["face"] == pytest.approx(
        {"pck@0.05": 0.0, "pck@0.1": 1.0, "mean_error": 0.06, "missing": 0.0}
    )


def test_jitter() -> None:
    frames = np.arange(40)[:, None, None]
    linear = np.concatenate([3.0 + 2.5 * frames, 7.0 - 1.5 * frames], axis=-1)
    assert keypoint_jitter(linear, np.linspace(20, 60, 40)) == pytest.approx(0.0, abs=1e-12)
    # Circling at radius 5, 0.3 rad a frame: every second difference is 4 x 5 x sin²(0.15) long.
    angle = 0.3 * frames
    circle = np.concatenate([5 * np.cos(angle), 5 * np.sin(angle)], axis=-1)
    expected = 4 * 5 * np.sin(0.15) ** 2 / 2.0
    assert keypoint_jitter(circle, 2.0) == pytest.approx(expected, rel=1e-12)
    circle[10] = np.nan  # the triples through frame 10 are left out; the rest are the same
    assert keypoint_jitter(circle, 2.0) == pytest.approx(expected, rel=1e-12)
    # x = 3 sin(pi t / 2): 0, 3, 0, -3, ...: second differences -6, 0, 6, 0, ...: mean magnitude 3.
    wave = np.concatenate([3 * np.sin(np.pi * frames[:10] / 2), np.zeros((10, 1, 1))], axis=-1)
    assert keypoint_jitter(wave, 1.0) == pytest.approx(3.0, rel=1e-12)
    assert np.isnan(keypoint_jitter(circle[:2], 1.0))


def test_flicker() -> None:
    still = np.repeat(np.random.default_rng(1).random((1, 12, 16, 3)), 5, axis=0)
    assert flicker(still).tolist() == [0.0] * 4
    red_black_grey = np.zeros((3, 4, 4, 3))
    red_black_grey[0, ..., 0] = 1.0
    red_black_grey[2] = 0.5
    np.testing.assert_allclose(flicker(red_black_grey), [0.299, 0.5])


def test_known_mean_leaves_unknown_values_out() -> None:
    assert known_mean(np.array([1.0, np.nan, 2.0])) == 1.5
    assert np.isnan(known_mean(np.array([np.nan]))) and np.isnan(known_mean(np.zeros(0)))


def test_cosine_similarity() -> None:
    reference = np.array([1.0, 2.0, 0.0])
    frames = np.array([[2.0, 4.0, 0.0], [-1.0, -2.0, 0.0], [2.0, -1.0, 5.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(cosine_similarity(frames, reference), [1.0, -1.0, 0.0, np.nan], atol=1e-15)
    np.testing.assert_allclose(cosine_similarity(frames[:3], frames[[0, 0, 2]]), [1.0, -1.0, 1.0])


def test_procrustes_error_ignores_placement_and_equals_scipys_alignment() -> None:
    """PA-MPJPE: a hand moved, turned and scaled has no error; with noise, the error equals the one
    left after SciPy's orthogonal Procrustes rotation and the least-squares scale."""
    from scipy.linalg import orthogonal_procrustes
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    truth = rng.normal(size=(6, 21, 3))
    turns = Rotation.random(6, random_state=1).as_matrix()
    moved = np.stack(
        [1.7 * points @ turn.T + [0.3, -2.0, 5.0] for points, turn in zip(truth, turns, strict=True)]
    )
    assert procrustes_error(moved, truth).max() < 1e-12
    noisy = moved + rng.normal(scale=0.05, size=moved.shape)
    expected = []
    for ours, theirs in zip(noisy, truth, strict=True):
        ours_centred, theirs_centred = ours - ours.mean(axis=0), theirs - theirs.mean(axis=0)
        rotation, _ = orthogonal_procrustes(ours_centred, theirs_centred)
        turned = ours_centred @ rotation
        scale = (turned * theirs_centred).sum() / (turned * turned).sum()
        expected.append(np.linalg.norm(scale * turned - theirs_centred, axis=-1).mean())
    assert np.abs(procrustes_error(noisy, truth) - expected).max() < 1e-12
    noisy[2, 4, 1] = np.nan
    assert np.isnan(procrustes_error(noisy, truth)[2])
