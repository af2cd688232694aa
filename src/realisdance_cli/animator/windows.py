"""Temporal context windows: which frames the 3-D UNet sees together at each denoising step.

`uniform` is the original's closed-loop schedule (from AnimateDiff's context scheduler): windows
start at an offset that changes every step and wrap past the last frame onto the first.
`sliding` is our default: fixed windows that never wrap, so the end of a dance never blends with
its start, and that are the same every step, so their pose features can be reused. RealisDance-DiT
cuts long videos into the same windows, over latent frames (`realisdance_cli.dit.windows` has what
only it needs: its 4k+1 frame counts and the blending of neighbours).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

MAX_FRAMES = 32  # the motion modules' positional table: the longest window they can see
Window = Sequence[int]  # frame indices in order: a range, or a tuple for a wrapped uniform window
Schedule = Callable[[int, int], list[Window]]  # (step index, frame count) -> windows


def ordered_halving(step: int) -> float:
    """The 64-bit binary of `step` reversed, as a fraction of 2^64: 0, 1/2, 1/4, 3/4, 1/8, ..."""
    return int(f"{step:064b}"[::-1], 2) / (1 << 64)


def uniform(step: int, frames: int, size: int, stride: int = 1, overlap: int = 4) -> list[Window]:
    """The original schedule for denoising step `step` (see the golden README for the formula),
    as the original runs it: closed loop, the last windows wrapping round to the first frames."""
    if frames <= size:
        return [tuple(range(frames))]
    stride = min(stride, math.ceil(math.log2(frames / size)) + 1)
    shift = ordered_halving(step)
    pad = round(frames * shift)
    windows: list[Window] = []
    for dilation in (1 << i for i in range(stride)):
        for start in range(int(shift * dilation) + pad, frames + pad, size * dilation - overlap):
            windows.append(tuple(e % frames for e in range(start, start + size * dilation, dilation)))
    return windows


def sliding(frames: int, size: int, overlap: int = 4) -> list[range]:
    """Windows of `size` frames sharing at least `overlap` with their neighbours (the last ends on
    the last frame, so it may share more); one window of every frame when they fit in one."""
    if frames <= size:
        return [range(frames)]
    step = max(size - overlap, 1)
    starts = [*range(0, frames - size, step), frames - size]
    return [range(s, s + size) for s in starts]


def schedule(kind: str, size: int, overlap: int, stride: int = 1) -> Schedule:
    """A schedule by name: "sliding" (default) or "uniform" (the original's)."""
    if kind == "uniform":
        return lambda step, frames: uniform(step, frames, size, stride, overlap)
    if kind == "sliding":
        return lambda _step, frames: [*sliding(frames, size, overlap)]  # ranges as list[Window]
    raise ValueError(f"unknown window schedule {kind!r}; use sliding or uniform")
