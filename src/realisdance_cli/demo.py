"""`rdance demo`: the pieces of the first thing a newcomer runs.

The full demo animates the authors' published demo sequence (a reference picture and the three
pose conditions of the SD model) with the open weights: those come from the Hugging Face hub
through `weights.download`, the sequence from the authors' GitHub repository, pinned to commits
so that it never changes under us. What it needs and lacks is a `Fetch`; without a hub (offline,
`HF_HUB_OFFLINE`, `--offline`) the demo does what needs no download: the synthetic dancer's
skeleton video and a short doctor.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from realisdance_cli import weights
from realisdance_cli.errors import UserError
from realisdance_cli.files import AtomicFile, folder_lock
from realisdance_cli.progress import ProgressFn, no_progress

if TYPE_CHECKING:
    from realisdance_cli.animation import AnimateOptions

DEMO_URL = "https://raw.githubusercontent.com/damo-cv/RealisDance"  # $RDANCE_DEMO_URL replaces it
SD_COMMIT = "b518e4c3096c4d948928d89a87fa369183554e5d"  # branch RealisDance-SD: the demo sequence
MAIN_COMMIT = "5c9342ecd206bd40bfbd9324e0fb27586439cf59"  # branch main: the reference picture
ANIMATOR = ("realisdance", "base-model", "dinov2")  # entries (not groups) `animation.load_pipeline` reads
VIDEO = "realisdance_demo.mp4"  # and its grid, as `animation.output_paths` names it
SKELETON = ("demo_dancer.pkl", "demo_dancer.rdance", "demo_dancer_roundtrip.pkl")  # not a user's dance.*
DANCER_FRAMES, DANCER_FPS = 48, 24
TIMEOUT = 5.0  # seconds to wait for the hub to answer before the demo goes offline


@dataclass(frozen=True)
class DemoFile:
    """One file of the published demo, at a fixed commit of the authors' repository."""

    role: str  # "reference" or the pose condition it is (conditions.POSE_NAMES)
    commit: str
    path: str  # in the repository

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def url(self) -> str:
        base = os.environ.get("RDANCE_DEMO_URL") or DEMO_URL
        return f"{base.rstrip('/')}/{self.commit}/{self.path}"


SEQUENCE = (
    DemoFile("reference", MAIN_COMMIT, "__assets__/demo/ref.png"),
    DemoFile("dwpose", SD_COMMIT, "__assets__/demo_seq/dwpose_1.pkl"),
    DemoFile("hamer", SD_COMMIT, "__assets__/demo_seq/hamer_1.mp4"),
    DemoFile("smpl", SD_COMMIT, "__assets__/demo_seq/smpl_1.mp4"),
)


def sequence_folder(root: Path) -> Path:
    """The demo sequence is kept in the weights folder, beside what it is animated with."""
    return root / "demo"


@dataclass
class Fetch:
    """What the full demo lacks: weight entries and demo files."""

    weights: list[weights.WeightFile] = field(default_factory=list)
    sequence: list[DemoFile] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.weights and not self.sequence

    def names(self) -> str:
        """The missing things, for a sentence."""
        parts = []
        if self.weights:
            parts.append(f"the weights {_listed(e.name for e in self.weights)} from the Hugging Face hub")
        if self.sequence:
            parts.append(
                f"the demo sequence ({_listed(f.name for f in self.sequence)}) "
                "from github.com/damo-cv/RealisDance"
            )
        return " and ".join(parts)


def _listed(names: Iterable[str]) -> str:
    names = list(names)
    return " and ".join(filter(None, (", ".join(names[:-1]), names[-1])))


def missing(root: Path) -> Fetch:
    """What the full demo would have to download (a pipeline folder `rdance weights convert` wrote
    stands for the three animator entries; the weights' structure is checked, not their hashes)."""
    from realisdance_cli.animation import PIPELINE_FOLDER

    converted = (root / PIPELINE_FOLDER / "model_index.json").is_file()
    return Fetch(
        [
            weights.get(name)
            for name in ANIMATOR
            if not converted and not weights.status(weights.get(name), root).ok
        ],
        [item for item in SEQUENCE if not (sequence_folder(root) / item.name).is_file()],
    )


