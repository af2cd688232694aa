"""Long videos: overlapping temporal windows over the latent frames, blended every step.

The network was trained on 81-frame clips (21 latent frames). A longer video is denoised as
windows of that length, each seeing exactly what the original would for a clip, whose
predictions are averaged with weights that ramp linearly across each overlap, so every latent
frame is one prediction where windows do not overlap and a smooth hand-over where they do.
A video that fits one window is one window: the original's computation.
"""

from __future__ import annotations

import torch

from realisdance_cli.errors import UserError


def check_context(
    frames: int, overlap: int, factor: int = 4, names: tuple[str, str] = ("context_frames", "context_overlap")
) -> None:
    """A window must hold whole latent frames, `factor` video frames each after the first (4k+1
    frames for Wan's VAE, at least 5), and neighbours share whole latent frames, fewer than a
    window's; one sentence naming the two settings as the caller calls them."""
    if frames < factor + 1 or (frames - 1) % factor or overlap % factor or not 0 <= overlap < frames - 1:
        raise UserError(
            f"{names[0]} must be {factor}k+1 frames (at least {factor + 1}) and {names[1]} a multiple of "
            f"{factor} below it, got {frames} and {overlap}."
        )


def latent_windows(frames: int, size: int, overlap: int) -> list[range]:
    """Windows of `size` latent frames over `frames`, neighbours sharing at least `overlap`;
    the last one ends at the last frame."""
    if frames <= size:
        return [range(frames)]
    stride = size - overlap
    starts = list(range(0, frames - size + 1, stride))
    if starts[-1] + size < frames:
        starts.append(frames - size)
    return [range(start, start + size) for start in starts]


def blend_weights(windows: list[range]) -> list[torch.Tensor]:
    """Each window's weight per frame (its length): 1, ramping to 0 across the frames shared
    with a neighbour (the actual overlap, which for the last window may exceed the asked one)."""
    weights = []
    for index, window in enumerate(windows):
        weight = torch.ones(len(window))
        if index > 0:
            shared = windows[index - 1].stop - window.start
            weight[:shared] = torch.arange(1, shared + 1) / (shared + 1)
        if index < len(windows) - 1:
            shared = window.stop - windows[index + 1].start
            weight[len(window) - shared :] = torch.minimum(
                weight[len(window) - shared :], torch.arange(shared, 0, -1) / (shared + 1)
            )
        weights.append(weight)
    return weights
