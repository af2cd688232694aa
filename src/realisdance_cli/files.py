"""Files that are never half-written, folders that two processes never write at once, and
write failures (full disk, read-only folder) as one sentence.

Every output of the package goes through `AtomicFile`: readers see the old file or the whole
new one, a failure leaves nothing behind, and every file gets the same permissions (0644 under
the usual umask), whichever library wrote it.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import IO, Any

from realisdance_cli.errors import InUse, UserError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()

# Errors that say "this place cannot take the file" (as opposed to a bug): what they mean, and
# whether freeing space helps before writing elsewhere.
_WRITE_ERRNOS = {
    errno.ENOSPC: ("the disk is full", True),
    errno.EDQUOT: ("the disk quota is used up", True),
    errno.EFBIG: ("the file is larger than this system allows", False),
    errno.EROFS: ("it is on a read-only file system", False),
    errno.EACCES: ("permission denied", False),
    errno.EPERM: ("the operation is not permitted", False),
}


_PARTIAL = ".partial-"  # marks the temporaries of `AtomicFile` and `atomic_folder`
_ASIDE = "-old"  # the folder `atomic_folder` replaces, until it is removed


def _target_of(path: Path) -> Path:
    """The file a temporary file of `AtomicFile` stands for (the user never named the temporary)."""
    hidden, marker, _ = path.name.partition(_PARTIAL)
    return path.with_name(hidden[1:]) if marker and hidden.startswith(".") else path


def write_failure(err: OSError, option: str = "--out") -> UserError | None:
    """The one sentence for an `OSError` that a user fixes by writing elsewhere (with `option`),
    None for others."""
    if err.errno not in _WRITE_ERRNOS:
        return None
    reason, space_helps = _WRITE_ERRNOS[err.errno]
    where = f" {_target_of(Path(err.filename))}" if err.filename else ""
    remedy = f"{'free some space or ' if space_helps else ''}write elsewhere ({option})"
    return UserError(f"cannot write{where}: {reason}; {remedy}.")


def _hold(fd: int) -> None:
    """Marks a temporary as being written: an advisory lock that dies with its process."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def is_temporary(path: Path) -> bool:
    """Whether `path` is the temporary of an atomic write (`AtomicFile`, `atomic_folder`), which a
    killed writer may leave in a folder of ours: no file of the user's."""
    return _target_of(path) != path


def _abandoned(path: Path) -> bool:
    """Whether no living process writes the temporary `path` (nobody holds its lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def _temporaries(target: Path) -> Iterator[Path]:
    """The temporaries of `target` beside it, by name (`[` or `*` in a name is no pattern)."""
    return target.parent.glob(f".{glob.escape(target.name)}{_PARTIAL}*")


def sweep_abandoned(target: Path) -> None:
    """Removes the temporaries of `target` that a killed writer left beside it (a stopped
    `weights convert` would otherwise leave gigabytes), never one a living process writes."""
    with suppress(OSError):
        for leftover in _temporaries(target):
            writing = leftover.with_name(leftover.name.removesuffix(_ASIDE))
            if _abandoned(writing if writing.exists() else leftover):
                remove([leftover])


def sync_folder(folder: Path) -> None:
    """The folder's entries (a rename) on disk, where the file system allows it."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sync_files(folder: Path) -> None:
    """Every file under `folder` on disk, so that the rename publishing the folder never publishes
    files a power cut tore."""
    for file in (entry for entry in folder.rglob("*") if entry.is_file() and not entry.is_symlink()):
        with file.open("rb") as handle:
            os.fsync(handle.fileno())


