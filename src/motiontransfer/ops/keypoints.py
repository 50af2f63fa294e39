"""Keypoint-space motion transfer: relative keypoints and Jacobians (FOMM Sec. 3.4, Eqs. 14-15), the
movement scale from convex-hull areas, and the pose normalisation used to pick the best driving frame.

Pure functions shared by every keypoint family (FOMM, Monkey-Net). Keypoints are (..., K, 2) in the normalised
[-1, 1] coordinates of :mod:`motiontransfer.ops.grid` (x first); Jacobians are (..., K, 2, 2). Batch dimensions
broadcast, so a source of batch 1 combines with a driving batch of B frames.
"""

from __future__ import annotations

import numpy as np
import torch

from motiontransfer.ops.linalg import inverse_2x2


def convex_hull_area(points: torch.Tensor | np.ndarray) -> float:
    """Area of the convex hull of 2D points.

    Args:
        points: (K, 2) points, K >= 3.

    Returns:
        The area (what the official code takes from scipy's ``ConvexHull.volume``, the area in 2D). 0.0 when the
        points are degenerate (fewer than 3, or all on one line).
    """
    array = _as_numpy(points).reshape(-1, 2)
    if len(array) < 3:
        return 0.0
    hull = _hull_vertices(array)
    x, y = hull[:, 0], hull[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)  # shoelace formula


def _hull_vertices(points: np.ndarray) -> np.ndarray:
    """Vertices (H, 2) of the convex hull of (K, 2) points in order (Andrew's monotone chain; a few points, so
    plain Python; scipy's Qhull would cost a 0.4 s import on every command)."""
    ordered = sorted(map(tuple, points.tolist()))

    def half(sequence: list[tuple[float, float]]) -> list[tuple[float, float]]:
        chain: list[tuple[float, float]] = []
        for point in sequence:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], point) <= 0:
                chain.pop()
            chain.append(point)
        return chain[:-1]

    return np.asarray(half(ordered) + half(ordered[::-1]), dtype=np.float64).reshape(-1, 2)


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    """z of (a - o) x (b - o): positive for a counter-clockwise turn."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_hull_scale(kp_source: torch.Tensor, kp_driving_initial: torch.Tensor) -> float:
    """FOMM's ``adapt_movement_scale``: ``sqrt(area(hull(kp_source))) / sqrt(area(hull(kp_driving_initial)))``,
    so that a driving object of a different size moves the source by proportionate amounts.

    Args:
        kp_source: (B, K, 2) or (K, 2) source keypoints; batch element 0 is used, as in the official code.
        kp_driving_initial: (B, K, 2) or (K, 2) keypoints of the initial driving frame; batch element 0 is used.

    Returns:
        The scale factor. Raises ValueError when a hull is degenerate (e.g. all keypoints on a line).
    """
    source_area = convex_hull_area(_first(kp_source))
    driving_area = convex_hull_area(_first(kp_driving_initial))
    if source_area <= 0.0 or driving_area <= 0.0:
        raise ValueError("adapt_scale: the keypoints span no area (fewer than 3 or collinear points); "
                         "the movement scale is undefined")
    return float(np.sqrt(source_area) / np.sqrt(driving_area))


def relative_keypoints(kp_source: torch.Tensor, kp_driving: torch.Tensor, kp_driving_initial: torch.Tensor,
                       scale: float = 1.0) -> torch.Tensor:
    """Relative keypoint locations (Eq. 14's translation): the driving displacement since the initial driving
    frame, times ``scale``, added to the source keypoints: ``(kp_D,t - kp_D,1) * scale + kp_S``.

    Args:
        kp_source: (Bs, K, 2) with Bs = 1 or B.
        kp_driving: (B, K, 2).
        kp_driving_initial: (Bi, K, 2) with Bi = 1 or B.
        scale: movement scale (1, or :func:`convex_hull_scale`).

    Returns:
        (B, K, 2).
    """
    return (kp_driving - kp_driving_initial) * scale + kp_source


def relative_jacobians(jac_source: torch.Tensor, jac_driving: torch.Tensor,
                       jac_driving_initial: torch.Tensor) -> torch.Tensor:
    """Relative Jacobians (Eq. 15): ``(J_D,t J_D,1^-1) J_S``, the local deformation of each keypoint's
    neighbourhood since the initial driving frame, applied to the source's.

    Args:
        jac_source: (Bs, K, 2, 2) with Bs = 1 or B.
        jac_driving: (B, K, 2, 2).
        jac_driving_initial: (Bi, K, 2, 2) with Bi = 1 or B, invertible.

    Returns:
        (B, K, 2, 2).
    """
    return torch.matmul(torch.matmul(jac_driving, inverse_2x2(jac_driving_initial)), jac_source)


def normalize_pose(keypoints: torch.Tensor | np.ndarray) -> np.ndarray:
    """Pose normalisation of FOMM's ``find_best_frame``: centre the points on their mean and divide by the square
    root of their convex-hull area, so poses compare independently of position and size.

    Args:
        keypoints: (K, 2) points (any units).

    Returns:
        (K, 2) float64; all NaN when the hull is degenerate (such a frame never matches).
    """
    points = _as_numpy(keypoints).astype(np.float64).reshape(-1, 2)
    centred = points - points.mean(axis=0, keepdims=True)
    area = convex_hull_area(points)
    if area <= 0.0:
        return np.full_like(centred, np.nan)
    return centred / np.sqrt(area)


def pose_distance(normalized_source: np.ndarray, normalized_driving: np.ndarray) -> float:
    """Squared distance between two :func:`normalize_pose` results (inf when either is degenerate)."""
    distance = float(((normalized_source - normalized_driving) ** 2).sum())
    return distance if np.isfinite(distance) else float("inf")


def _first(keypoints: torch.Tensor) -> torch.Tensor:
    """Batch element 0 of (B, K, 2) keypoints; (K, 2) is returned as is."""
    return keypoints[0] if keypoints.dim() == 3 else keypoints


def _as_numpy(points: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        return points.detach().to("cpu", torch.float64).numpy()
    return np.asarray(points, dtype=np.float64)
