"""The Wan VAE over long videos, without holding them on the accelerator.

The causal VAE reads a video four frames at a time and writes it four frames (one latent frame)
at a time, but diffusers' `encode` and `decode` take and give the whole video on the VAE's
device: a minute of 768x768 video is 6.8 GB in float32, and decoding grows one tensor piece by
piece (twice that at the end, after the hours of denoising). Here the video stays on the CPU and
crosses one piece at a time; the numbers are those of diffusers' own loops.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import AutoencoderKLWan
from diffusers.utils.accelerate_utils import apply_forward_hook


def encode_streamed(vae: AutoencoderKLWan, video: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The latents' mode (B, C, 1 + (F - 1) / 4, H / 8, W / 8) on `device` of a video
    (B, 3, F, H, W) in [-1, 1] anywhere; each piece goes to `device` as the encoder reads it."""
    handle = vae.encoder.register_forward_pre_hook(_arriving(device, vae.dtype), with_kwargs=True)
    try:
        return vae.encode(video).latent_dist.mode()
    finally:
        handle.remove()


def _arriving(device: torch.device, dtype: torch.dtype) -> Callable[..., tuple[tuple, dict]]:
    """A forward pre-hook that moves a module's first input to `device` and `dtype`."""

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return (args[0].to(device, dtype), *args[1:]), kwargs

    return hook


@apply_forward_hook  # brings the VAE to the accelerator under model offload, as `vae.decode` does
def decode_streamed(
    vae: AutoencoderKLWan, latents: torch.Tensor, advance: Callable[[int], None] | None = None
) -> torch.Tensor:
    """The video (B, 3, 1 + 4 (T - 1), 8 H, 8 W) in [-1, 1] on the CPU of latents (B, C, T, H, W),
    each latent frame's four video frames leaving the accelerator as they are made (`advance(1)`
    told of each). Tiled decoding (and patchified VAEs) keep diffusers' loop, which gathers the
    video on the accelerator."""
    advance = advance or (lambda done: None)
    if vae.use_tiling or vae.config.patch_size is not None:
        video = vae.decode(latents, return_dict=False)[0].cpu()
        advance(latents.shape[2])
        return video
    vae.clear_cache()  # the causal convolutions' memory of the frames before
    features = vae.post_quant_conv(latents)
    pieces = []
    for index in range(features.shape[2]):
        vae._conv_idx = [0]
        piece = vae.decoder(
            features[:, :, index : index + 1],
            feat_cache=vae._feat_map,
            feat_idx=vae._conv_idx,
            first_chunk=index == 0,
        )
        pieces.append(piece.clamp(-1.0, 1.0).cpu())
        advance(1)
    vae.clear_cache()
    return torch.cat(pieces, dim=2)
