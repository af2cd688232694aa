"""Body models and their colour tables.

SMPL-X and MANO come from the official files through the `smplx` package; the authors' per-vertex
colour table for the SMPL-X colourful surface (`smplx_color.pt`, a torch-saved uint8 numpy array)
is loaded with `torch.load(weights_only=True)`, allowing only the numpy globals an array needs.
"""

from __future__ import annotations

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
