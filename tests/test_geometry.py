"""Rotations, cameras and crops (`realisdance_cli.geometry`) on cases whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from realisdance_cli.geometry.cameras import (
    MIN_DEPTH,
    crop_camera_in_frame,
    full_frame_focal,
    full_frame_translation,
    project,
    weak_perspective_translation,
)
from realisdance_cli.geometry.crops import (
    box_to_center_scale,
    center_scale_transform,
    expand_to_aspect,
    fit_box,
    patch_transform,
    warp,
)
from realisdance_cli.geometry.rotations import (
    axis_angle_from_6d_rows,
    matrix_from_6d_columns,
    matrix_from_6d_rows,
    matrix_to_axis_angle,
)

ROTATIONS = torch.from_numpy(Rotation.random(6, random_state=0).as_matrix()).float()  # (6, 3, 3)


def apply(transform: np.ndarray, point: tuple[float, float]) -> np.ndarray:
    return transform @ np.array([*point, 1.0])


# -- rotations ---------------------------------------------------------------------------------------


def test_each_6d_layout_reads_its_own_numbers_and_not_the_others() -> None:
    two_columns = ROTATIONS[:, :, :2]  # (6, 3, 2): a1, a2
    column_after_column = two_columns.transpose(1, 2).reshape(6, 6)  # HaMeR: a1 then a2
    row_by_row = two_columns.reshape(6, 6)  # SMPLer-X: (a1x, a2x, a1y, a2y, a1z, a2z)
    torch.testing.assert_close(matrix_from_6d_columns(column_after_column), ROTATIONS)
    torch.testing.assert_close(matrix_from_6d_rows(row_by_row), ROTATIONS)
    assert not torch.allclose(matrix_from_6d_rows(column_after_column), ROTATIONS, atol=1e-2)
    assert not torch.allclose(matrix_from_6d_columns(row_by_row), ROTATIONS, atol=1e-2)


def test_6d_columns_need_neither_unit_length_nor_a_right_angle() -> None:
    a1, a2 = ROTATIONS[:, :, 0], ROTATIONS[:, :, 1]
    skewed = torch.cat([3.0 * a1, 0.5 * a2 + 2.0 * a1], dim=1)  # Gram-Schmidt undoes both
    torch.testing.assert_close(matrix_from_6d_columns(skewed), ROTATIONS)


def test_axis_angle_of_known_rotations() -> None:
    angle = 0.7
    c, s = np.cos(angle), np.sin(angle)
    about_z = torch.tensor([[[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float32)
    half_turn = torch.diag(torch.tensor([1.0, -1.0, -1.0]))[None]  # pi about x
    torch.testing.assert_close(matrix_to_axis_angle(about_z), torch.tensor([[0.0, 0.0, angle]]))
    torch.testing.assert_close(
        matrix_to_axis_angle(half_turn), torch.tensor([[np.pi, 0.0, 0.0]]), atol=1e-5, rtol=0
    )
    assert matrix_to_axis_angle(torch.eye(3)[None]).abs().max() == 0


def test_axis_angles_from_6d_rows_per_sample() -> None:
    """(B, 6k) -> (B, 3k): sample b's k rotations in order, as SciPy computes them."""
    rows = ROTATIONS[:, :, :2].reshape(2, 18)  # two samples of three rotations
    expected = Rotation.from_matrix(ROTATIONS.double().numpy()).as_rotvec().reshape(2, 9)
    torch.testing.assert_close(
        axis_angle_from_6d_rows(rows), torch.from_numpy(expected).float(), atol=1e-5, rtol=0
    )


# -- cameras -----------------------------------------------------------------------------------------

CAMS = torch.tensor([[0.8, 0.1, -0.2], [1.3, -0.3, 0.25]])  # (s, tx, ty)


def test_weak_perspective_crop_camera_projects_the_origin_to_its_offset() -> None:
    """Under the perspective camera, the object's origin lands at s * (tx, ty) / 2 of the crop's
    half-size units, as the weak-perspective camera puts it."""
    focal, size = 5000.0, 256
    translation = weak_perspective_translation(CAMS, focal, size)
    landed = project(translation[:, None], focal / size)[:, 0]
    torch.testing.assert_close(landed, CAMS[:, :1] * CAMS[:, 1:] / 2)


def test_full_frame_translation_puts_the_crop_where_it_was_cut() -> None:
    focal = 1500.0
    frame = torch.tensor([[1920.0, 1080.0], [1920.0, 1080.0]])
    center = torch.tensor([[400.0, 700.0], [960.0, 540.0]])
    size = torch.tensor([120.0, 300.0])
    translation = full_frame_translation(CAMS, center, size, frame, focal)
    pixels = project(translation[:, None], focal)[:, 0] + frame / 2  # principal point: frame centre
    torch.testing.assert_close(pixels, center + CAMS[:, :1] * CAMS[:, 1:] * size[:, None] / 2)
    # a crop cut around the frame's centre keeps the crop camera's translation
    torch.testing.assert_close(translation[1], weak_perspective_translation(CAMS, focal, 300.0)[1])


