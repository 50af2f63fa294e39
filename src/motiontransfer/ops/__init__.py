"""Differentiable building blocks shared by every model: coordinate grids, heatmaps, soft-argmax, warping,
closed-form 2x2 algebra and the FOMM motion equations (all pure functions; device and dtype follow the inputs)."""

from motiontransfer.ops.grid import make_coordinate_grid
from motiontransfer.ops.heatmaps import (
    clip_covariance,
    heatmap_moments,
    keypoints_to_gaussian,
    keypoints_to_gaussian_covariance,
    soft_argmax,
)
from motiontransfer.ops.linalg import inverse_2x2, smallest_singular_value_2x2
from motiontransfer.ops.motion import deform_sparse, dense_motion_field, heatmap_differences, sparse_motions
from motiontransfer.ops.warp import resize_flow, warp

__all__ = [
    "clip_covariance",
    "deform_sparse",
    "dense_motion_field",
    "heatmap_differences",
    "heatmap_moments",
    "inverse_2x2",
    "keypoints_to_gaussian",
    "keypoints_to_gaussian_covariance",
    "make_coordinate_grid",
    "resize_flow",
    "smallest_singular_value_2x2",
    "soft_argmax",
    "sparse_motions",
    "warp",
]
