"""Boxes: overlap of detections, the square crop box around a subject, cropping with padding at the image borders,
and paste-back of an animated crop into the full photo with a feathered mask.

Conventions: pixel coordinates ``(x, y)`` put the centre of the pixel in row ``i``, column ``j`` at ``(j, i)`` (as
landmarks and :func:`motiontransfer.visualize.draw_keypoints` do). A detection is a rectangle ``(x0, y0, x1, y1)``
(floats). A crop is a :class:`PixelBox`, a square of whole pixels that may extend past the image: the pixels
outside are the nearest border pixels (edge padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from motiontransfer.errors import UserError

__all__ = [
    "PixelBox",
    "crop_square",
    "feather_mask",
    "iou",
    "paste_back",
    "resize_square",
    "square_around",
]


@dataclass(frozen=True)
class PixelBox:
    """A square crop of whole pixels: rows ``top .. top + side - 1`` and columns ``left .. left + side - 1`` of a
    frame (may reach past its borders)."""

    left: int
    top: int
    side: int

    @classmethod
    def from_square(cls, square: np.ndarray | tuple[float, float, float]) -> PixelBox:
        """The whole-pixel box nearest to a float square ``(cx, cy, side)`` (centre in pixel coordinates)."""
        cx, cy, side = (float(value) for value in square)
        whole = max(1, round(side))
        return cls(round(cx - (whole - 1) / 2), round(cy - (whole - 1) / 2), whole)

    @property
    def centre(self) -> tuple[float, float]:
        """(x, y) centre in pixel coordinates."""
        return self.left + (self.side - 1) / 2, self.top + (self.side - 1) / 2

    def as_list(self) -> list[int]:
        """``[left, top, side]`` (for JSON)."""
        return [self.left, self.top, self.side]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two rectangles ``(x0, y0, x1, y1)``; 0 when either is empty."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, float(width)) * max(0.0, float(height))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def square_around(rect: np.ndarray, margin: float, lift: float = 0.0) -> np.ndarray:
    """The square crop ``(cx, cy, side)`` around a subject rectangle.

    Args:
        rect: ``(x0, y0, x1, y1)``.
        margin: added on every side, as a fraction of the rectangle's longer side: ``side = (1 + 2 margin) *
            max(width, height)``.
        lift: the centre moves up by this fraction of the rectangle's height (faces: room for the forehead and
            hair, which the 68 landmarks do not reach).

    Returns:
        (3,) float64 ``(cx, cy, side)``.
    """
    x0, y0, x1, y1 = (float(value) for value in rect)
    longer = max(x1 - x0, y1 - y0, 1.0)
    centre_y = (y0 + y1) / 2 - lift * (y1 - y0)
    return np.array([(x0 + x1) / 2, centre_y, (1 + 2 * margin) * longer])


def _clamped_indices(start: int, count: int, limit: int) -> torch.Tensor:
    """``start .. start + count - 1`` clamped to ``0 .. limit - 1`` (edge padding by repetition)."""
    return torch.arange(start, start + count).clamp_(0, limit - 1)


def resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, S, S) -> (3, size, size), bilinear, antialiased when shrinking, clamped to [0, 1]."""
    if image.shape[-1] == size and image.shape[-2] == size:
        return image
    resized = F.interpolate(image[None].float(), size=(size, size), mode="bilinear", align_corners=False,
                            antialias=size < image.shape[-1])
    return resized[0].clamp_(0.0, 1.0)


def crop_square(image: torch.Tensor, box: PixelBox, size: int | None = None) -> torch.Tensor:
    """Cut ``box`` out of ``image``, padding with the nearest border pixels where it reaches past the image.

    Args:
        image: (3, H, W) float in [0, 1].
        box: the square to cut.
        size: resize the crop to (size, size) (None: keep ``box.side``).

    Returns:
        (3, size, size) (or (3, side, side)).
    """
    height, width = image.shape[-2:]
    rows = _clamped_indices(box.top, box.side, height)
    columns = _clamped_indices(box.left, box.side, width)
    crop = image.index_select(-2, rows).index_select(-1, columns)
    return crop if size is None else resize_square(crop, size)


def feather_mask(side: int, feather: float) -> torch.Tensor:
    """The blend weight of each pixel of a ``side`` x ``side`` box: 1 in the middle, falling smoothly to 0 over the
    ``feather`` pixels along the border (0 just outside the box).

    A pixel whose centre is ``d`` pixels from the nearest edge of the box weighs ``smoothstep(d / feather)``.

    Returns:
        (side, side) float32 in [0, 1]; all ones for ``feather`` <= 0.
    """
    if feather <= 0:
        return torch.ones(side, side)
    centres = torch.arange(side, dtype=torch.float32) + 0.5
    edge = torch.minimum(centres, side - centres)  # distance of each pixel centre to the nearer edge, per axis
    ramp = (torch.minimum(edge[:, None], edge[None, :]) / feather).clamp_(0.0, 1.0)
    return ramp * ramp * (3.0 - 2.0 * ramp)


def paste_back(photo: torch.Tensor, box: PixelBox, crop: torch.Tensor, feather: float) -> torch.Tensor:
    """Put an (animated) crop back where ``box`` was cut from ``photo``.

    The crop is resized to the box and blended in with :func:`feather_mask`; pixels outside the box are the photo's
    own, untouched, and the part of the box that lies outside the photo is dropped.

    Args:
        photo: (3, H, W) float in [0, 1].
        box: the box the crop was cut from (see :func:`crop_square`).
        crop: (3, s, s) float in [0, 1], any s.
        feather: width of the blend ramp in photo pixels (0: a hard paste).

    Returns:
        (3, H, W), a new tensor.
    """
    if crop.dim() != 3 or crop.shape[-1] != crop.shape[-2]:
        raise UserError(f"expected a square (3, s, s) crop, got shape {tuple(crop.shape)}")
    height, width = photo.shape[-2:]
    top, bottom = max(box.top, 0), min(box.top + box.side, height)
    left, right = max(box.left, 0), min(box.left + box.side, width)
    out = photo.clone()
    if top >= bottom or left >= right:
        return out
    inside = (slice(top - box.top, bottom - box.top), slice(left - box.left, right - box.left))
    resized = resize_square(crop.to(photo.dtype), box.side)[:, inside[0], inside[1]]
    mask = feather_mask(box.side, feather)[inside].to(photo.dtype)
    region = out[:, top:bottom, left:right]
    out[:, top:bottom, left:right] = region + mask * (resized - region)
    return out
