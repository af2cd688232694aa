"""Is a weight file whole? Structural checks that need no published checksum.

The registry knows no sizes or hashes for most files, so a 0-byte file, a truncated download or a
partial copy would otherwise pass as present. Each format carries enough structure to catch that:
a zip archive's directory sits at its end and every member has a CRC; a safetensors header states
how many bytes of data follow; an ONNX protobuf must hold a graph and its tensors' bytes. Nothing
here unpickles a checkpoint or runs code from a file.

Two depths: `quick` reads headers and directories only (cheap enough for `rdance doctor` and
`rdance weights download`); `full` also reads every byte (zip CRCs, every array), for
`rdance weights check`. Each check raises `Broken` with one short phrase, or returns an optional
note (something the check could not verify).
"""

from __future__ import annotations

import fnmatch
import json
import math
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from realisdance_cli.config_sizes import CONFIG_NAMES, bytes_problem, size_problem
from realisdance_cli.files import check_npz_sizes

if TYPE_CHECKING:
    import onnx

# What `torch.save` wrote before torch 1.6 begins with: pickle protocol 2 of this magic number.
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."
ZIP_MAGIC = b"PK\x03\x04"
TORCH_SUFFIXES = (".ckpt", ".pth", ".pt", ".bin", ".pth.tar")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pth", ".pt", ".onnx")

# Bytes per element of each safetensors dtype (sub-byte floats are packed).
SAFETENSORS_DTYPES: dict[str, float] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
    "F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}  # fmt: skip
MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors library's own limit


class Broken(Exception):
    """A weight file is not whole; the message is one short phrase. `path` is the file to delete
    before fetching it again; `missing` says that something is absent rather than damaged, so
    there is nothing to delete."""

    def __init__(self, phrase: str, path: Path | None = None, missing: bool = False):
        super().__init__(phrase)
        self.path = path
        self.missing = missing


def check_file(path: Path, full: bool = False) -> str | None:
    """Check `path` by its kind (file name); returns a note or None, raises `Broken`. Files of
    other kinds are not looked at."""
    checker = _checker(path.name.lower())
    if checker is None:
        return None
    try:
        if path.stat().st_size == 0:
            raise Broken("empty file (0 bytes)", path)
        return checker(path, full)
    except Broken as err:
        raise Broken(str(err), None if err.missing else err.path or path, err.missing) from None
    except OSError as err:
        raise Broken(f"cannot read it ({err.strerror or err})", path) from None


def _checker(name: str) -> Callable[[Path, bool], str | None] | None:
    """The check for a file called `name` (lower case), None for kinds this module does not know."""
    if name.endswith(".onnx"):
        return lambda path, full: check_onnx(path)
    if name.endswith(".safetensors"):
        return lambda path, full: check_safetensors(path)
    if name.endswith(TORCH_SUFFIXES):
        return check_torch
    if name.endswith(".npz"):
        return check_npz
    if name.endswith(".pkl"):
        return lambda path, full: check_body_pickle(path)
    if name.endswith((".yaml", ".yml")):
        return lambda path, full: check_yaml(path)
    if name.endswith(".index.json"):
        return lambda path, full: check_shard_index(path)
    if name.endswith(".json"):
        return lambda path, full: check_json(path)
    return None


