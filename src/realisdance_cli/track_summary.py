"""A readable summary of a pose track (`rdance track info`) and what its streams found."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from realisdance_cli.conditions import BY_STREAM
from realisdance_cli.track import STREAMS, Track


@dataclass(frozen=True)
class Found:
    """The people or hands a finished stream found: the valid ones per frame (`track info` and the
    summary of `rdance extract` count the same)."""

    per_frame: np.ndarray

    @classmethod
    def in_track(cls, track: Track, kind: str) -> Found:
        """What the finished stream `kind` of `track` found."""
        return cls(track.load(kind).valid_per_frame())

    @property
    def empty_frames(self) -> list[int]:
        return np.flatnonzero(self.per_frame == 0).tolist()

    @property
    def total(self) -> int:
        return int(self.per_frame.sum())

    def spread(self, items: str) -> str:
        """min/mean/max `items` per frame; a track of no frames has none."""
        counts = self.per_frame
        return f"{counts.min()}/{counts.mean():.2f}/{counts.max()} {items}" if counts.size else "no frames"


def _frame_list(frames: list[int], limit: int = 12) -> str:
    shown = ", ".join(map(str, frames[:limit]))
    return shown + (f", ... ({len(frames)} in all)" if len(frames) > limit else "")


def summarise(track: Track) -> Group:
    source = track.source
    fps = "unknown" if source.fps is None else f"{float(source.fps):.3f}".rstrip("0").rstrip(".")
    header = Text.assemble(
        (f"{track.path}\n", "bold"),
        f"source  {source.path}\n",
        f"sha256  {source.sha256[:16]}...\n",
        f"frames  {source.frame_count}   size {source.height}x{source.width} (height x width)   fps {fps}",
    )
    table = Table(show_header=True, header_style="bold")
    for column in ("stream", "state", "per frame (min/mean/max)", "empty frames", "made by"):
        table.add_column(column)
    for kind in STREAMS:
        state = track.state(kind)
        if state.frames_done == 0 and not state.complete:
            table.add_row(kind, "[dim]not extracted[/]", "", "", "")
            continue
        if not state.complete:
            table.add_row(
                kind, f"[yellow]{state.frames_done}/{source.frame_count} (resumable)[/]", "", "", ""
            )
            continue
        result = Found.in_track(track, kind)
        empty = result.empty_frames
        made_by = state.options.get("origin", "extract")
        if state.weights:
            made_by += " with " + ", ".join(state.weights)
        table.add_row(
            kind,
            "[green]complete[/]",
            result.spread(BY_STREAM[kind].items),
            f"{len(empty)}" + (f": {_frame_list(empty)}" if empty else ""),
            made_by,
        )
    return Group(header, table)
