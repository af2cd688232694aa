"""Body models and their colour tables.

SMPL-X and MANO come from the official files through the `smplx` package; the authors' per-vertex
colour table for the SMPL-X colourful surface (`smplx_color.pt`, a torch-saved uint8 numpy array)
is loaded with `torch.load(weights_only=True)`, allowing only the numpy globals an array needs.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from numpy._core import multiarray

from realisdance_cli.errors import UserError

# An array pickled by numpy 1 or 2 names its rebuild function under either module path.
_ARRAY_GLOBALS: list[Any] = [
    np.ndarray,
    np.dtype,
    (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
    (multiarray._reconstruct, "numpy._core.multiarray._reconstruct"),
    type(np.dtype(np.uint8)),
]


def load_vertex_colours(path: str | Path) -> np.ndarray:
    """The (V, 3) uint8 colour table of `path`, loaded without running any code from the file."""
    import torch

    path = Path(path)
    try:
        with torch.serialization.safe_globals(_ARRAY_GLOBALS):
            table = torch.load(path, weights_only=True)
    except FileNotFoundError:
        raise UserError(
            f"{path} does not exist; `rdance weights check smplx-colors` says where to get it."
        ) from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        reason = str(err).splitlines()[0][:160]
        raise UserError(f"{path} is not a vertex colour table that loads safely ({reason}).") from None
    table = table.numpy() if isinstance(table, torch.Tensor) else table
    if not isinstance(table, np.ndarray) or table.ndim != 2 or table.shape[1] != 3:
        raise UserError(f"{path} is not a vertex colour table: expected a (vertices, 3) array.")
    return np.ascontiguousarray(table, dtype=np.uint8)


class _ChumpyArray:
    """Stands in for chumpy's `Ch` while unpickling: keeps the pickled state, whose `x` is the array."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


def _body_pickle_globals() -> dict[tuple[str, str], Any]:
    """What the official MANO/SMPL pickles (Python 2, chumpy, scipy) may ask for, and nothing else."""
    import codecs
    import copyreg

    import scipy.sparse

    from realisdance_cli.safe_pickle import NUMPY_GLOBALS

    allowed = dict(NUMPY_GLOBALS)
    allowed[("_codecs", "encode")] = codecs.encode  # protocol-2 bytes
    for module in ("copy_reg", "copyreg"):
        allowed[(module, "_reconstructor")] = getattr(copyreg, "_reconstructor")  # noqa: B009  # untyped
    for module in ("__builtin__", "builtins"):
        allowed[(module, "object")] = object
    for module in ("scipy.sparse.csc", "scipy.sparse._csc"):
        allowed[(module, "csc_matrix")] = scipy.sparse.csc_matrix
    allowed[("chumpy.ch", "Ch")] = _ChumpyArray
    return allowed


def _plain(value: Any) -> Any:
    """chumpy stand-ins and sparse matrices as dense numpy arrays."""
    if isinstance(value, _ChumpyArray):
        return np.asarray(value.state["x"])
    if hasattr(value, "toarray"):
        return np.asarray(value.toarray())
    return value


def load_body_pickle(path: Path) -> dict[str, Any]:
    """An official MANO/SMPL `.pkl` as plain numpy arrays, without chumpy and without running code."""
    from realisdance_cli.safe_pickle import restricted_load

    data = restricted_load(path, _body_pickle_globals(), encoding="latin1")
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a body model file: it should hold a dictionary of arrays.")
    return {str(key): _plain(value) for key, value in data.items()}


MANO_KEYS = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table")
SMPLX_KEYS = (
    *MANO_KEYS,
    "hands_componentsl", "hands_componentsr", "hands_meanl", "hands_meanr",
    "lmk_faces_idx", "lmk_bary_coords", "dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords",
)  # fmt: skip
SMPLX_LICENCE = "https://smpl-x.is.tue.mpg.de"
MANO_LICENCE = "https://mano.is.tue.mpg.de"


def _require(path: Path, what: str, licence: str, weight: str) -> None:
    if not path.is_file():
        raise UserError(
            f"the {what} {path} is missing; it needs the licence at {licence} "
            f"(`rdance weights download {weight}` prints the steps)."
        )


