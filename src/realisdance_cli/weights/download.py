"""Downloads, pinned to the registry's revision, honouring `HF_ENDPOINT` and `HF_HUB_OFFLINE`.

Into the weights folder when the user named one, else into the Hugging Face cache, shared with
diffusers and transformers. A single file bound for the weights folder is fetched here, with
huggingface_hub's public API only (`hf_hub_url`, `get_hf_file_metadata`, and `http_stream_backoff`
on the session huggingface_hub itself uses): its bytes gather in `.<name>.<etag>.partial` beside
it, so a later run, even after the process was killed, continues them with a `Range` request, and
a file changed upstream (another etag) is never appended to old bytes; size and sha256 (the
registry's, else the etag of an LFS file) are checked before the file is renamed into place.
Folders go through `snapshot_download` and files bound for the cache through `hf_hub_download`:
huggingface_hub continues a transfer that drops within a run and keeps the finished files of a
folder, but a killed run fetches its unfinished file again from the start, because huggingface_hub
(2.x) writes each transfer to a file of that process alone (huggingface_hub issue #4196), and it
offers no public way to put a file into the cache's blob layout, which is its own to write. Nor
does it ever remove such a file of a killed run: a download removes those of its repository in
the cache, or of its folder in the weights folder.
Licence-gated files (SMPL-X, MANO) and files off the hub come with exact instructions instead.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from realisdance_cli.errors import InUse, UserError
from realisdance_cli.files import human_size
from realisdance_cli.progress import ProgressFn, no_progress
from realisdance_cli.weights.lookup import LFS_ETAG, cache_path, instructions, refetch, status_at
from realisdance_cli.weights.registry import HubFile, HubFolder, Manual, WeightFile, root_chosen


class ManualDownload(UserError):
    """The file cannot be fetched automatically; the message says how to get it."""


def _progress_bar_class(progress: ProgressFn, label: str) -> type:
    """A tqdm class that forwards the bytes huggingface_hub writes to our progress callback: a
    file's, or snapshot_download's sum over a folder's files. Its network-transfer bars (bytes
    received, which can differ) and file-count bars are left out, so each byte counts once."""
    from huggingface_hub.utils import tqdm

    class Forward(tqdm):
        def __init__(
            self,
            *args: object,
            name: str | None = None,
            unit: str = "it",
            total: float | None = None,
            initial: float = 0,
            **kwargs: object,
        ) -> None:
            super().__init__(total=total, initial=initial, disable=True)
            self.counts_bytes = unit == "B" and not (name or "").endswith(".transfer")
            self._report()

        def update(self, n: float | None = 1) -> bool | None:
            self.n += n or 0
            self._report()
            return None

        def _report(self) -> None:
            if self.counts_bytes:
                progress(label, int(self.n), int(self.total) if self.total else None)

    return Forward


def _network_error(err: Exception) -> bool:
    """A failure of the connection (httpx's transport errors have no common base with OSError)."""
    return type(err).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore"}


def _refused(err: Exception) -> bool:
    """No connection could be made at all (refused, no such host, no route): retrying in a few
    seconds does not help, unlike a server error or a transfer that dropped."""
    return _network_error(err) and any(kind.__name__ == "ConnectError" for kind in type(err).__mro__)


def _reach_hub() -> None:
    """One request to the hub's endpoint, not retried, whatever it answers: a hub that cannot be
    reached fails now, where huggingface_hub would retry a file's first request five times
    (about 24 s). Its retries stay for what they mend: 5xx and 429 answers, slow answers, and
    transfers that drop (continued)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except Exception as err:
        if _refused(err):
            raise


def _transfer_error(err: Exception) -> bool:
    """A failure of the network or the disk, which another run can get past."""
    return isinstance(err, OSError) or _network_error(err)


_RETRIES = 5  # tries in a row that bring no new byte before a transfer gives up


def _partial_path(target: Path, etag: str) -> Path:
    """Where the bytes of `target` at version `etag` gather: beside it, hidden, named by the etag."""
    tag = re.sub(r"[^0-9A-Za-z]", "", etag)[:16]
    return target.with_name(f".{target.name}.{tag}.partial")


@contextmanager
def _held(partial: Path, target: Path) -> Iterator[BinaryIO]:
    """`partial`, opened for writing under an advisory lock (the kernel frees it when the process
    dies), so that two processes never write it at once."""
    with open(os.open(partial, os.O_RDWR | os.O_CREAT, 0o666), "r+b") as out:
        try:
            fcntl.flock(out.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUse(f"another process is downloading {target}; wait for it to finish.") from None
        yield out


def _restart(out: BinaryIO) -> None:
    out.seek(0)
    out.truncate()


def _receive(url: str, out: BinaryIO, report: Callable[[int], None]) -> None:
    """One GET of `url` into `out`: the bytes after those `out` holds (a `Range` request), or the
    whole file from the start when the server answers with all of it (a 200)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_stream_backoff

    start = out.tell()
    headers = {**build_hf_headers(), "Accept-Encoding": "identity"}  # ranges count stored bytes
    if start:
        headers["Range"] = f"bytes={start}-"
    timeout = constants.HF_HUB_DOWNLOAD_TIMEOUT
    with http_stream_backoff("GET", url, headers=headers, timeout=timeout, retry_on_exceptions=()) as answer:
        hf_raise_for_status(answer)
        if start and not answer.headers.get("Content-Range", "").startswith(f"bytes {start}-"):
            _restart(out)
            report(0)
        for chunk in answer.iter_bytes():
            out.write(chunk)
            out.flush()  # what arrived is on disk for the next run, should this one be killed
            report(out.tell())


def _receive_all(url: str, out: BinaryIO, size: int | None, report: Callable[[int], None]) -> None:
    """Fill `out` up to `size` bytes, continuing with a `Range` request when the connection drops
    or stalls, until _RETRIES tries in a row bring no new byte. Of unknown size: one transfer."""
    idle = 0
    while size is None or out.tell() < size:
        before = out.tell()
        try:
            return _receive(url, out, report)
        except Exception as err:
            idle = 0 if out.tell() > before else idle + 1
            if size is None or idle > _RETRIES or not _network_error(err):
                raise
        time.sleep(1)


def _fetch_file(entry: WeightFile, source: HubFile, target: Path, progress: ProgressFn) -> Path:
    """Download `source` to `target`, continuing the bytes an earlier run of the same version left
    (a killed one too); checked for size and sha256, then renamed into place. The GETs name the
    commit the metadata request resolved the revision to, so every byte is of that version."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    from realisdance_cli.files import FILE_MODE, file_sha256, sync_folder

    url = hf_hub_url(source.repo, source.filename, revision=source.revision)
    meta = get_hf_file_metadata(url, retry_on_errors=True)
    if meta.commit_hash is None or meta.etag is None:
        raise UserError(
            f"{url} was answered without the ETag and X-Repo-Commit headers of a Hugging Face hub; "
            "point HF_ENDPOINT at a hub or mirror."
        )
    url = hf_hub_url(source.repo, source.filename, revision=meta.commit_hash)
    partial = _partial_path(target, meta.etag)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.partial"):
        if stale != partial:  # the bytes of another version
            stale.unlink(missing_ok=True)
    size = meta.size
    with _held(partial, target) as out:
        if size is None or out.seek(0, os.SEEK_END) > size:  # nothing to check a continuation by
            _restart(out)
        progress(entry.name, out.tell(), size)
        _receive_all(url, out, size, lambda done: progress(entry.name, done, size))
        got = out.tell()
        if size is not None and got < size:
            raise UserError(
                f"downloading {entry.name} from {entry.where()} stopped after {got} of {size} bytes; "
                "run the command again to continue."
            )
        expected = entry.sha256 or (meta.etag if LFS_ETAG.fullmatch(meta.etag) else None)
        too_long = size is not None and got > size
        if too_long or (expected is not None and file_sha256(partial) != expected):
            partial.unlink()
            raise UserError(
                f"downloading {entry.name} from {entry.where()} gave {got} bytes that are not the file the "
                "hub announced (size or sha256); run the command again."
            )
        os.fsync(out.fileno())
        os.chmod(partial, FILE_MODE)
        os.replace(partial, target)
    sync_folder(target.parent)
    return target


def _cache_partials(repo: str) -> Iterator[tuple[Path, Path]]:
    """The unfinished blobs of `repo` in the Hugging Face cache (`blobs/<etag>.<id>.incomplete`),
    each with the lock huggingface_hub holds while writing it (`.locks/<repo>/<etag>.lock`)."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    folder = repo_folder_name(repo_id=repo, repo_type="model")
    locks = Path(constants.HF_HUB_CACHE) / ".locks" / folder
    for partial in sorted((Path(constants.HF_HUB_CACHE) / folder / "blobs").glob("*.incomplete")):
        yield partial, locks / f"{partial.name.split('.')[0]}.lock"


def _folder_partials(local_dir: Path) -> Iterator[tuple[Path, Path]]:
    """The unfinished files of a download into `local_dir` (in `.cache/huggingface/download/`,
    named `<hash of the file's metadata name>.<etag>.<id>.incomplete`), each with the lock
    huggingface_hub holds while writing it (`<file name>.lock` beside them). A file whose name
    matches no lock is not listed: it is never taken for another's."""
    import base64
    import hashlib

    for lock in sorted((local_dir / ".cache" / "huggingface" / "download").rglob("*.lock")):
        metadata_name = f"{lock.stem}.metadata"
        named = base64.urlsafe_b64encode(hashlib.sha1(metadata_name.encode()).digest()).decode()
        for partial in sorted(lock.parent.glob(f"{glob.escape(named)}.*.incomplete")):
            yield partial, lock


def _remove_killed_partials(partials: Iterable[tuple[Path, Path]]) -> list[int]:
    """Remove the unfinished files that killed downloads left; their sizes. huggingface_hub names
    each transfer's file anew, and so never continues nor removes one whose process died: each
    kill would leave up to a whole file (gigabytes). A file is left alone while its lock is held,
    as huggingface_hub holds it from before it creates the file until the file is renamed or
    removed: a running download's file is never touched. A file that cannot be told (or
    removed) stays."""
    from filelock import FileLock, Timeout

    sizes = []
    for partial, lock in partials:
        try:
            with FileLock(lock, timeout=0, mode=0o664):  # huggingface_hub's mode
                size = partial.stat().st_size
                partial.unlink()
        except (Timeout, OSError):  # downloading now, finished meanwhile, or not ours to remove
            continue
        sizes.append(size)
    return sizes


def _tell_removed(sizes: list[int], where: str) -> None:
    """One line for the user when removing the files of killed downloads from `where` freed space."""
    if sum(sizes):
        runs = "a killed run" if len(sizes) == 1 else "killed runs"
        count = "1 partial download" if len(sizes) == 1 else f"{len(sizes)} partial downloads"
        warnings.warn(f"removed {count} of {runs} ({human_size(sum(sizes))}) from {where}", stacklevel=3)


def _reason(err: BaseException) -> str:
    """The error in one line; for huggingface_hub's "not found locally either", its cause."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    if isinstance(err, LocalEntryNotFoundError) and err.__cause__ is not None:
        err = err.__cause__
    return " ".join(str(err).split()).rstrip(".") or type(err).__name__


def download(entry: WeightFile, root: Path, progress: ProgressFn = no_progress) -> Path:
    """Fetch `entry` at its pinned revision into the weights folder `root` when the user chose it,
    else into the Hugging Face cache; returns its path. A damaged copy at the destination is
    fetched again."""
    source = entry.source
    if isinstance(source, Manual):
        raise ManualDownload(f"{entry.name} must be fetched by hand: {instructions(entry, root)}.")
    from huggingface_hub import constants, hf_hub_download, snapshot_download

    into_cache = not root_chosen(root)
    if constants.HF_HUB_OFFLINE:
        what = "folder" if entry.is_folder else "file"
        raise UserError(
            f"{entry.name} is neither in {root / entry.path} nor in the Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) and downloads are off (HF_HUB_OFFLINE is set); unset it and "
            f"run the command again, or copy the {what} to {root / entry.path}."
        )
    if into_cache:
        _tell_removed(_remove_killed_partials(_cache_partials(source.repo)), "the Hugging Face cache")
    elif isinstance(source, HubFolder):
        _tell_removed(_remove_killed_partials(_folder_partials(root / entry.path)), str(root / entry.path))
    present = cache_path(source) if into_cache else root / entry.path
    if present is not None and isinstance(source, HubFolder):  # only a damaged file is fetched again
        damaged = status_at(entry, present, in_cache=into_cache).culprit
        if damaged is not None:  # (huggingface_hub fetches a file it lacks; a missing one is fetched)
            damaged.unlink(missing_ok=True)
    bar = _progress_bar_class(progress, entry.name)
    try:
        _reach_hub()
        if isinstance(source, HubFile) and not into_cache:
            fetched: str | Path = _fetch_file(entry, source, root / entry.path, progress)
        elif isinstance(source, HubFile):
            whole = present is None or status_at(entry, present, in_cache=True).problem is None
            fetched = hf_hub_download(
                source.repo,
                source.filename,
                revision=source.revision,
                force_download=not whole,
                tqdm_class=bar,
            )
        else:
            fetched = snapshot_download(
                source.repo,
                revision=source.revision,
                allow_patterns=list(source.patterns),
                local_dir=None if into_cache else root / entry.path,
                tqdm_class=bar,
            )
    except Exception as err:
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        if isinstance(err, GatedRepoError):
            raise UserError(
                f"{entry.where()} is gated: accept its terms on huggingface.co and log in (`hf auth login`), "
                "then run the command again."
            ) from None
        not_there = RepositoryNotFoundError | RevisionNotFoundError | EntryNotFoundError
        if isinstance(err, not_there) and not isinstance(err, LocalEntryNotFoundError):  # not "unreachable"
            raise UserError(
                f"{entry.where()} has no {entry.name} at the pinned revision ({_reason(err)}); the hub "
                "(or the HF_ENDPOINT mirror) no longer serves it: fetch it by hand into "
                f"{root / entry.path}."
            ) from None
        from realisdance_cli.files import write_failure

        full_or_read_only = write_failure(err, "--weights") if isinstance(err, OSError) else None
        if full_or_read_only is not None:  # no second run gets past these: write elsewhere
            raise full_or_read_only from None
        if not _transfer_error(err):
            raise
        raise UserError(
            f"downloading {entry.name} from {entry.where()} failed ({_reason(err)}); "
            "run the command again to continue."
        ) from None
    path = Path(fetched) if into_cache else root / entry.path
    result = status_at(entry, path, in_cache=into_cache, verify_hash=True)
    if not result.found:
        missing = ", ".join(source.required) if isinstance(source, HubFolder) else source.filename
        raise UserError(f"{entry.where()} was downloaded to {path} but lacks {missing}.")
    if result.problem and result.culprit is not None:  # the hub sent other bytes than it announced
        result.culprit.unlink(missing_ok=True)
        raise UserError(
            f"{path} was downloaded but is wrong ({result.problem}); the file was removed: run the "
            "command again."
        )
    if result.problem:
        raise UserError(f"{path} was downloaded but is wrong: {result.problem}; {refetch(result, root)}.")
    return path
