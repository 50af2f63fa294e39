"""Normalised coordinate grids, the coordinate system shared by keypoints, heatmaps and warping.

A pixel grid of ``height x width`` is mapped to ``[-1, 1] x [-1, 1]``: the first and last column have x = -1 and
x = 1, the first and last row y = -1 and y = 1, with a spacing of ``2 / (n - 1)``. Keypoints (FOMM Sec. 3.1) live
in the same coordinates, and so does ``grid_sample`` with ``align_corners=True``.
"""

from __future__ import annotations

import torch


def make_coordinate_grid(
    height: int,
    width: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Return the normalised pixel-centre coordinates of an image.

    Args:
        height: number of rows H (>= 2).
        width: number of columns W (>= 2).
        device: device of the result (default: torch's default device).
        dtype: floating dtype of the result (default: torch's default dtype).

    Returns:
        Tensor (H, W, 2): ``grid[i, j] = (x_j, y_i)`` with ``x_j = 2 j / (W - 1) - 1`` and
        ``y_i = 2 i / (H - 1) - 1``; x is channel 0 and y channel 1 (the ``grid_sample`` convention).
    """
    if height < 2 or width < 2:
        raise ValueError(f"a coordinate grid needs at least 2x2 pixels, got {height}x{width}")
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    # Same order of operations as the official make_coordinate_grid: 2 * (i / (n - 1)) - 1.
    x = 2 * (torch.arange(width, device=device, dtype=dtype) / (width - 1)) - 1
    y = 2 * (torch.arange(height, device=device, dtype=dtype) / (height - 1)) - 1
    xx = x.view(1, width).expand(height, width)
    yy = y.view(height, 1).expand(height, width)
    return torch.stack([xx, yy], dim=-1)
