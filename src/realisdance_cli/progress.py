"""Progress reporting without printing: library code calls a `ProgressFn`, the CLI draws bars."""

from collections.abc import Callable

ProgressFn = Callable[[str, int, int | None], None]
"""`(task, completed, total)`: `task` names the bar, `total` is None when unknown."""


def no_progress(task: str, completed: int, total: int | None) -> None:
    """The default callback: report nothing."""
