"""Full-size synthetic body-model files with the official key sets and shapes (SPEC section 4).

smplx selects joints and landmarks by hard-coded vertex ids, so smaller fakes do not work. The
surface is a smooth closed blob (a Fibonacci sphere stretched to a body's proportions,
triangulated by its convex hull), not a real body; skinning and joints are plausible, pose
correctives are zero. Compressed, the SMPL-X file is well under a megabyte.
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull

SMPLX_VERTICES, SMPLX_FACES, SMPLX_JOINTS = 10475, 20908, 55
# SMPL-X's kinematic tree: body 0-21, jaw 22, eyes 23-24, left hand 25-39, right hand 40-54.
SMPLX_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
                 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
                 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53]  # fmt: skip


def closed_surface(
    count: int, radii: tuple[float, float, float], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`count` vertices on an ellipsoid and 2 * count - 4 outward-facing triangles."""
    index = np.arange(count) + 0.5
    polar = np.arccos(1 - 2 * index / count)
    azimuth = np.pi * (1 + 5**0.5) * index
    sphere = np.stack([np.cos(azimuth) * np.sin(polar), np.cos(polar), np.sin(azimuth) * np.sin(polar)], 1)
    faces = ConvexHull(sphere).simplices
    normals = np.cross(sphere[faces[:, 1]] - sphere[faces[:, 0]], sphere[faces[:, 2]] - sphere[faces[:, 0]])
    inward = (normals * sphere[faces].mean(1)).sum(1) < 0
    faces[inward] = faces[inward][:, [0, 2, 1]]
    return sphere * np.array(radii), faces


def _joints_and_skinning(
    vertices: np.ndarray, joints: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = vertices[rng.choice(len(vertices), joints, replace=False)] * 0.6  # inside the surface
    distances = np.linalg.norm(vertices[:, None] - targets[None], axis=-1)
    regressor = np.zeros((joints, len(vertices)))
    for joint in range(joints):
        nearest = np.argsort(distances[:, joint])[:12]
        regressor[joint, nearest] = 1 / 12
    weights = np.exp(-((distances / distances.min(1, keepdims=True)) ** 2))
    weights[weights < np.sort(weights, 1)[:, -4:-3]] = 0  # four joints per vertex
    return targets, regressor, weights / weights.sum(1, keepdims=True)


def write_smplx(path: Path, seed: int = 0) -> Path:
    vertices, faces = closed_surface(SMPLX_VERTICES, (0.22, 0.85, 0.13))
    vertices[:, 1] -= 0.3  # pelvis near the origin, head up, feet down, as SMPL-X's template
    # The official mesh has a few openings (20,908 faces, not the 20,946 of a closed surface); this
    # one is open at the back of the head, out of the tests' views (back faces are culled, so an
    # opening facing the camera would show as a hole).
    face_centres = vertices[faces].mean(1)
    opening = np.array([0.0, vertices[:, 1].max() - 0.12, vertices[:, 2].min()])
    nearest = np.argsort(np.linalg.norm(face_centres - opening, axis=1))
    faces = faces[np.sort(nearest[len(faces) - SMPLX_FACES :])]
    _, regressor, weights = _joints_and_skinning(vertices, SMPLX_JOINTS, seed)
    rng = np.random.default_rng(seed)
    shapedirs = np.zeros((SMPLX_VERTICES, 3, 20))
    shapedirs[:, :, 0] = vertices * 0.05  # beta 0 grows the body
    shapedirs[:, 1, 1] = 0.02  # beta 1 lifts it
    arrays = {
        "v_template": vertices,
        "f": faces.astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": np.zeros((SMPLX_VERTICES, 3, 486)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.stack([np.array(SMPLX_PARENTS) % 4294967296, np.arange(SMPLX_JOINTS)]),
        "hands_componentsl": np.eye(45),
        "hands_componentsr": np.eye(45),
        "hands_meanl": np.full(45, 0.1),
        "hands_meanr": np.full(45, -0.1),
        "lmk_faces_idx": rng.integers(0, SMPLX_FACES, 51),
        "lmk_bary_coords": np.full((51, 3), 1 / 3),
        "dynamic_lmk_faces_idx": rng.integers(0, SMPLX_FACES, (79, 17)),
        "dynamic_lmk_bary_coords": np.full((79, 17, 3), 1 / 3),
    }
    np.savez_compressed(path, **arrays)
    return path


class Ch:
    """Pickles exactly as a chumpy array in the official files: class `chumpy.ch.Ch`, its state a
    dict whose `x` is the array (protocol 2: NEWOBJ then BUILD)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __getstate__(self) -> dict:
        return {"x": self.array, "a": None}


def write_chumpy_mano(source: Path, path: Path) -> dict[str, np.ndarray]:
    """A MANO pickle in the official flavour (chumpy `shapedirs`, sparse `J_regressor`, protocol 2)
    made from a plain one; returns the plain arrays."""
    import scipy.sparse

    with source.open("rb") as handle:
        plain = pickle.load(handle, encoding="latin1")  # the test's own trusted file
    module = types.ModuleType("chumpy.ch")
    Ch.__module__ = "chumpy.ch"
    module.Ch = Ch  # type: ignore[attr-defined]
    sys.modules["chumpy"] = types.ModuleType("chumpy")
    sys.modules["chumpy.ch"] = module
    try:
        flavoured = dict(plain)
        flavoured["shapedirs"] = Ch(plain["shapedirs"])
        flavoured["J_regressor"] = scipy.sparse.csc_matrix(plain["J_regressor"])
        with path.open("wb") as handle:
            pickle.Pickler(handle, protocol=2).dump(flavoured)
    finally:
        del sys.modules["chumpy.ch"], sys.modules["chumpy"]
        Ch.__module__ = __name__
    return plain