def test_one_projection_for_arrays_and_tensors_blind_behind_the_camera() -> None:
    """The skeleton's NumPy points and HaMeR's tensors go through the same pinhole camera: a point
    at depth MIN_DEPTH or less has no image in either."""
    points = np.array([[[0.5, -0.25, 2.0], [0.25, 0.125, 4.0], [0.0, 0.0, MIN_DEPTH / 2], [1.0, 1.0, -3.0]]])
    focal, princpt = np.array([600.0, 610.0]), np.array([180.0, 230.0])
    pixels = project(points.astype(np.float32), focal, princpt)
    assert pixels.dtype == np.float64  # NumPy input is projected in float64, whatever its dtype
    np.testing.assert_array_equal(pixels[0, :2], [[600 * 0.25 + 180, 610 * -0.125 + 230], [217.5, 249.0625]])
    assert np.isnan(pixels[0, 2:]).all()
    tensor = project(torch.tensor(points, dtype=torch.float32), torch.tensor(focal), torch.tensor(princpt))
    assert tensor.dtype == torch.float64 and torch.isnan(tensor[0, 2:]).all()  # torch's type promotion
    torch.testing.assert_close(tensor[0, :2], torch.from_numpy(pixels[0, :2]), rtol=0, atol=0)
    crop = project(torch.tensor(points, dtype=torch.float32), 5000.0 / 256)  # HaMeR's crop camera
    assert crop.dtype == torch.float32 and torch.isnan(crop[0, 2:]).all()
    expected = torch.tensor([[4.8828125, -2.44140625], [1.220703125, 0.6103515625]])
    torch.testing.assert_close(crop[0, :2], expected, rtol=0, atol=0)


def test_full_frame_focal_scales_with_the_longer_side() -> None:
    assert full_frame_focal(5000.0, 256, 1920, 1080) == full_frame_focal(5000.0, 256, 1080, 1920) == 37500.0


def test_crop_camera_in_frame_scales_and_shifts_with_the_box() -> None:
    focal, princpt, input_size = (5000.0, 5000.0), (96.0, 128.0), (256, 192)
    same, at = crop_camera_in_frame(focal, princpt, input_size, np.array([0.0, 0.0, 192.0, 256.0]))
    assert same.tolist() == [5000.0, 5000.0] and at.tolist() == [96.0, 128.0]
    focal2, at2 = crop_camera_in_frame(focal, princpt, input_size, np.array([10.0, 20.0, 384.0, 512.0]))
    assert focal2.tolist() == [10000.0, 10000.0] and at2.tolist() == [202.0, 276.0]


# -- crops -------------------------------------------------------------------------------------------


def test_patch_transform_maps_the_box_onto_the_picture() -> None:
    transform = patch_transform(100.0, 60.0, 80.0, 40.0, 384, 512)
    np.testing.assert_allclose(apply(transform, (60.0, 40.0)), [0.0, 0.0], atol=1e-4)
    np.testing.assert_allclose(apply(transform, (140.0, 80.0)), [384.0, 512.0], atol=1e-4)


def test_center_scale_transform_maps_the_scale_width_onto_the_picture_width() -> None:
    center, scale = np.array([300.0, 200.0]), np.array([150.0, 200.0])
    transform = center_scale_transform(center, scale, (288, 384))
    np.testing.assert_allclose(apply(transform, (300.0, 200.0)), [144.0, 192.0], atol=1e-3)
    np.testing.assert_allclose(apply(transform, (375.0, 200.0)), [288.0, 192.0], atol=1e-3)


@pytest.mark.parametrize("box", [[10.0, 20.0, 110.0, 420.0], [0.0, 0.0, 500.0, 100.0]])
def test_box_to_center_scale_pads_then_fits_the_aspect(box: list[float]) -> None:
    center, scale = box_to_center_scale(np.array(box), 0.75, 1.25)
    assert center.tolist() == [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]
    assert scale[0] / scale[1] == pytest.approx(0.75)
    assert scale[0] >= 1.25 * (box[2] - box[0]) and scale[1] >= 1.25 * (box[3] - box[1])
    assert min(scale[0] / (1.25 * (box[2] - box[0])), scale[1] / (1.25 * (box[3] - box[1]))) == pytest.approx(
        1
    )


def test_expand_to_aspect_lengthens_one_side() -> None:
    assert expand_to_aspect(np.array([100.0, 100.0]), (192, 256)).tolist() == [100.0, 100.0 * 256 / 192]
    assert expand_to_aspect(np.array([10.0, 100.0]), (192, 256)).tolist() == [75.0, 100.0]


def test_fit_box_clips_fits_and_grows() -> None:
    fitted = fit_box(np.array([-50.0, 100.0, 250.0, 300.0]), 640, 480, 0.75, 1.25)
    assert fitted is not None
    x, y, w, h = fitted.tolist()
    # clipped to x = 0 (width 249, height 299), then grown to 3:4 and by 1.25 around its centre
    assert (w, h) == pytest.approx((1.25 * 249, 1.25 * 249 / 0.75))
    assert (x + w / 2, y + h / 2) == pytest.approx((249 / 2, 100 + 299 / 2))
    assert fit_box(np.array([700.0, 10.0, 50.0, 50.0]), 640, 480, 0.75, 1.25) is None  # outside


def test_warp_through_the_identity_and_beyond_the_image() -> None:
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    whole = patch_transform(32.0, 24.0, 64.0, 48.0, 64, 48)
    assert np.array_equal(warp(image, whole, (64, 48)), image)
    shifted = patch_transform(33.0, 24.0, 64.0, 48.0, 64, 48)  # one pixel to the right
    moved = warp(image, shifted, (64, 48))
    assert np.array_equal(moved[:, :-1], image[:, 1:]) and not moved[:, -1].any()
