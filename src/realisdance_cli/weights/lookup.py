"""Whether a weight file is present and whole, and how to get it when it is not.

A file is looked for in the weights folder, at its registry path, and then, for files on the
Hugging Face hub, in the Hugging Face cache (`HF_HOME`, `HF_HUB_CACHE`) at the registry's revision,
so that a model a user already has from diffusers or transformers is used where it lies instead of
being fetched again.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from realisdance_cli.errors import UserError
from realisdance_cli.weights.registry import HubFile, HubFolder, Manual, WeightFile, get, root_chosen
from realisdance_cli.weights.structure import Broken, check_file, check_folder, folder_files

LFS_ETAG = re.compile(r"[0-9a-f]{64}")  # the hub's etag of an LFS file is its sha256


# How closely `status` looks at a file that is present: not at all, its headers and directories
# (cheap), or every byte (zip CRCs, every array). See structure.py.
Structure = Literal["none", "quick", "full"]


@dataclass(frozen=True)
class Status:
    entry: WeightFile
    path: Path
    found: bool
    size: int | None  # bytes on disk (all files of a folder)
    problem: str | None = None  # damaged or truncated, size or checksum mismatch: one short phrase
    culprit: Path | None = None  # the file to delete before fetching it again (None: nothing to delete)
    note: str | None = None  # what the structural check could not verify
    in_cache: bool = False  # found in the Hugging Face cache rather than in the weights folder

    @property
    def ok(self) -> bool:
        return self.found and self.problem is None

    @property
    def place(self) -> str:
        """Where the entry was found (or looked for first), for people."""
        return "Hugging Face cache" if self.in_cache else "weights folder"


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)


def status(
    entry: WeightFile, root: Path, *, verify_hash: bool = False, structure: Structure = "quick"
) -> Status:
    """Whether `entry` is present and whole: in the weights folder `root` first, else (hub files)
    in the Hugging Face cache at the entry's revision. A whole copy wins over a damaged one; with
    none, the damaged copy is reported (the weights folder's first), else "not found" at `root`.
    Whole means its structure (see structure.py; the registry knows no checksums for most
    files, so a truncated download is caught this way) and, with `verify_hash`, its checksum where
    one is known."""
    local = status_at(entry, root / entry.path, verify_hash=verify_hash, structure=structure)
    if local.ok or isinstance(entry.source, Manual):
        return local
    cached = cache_path(entry.source)
    if cached is None:
        return local
    found = status_at(entry, cached, in_cache=True, verify_hash=verify_hash, structure=structure)
    return found if found.ok or not local.found else local


def cache_path(source: HubFile | HubFolder) -> Path | None:
    """Where the Hugging Face cache holds `source` at its revision, without a request (None: not
    there). A folder's snapshot may be partial; the structural check judges it."""
    from huggingface_hub import snapshot_download, try_to_load_from_cache
    from huggingface_hub.errors import LocalEntryNotFoundError

    if isinstance(source, HubFile):
        cached = try_to_load_from_cache(source.repo, source.filename, revision=source.revision)
        return Path(cached) if isinstance(cached, str) else None
    try:
        folder = snapshot_download(
            source.repo, revision=source.revision, allow_patterns=list(source.patterns), local_files_only=True
        )
    except LocalEntryNotFoundError:  # not cached, or a snapshot known to miss files
        return None
    return Path(folder)


def status_at(
    entry: WeightFile,
    path: Path,
    *,
    in_cache: bool = False,
    verify_hash: bool = False,
    structure: Structure = "quick",
) -> Status:
    """The state of the copy of `entry` at `path`. A damaged file in the cache is named by its
    blob, the file to delete (its snapshot entry is a link to it)."""
    found = _inspect_copy(entry, path, structure)
    if verify_hash and found.ok:
        found = replace(_checksum_problem(entry, path) or found, size=found.size, note=found.note)
    if not in_cache:
        return found
    culprit = found.culprit.resolve() if found.culprit else None
    return replace(found, culprit=culprit, in_cache=True)


def _announced_sha256(path: Path, folder: Path | None) -> str | None:
    """The sha256 the hub announced for a file huggingface_hub downloaded (its LFS object id),
    where huggingface_hub keeps it: a cache blob is named by it, a download into `folder` records
    it in `.cache/huggingface/download/<file>.metadata` (the ETag, second line). None for small
    git-stored files and files put there by hand."""
    blob = path.resolve().name
    if LFS_ETAG.fullmatch(blob):
        return blob
    if folder is None:
        return None
    relative = path.relative_to(folder).as_posix()
    try:
        etag = (folder / ".cache/huggingface/download" / f"{relative}.metadata").read_text().split("\n")[1]
    except (OSError, IndexError):
        return None
    return etag if LFS_ETAG.fullmatch(etag) else None


def _checksum_problem(entry: WeightFile, path: Path) -> Status | None:
    """A file whose bytes are not the ones announced for it (the published checksum, or the hub's
    sha256, which huggingface_hub records but does not compare): its Status, else None."""
    from realisdance_cli.files import file_sha256

    if isinstance(entry.source, HubFolder):  # the folder's own files, not another entry's inside
        files = folder_files(path, entry.source.patterns)
        announced = {file: _announced_sha256(file, path) for file in files}
    else:
        announced = {path: entry.sha256 or _announced_sha256(path, None)}
    for file, expected in announced.items():
        if expected is not None and file_sha256(file) != expected:
            where = f"{file.relative_to(path).as_posix()}: " if file != path else ""
            return Status(entry, path, True, None, f"{where}sha256 does not match the published one", file)
    return None


def _inspect_copy(entry: WeightFile, path: Path, structure: Structure) -> Status:
    full = structure == "full"
    if isinstance(entry.source, HubFolder):
        found = all((path / rel).is_file() for rel in entry.source.required)
        if not found:
            return Status(entry, path, False, None)
        size = _folder_size(path)
        if structure == "none":
            return Status(entry, path, True, size)
        try:
            note = check_folder(path, entry.source.weight_dirs, full, entry.source.patterns)
        except Broken as err:
            return Status(entry, path, True, size, str(err), err.path)
        return Status(entry, path, True, size, note=note)
    if not path.is_file():
        return Status(entry, path, False, None)
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        return Status(entry, path, True, size, f"size {size} bytes, expected {entry.size}", path)
    note = None
    if structure != "none":
        try:
            note = check_file(path, full)
        except Broken as err:
            return Status(entry, path, True, size, str(err), err.path)
    return Status(entry, path, True, size, note=note)


MEAN_PARAMS = "hamer-mean"  # the one file another one can stand in for


def not_needed(entry: WeightFile, root: Path) -> str | None:
    """Why `entry` is not needed although it is absent ("<file> holds ..."), or None. HaMeR's mean
    MANO parameters are read from its checkpoint when it holds them, as the released one does (the
    original's loading overwrote the file's with them): `mano_mean_params.npz` is then never read."""
    if entry.name != MEAN_PARAMS:
        return None
    from realisdance_cli.extractors.hamer.loading import carries_means

    checkpoint = status(get("hamer"), root, structure="none")
    if checkpoint.found and carries_means(checkpoint.path):
        return f"{checkpoint.path} holds the mean MANO parameters"
    return None


def instructions(entry: WeightFile, root: Path) -> str:
    """How to get a file by hand (licence-gated or off the hub)."""
    if isinstance(entry.source, Manual):
        return entry.source.steps.format(url=entry.source.url, root=root)
    return download_command([entry.group], root)


def download_command(groups: Iterable[str], root: Path) -> str:
    """'run `rdance weights download GROUP...`', into `root` when the user chose it."""
    where = f" --weights {shlex.quote(str(root))}" if root_chosen(root) else ""  # else it goes elsewhere
    return f"run `rdance weights download {' '.join(groups)}{where}`"


def refetch(found: Status, root: Path) -> str:
    """How to replace a damaged or incomplete file: delete the bad file first, so that
    `rdance weights download` (which skips what looks present) fetches it again."""
    if found.culprit is None:
        return instructions(found.entry, root)
    return f"delete {found.culprit}, then {instructions(found.entry, root)}"


def require(name: str, root: Path, explicit: str | os.PathLike[str] | None = None) -> Path:
    """The path of weight file `name`, or one clear sentence about how to get it."""
    entry = get(name)
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise UserError(f"{path} does not exist.")
        if path.is_dir() != entry.is_folder:
            kind = "folder" if entry.is_folder else "file"
            raise UserError(
                f"{path} is {'a file' if path.is_file() else 'a folder'}; give the {kind} of {entry.purpose}."
            )
        return path
    found = status(entry, root, structure="none")
    if not found.found:
        raise UserError(
            f"{entry.purpose} is missing: {not_found(found)}; {instructions(entry, root)} "
            f"(licence: {entry.licence})."
        )
    return found.path


def require_all(names: Iterable[str], root: Path) -> dict[str, Path]:
    """The paths of several weight files, or one sentence naming every missing one and its fix."""
    found = {name: status(get(name), root, structure="none") for name in names}
    missing = [s for s in found.values() if not s.found]
    if missing:
        raise UserError(
            f"missing weights: {how_to_get(missing, root)}; `rdance doctor` says where each was looked for."
        )
    return {name: s.path for name, s in found.items()}


def how_to_get(missing: Iterable[Status], root: Path) -> str:
    """Each way to get the missing files once, after the files it brings: the hub's as one
    `rdance weights download` of their groups, each archive or licence-gated file with its steps
    (one archive brings several files: its steps are said once)."""
    by_steps: dict[str, list[Status]] = {}
    hub = []
    for found in missing:
        if isinstance(found.entry.source, Manual):
            by_steps.setdefault(instructions(found.entry, root), []).append(found)
        else:
            hub.append(found)
    parts = [
        f"{_purposes(hub, paths=True)} (not in {root} nor in the Hugging Face cache): "
        + download_command(dict.fromkeys(found.entry.group for found in hub), root)
    ] if hub else []  # fmt: skip
    parts += [f"{_purposes(files)}: {steps}" for steps, files in by_steps.items()]
    return "; ".join(parts)


def _purposes(files: list[Status], paths: bool = False) -> str:
    """'A, B and C', each with its place in the weights folder with `paths` (the steps of a file
    got by hand name its place themselves)."""
    names = [f"{s.entry.purpose} ({s.entry.path})" if paths else s.entry.purpose for s in files]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def not_found(missing: Status) -> str:
    """Where a missing entry was looked for, for people."""
    if isinstance(missing.entry.source, Manual):
        return f"{missing.path} not found"
    return f"{missing.path} not found, nor in the Hugging Face cache"
