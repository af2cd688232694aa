"""Body models and their colour tables.

SMPL-X and MANO come from the official files through the `smplx` package; the authors' per-vertex
colour table for the SMPL-X colourful surface (`smplx_color.pt`, a torch-saved uint8 numpy array)
is read from its zip archive by the restricted unpickler of `safe_pickle`.
"""

from __future__ import annotations

import contextlib
import io
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from realisdance_cli.errors import UserError
from realisdance_cli.files import existing_file, load_npz

if TYPE_CHECKING:
    import torch

_COLOUR_TABLE = "a vertex colour table"


def load_vertex_colours(path: str | Path) -> np.ndarray:
    """The (V, 3) uint8 colour table of `path`, loaded without running any code from the file."""
    import torch

    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; `rdance weights check smplx-colors` says where to get it.")
    existing_file(path, "the vertex colour table (smplx_color.pt)")
    table = _torch_saved(path)
    table = table.numpy() if isinstance(table, torch.Tensor) else table
    if not isinstance(table, np.ndarray) or table.ndim != 2 or table.shape[1] != 3:
        raise UserError(f"{path} is not a vertex colour table: expected a (vertices, 3) array.")
    return np.ascontiguousarray(table, dtype=np.uint8)


def _torch_saved(path: Path) -> Any:
    """What `torch.save` wrote to `path`: numpy arrays (the authors' table) through our restricted
    unpickler, tensors through torch's weights-only loader. torch's loader with numpy's globals
    allowed would let a forged file allocate any size, or arrays of objects that crash numpy."""
    from realisdance_cli.safe_pickle import BYTES_GLOBALS, NUMPY_GLOBALS, restricted_loads
    from realisdance_cli.state_dicts import read_weights

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            pickles = [name for name in names if re.fullmatch(r"[^/]+/data\.pkl", name)]
            holds_tensors = any(re.fullmatch(r"[^/]+/data/\w+", name) for name in names)
            stored = len(pickles) == 1 and archive.getinfo(pickles[0]).compress_type == zipfile.ZIP_STORED
            data = archive.read(pickles[0]) if stored and not holds_tensors else None
    except (zipfile.BadZipFile, OSError):
        data = None
    if data is None:  # not numpy's: torch's loader reads it or says why it cannot
        return read_weights(path, _COLOUR_TABLE, mmap=False)
    return restricted_loads(data, str(path), {**NUMPY_GLOBALS, **BYTES_GLOBALS})


