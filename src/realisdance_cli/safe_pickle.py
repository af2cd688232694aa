"""Restricted unpickling for the original release's pickle formats.

Plain `pickle.load` runs any code a file asks for. The original pose files (`.pkl`) and body
models only ever need a handful of numpy globals, so everything else is refused by name.
"""

import io
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from realisdance_cli.errors import UserError

NUMPY_GLOBALS: dict[tuple[str, str], Any] = {}
for _module in ("numpy.core", "numpy._core"):
    NUMPY_GLOBALS[(f"{_module}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    NUMPY_GLOBALS[(f"{_module}.multiarray", "scalar")] = _multiarray.scalar
    NUMPY_GLOBALS[(f"{_module}.numeric", "_frombuffer")] = getattr(_numeric, "_frombuffer")  # noqa: B009
NUMPY_GLOBALS[("numpy", "ndarray")] = np.ndarray
NUMPY_GLOBALS[("numpy", "dtype")] = np.dtype


class UnsafePickleError(UserError):
    """The file asks to import something a data file never needs."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, allowed: Mapping[tuple[str, str], Any], what: str, **kwargs: Any):
        super().__init__(file, **kwargs)
        self._allowed = allowed
        self._what = what

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._what} refers to {module}.{name}, which a data file never needs; "
                "refusing to load it (it may run code)."
            ) from None


def restricted_load(
    path: Path,
    allowed: Mapping[tuple[str, str], Any] = NUMPY_GLOBALS,
    *,
    encoding: str = "latin1",
) -> Any:
    """Unpickle `path`, resolving only the globals in `allowed` (default: numpy arrays)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}.") from None
    unpickler = _RestrictedUnpickler(io.BytesIO(data), allowed, str(path), encoding=encoding)
    try:
        return unpickler.load()
    except UnsafePickleError:
        raise
    except Exception as err:  # any malformed byte stream
        raise UserError(f"{path} is not a readable pickle file ({type(err).__name__}: {err}).") from None