def hub_unreachable() -> str | None:
    """Why the Hugging Face hub cannot be used now (None: it answers). Any HTTP answer counts: a
    machine without network fails within `TIMEOUT`, so `make demo` in CI goes offline quickly."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    try:
        with urllib.request.urlopen(
            urllib.request.Request(constants.ENDPOINT, method="HEAD"), timeout=TIMEOUT
        ):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return f"the Hugging Face hub {constants.ENDPOINT} cannot be reached: {reason}"


def sizes(fetch: Fetch) -> dict[str, int | None]:
    """The download size of each missing weight entry (from the hub's file listing, the files a
    download would take) and of each demo file (its Content-Length); None where unknown."""
    from huggingface_hub import HfApi, RepoFile
    from huggingface_hub.utils import filter_repo_objects

    listings: dict[tuple[str, str], dict[str, int]] = {}
    found: dict[str, int | None] = {}
    for entry in fetch.weights:
        source = entry.source
        assert isinstance(source, weights.HubFile | weights.HubFolder)  # the animator's are on the hub
        key = (source.repo, source.revision)
        try:
            if key not in listings:
                tree = HfApi().list_repo_tree(source.repo, revision=source.revision, recursive=True)
                listings[key] = {f.path: f.size for f in tree if isinstance(f, RepoFile)}
        except Exception:  # a size only informs: the download that follows reports real failures
            found[entry.name] = None
            continue
        if isinstance(source, weights.HubFile):
            found[entry.name] = listings[key].get(source.filename)
        else:
            files = filter_repo_objects(listings[key], allow_patterns=list(source.patterns))
            found[entry.name] = sum(listings[key][name] for name in files)
    for item in fetch.sequence:
        try:
            with urllib.request.urlopen(
                urllib.request.Request(item.url(), method="HEAD"), timeout=TIMEOUT
            ) as answer:
                length = answer.headers.get("Content-Length")
        except (urllib.error.URLError, OSError):
            length = None
        found[item.name] = int(length) if length else None
    return found


def total(found: dict[str, int | None]) -> int | None:
    """The sum of the sizes, when every one is known."""
    known = [size for size in found.values() if size is not None]
    return sum(known) if len(known) == len(found) else None


def _check(path: Path, item: DemoFile) -> None:
    """Read the downloaded file the way the demo will: a cut-short or wrong file fails here."""
    if item.role == "reference":
        from realisdance_cli.pictures import read_picture

        read_picture(path, "the reference picture")
    elif path.suffix == ".pkl":
        from realisdance_cli.original import load_dwpose_pkl

        load_dwpose_pkl(path)
    else:
        from realisdance_cli.video import FrameSource

        if not sum(1 for _ in FrameSource(path)):
            raise UserError("the video has no frames")


def fetch_sequence(root: Path, items: Iterable[DemoFile], progress: ProgressFn = no_progress) -> Path:
    """Download the demo files into the demo folder, each checked and then moved into place at
    once; finished files stay when a later one fails. Returns the folder."""
    folder = sequence_folder(root)
    with folder_lock(folder, "the demo sequence folder"):
        for item in items:
            _download(item, folder / item.name, progress)
    return folder


def _download(item: DemoFile, target: Path, progress: ProgressFn) -> None:
    url = item.url()
    with AtomicFile(target, suffix=target.suffix) as partial:
        try:
            with urllib.request.urlopen(url, timeout=60) as answer, partial.open("wb") as out:
                length = answer.headers.get("Content-Length")
                expected = int(length) if length else None
                done = 0
                progress(item.name, done, expected)
                while block := answer.read(1 << 20):
                    out.write(block)
                    done += len(block)
                    progress(item.name, done, expected)
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise UserError(
                f"downloading {url} failed ({reason}); run the command again (finished files are kept)."
            ) from None
        if expected is not None and done != expected:
            raise UserError(
                f"downloading {url} stopped after {done} of {expected} bytes; run the command again."
            )
        try:
            _check(partial, item)
        except UserError as err:
            raise UserError(
                f"{url} was downloaded but is not usable ({err}); run the command again."
            ) from None


def animate(root: Path, out: Path, options: AnimateOptions, progress: ProgressFn = no_progress) -> list[Path]:
    """The demo sequence animated into `out`: the video, and its grid when `options.grid`."""
    from realisdance_cli import animation
    from realisdance_cli.conditions import POSE_NAMES

    files = {item.role: sequence_folder(root) / item.name for item in SEQUENCE}
    inputs = animation.PoseInputs(files={name: files[name] for name in POSE_NAMES})
    return animation.animate(files["reference"], inputs, out / VIDEO, options, progress, force=True)


def dancer_skeleton(out: Path, progress: ProgressFn = no_progress) -> Path:
    """The synthetic dancer as an original `.pkl`, imported as a pose track, exported back to the
    original format and rendered as its skeleton video; returns the track folder."""
    from realisdance_cli.original import export_dwpose_pkl, import_dwpose_pkl, save_dwpose_pkl
    from realisdance_cli.rendering import render_poses
    from realisdance_cli.synthetic import dancer_pkl_frames

    pkl, folder, roundtrip = (out / name for name in SKELETON)
    save_dwpose_pkl(pkl, dancer_pkl_frames(DANCER_FRAMES, fps=DANCER_FPS))
    track = import_dwpose_pkl(pkl, folder, fps=DANCER_FPS, overwrite=True)
    export_dwpose_pkl(track, roundtrip)
    render_poses(folder, progress=progress)
    return folder


def short_doctor(root: Path) -> list[str]:
    """`rdance doctor` in short form: a line for each problem of this machine and one for each
    group of weight files with a file missing or damaged (not one per file), with its fix."""
    from realisdance_cli import doctor

    checks = [
        *doctor.torch_checks(),
        *doctor.onnx_checks(),
        *doctor.rendering_checks(),
        *doctor.video_checks(),
    ]
    lines = [f"{c.level}: {c.name}: {c.detail}" for c in checks if c.level in ("warn", "fail")]
    for group in (group for group in weights.GROUPS if group not in weights.OPTIONAL_GROUPS):
        found = [weights.status(entry, root) for entry in weights.REGISTRY if entry.group == group]
        bad = [s for s in found if not s.ok]
        if not bad:
            continue
        fixes = dict.fromkeys(
            weights.refetch(s, root) if s.found else weights.instructions(s.entry, root) for s in bad
        )
        names = _listed(s.entry.name for s in bad)
        lines.append(f"weights {group}: {names} missing ({len(bad)} of {len(found)}); " + "; ".join(fixes))
    return lines


def with_estimate(progress: ProgressFn, say: Callable[[str], None]) -> ProgressFn:
    """`progress`, and once the first denoising step is done, the time the whole denoising will
    take, measured from that step (for the CPU, where it takes long)."""
    started: float | None = None
    told = False

    def report(task: str, done: int, of: int | None) -> None:
        nonlocal started, told
        if task == "denoising" and of:
            if started is None:
                started = time.monotonic()
            elif done and not told:
                told = True
                seconds = (time.monotonic() - started) / done * of
                say(f"the denoising will take about {duration(seconds)} on the CPU (from its first step)")
        progress(task, done, of)

    return report


def duration(seconds: float) -> str:
    """'2 h 05 min', '7 min', '40 s'."""
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