def check_onnx(path: Path) -> str | None:
    """The protobuf parses and holds a graph with nodes, inputs, outputs and an opset, and every
    initializer's bytes match its shape. Protobuf parses some truncations silently (a cut between
    two top-level fields), so a model is also checked for the parts every model has."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # protobuf's DecodeError, or onnx's wrapping of it
        raise Broken(
            f"truncated or damaged: the ONNX protobuf does not parse ({type(err).__name__})"
        ) from None
    graph = model.graph
    for part, items in (("nodes", graph.node), ("inputs", graph.input), ("outputs", graph.output)):
        if not len(items):
            raise Broken(f"truncated or damaged: the ONNX graph has no {part}")
    if not len(model.opset_import):
        raise Broken("truncated or damaged: the ONNX model names no opset")
    for tensor in graph.initializer:
        _check_onnx_tensor(tensor, path.parent)
    return None


def _check_onnx_tensor(tensor: onnx.TensorProto, folder: Path) -> None:
    """An initializer's raw bytes (or its external file's range) hold as many bytes as its dims need."""
    from onnx import TensorProto, helper

    count = math.prod(tensor.dims)
    if tensor.data_location == TensorProto.EXTERNAL:
        info = {entry.key: entry.value for entry in tensor.external_data}
        location = folder / info.get("location", "")
        if not location.is_file():
            raise Broken(
                f"the external data file {info.get('location')!r} of {tensor.name!r} is missing", missing=True
            )
        end = int(info.get("offset", 0)) + int(info.get("length", 0))
        if location.stat().st_size < end:
            raise Broken(f"truncated: {location.name} ends before the data of {tensor.name!r}", location)
        return
    if not tensor.HasField("raw_data") or tensor.data_type == TensorProto.STRING:
        return
    try:
        bits = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize * 8
    except (KeyError, TypeError):
        return
    if tensor.data_type in _four_bit_types():
        bits = 4
    expected = (count * bits + 7) // 8
    if len(tensor.raw_data) != expected:
        raise Broken(
            f"damaged: initializer {tensor.name!r} holds {len(tensor.raw_data)} bytes, "
            f"its shape {list(tensor.dims)} needs {expected}"
        )


def _four_bit_types() -> set[int]:
    from onnx import TensorProto

    names = ("INT4", "UINT4", "FLOAT4E2M1", "INT2", "UINT2")
    return {getattr(TensorProto, name) for name in names if hasattr(TensorProto, name)}


def check_safetensors(path: Path) -> str | None:
    """The 8-byte header length, the JSON header, each tensor's byte range matching its shape, and
    the data ending exactly where the file does (a truncated file falls short of the header's sum)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise Broken(f"truncated: {size} bytes, too short for a safetensors header")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_SAFETENSORS_HEADER:
            raise Broken(f"not a safetensors file (its header length would be {length} bytes)")
        if 8 + length > size:
            raise Broken(f"truncated: the safetensors header needs {length} bytes, the file has {size - 8}")
        text = handle.read(length)
    try:
        header = json.loads(text)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deeply, a number too long
        raise Broken("damaged: the safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise Broken("damaged: the safetensors header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name != "__metadata__":
            end = max(end, _tensor_end(name, info, size))
    data = size - 8 - length
    if data < end:
        raise Broken(f"truncated: safetensors header says {end} bytes of data, the file has {data}")
    if data > end:
        raise Broken(f"damaged: {data - end} bytes follow the {end} bytes of data the header describes")
    return None


def _tensor_end(name: str, info: Any, size: int) -> int:
    """Where the bytes of one safetensors header entry end, after checking that its byte range
    matches its dtype and shape (whole numbers only: a shape of text is damage, not digits)."""
    entry = info if isinstance(info, dict) else {}
    offsets, shape, dtype = entry.get("data_offsets"), entry.get("shape"), entry.get("dtype")
    if not (_counts(offsets) and len(offsets) == 2 and offsets[0] <= offsets[1] and _counts(shape)):
        raise Broken(f"damaged: the safetensors header entry {name[:80]!r} is malformed")
    begin, stop = offsets
    width = SAFETENSORS_DTYPES.get(str(dtype))
    if width is None:
        return stop
    needed = -(-math.prod(shape) * round(width * 8) // 8)  # whole bytes, in exact integers
    if needed > size:
        raise Broken(f"damaged: tensor {name[:80]!r} has a shape larger than the whole file")
    if stop - begin != needed:
        raise Broken(
            f"damaged: tensor {name[:80]!r} spans {stop - begin} bytes, its {dtype} shape needs {needed}"
        )
    return stop


def _counts(values: Any) -> TypeGuard[list[int]]:
    """Whether `values` is a list of whole numbers of at least 0 (JSON's `true` is not one)."""
    return isinstance(values, list) and all(
        isinstance(value, int) and not isinstance(value, bool) and value >= 0 for value in values
    )


def check_torch(path: Path, full: bool) -> str | None:
    """A zip-format torch checkpoint (torch >= 1.6): complete zip directory and a `data.pkl`; at
    `full` depth every member reads back with its CRC. Nothing is unpickled. A legacy (pre-1.6)
    file has no index or checksums, so only its magic number can be checked."""
    with path.open("rb") as handle:
        head = handle.read(len(LEGACY_TORCH_MAGIC))
    if head.startswith(LEGACY_TORCH_MAGIC):
        return "legacy torch format: only its header could be checked"
    if not head.startswith(ZIP_MAGIC):
        raise Broken("not a torch checkpoint (neither a zip archive nor a legacy torch file)")
    with _open_zip(path) as archive:
        names = archive.namelist()
        if not any(name == "data.pkl" or name.endswith("/data.pkl") for name in names):
            raise Broken("not a torch checkpoint: the zip archive has no data.pkl")
        if full:
            _read_members(archive)
    return None


def check_npz(path: Path, full: bool) -> str | None:
    """A numpy archive: complete zip directory of `.npy` members; at `full` depth every member
    passes its CRC and every array reads with `allow_pickle=False` (object arrays, which would need
    unpickling, are covered by the CRC only)."""
    import numpy as np

    with path.open("rb") as handle:
        if not handle.read(4).startswith(ZIP_MAGIC):
            raise Broken("not an .npz archive (no zip header)")
    with _open_zip(path) as archive:
        stray = [name for name in archive.namelist() if not name.endswith(".npy")]
        if stray:
            raise Broken(f"not an .npz archive: member {stray[0]!r} is not an array")
        if full:
            _read_members(archive)
    if full:
        try:
            check_npz_sizes(path)
            with np.load(path, allow_pickle=False) as arrays:
                for key in arrays.files:
                    try:
                        arrays[key]
                    except ValueError as err:
                        if "allow_pickle" not in str(err):
                            raise Broken(f"damaged: array {key!r} does not read ({err})") from None
        except (OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
            raise Broken(f"damaged: the arrays do not read ({err})") from None
    return None


def check_body_pickle(path: Path) -> str | None:
    """An official MANO/SMPL pickle, loaded with the project's restricted unpickler (numpy, scipy
    sparse and chumpy stand-ins only): a truncated pickle lacks its STOP and does not load."""
    from realisdance_cli.bodies import load_body_pickle
    from realisdance_cli.errors import UserError

    try:
        load_body_pickle(path)
    except UserError as err:
        phrase = str(err).removeprefix(str(path)).strip().removeprefix("is ").rstrip(".")
        raise Broken(phrase) from None
    return None


def _settings(path: Path, kind: str, parse: Callable[[str], Any], error: type[Exception]) -> dict:
    """The mapping a config file holds, or `Broken` (a cut file misses its closing brace in JSON;
    in YAML a cut at a line end still parses, since YAML has no end marker)."""
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise Broken(f"damaged: not valid {kind} (it nests too deeply)") from None
    except (ValueError, error) as err:  # not UTF-8, not the format, a number too long to read
        raise Broken(f"truncated or damaged: not valid {kind} ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise Broken(f"damaged: the {kind} holds no settings")
    return data


def check_yaml(path: Path) -> str | None:
    import yaml

    _settings(path, "YAML", yaml.safe_load, yaml.YAMLError)
    return None


def check_json(path: Path) -> str | None:
    """Parses as settings; a model's or scheduler's settings also hold no size that no real model
    has (which would make loading build networks for minutes)."""
    if path.name not in CONFIG_NAMES:
        _load_json(path)
        return None
    too_large = bytes_problem(path)
    if too_large:
        raise Broken(f"damaged: it is {too_large}")
    problem = size_problem(_load_json(path))
    if problem:
        raise Broken(f"damaged: {problem}")
    return None


def _load_json(path: Path) -> dict:
    return _settings(path, "JSON", json.loads, json.JSONDecodeError)


def check_shard_index(path: Path) -> str | None:
    """A sharded checkpoint's index (`*.safetensors.index.json`): parses, and every shard in its
    `weight_map` exists beside it (the shards themselves are checked as files of their own)."""
    index = _load_json(path)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise Broken("damaged: the shard index has no weight_map")
    for shard in sorted(set(map(str, weight_map.values()))):
        if not _shard_inside(shard):
            raise Broken(f"damaged: the shard index names {shard[:80]!r}, outside its folder")
        if not (path.parent / shard).is_file():
            raise Broken(f"shard {shard} is missing", missing=True)
    return None


def _shard_inside(shard: str) -> bool:
    """Whether a shard index's file name stays inside the index's folder, so that a damaged or
    hostile index cannot make a check or a load read `../../etc/passwd`. Judged by the name alone:
    in huggingface_hub's cache every file is a link into `blobs/`, so resolving would leave."""
    name = Path(shard)
    return bool(shard) and not name.is_absolute() and ".." not in name.parts


def check_folder(
    folder: Path, weight_dirs: Iterable[str] = (), full: bool = False, patterns: Iterable[str] = ("*",)
) -> str | None:
    """A diffusers/transformers folder: every config (`*.json`) parses, every shard an index lists
    exists, every weight file is whole, and each of `weight_dirs` holds weights at all. Only the
    files matching `patterns` (the download's, as huggingface_hub matches them) are the folder's:
    another registry entry may live inside it. A problem is prefixed with the file's path inside
    the folder."""
    notes = []
    for path in folder_files(folder, patterns):
        relative = path.relative_to(folder).as_posix()
        try:
            note = check_file(path, full)
        except Broken as err:
            raise Broken(f"{relative}: {err}", err.path, err.missing) from None
        if note:
            notes.append(f"{relative}: {note}")
    for name in weight_dirs:
        where = folder / name
        held = [p for p in where.glob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
        held += list(where.glob("*.index.json"))
        if not held:
            label = f"{name}: " if name else ""
            raise Broken(f"{label}no weight file (*.safetensors or *.bin)", missing=True)
    return "; ".join(notes) or None


def folder_files(folder: Path, patterns: Iterable[str] = ("*",)) -> Iterator[Path]:
    """The folder's files matching `patterns` (as huggingface_hub matches a download's), without
    huggingface_hub's `.cache` and hidden partial downloads."""
    patterns = list(patterns)
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if (
            path.is_file()
            and not any(part.startswith(".") for part in relative.parts)
            and any(fnmatch.fnmatch(relative.as_posix(), pattern) for pattern in patterns)
        ):
            yield path


def _open_zip(path: Path) -> zipfile.ZipFile:
    """The archive, or `Broken` when its directory (at the very end of the file) is missing."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError, ValueError) as err:
        raise Broken(f"truncated or damaged: the zip directory does not read ({err})") from None
    return archive


def _read_members(archive: zipfile.ZipFile) -> None:
    """Read every member to its end, so that zipfile compares its CRC-32."""
    for info in archive.infolist():
        try:
            with archive.open(info) as member:
                while member.read(1 << 20):
                    pass
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as err:
            if "CRC" in str(err):
                raise Broken(f"damaged: {info.filename} fails its CRC check") from None
            raise Broken(f"truncated or damaged: {info.filename} does not read ({err})") from None