class AtomicFile:
    """A temporary file beside `target` that replaces it on `commit` and vanishes on `discard`,
    so readers see either the old file or the whole new one, also after a power cut (the data
    reaches the disk before the rename). As a context manager it yields the temporary path and
    commits when the block succeeds.

    `suffix` keeps the extension some writers insist on (`np.savez` adds `.npz` otherwise).
    """

    def __init__(self, target: Path, suffix: str = ".tmp") -> None:
        self.target = target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            sweep_abandoned(target)
            self._fd, name = tempfile.mkstemp(
                dir=target.parent, prefix=f".{target.name}{_PARTIAL}", suffix=suffix
            )
        except OSError as err:  # no folder can be made there, or it is full, read-only, not ours
            raise write_failure(err) or UserError(
                f"cannot write {target}: {err.strerror}; write elsewhere (--out)."
            ) from None
        _hold(self._fd)
        self.path = Path(name)

    def commit(self) -> Path:
        try:
            os.fsync(self._fd)  # whoever wrote the file, its data: the fd is on the same file
            os.chmod(self.path, FILE_MODE)
            os.replace(self.path, self.target)
            sync_folder(self.target.parent)
        finally:
            self.discard()
        return self.target

    def discard(self) -> None:
        """Drops the temporary (nothing after `commit`); safe to call again, as a caller's
        clean-up may after a commit: the descriptor is closed once, never a reused number."""
        with suppress(OSError):
            self.path.unlink(missing_ok=True)
        if self._fd >= 0:
            with suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """A temporary folder beside `target` that takes its place when the block succeeds and vanishes
    when it fails: at every moment `target` is the old folder or the whole new one (the old one is
    moved aside first and removed after)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_abandoned(target)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}{_PARTIAL}"))
    aside = partial.with_name(f"{partial.name}{_ASIDE}")
    held = os.open(partial, os.O_RDONLY)
    try:
        _hold(held)
        yield partial
        sync_files(partial)
        os.chmod(partial, 0o777 & ~_umask())
        had_target = target.is_symlink() or target.exists()
        if had_target:
            os.replace(target, aside)
        try:
            os.replace(partial, target)
            sync_folder(target.parent)
        except BaseException:
            if had_target:
                os.replace(aside, target)
            raise
    finally:
        os.close(held)
        shutil.rmtree(partial, ignore_errors=True)
        if aside.is_symlink() or aside.is_file():
            aside.unlink()
        else:
            shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def claimed_output(target: Path, *, force: bool = False, folder: bool = False) -> Iterator[Path]:
    """Holds `target` (a file, or a `folder`) for this process from before the work to its
    writing: a second process that claims it meanwhile stops at once with one sentence, and an
    existing `target` is refused unless `force` (checked under the claim, so two runs never both
    pass the check), a folder where a file belongs (or the reverse) always."""
    if target.is_dir() != folder and target.exists():
        kind = "a file" if folder else "a folder"
        raise UserError(f"{target} is {kind}; give {'a folder' if folder else 'a file name'} to write.")
    claim = AtomicFile(target, suffix=".claim")  # a temporary of `target` that we hold
    try:
        others = [
            path for path in _temporaries(target) if path.name != claim.path.name and not _abandoned(path)
        ]
        if others:
            raise InUse(f"{target} is being written by another process; wait for it or write elsewhere.")
        if target.exists() and not force:
            raise UserError(f"{target} already exists; pass --force to replace it.")
        yield target
    finally:
        claim.discard()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with AtomicFile(path) as tmp:
        tmp.write_bytes(data)


def read_bytes(path: Path) -> bytes:
    """The file's bytes, or one sentence saying why they cannot be read."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}.") from None


def save_npz(path: Path, arrays: Mapping[str, Any]) -> None:
    """A compressed `.npz` of `arrays`, written atomically."""
    import numpy as np

    with AtomicFile(path, suffix=".tmp.npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def read_text(path: Path, what: str) -> str:
    """The text of a UTF-8 file, or one sentence naming `what` it should be (a video given as a
    config, a folder, a missing file)."""
    existing_file(path, what)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a UTF-8 text file; give {what}.") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}.") from None


def load_npz(
    path: Path, remedy: str = "run the command that made it again with --force", *, skip_objects: bool = False
) -> dict[str, Any]:
    """Every array of an `.npz` file (never unpickling), or one sentence when the file is cut
    short or damaged, ending with `remedy`. `skip_objects`: leave out the arrays that would need
    unpickling (and any whose header cannot be read: the caller's key check names those)."""
    import zipfile
    import zlib

    import numpy as np

    arrays: dict[str, Any] = {}
    try:
        check_npz_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                try:
                    arrays[name] = data[name]
                except ValueError:
                    if not skip_objects:
                        raise
        return arrays
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise UserError(f"{path} is damaged ({err}); {remedy}.") from None