class _ChumpyArray:
    """Stands in for chumpy's `Ch` while unpickling: keeps the pickled state, whose `x` is the array."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


def _body_pickle_globals() -> dict[tuple[str, str], Any]:
    """What the official MANO/SMPL pickles (Python 2, chumpy, scipy) may ask for, and nothing else."""
    import copyreg

    import scipy.sparse

    from realisdance_cli.safe_pickle import BYTES_GLOBALS, NUMPY_GLOBALS

    allowed = {**NUMPY_GLOBALS, **BYTES_GLOBALS}
    for module in ("copy_reg", "copyreg"):
        allowed[(module, "_reconstructor")] = getattr(copyreg, "_reconstructor")  # noqa: B009  # untyped
    for module in ("__builtin__", "builtins"):
        allowed[(module, "object")] = object
    for module in ("scipy.sparse.csc", "scipy.sparse._csc"):
        allowed[(module, "csc_matrix")] = scipy.sparse.csc_matrix
    allowed[("chumpy.ch", "Ch")] = _ChumpyArray
    return allowed


SPARSE_LIMIT = 10_000_000  # entries of a dense regressor: SMPL-X's is 55 x 10475 (576,000)


def _plain(value: Any, where: str) -> Any:
    """chumpy stand-ins and sparse matrices as dense numpy arrays; a sparse matrix whose parts do
    not fit together (scipy would read past them) or that would fill gigabytes is damage."""
    if isinstance(value, _ChumpyArray):
        return np.asarray(value.state["x"])
    if hasattr(value, "toarray"):
        try:
            value.check_format(full_check=True)
            rows, columns = (int(side) for side in value.shape)
        except Exception as err:  # any inconsistency of the pickled parts
            raise UserError(f"{where} is a damaged sparse matrix ({err}).") from None
        if rows * columns > SPARSE_LIMIT:
            raise UserError(f"{where} is a sparse matrix of {rows}x{columns}, larger than any body model's.")
        return np.asarray(value.toarray())
    return value


def load_body_pickle(path: Path) -> dict[str, Any]:
    """An official MANO/SMPL `.pkl` as plain numpy arrays, without chumpy and without running code."""
    from realisdance_cli.safe_pickle import restricted_load

    data = restricted_load(path, _body_pickle_globals(), encoding="latin1")
    if not isinstance(data, dict):
        raise UserError(f"{path} is not a body model file: it should hold a dictionary of arrays.")
    return {str(key): _plain(value, f"{path}: {key}") for key, value in data.items()}


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


def _check_keys(data: dict[str, Any], keys: tuple[str, ...], path: Path, what: str, remedy: str = "") -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        ending = f"; {remedy}" if remedy else ""
        raise UserError(f"{path} is not a {what}: it lacks {', '.join(missing)}{ending}.")


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


SMPLX_REMEDY = "delete it and fetch it again (`rdance weights download smplx` prints the steps)"


def smplx_model(path: Path, batch_size: int = 1) -> Any:
    """smplx's SMPL-X model (as SMPLer-X renders it: no PCA, hand poses relative to the hand mean,
    face contour on) from an official `SMPLX_NEUTRAL.npz`, read without unpickling anything.

    smplx itself opens the file with `allow_pickle=True`, so it is handed a copy holding only the
    numeric arrays."""
    import tempfile

    import smplx

    _require(path, "SMPL-X body model", SMPLX_LICENCE, "smplx")
    arrays = load_npz(path, SMPLX_REMEDY, skip_objects=True)  # its object arrays: metadata smplx ignores
    _check_keys(arrays, SMPLX_KEYS, path, "SMPL-X body model", SMPLX_REMEDY)
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


FINGERTIP_VERTICES = (744, 320, 443, 554, 671)  # smplx's vertex_ids["mano"]: thumb .. pinky
MANO_TO_OPENPOSE = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
HAND_CHUNK = 256  # hands posed per call of the MANO layer


def hand_joints(output: Any) -> torch.Tensor:
    """(B, 21, 3) OpenPose-order hand joints of a MANO layer's output, as HaMeR's MANO wrapper makes
    them: the 16 skeleton joints and 5 fingertip vertices; point 0 is the wrist."""
    import torch

    tips = output.vertices[:, list(FINGERTIP_VERTICES)]
    return torch.cat([output.joints, tips], dim=1)[:, list(MANO_TO_OPENPOSE)]


def _posed_hands(
    layer: Any, hands: Mapping[str, np.ndarray], pick: Callable[[Any], torch.Tensor], size: int
) -> np.ndarray:
    """(K, size, 3) float32 points `pick` takes from the MANO `layer`'s output for K hands of a MANO
    stream (`global_orient`, `hand_pose`, `betas`, `is_right`), in their own frame, left hands
    mirrored back (HaMeR estimates every hand as a right hand on a flipped crop)."""
    import torch

    count = len(hands["betas"])
    chunks = [np.zeros((0, size, 3), np.float32)]
    with torch.no_grad():
        for start in range(0, count, HAND_CHUNK):
            part = slice(start, min(start + HAND_CHUNK, count))

            def tensor(name: str, shape: tuple[int, ...], part: slice = part) -> torch.Tensor:
                return torch.as_tensor(np.asarray(hands[name][part], np.float32)).reshape(-1, *shape)

            output = layer(
                global_orient=tensor("global_orient", (1, 3, 3)),
                hand_pose=tensor("hand_pose", (15, 3, 3)),
                betas=tensor("betas", (10,)),
            )
            chunks.append(pick(output).numpy())
    points = np.concatenate(chunks)
    points[..., 0] *= np.where(np.asarray(hands["is_right"], bool), 1.0, -1.0)[:, None].astype(np.float32)
    return points


def mano_vertices(layer: Any, hands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Vertices (K, 778, 3) float32 of the MANO hands of a stream in their own frame, left hands
    mirrored back (see `_posed_hands`)."""
    return _posed_hands(layer, hands, lambda output: output.vertices, 778)


def mano_points(layer: Any, hands: Mapping[str, np.ndarray]) -> np.ndarray:
    """(K, 21, 3) float64 OpenPose-order points (`hand_joints`) of the MANO hands of a stream in
    their own frame, left hands mirrored back as `mano_vertices` mirrors their vertices."""
    return _posed_hands(layer, hands, hand_joints, len(MANO_TO_OPENPOSE)).astype(np.float64)
