"""Long videos: overlapping temporal windows over the latent frames, blended every step.

The network was trained on 81-frame clips (21 latent frames). A longer video is denoised as
windows of that length (`realisdance_cli.animator.windows.sliding`, the SD animator's fixed
windows, over latent frames), whose predictions are averaged with weights that ramp linearly
across each overlap, so every latent frame is one prediction where windows do not overlap and a
smooth hand-over where they do. A video that fits one window is one window: the original's
computation.

A window is not the original run on a clip of its frames. It gets the image condition (an
all-zero clip) and the reference as a clip would, but its pose latents are its slice of one
encoding of the whole pose video by the causally convolving VAE: after the first window they
remember the frames before the window, and the window's first latent frame stands for four video
frames, where a clip's first stands for its first frame alone. And after the first step, its
noisy latents hold the blended predictions of its neighbours where they overlap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from realisdance_cli.errors import UserError

if TYPE_CHECKING:
    import torch


def check_context(
    frames: int, overlap: int, factor: int = 4, names: tuple[str, str] = ("context_frames", "context_overlap")
) -> None:
    """A window must hold whole latent frames, `factor` video frames each after the first (4k+1
    frames for Wan's VAE, at least 5), and neighbours share whole latent frames, fewer than a
    window's; one sentence naming the two settings as the caller calls them."""
    if frames < factor + 1 or (frames - 1) % factor:
        raise UserError(f"{names[0]} must be {factor}k+1 frames (at least {factor + 1}), got {frames}.")
    if overlap % factor or not 0 <= overlap <= frames - 1 - factor:
        raise UserError(
            f"{names[1]} must be a multiple of {factor} from 0 to {frames - 1 - factor} "
            f"({names[0]} {frames}), got {overlap}."
        )


def blend_weights(windows: list[range]) -> list[torch.Tensor]:
    """Each window's weight per frame (its length): 1, ramping to 0 across the frames shared
    with a neighbour (the actual overlap, which for the last window may exceed the asked one)."""
    import torch  # here: the commands check windows (`check_context`) without torch

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
