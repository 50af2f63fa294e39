"""Pictures for people: keypoints drawn on frames, and frames tiled into grids.

Used by dataset previews, training sample sheets and ``animate --visualize``. Inputs are frames in any of the
layouts the library uses (torch or numpy; (3, H, W) or (H, W, 3); float in [0, 1] or uint8); outputs are
(H, W, 3) uint8 numpy arrays ready for :func:`motiontransfer.video.io.write_image` or a video writer.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from motiontransfer.ops.coordinates import normalized_to_pixels
from motiontransfer.video.io import to_uint8_hwc

Array = np.ndarray


def keypoint_colors(count: int) -> list[tuple[int, int, int]]:
    """``count`` well-separated RGB colours (uint8), one per keypoint index, stable across calls."""
    return [
        tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(count, 1), 0.85, 1.0))  # type: ignore[misc]
        for i in range(count)
    ]


def draw_keypoints(image: Array | torch.Tensor, keypoints: Array | torch.Tensor,
                   visibility: Array | torch.Tensor | None = None, radius: float | None = None) -> Array:
    """Draw keypoints on a copy of ``image``.

    Args:
        image: a frame (see :func:`motiontransfer.video.io.to_uint8_hwc`).
        keypoints: (K, 2) pixel coordinates (x, y), pixel centres at integers.
        visibility: optional (K,) booleans; hidden keypoints are drawn as hollow rings.
        radius: dot radius in pixels; default scales with the image (2 px at 64, 4 px at 256).

    Returns:
        (H, W, 3) uint8 image with one coloured dot per keypoint (colour = keypoint index).
    """
    canvas = Image.fromarray(to_uint8_hwc(image))
    points = np.asarray(torch.as_tensor(keypoints).detach().cpu(), dtype=np.float32).reshape(-1, 2)
    visible = (np.ones(len(points), dtype=bool) if visibility is None
               else np.asarray(torch.as_tensor(visibility).cpu(), dtype=bool).reshape(-1))
    radius = max(1.5, canvas.width / 64.0 * 1.5) if radius is None else radius
    draw = ImageDraw.Draw(canvas)
    for (x, y), shown, color in zip(points, visible, keypoint_colors(len(points)), strict=True):
        box = (x - radius, y - radius, x + radius, y + radius)
        if shown:
            draw.ellipse(box, fill=color, outline=(0, 0, 0))
        else:
            draw.ellipse(box, outline=color, width=1)
    return np.asarray(canvas)


def draw_rectangles(image: Array | torch.Tensor, rectangles: Sequence[Sequence[float]],
                    colors: Sequence[tuple[int, int, int]] | None = None, width: int = 1) -> Array:
    """Draw rectangle outlines on a copy of ``image``.

    Args:
        image: a frame (see :func:`motiontransfer.video.io.to_uint8_hwc`).
        rectangles: (x0, y0, x1, y1) pixel coordinates each (pixel centres at integers; may reach past the image).
        colors: one RGB colour per rectangle (default: :func:`keypoint_colors`).
        width: line width in pixels.

    Returns:
        (H, W, 3) uint8 image.
    """
    canvas = Image.fromarray(to_uint8_hwc(image))
    draw = ImageDraw.Draw(canvas)
    colors = keypoint_colors(len(rectangles)) if colors is None else colors
    for rectangle, color in zip(rectangles, colors, strict=True):
        x0, y0, x1, y1 = (float(value) for value in rectangle)
        draw.rectangle((x0, y0, x1, y1), outline=tuple(color), width=width)
    return np.asarray(canvas)


def image_grid(rows: Sequence[Sequence[Array | torch.Tensor]], padding: int = 2,
               fill: tuple[int, int, int] = (255, 255, 255)) -> Array:
    """Tile frames into a grid.

    Args:
        rows: a list of rows, each a list of frames; frames may differ in size (each cell takes the largest).
        padding: pixels of ``fill`` between cells and around the border.

    Returns:
        (H, W, 3) uint8 grid image.
    """
    cells = [[to_uint8_hwc(img) for img in row] for row in rows]
    if not cells or not any(cells):
        raise ValueError("image_grid needs at least one image")
    cell_h = max(img.shape[0] for row in cells for img in row)
    cell_w = max(img.shape[1] for row in cells for img in row)
    ncols = max(len(row) for row in cells)
    height = len(cells) * (cell_h + padding) + padding
    width = ncols * (cell_w + padding) + padding
    grid = np.empty((height, width, 3), dtype=np.uint8)
    grid[...] = np.asarray(fill, dtype=np.uint8)
    for r, row in enumerate(cells):
        for c, img in enumerate(row):
            y = padding + r * (cell_h + padding)
            x = padding + c * (cell_w + padding)
            grid[y:y + img.shape[0], x:x + img.shape[1]] = img
    return grid


def animation_grid(item: Mapping[str, Any], padding: int = 2) -> Array:
    """One frame of the ``animate --visualize`` video: source with its keypoints | driving frame with its
    keypoints | occlusion map (white = visible; KPVP's background mask; the deformed source when the model has no
    map, black when it has neither) | prediction.

    Args:
        item: an item of :func:`motiontransfer.inference.pipeline.animate`: ``source``, ``driving`` and
            ``prediction`` (3, H, W), ``source_keypoints`` and ``driving_keypoints`` (K, 2) in [-1, 1],
            optionally ``occlusion_map`` or ``background_mask`` (1, h, w), or ``deformed`` (3, H, W).
        padding: pixels between cells.

    Returns:
        (H + 2 padding, 4 W + 5 padding, 3) uint8.
    """
    prediction = torch.as_tensor(item["prediction"]).detach().cpu()
    height, width = prediction.shape[-2:]

    def with_keypoints(image_key: str, keypoints_key: str) -> Array:
        return draw_keypoints(item[image_key], normalized_to_pixels(item[keypoints_key], height, width))

    return image_grid([[with_keypoints("source", "source_keypoints"), with_keypoints("driving", "driving_keypoints"),
                        _motion_panel(item, height, width), prediction]], padding=padding)


def _motion_panel(item: Mapping[str, Any], height: int, width: int) -> torch.Tensor:
    """The occlusion map (KPVP: the background mask; both white where the source is kept) as a grey (3, H, W)
    image, else the deformed source, else black."""
    grey = item.get("occlusion_map")
    grey = item.get("background_mask") if grey is None else grey
    if grey is not None:
        occlusion = torch.as_tensor(grey).detach().cpu().float()
        occlusion = F.interpolate(occlusion[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        return occlusion.clamp(0, 1).expand(3, height, width)
    if item.get("deformed") is not None:
        return torch.as_tensor(item["deformed"]).detach().cpu()
    return torch.zeros(3, height, width)


def line_chart(series: Mapping[str, Sequence[float]], title: str, size: tuple[int, int] = (360, 200)) -> Array:
    """A minimal line chart (no plotting library needed): one polyline per series over x = 0, 1, 2, ...

    Args:
        series: label -> y values (NaNs are skipped); the first series is drawn in blue, the others in greys.
        title: text at the top left; the y range is written under it.
        size: (width, height) in pixels.

    Returns:
        (height, width, 3) uint8 image.
    """
    width, height = size
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    values = np.concatenate([np.asarray(v, dtype=float) for v in series.values()]) if series else np.zeros(0)
    values = values[np.isfinite(values)]
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    left, top, right, bottom = 8, 30, width - 8, height - 18
    draw.rectangle((left, top, right, bottom), outline=(200, 200, 200))
    colours = [(31, 119, 180), (120, 120, 120), (180, 180, 180), (60, 60, 60)]
    for number, (label, ys) in enumerate(series.items()):
        ys = np.asarray(ys, dtype=float)
        steps = max(len(ys) - 1, 1)
        points = [(left + (right - left) * i / steps, bottom - (bottom - top) * (y - low) / (high - low))
                  for i, y in enumerate(ys) if np.isfinite(y)]
        colour = colours[min(number, len(colours) - 1)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        draw.text((left + 4 + 110 * number, bottom + 3), label, fill=colour)
    draw.text((left, 2), title, fill=(0, 0, 0))
    draw.text((left, 15), f"{low:.4g} .. {high:.4g}", fill=(90, 90, 90))
    return np.asarray(image)


def sample_grid(source: torch.Tensor, driving: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor,
                prediction: torch.Tensor, occlusion_map: torch.Tensor | None, max_rows: int = 4) -> np.ndarray:
    """A training sample sheet: one row per example, columns source | driving with its keypoints | source with
    its keypoints | occlusion map (white = visible; blank without one) | prediction.

    Args:
        source, driving, prediction: (B, C, H, W) in [0, 1].
        kp_source, kp_driving: (B, K, 2) keypoints in [-1, 1].
        occlusion_map: (B, 1, h, w) in [0, 1] or None.
        max_rows: at most this many examples.

    Returns:
        (H', W', 3) uint8 image.
    """
    count = min(max_rows, source.shape[0])
    height, width = source.shape[-2:]
    source, driving, prediction = (t[:count].detach().float().cpu().clamp(0, 1) for t in (source, driving,
                                                                                          prediction))
    if occlusion_map is None:
        occlusion = torch.ones(count, 3, *source.shape[2:])
    else:
        occlusion = F.interpolate(occlusion_map[:count].detach().float().cpu(), size=source.shape[2:],
                                  mode="bilinear", align_corners=False).clamp(0, 1).expand(-1, 3, -1, -1)
    rows = [[source[i], draw_keypoints(driving[i], normalized_to_pixels(kp_driving[i], height, width)),
             draw_keypoints(source[i], normalized_to_pixels(kp_source[i], height, width)), occlusion[i],
             prediction[i]] for i in range(count)]
    return image_grid(rows)
