"""Restricted unpickling for the original release's pickle formats.

Plain `pickle.load` runs any code a file asks for. The original pose files (`.pkl`) and body
models only ever need a handful of numpy globals, so everything else is refused by name.

A damaged file must not harm the process either, so loading uses Python's own unpickler (whose
steps can be checked) rather than the C one: lengths are checked against the bytes that are
really there before anything is allocated, array types (numpy dtypes) are always fresh copies
whose pickled settings must be ones numpy writes, and classes and functions cannot be altered.
A bit flip could otherwise give an array whose type claims to hold Python objects, which numpy
then fails on long after loading.
"""

import io
import pickle
import struct
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, NoReturn, cast

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from realisdance_cli.errors import UserError
from realisdance_cli.files import read_bytes


def _dtype(obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """`numpy.dtype` as pickles call it, always a fresh copy (the pickle then sets its state, which
    must never reach numpy's shared built-in types)."""
    if not isinstance(obj, str):
        raise _Damaged(f"an array type is given as {type(obj).__name__}, not as a type code")
    dtype = np.dtype(obj, bool(align), True)
    if dtype.hasobject:  # numpy fills such arrays from pickled lists, and a short list crashes it
        raise _Damaged("an array claims to hold Python objects, which a pose or body file never does")
    return dtype


_MADE_ODDLY = "an array is made in a way numpy's pickler never writes"


class _ArrayClass:
    """What a pickle's `numpy.ndarray` stands for: a name that only `_reconstruct` takes, as numpy's
    pickler writes it. The class itself, called by the pickle, would allocate an array of any
    size (a 140-byte file asking for gigabytes of zeros)."""

    def __new__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise _Damaged(_MADE_ODDLY)


def _reconstruct(subtype: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    """numpy's `_reconstruct` as its pickler calls it: an empty array whose state (shape, type and
    bytes, checked against each other by numpy) the pickle then sets."""
    if subtype is not _ArrayClass or shape != (0,):
        raise _Damaged(_MADE_ODDLY)
    return cast(np.ndarray, _multiarray._reconstruct(np.ndarray, (0,), dtype_code))


def _latin1(text: Any, encoding: Any = "utf-8") -> bytes:
    """`_codecs.encode` as a protocol-2 pickle makes bytes (their text in latin-1), and nothing else:
    other codecs (hex, base64) applied again and again would grow a few bytes to gigabytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Damaged("bytes are made in a way Python's pickler never writes")
    return text.encode("latin1")


# Protocol 2 (numpy's arrays in torch.save files, Python 3's protocol-2 pickles) spells bytes so.
BYTES_GLOBALS: dict[tuple[str, str], Any] = {("_codecs", "encode"): _latin1}
NUMPY_GLOBALS: dict[tuple[str, str], Any] = {}
for _module in ("numpy.core", "numpy._core"):
    NUMPY_GLOBALS[(f"{_module}.multiarray", "_reconstruct")] = _reconstruct
    NUMPY_GLOBALS[(f"{_module}.multiarray", "scalar")] = _multiarray.scalar
    NUMPY_GLOBALS[(f"{_module}.numeric", "_frombuffer")] = getattr(_numeric, "_frombuffer")  # noqa: B009
NUMPY_GLOBALS[("numpy", "ndarray")] = _ArrayClass
NUMPY_GLOBALS[("numpy", "dtype")] = _dtype


class UnsafePickleError(UserError):
    """The file asks to import something a data file never needs."""


class _Damaged(Exception):
    """The bytes describe something numpy's or Python's pickler never writes."""


class _Truncated(Exception):
    """The pickle data ends before the end mark."""


class _ExactReader(io.BytesIO):
    """A byte stream whose reads give exactly what was asked for, or fail."""

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if size is not None and size >= 0 and len(data) < size:
            raise _Truncated
        return data

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        if not line.endswith(b"\n"):
            raise _Truncated
        return line

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        if count < len(buffer):
            raise _Truncated
        return count


def _same_dtype_state(dtype: np.dtype, state: Any) -> bool:
    """Whether `state` is what numpy's pickler writes for `dtype` in some byte order."""
    try:
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            return False
        return bool(state == dtype.newbyteorder(state[1]).__reduce__()[2])
    except Exception:  # an odd state compares oddly: not numpy's
        return False


_BASE_BUILD: Callable[[Any], None] = pickle._Unpickler.dispatch[pickle.BUILD[0]]


class _RestrictedUnpickler(pickle._Unpickler):
    # Python's unpickler has these; typeshed does not declare them.
    stack: list[Any]
    read: Callable[[int], bytes]
    append: Callable[[Any], None]

    def __init__(self, data: bytes, allowed: Mapping[tuple[str, str], Any], what: str, **kwargs: Any):
        super().__init__(_ExactReader(data), **kwargs)
        self._size = len(data)
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

    def _load_build(self) -> None:
        if len(self.stack) >= 2:
            state, target = self.stack[-1], self.stack[-2]
            if isinstance(target, (type, types.FunctionType, types.BuiltinFunctionType)):
                raise UnsafePickleError(
                    f"{self._what} asks to change {getattr(target, '__name__', target)}, which a data "
                    "file never needs; refusing to load it."
                )
            if isinstance(target, np.dtype) and not _same_dtype_state(target, state):
                raise _Damaged("an array type has settings numpy never writes")
        _BASE_BUILD(self)

    def _load_bytearray8(self) -> None:
        (size,) = struct.unpack("<Q", self.read(8))
        if size > self._size:  # checked before the bytearray is allocated
            raise _Truncated
        self.append(bytearray(self.read(size)))

    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = {
        **pickle._Unpickler.dispatch,
        pickle.BUILD[0]: _load_build,
        pickle.BYTEARRAY8[0]: _load_bytearray8,
    }


SHORT = "is not a readable pickle file: it is cut short or damaged (it asks for more data than it holds)."


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:160]}" if text else type(err).__name__


def restricted_load(
    path: Path,
    allowed: Mapping[tuple[str, str], Any] = NUMPY_GLOBALS,
    *,
    encoding: str = "latin1",
) -> Any:
    """Unpickle `path`, resolving only the globals in `allowed` (default: numpy arrays)."""
    return restricted_loads(read_bytes(path), str(path), allowed, encoding=encoding)


def restricted_loads(
    data: bytes,
    what: str,
    allowed: Mapping[tuple[str, str], Any] = NUMPY_GLOBALS,
    *,
    encoding: str = "latin1",
) -> Any:
    """Unpickle `data` (named `what` in errors), resolving only the globals in `allowed`."""
    unpickler = _RestrictedUnpickler(data, allowed, what, encoding=encoding)
    try:
        return unpickler.load()
    except UnsafePickleError:
        raise
    except (_Truncated, EOFError):
        raise UserError(f"{what} {SHORT}") from None
    except _Damaged as err:
        raise UserError(f"{what} is not a readable pickle file: {err} (the file is damaged).") from None
    except Exception as err:  # any malformed byte stream
        if "exhausted" in str(err) or "truncated" in str(err):
            raise UserError(f"{what} {SHORT}") from None
        raise UserError(f"{what} is not a readable pickle file ({_reason(err)}).") from None