def human_size(size: int) -> str:
    """Bytes for people, in decimal units as download sizes are given."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def expands_too_far(stored: int, expanded: int) -> bool:
    """Whether `stored` bytes of a file describe far more in memory (`expanded` bytes) than any
    real data does: over 256 MB, and over 100 times the stored bytes (zeros compressed, or one
    pickled frame repeated by reference)."""
    return expanded > max(256 << 20, 100 * stored)


def check_npz_sizes(path: Path) -> None:
    """Raises ValueError for an array that would take far more memory than its file holds: a 4 MB
    member of zeros expanding to 4 GB, or a header declaring more entries than the bytes after it."""
    import zipfile

    import numpy as np

    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if expands_too_far(info.compress_size, info.file_size):
                raise ValueError(f"{info.filename} expands {info.compress_size} bytes into {info.file_size}")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_2_0 if version >= (2, 0) else None
                shape, _, dtype = (read_header or np.lib.format.read_array_header_1_0)(member)
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if not dtype.hasobject and declared > info.file_size:
                raise ValueError(f"{info.filename} declares {declared} bytes but holds {info.file_size}")


def paths_from_strings(options: object, *names: str) -> None:
    """Turns the named attributes of an options object that hold a str into a Path (Python callers
    pass strings; `False` and None, which mean something else, stay)."""
    for name in names:
        value = getattr(options, name)
        if isinstance(value, str | os.PathLike):
            setattr(options, name, Path(value))


def existing_file(path: Path, what: str) -> Path:
    """`path`, or one sentence that says whether it is missing or a folder where `what` belongs."""
    if path.is_dir():
        raise UserError(f"{path} is a folder; give {what} itself.")
    if not path.is_file():
        if path.exists():  # reading a named pipe or a device could wait forever
            raise UserError(f"{path} is not a regular file (a pipe or a device); give {what}.")
        raise UserError(f"{path} does not exist.")
    return path


def file_sha256(path: Path) -> str:
    """The sha256 of the file's bytes, hashed once per process while the file is unchanged (same
    size, modification time and inode): a dataset build meets the same gigabytes of weights for
    every video."""
    stat = path.stat()
    return _sha256(path.resolve(), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@cache
def _sha256(path: Path, size: int, modified: int, inode: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


LOCK_NAME = ".lock"


def contents(folder: Path) -> list[Path]:
    """What `folder` holds besides its lock file (nothing when it does not exist)."""
    return [entry for entry in folder.iterdir() if entry.name != LOCK_NAME] if folder.exists() else []


def remove(paths: Iterable[Path]) -> None:
    """Delete each file, and each folder with everything in it."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _holder(handle: IO[str]) -> str:
    """' (process N)' from a held lock file, as its holder wrote it ('' before it did)."""
    handle.seek(0)
    holder = handle.read().strip()
    return f" (process {holder})" if holder else ""


def lock_holder(folder: Path) -> str | None:
    """Another process holding `folder`'s lock (`folder_lock`) now: ' (process N)' ('' unsaid),
    or None when none does. It only looks (a shared lock tried and let go): a reader that finds
    half a folder asks this to tell work in progress from damage."""
    try:
        handle = (folder / LOCK_NAME).open()
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            by = _holder(handle)
            return None if by == f" (process {os.getpid()})" else by
        except OSError:
            return None
        return None  # closing the file lets the shared lock go


@contextmanager
def folder_lock(folder: Path, what: str, *, wait: bool = False) -> Iterator[None]:
    """Holds `folder/.lock` (an advisory `flock`, released by the kernel even when the process is
    killed), or stops at once with one sentence when another process holds it (`wait`: waits
    for it instead, for work the first holder does for all, such as decoding a test set once).
    Temporary files and folders that a killed writer left in the folder are removed once the lock
    is held; a living writer's are not (another output's, such as a video claimed in the folder)."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} {folder} is a file, not a folder; choose another.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = (folder / LOCK_NAME).open("a+")
    except OSError as err:
        raise write_failure(err) or UserError(f"cannot write {folder}: {err.strerror}.") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            by = _holder(handle)
            raise InUse(f"{what} {folder} is in use by another process{by}; wait for it to finish.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        remove(path for path in folder.glob(f".*{_PARTIAL}*") if _abandoned(path))
        yield
    finally:
        handle.close()
