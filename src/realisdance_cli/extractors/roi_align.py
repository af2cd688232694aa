"""RoI-Align with mmcv's semantics (`aligned=False`, average pooling), vectorised in PyTorch.

Per output bin, `ceil(roi size / bins)` samples per axis (when `sampling_ratio` is 0) at the centres
of a regular grid are averaged; the RoI is at least one pixel wide and high. Samples use
Detectron's bilinear rule: zero beyond -1 or the far edge, clamped to the border otherwise.
Every RoI is evaluated at once on the largest sample grid, the extra samples weighted zero.
"""

from __future__ import annotations

import torch


def _axis(start: torch.Tensor, length: torch.Tensor, bins: int, size: int, grid: int) -> tuple:
    """Sample positions along one axis for every RoI: low/high indices, weights, validity."""
    per_bin = torch.ceil(length / bins).long()  # samples per bin for each RoI
    bin_size = length / bins
    b = torch.arange(bins, device=start.device, dtype=start.dtype)
    g = torch.arange(grid, device=start.device, dtype=start.dtype)
    pos = (
        start[:, None, None]
        + b[None, :, None] * bin_size[:, None, None]
        + (g[None, None, :] + 0.5) * bin_size[:, None, None] / per_bin[:, None, None]
    ).flatten(1)  # (R, bins * grid)
    used = (g[None, None, :] < per_bin[:, None, None]).expand(-1, bins, -1).flatten(1)
    inside = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.long().clamp(max=size - 1)
    high = (low + 1).clamp(max=size - 1)
    pos = torch.where(low >= size - 1, low.to(pos.dtype), pos)
    frac = pos - low
    return low, high, frac, used & inside, per_bin


def roi_align(features: torch.Tensor, rois: torch.Tensor, output: tuple[int, int]) -> torch.Tensor:
    """`features` (N, C, H, W), `rois` (R, 5) = batch index, x1, y1, x2, y2 in feature pixels
    -> (R, C, out_h, out_w)."""
    out_h, out_w = output
    _, channels, height, width = features.shape
    x1, y1 = rois[:, 1], rois[:, 2]
    roi_w = (rois[:, 3] - x1).clamp(min=1.0)
    roi_h = (rois[:, 4] - y1).clamp(min=1.0)
    grid_h = int(torch.ceil(roi_h / out_h).max().item()) if len(rois) else 1
    grid_w = int(torch.ceil(roi_w / out_w).max().item()) if len(rois) else 1
    y_low, y_high, ly, y_ok, count_h = _axis(y1, roi_h, out_h, height, grid_h)
    x_low, x_high, lx, x_ok, count_w = _axis(x1, roi_w, out_w, width, grid_w)
    image = features[rois[:, 0].long()]  # (R, C, H, W)

    def corner(ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        rows = torch.gather(image, 2, ys[:, None, :, None].expand(-1, channels, -1, width))
        return torch.gather(rows, 3, xs[:, None, None, :].expand(-1, channels, ys.shape[1], -1))

    ly, lx = ly[:, None, :, None], lx[:, None, None, :]
    values = (
        (1 - ly) * (1 - lx) * corner(y_low, x_low)
        + (1 - ly) * lx * corner(y_low, x_high)
        + ly * (1 - lx) * corner(y_high, x_low)
        + ly * lx * corner(y_high, x_high)
    )
    weight = (y_ok[:, :, None] & x_ok[:, None, :]).to(values.dtype)[:, None]
    pooled = (values * weight).unflatten(2, (out_h, grid_h)).unflatten(4, (out_w, grid_w)).sum(dim=(3, 5))
    count = (count_h * count_w).clamp(min=1).to(values.dtype)
    return pooled / count[:, None, None, None]
