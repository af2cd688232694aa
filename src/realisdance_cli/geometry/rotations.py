"""Rotations: the two 6-D representations the estimators' networks output, matrices, axis-angles.

A 6-D rotation (Zhou et al., "On the continuity of rotation representations", CVPR 2019) is the
first two columns a1, a2 of the matrix, made orthonormal by Gram-Schmidt. Networks disagree on
how the six numbers are laid out, so each layout has its own function:

- `matrix_from_6d_columns`: (a1, a2), one column after the other (HaMeR);
- `matrix_from_6d_rows`: the 3x2 matrix [a1 a2] row by row, so the columns interleave:
  (a1x, a2x, a1y, a2y, a1z, a2z) (SMPLer-X, and Zhou et al.'s code).

Reading one layout as the other gives a valid but wrong rotation, so the names say which is which.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def _gram_schmidt(columns: torch.Tensor) -> torch.Tensor:
    """(N, 3, 2) first two columns -> (N, 3, 3) rotation matrices."""
    b1 = F.normalize(columns[:, :, 0], dim=1)
    a2 = columns[:, :, 1]
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1, dim=1)
    return torch.stack((b1, b2, torch.linalg.cross(b1, b2, dim=1)), dim=-1)


def matrix_from_6d_columns(x: torch.Tensor) -> torch.Tensor:
    """(..., 6k) rotations laid out as (a1, a2), the two columns one after the other
    -> (N, 3, 3) matrices, N = all of them in order."""
    return _gram_schmidt(x.reshape(-1, 2, 3).transpose(1, 2))


def matrix_from_6d_rows(x: torch.Tensor) -> torch.Tensor:
    """(..., 6k) rotations laid out as the 3x2 matrix [a1 a2] row by row (interleaved columns)
    -> (N, 3, 3) matrices, N = all of them in order."""
    return _gram_schmidt(x.reshape(-1, 3, 2))


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) rotation matrices -> (N, 3) axis-angles, by torchgeometry's
    `rotation_matrix_to_angle_axis` (through a quaternion, with the boolean-mask fix), NaN -> 0."""
    r = matrix.transpose(1, 2)
    d2 = r[:, 2, 2] < 1e-6
    d0_d1 = r[:, 0, 0] > r[:, 1, 1]
    d0_nd1 = r[:, 0, 0] < -r[:, 1, 1]
    t0 = 1 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]
    t1 = 1 - r[:, 0, 0] + r[:, 1, 1] - r[:, 2, 2]
    t2 = 1 - r[:, 0, 0] - r[:, 1, 1] + r[:, 2, 2]
    t3 = 1 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    q0 = torch.stack([r[:, 1, 2] - r[:, 2, 1], t0, r[:, 0, 1] + r[:, 1, 0], r[:, 2, 0] + r[:, 0, 2]], -1)
    q1 = torch.stack([r[:, 2, 0] - r[:, 0, 2], r[:, 0, 1] + r[:, 1, 0], t1, r[:, 1, 2] + r[:, 2, 1]], -1)
    q2 = torch.stack([r[:, 0, 1] - r[:, 1, 0], r[:, 2, 0] + r[:, 0, 2], r[:, 1, 2] + r[:, 2, 1], t2], -1)
    q3 = torch.stack([t3, r[:, 1, 2] - r[:, 2, 1], r[:, 2, 0] - r[:, 0, 2], r[:, 0, 1] - r[:, 1, 0]], -1)
    masks = [d2 & d0_d1, d2 & ~d0_d1, ~d2 & d0_nd1, ~d2 & ~d0_nd1]
    m = [mask.to(matrix.dtype)[:, None] for mask in masks]
    q = q0 * m[0] + q1 * m[1] + q2 * m[2] + q3 * m[3]
    t = t0[:, None] * m[0] + t1[:, None] * m[1] + t2[:, None] * m[2] + t3[:, None] * m[3]
    q = q / torch.sqrt(t) * 0.5
    sin_sq = (q[:, 1:] ** 2).sum(dim=1)
    sin = torch.sqrt(sin_sq)
    cos = q[:, 0]
    two_theta = 2.0 * torch.where(cos < 0.0, torch.atan2(-sin, -cos), torch.atan2(sin, cos))
    k = torch.where(sin_sq > 0.0, two_theta / sin, torch.full_like(sin, 2.0))
    axis_angle = q[:, 1:] * k[:, None]
    return torch.nan_to_num(axis_angle, nan=0.0, posinf=math.inf, neginf=-math.inf)


def axis_angle_from_6d_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, 6k) rotations in the row layout (`matrix_from_6d_rows`) -> (B, 3k) axis-angles."""
    return matrix_to_axis_angle(matrix_from_6d_rows(x)).reshape(x.shape[0], -1)
