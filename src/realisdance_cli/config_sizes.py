"""Sizes in a model's settings that no real model has, found before any network is built from them.

diffusers and transformers build a network from its `config.json` (a scheduler its arrays from
`scheduler_config.json`) before any weight is read, so a damaged or hostile `layers_per_block:
1000000000` would build modules for minutes, filling memory, before anything failed. Such files are
refused by their numbers alone. The limits sit far above the largest models there are: Wan2.1-14B
(40 layers of width 5120, ffn 13824, 40 heads), UMT5-XXL (24 layers, d_model 4096, d_ff 10240,
vocabulary 256384), CLIP ViT-H/14 (32 layers of 1280), DINOv2-large (24 layers of 1024, images of
518), SD-1.5's UNet (4 blocks of 2 layers, channels up to 1280, 1000 training timesteps), and the
largest language models (about 128 layers and heads, widths up to 16384 and 53248).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from realisdance_cli.errors import brief

CONFIG_NAMES = ("config.json", "scheduler_config.json")  # the settings networks are built from
MAX_BYTES = 2**20  # real ones are a few kilobytes (SD-1.5's UNet: 1.7 KB)
MAX_COUNT = 1024  # layers, heads, blocks, experts (of a model or of one block)
MAX_WIDTH = 2**20  # sizes, dims, channels, positions, training timesteps
MAX_VOCAB = 2**22
MAX_BLOCK_ITEMS = 64  # a list with an item per block: its types, channels, multipliers, counts
MAX_ITEMS = 4096  # any other list (a backbone's stage names: one per layer)
MAX_DEPTH = 8  # levels followed (a CLIP config holds its towers' configs one level down)
MAX_LOOKS = 10_000  # lists, objects and numbers above MAX_COUNT in one file (real ones: a few dozen)

_COUNT_ENDINGS = ("layers", "heads", "blocks", "experts", "layers_per_block", "depths")
_COUNT_NAMES = frozenset({"depth", "n_layer", "n_head"})
_WIDTH_ENDINGS = ("_size", "_sizes", "_dim", "_dims", "_channels", "_embeddings", "_positions", "_len")
_WIDTH_NAMES = frozenset({"dim", "d_model", "d_ff", "d_kv", "n_embd", "n_inner", "num_train_timesteps"})
_BLOCK_LIST_ENDINGS = ("_types", "_mult", "_scales", "_downsample", "_upsample")
_CONTAINERS = (dict, list)  # what JSON nests


def size_problem(config: Mapping[str, Any]) -> str | None:
    """The first value of `config` (nested settings too, breadth first) that no real model has, in
    words such as 'layers_per_block is 1000000000, more than any real model', or None when every
    one is usable."""
    return _Walk(dict(config)).problem()


def _limit(key: str) -> int | None:
    """The largest number a setting called `key` may hold, None for settings that are no size."""
    name = key.lower()
    if name.endswith("vocab_size"):
        return MAX_VOCAB
    if name.endswith(_COUNT_ENDINGS) or name in _COUNT_NAMES:
        return MAX_COUNT
    if name.endswith(_WIDTH_ENDINGS) or name in _WIDTH_NAMES:
        return MAX_WIDTH
    return None


class _Walk:
    """Breadth first through a config's objects and lists. Only lists, objects and numbers above
    the least limit are looked at closer, at most `MAX_LOOKS` of them, so that any file of up to
    `MAX_BYTES` takes well under a second (real settings: a millisecond)."""

    def __init__(self, config: dict) -> None:
        self.pending: deque[tuple[str, dict | list, int, int | None]] = deque([("", config, MAX_DEPTH, None)])
        self.looks = 0

    def problem(self) -> str | None:
        while self.pending:
            problem = self._container_problem(*self.pending.popleft())
            if problem:
                return problem
        return None

    def _container_problem(self, where: str, value: dict | list, depth: int, limit: int | None) -> str | None:
        """What is too large in the object or list `value`, found at `where` (a dotted path), its
        numbers allowed up to `limit`; the lists and objects inside it are queued while `depth`
        levels are left (no library reads deeper)."""
        if isinstance(value, list):
            most = MAX_BLOCK_ITEMS if limit is not None or _per_block(where) else MAX_ITEMS
            if len(value) > most:
                return f"{where} has {len(value)} items, more than any real model"
            inside = (
                (f"{where}[{index}]", item, limit)
                for index, item in enumerate(value)
                if isinstance(item, _CONTAINERS) or (limit is not None and _number(item) and item > limit)
            )
        else:
            inside = (
                (f"{where}.{key}" if where else str(key), item, _limit(str(key)))
                for key, item in value.items()
                if isinstance(item, _CONTAINERS) or (_number(item) and item > MAX_COUNT)
            )
        for place, item, bound in inside:
            self.looks += 1
            if self.looks > MAX_LOOKS:
                return f"it holds over {MAX_LOOKS} lists, objects and large numbers, which no real model has"
            if isinstance(item, _CONTAINERS):
                if depth > 1:
                    self.pending.append((place, item, depth - 1, bound))
            elif bound is not None and item > bound:
                return f"{place} is {brief(item)}, more than any real model"
        return None


def _per_block(where: str) -> bool:
    """Whether the list at `where` has an entry per block (block types, multipliers, scales)."""
    return where.rpartition(".")[2].lower().endswith(_BLOCK_LIST_ENDINGS)


def _number(value: Any) -> bool:
    """Whether `value` is a JSON number (`true` is not a count of 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def bytes_problem(path: Path) -> str | None:
    """'N bytes, more than...' when the settings file at `path` is larger than any real model's
    (seen before parsing it), else None."""
    size = path.stat().st_size
    return f"{size} bytes, more than any real model's settings" if size > MAX_BYTES else None


def folder_problem(folder: Path) -> str | None:
    """What in the settings of `folder` and of its parts (subfolders, as a pipeline has) no real
    model has, naming the file inside `folder`, or None. Files that are absent, unreadable or not a
    JSON object are left to the loader, which names what is wrong with them."""
    candidates = [folder / name for name in CONFIG_NAMES]
    candidates += [path for name in CONFIG_NAMES for path in sorted(folder.glob(f"*/{name}"))]
    for path in candidates:
        problem = _file_problem(path)
        if problem:
            return problem if path.parent == folder else f"{path.parent.name}/{problem}"
    return None


def _file_problem(path: Path) -> str | None:
    """What no real model has in the settings file at `path`, in words naming it, or None."""
    try:
        too_large = bytes_problem(path)
        config = None if too_large else json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    if too_large:
        return f"{path.name} is {too_large}"
    problem = size_problem(config) if isinstance(config, dict) else None
    return f"{path.name} says {problem}" if problem else None
