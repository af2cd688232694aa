"""A readable summary of a pose track (`rdance track info`)."""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from realisdance_cli.conditions import BY_STREAM
from realisdance_cli.track import STREAMS, Track


def _frame_list(frames: np.ndarray, limit: int = 12) -> str:
    shown = ", ".join(str(int(i)) for i in frames[:limit])
    return shown + (f", ... ({len(frames)} in all)" if len(frames) > limit else "")


def summarise(track: Track) -> Group:
    source = track.source
    fps = "unknown" if source.fps is None else f"{float(source.fps):.3f}".rstrip("0").rstrip(".")
    header = Text.assemble(
        (f"{track.path}\n", "bold"),
        f"source  {source.path}\n",
        f"sha256  {source.sha256[:16]}...\n",
        f"frames  {source.frame_count}   size {source.width}x{source.height}   fps {fps}",
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
        counts = track.load(kind).items_per_frame()
        empty = np.flatnonzero(counts == 0)
        made_by = state.options.get("origin", "extract")
        if state.weights:
            made_by += " with " + ", ".join(state.weights)
        table.add_row(
            kind,
            "[green]complete[/]",
            f"{counts.min()}/{counts.mean():.2f}/{counts.max()} {BY_STREAM[kind].items}",
            f"{len(empty)}" + (f": {_frame_list(empty)}" if len(empty) else ""),
            made_by,
        )
    return Group(header, table)