def _check_keys(data: dict[str, Any], keys: tuple[str, ...], path: Path, what: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise UserError(f"{path} is not a {what}: it lacks {', '.join(missing)}.")


def _quiet() -> contextlib.AbstractContextManager:
    """smplx prints a warning about the 10 shape coefficients every file has; the CLI stays clean."""
    return contextlib.redirect_stdout(io.StringIO())


def mano_layer(path: Path) -> Any:
    """smplx's MANO layer (rotation matrices in, vertices out) from an official `MANO_RIGHT.pkl`."""
    import smplx
    from smplx.utils import Struct

    _require(path, "MANO hand model", MANO_LICENCE, "mano")
    data = load_body_pickle(path)
    _check_keys(data, MANO_KEYS, path, "MANO hand model")
    with _quiet():
        layer = smplx.MANOLayer(
            model_path=str(path.parent),
            is_rhand=True,
            data_struct=Struct(**data),
            use_pca=False,
            flat_hand_mean=True,
        )
    return layer.eval()


def smplx_model(path: Path, batch_size: int = 1) -> Any:
    """smplx's SMPL-X model (as SMPLer-X renders it: no PCA, hand poses relative to the hand mean,
    face contour on) from an official `SMPLX_NEUTRAL.npz`, read without unpickling anything.

    smplx itself opens the file with `allow_pickle=True`, so it is handed a copy holding only the
    numeric arrays (the object arrays of the official file are metadata smplx does not use)."""
    import tempfile

    import smplx

    _require(path, "SMPL-X body model", SMPLX_LICENCE, "smplx")
    arrays: dict[str, Any] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                try:
                    arrays[key] = data[key]
                except ValueError:  # an object array: would need unpickling
                    continue
    except (OSError, ValueError) as err:
        raise UserError(f"{path} is not a readable SMPL-X .npz file ({err}).") from None
    _check_keys(arrays, SMPLX_KEYS, path, "SMPL-X body model")
    with tempfile.TemporaryDirectory(prefix="rdance-smplx-") as folder:
        copy = Path(folder) / "SMPLX_NEUTRAL.npz"
        np.savez(copy, **arrays)
        with _quiet():
            model = smplx.SMPLX(
                str(copy),
                gender="neutral",
                ext="npz",
                use_pca=False,
                flat_hand_mean=False,
                use_face_contour=True,
                num_betas=10,
                num_expression_coeffs=10,
                batch_size=batch_size,
            )
    return model.eval()


# matplotlib's "jet" colour map: (position, value) knots per channel.
_JET = (
    ((0.0, 0.35, 0.66, 0.89, 1.0), (0.0, 0.0, 1.0, 1.0, 0.5)),
    ((0.0, 0.125, 0.375, 0.64, 0.91, 1.0), (0.0, 0.0, 1.0, 1.0, 0.0, 0.0)),
    ((0.0, 0.11, 0.34, 0.65, 1.0), (0.5, 1.0, 1.0, 0.0, 0.0)),
)


def default_vertex_colours(template: np.ndarray) -> np.ndarray:
    """Colours for the SMPL-X colourful surface when the authors' table is not at hand: the jet
    colour map over the canonical body's height, feet blue to head red.

    The authors' table is such a map (every one of its colours lies on the jet curve, median 0.2
    levels away); only how far along the curve each vertex sits is approximated here."""
    height = template[:, 1]
    position = (height - height.min()) / max(float(np.ptp(height)), 1e-9)
    channels = [np.interp(position, knots, values) for knots, values in _JET]
    return np.round(np.stack(channels, axis=1) * 255).astype(np.uint8)


def smplx_vertices(model: Any, people: dict[str, np.ndarray]) -> np.ndarray:
    """Camera-frame vertices (K, V, 3) of SMPL-X people from a track frame (mesh + translation)."""
    import torch

    count = len(people["global_orient"])
    if count == 0:
        return np.zeros((0, model.get_num_verts(), 3), np.float32)

    def tensor(name: str, width: int) -> Any:
        return torch.as_tensor(people[name], dtype=torch.float32).reshape(count, width)

    with torch.no_grad():
        out = model(
            global_orient=tensor("global_orient", 3),
            body_pose=tensor("body_pose", 63),
            left_hand_pose=tensor("left_hand_pose", 45),
            right_hand_pose=tensor("right_hand_pose", 45),
            jaw_pose=tensor("jaw_pose", 3),
            leye_pose=tensor("leye_pose", 3),
            reye_pose=tensor("reye_pose", 3),
            betas=tensor("betas", 10),
            expression=tensor("expression", 10),
        )
    return out.vertices.numpy() + np.asarray(people["transl"], np.float32)[:, None, :]


def mano_vertices(layer: Any, hands: dict[str, np.ndarray]) -> np.ndarray:
    """Vertices (K, 778, 3) of MANO hands in their own frame, left hands mirrored back (HaMeR
    estimates every hand as a right hand on a flipped crop)."""
    import torch

    count = len(hands["global_orient"])
    if count == 0:
        return np.zeros((0, 778, 3), np.float32)
    with torch.no_grad():
        out = layer(
            global_orient=torch.as_tensor(hands["global_orient"], dtype=torch.float32).reshape(
                count, 1, 3, 3
            ),
            hand_pose=torch.as_tensor(hands["hand_pose"], dtype=torch.float32).reshape(count, 15, 3, 3),
            betas=torch.as_tensor(hands["betas"], dtype=torch.float32).reshape(count, 10),
        )
    vertices = out.vertices.numpy()
    vertices[:, :, 0] *= np.where(hands["is_right"], 1.0, -1.0)[:, None]
    return vertices
