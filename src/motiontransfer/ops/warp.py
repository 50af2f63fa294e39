"""Backward warping: the project's single ``grid_sample`` wrapper and the flow resizing used with it.

Every warp in the library goes through :func:`warp`, so that the ``align_corners`` policy is set in one place
(a config field). ``align_corners=True`` maps the grid's -1 and 1 to the centres of the corner pixels, which matches
:func:`~motiontransfer.ops.grid.make_coordinate_grid` exactly (an identity grid reproduces the image up to float
rounding); ``align_corners=False`` maps them to the outer edges of the corner pixels, so an identity grid samples
column j at j + (j - (W-1)/2) / (W-1) (exact at the centre, half a pixel off at the borders). False is what the
official FOMM code does under torch >= 1.3; its checkpoints were trained under torch 1.0, where grid_sample behaved
as True.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

PaddingMode = Literal["zeros", "border", "reflection"]


def warp(
    image: torch.Tensor,
    grid: torch.Tensor,
    align_corners: bool = False,
    padding_mode: PaddingMode = "zeros",
) -> torch.Tensor:
    """Sample ``image`` at the normalised positions in ``grid`` (bilinear backward warping, FOMM's f_w in Eq. 8).

    Args:
        image: (B, C, H, W).
        grid: (B, H', W', 2) sampling positions in [-1, 1], x first; cast to the image's dtype.
        align_corners: grid_sample's corner convention (see the module docstring).
        padding_mode: value outside the image: "zeros", "border" or "reflection".

    Returns:
        (B, C, H', W') with ``out[b, :, i, j] = image[b, :, grid[b, i, j, 1], grid[b, i, j, 0]]`` (interpolated).
    """
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode=padding_mode,
                         align_corners=align_corners)


def resize_flow(flow: torch.Tensor, size: tuple[int, int], align_corners: bool = False) -> torch.Tensor:
    """Resize a sampling grid / flow field bilinearly, as the FOMM generator does before warping features of
    another resolution. The values are normalised coordinates, so they are resized but not rescaled.

    ``align_corners=False`` is the official code's ``F.interpolate`` (every torch since 0.4.1). It does not map
    a :func:`~motiontransfer.ops.grid.make_coordinate_grid` grid to the grid of the new size: upsampling 32 -> 64
    moves the border columns by up to half a target pixel. ``align_corners=True`` interpolates in the grid's own
    convention, so a coordinate grid (any affine field) resizes exactly.

    Args:
        flow: (B, H, W, 2).
        size: target (H', W').
        align_corners: the interpolation's corner convention (see above).

    Returns:
        (B, H', W', 2); ``flow`` itself when the size already matches.
    """
    if tuple(flow.shape[1:3]) == tuple(size):
        return flow
    resized = F.interpolate(flow.permute(0, 3, 1, 2), size=tuple(size), mode="bilinear",
                            align_corners=align_corners)
    return resized.permute(0, 2, 3, 1)
