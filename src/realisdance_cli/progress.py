"""Progress reporting without printing: library code calls a `ProgressFn`, the CLI draws bars."""

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int | None], None]
"""`(task, completed, total)`: `task` names the bar, `total` is None when unknown."""


def no_progress(task: str, completed: int, total: int | None) -> None:
    """The default callback: report nothing."""


def counter(progress: ProgressFn, task: str, total: int) -> Callable[[int], None]:
    """Reports `task` at 0 of `total` now; the returned function advances it by n."""
    done = 0
    progress(task, 0, total)

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(task, done, total)

    return advance


WEIGHT_FORMATS = ("safetensors", "bin", "pth", "ckpt", "pt", "onnx")
"""Weight files by the format a loader prefers: a folder holding one model in two (a hub
DINOv2's model.safetensors and pytorch_model.bin) loads one of them."""


def megabytes(*paths: Path) -> int:
    """The size of the weights at `paths` (a file, or a folder's files of its first format in
    `WEIGHT_FORMATS`, in subfolders too), in whole megabytes; at least 1: loading takes time."""
    total = 0
    for path in paths:
        if path.is_file():
            total += path.stat().st_size
            continue
        for suffix in WEIGHT_FORMATS:
            files = list(path.rglob(f"*.{suffix}"))
            if files:
                total += sum(file.stat().st_size for file in files)
                break
    return max(1, round(total / 1e6))


class Loading:
    """A progress task in megabytes over the named parts of a model, each a weights file or folder
    (or several that load together), reported at 0 as soon as it is made: before the seconds that
    importing torch's libraries and reading the weights take, which would otherwise pass without a
    word. Each part that loads is logged at INFO with where it came from."""

    def __init__(self, progress: ProgressFn, task: str, parts: Mapping[str, Path | tuple[Path, ...]]) -> None:
        self.paths = {name: path if isinstance(path, tuple) else (path,) for name, path in parts.items()}
        self.sizes = {name: megabytes(*paths) for name, paths in self.paths.items()}
        self.advance = counter(progress, task, sum(self.sizes.values()))

    @contextmanager
    def part(self, name: str, settings: Path | None = None) -> Iterator[None]:
        """Part `name` loads within: a failure names the folder of its `settings` (default: its
        first path) and what is damaged (`loading_from`); then the task advances by its size."""
        from realisdance_cli.state_dicts import loading_from

        paths = self.paths[name]
        with loading_from(settings or paths[0]):
            yield
        log.info("loaded %s from %s", name, ", ".join(map(str, paths)))
        self.advance(self.sizes[name])


def pipeline_bar(pipeline: Any, steps: int) -> ProgressFn:
    """A diffusers pipeline's own progress bar over its denoising, in steps, as a `ProgressFn`."""
    bar = pipeline.progress_bar(total=steps)

    def report(task: str, done: int, total: int | None) -> None:
        if task == "denoising" and total:
            bar.n = done * steps // total
            bar.refresh()
            if done == total:
                bar.close()

    return report
