"""Normalised coordinates <-> pixel coordinates, the one conversion every part of the library uses.

Keypoints, grids and ``grid_sample(align_corners=True)`` live in ``[-1, 1]`` (x first; see
:func:`~motiontransfer.ops.grid.make_coordinate_grid`): -1 and 1 are the centres of the first and last pixel, so a
normalised x is the pixel ``(x + 1) / 2 * (W - 1)`` at any size, and pixel centres sit at integers. Tensors stay
tensors (their dtype and device); anything else becomes a float32 numpy array.
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np
import torch


@overload
def normalized_to_pixels(points: torch.Tensor, height: int, width: int | None = None) -> torch.Tensor: ...
@overload
def normalized_to_pixels(points: Any, height: int, width: int | None = None) -> np.ndarray: ...


def normalized_to_pixels(points: Any, height: int, width: int | None = None) -> Any:
    """(..., 2) x-first points in [-1, 1] -> (..., 2) pixel coordinates of a ``height`` x ``width`` image
    (``width`` defaults to ``height``, a square image)."""
    half = _half_extent(height, width)
    if isinstance(points, torch.Tensor):
        return (points + 1.0) * points.new_tensor(half)
    return (np.asarray(points, dtype=np.float32) + 1.0) * np.asarray(half, dtype=np.float32)


@overload
def pixels_to_normalized(points: torch.Tensor, height: int, width: int | None = None) -> torch.Tensor: ...
@overload
def pixels_to_normalized(points: Any, height: int, width: int | None = None) -> np.ndarray: ...


def pixels_to_normalized(points: Any, height: int, width: int | None = None) -> Any:
    """Inverse of :func:`normalized_to_pixels`: (..., 2) pixel coordinates (x first) -> (..., 2) in [-1, 1]."""
    scale = tuple(1.0 / value for value in _half_extent(height, width))
    if isinstance(points, torch.Tensor):
        return points * points.new_tensor(scale) - 1.0
    return np.asarray(points, dtype=np.float32) * np.asarray(scale, dtype=np.float32) - 1.0


def _half_extent(height: int, width: int | None) -> tuple[float, float]:
    """Half the distance between the first and last pixel centre: ((W - 1) / 2, (H - 1) / 2), x first."""
    width = height if width is None else width
    if height < 2 or width < 2:
        raise ValueError(f"pixel coordinates need an image of at least 2x2 pixels, got {height}x{width}")
    return (width - 1) / 2.0, (height - 1) / 2.0
