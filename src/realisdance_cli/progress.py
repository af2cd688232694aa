"""Progress reporting without printing: library code calls a `ProgressFn`, the CLI draws bars."""

from collections.abc import Callable
from typing import Any

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
