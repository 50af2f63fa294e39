"""FOMM motion math (Siarohin et al. 2019, Sec. 3.1) as pure functions of keypoints and Jacobians.

Notation: ``kp_*`` are keypoints (B, K, 2) in [-1, 1] coordinates (x first), ``jac_*`` their local Jacobians
(B, K, 2, 2) or ``None`` for the identity (the zeroth-order, Monkey-Net-like model). Index 0 of every K+1 axis is
the background, whose motion is the identity.
"""

from __future__ import annotations

import torch

from motiontransfer.ops.grid import make_coordinate_grid
from motiontransfer.ops.heatmaps import keypoints_to_gaussian
from motiontransfer.ops.linalg import inverse_2x2
from motiontransfer.ops.warp import warp


def sparse_motions(
    kp_source: torch.Tensor,
    jac_source: torch.Tensor | None,
    kp_driving: torch.Tensor,
    jac_driving: torch.Tensor | None,
    spatial_size: tuple[int, int],
) -> torch.Tensor:
    """First-order approximations of the backward motion T_{S<-D} around each keypoint (Eq. 4, with Eq. 5's
    Jacobian ``J_k = J_S,k J_D,k^-1``): ``T_k(z) = kp_S,k + J_k (z - kp_D,k)``, evaluated on the whole grid.

    Args:
        kp_source: (B, K, 2) source keypoints.
        jac_source: (B, K, 2, 2) source Jacobians, or None for identities.
        kp_driving: (B, K, 2) driving keypoints.
        jac_driving: (B, K, 2, 2) driving Jacobians, or None for identities.
        spatial_size: (H, W) of the grid the motions are evaluated on.

    Returns:
        (B, K+1, H, W, 2) sampling grids into the source: index 0 is the identity grid (background), index k the
        motion of keypoint k-1. If both Jacobians are None the motions are pure translations ``z - kp_D + kp_S``.
    """
    batch, num_kp, _ = kp_driving.shape
    height, width = spatial_size
    identity = make_coordinate_grid(height, width, device=kp_source.device, dtype=kp_source.dtype)
    coordinates = identity.view(1, 1, height, width, 2) - kp_driving.view(batch, num_kp, 1, 1, 2)
    if jac_source is not None or jac_driving is not None:
        jacobian = _relative_jacobian(jac_source, jac_driving)
        coordinates = torch.matmul(jacobian[:, :, None, None], coordinates.unsqueeze(-1)).squeeze(-1)
    driving_to_source = coordinates + kp_source.view(batch, num_kp, 1, 1, 2)
    background = identity.view(1, 1, height, width, 2).expand(batch, 1, height, width, 2)
    return torch.cat([background, driving_to_source], dim=1)


def _relative_jacobian(jac_source: torch.Tensor | None, jac_driving: torch.Tensor | None) -> torch.Tensor:
    """J_S J_D^-1 (Eq. 5) for (B, K, 2, 2) Jacobians, either of which may be None (identity)."""
    if jac_driving is None:
        assert jac_source is not None
        return jac_source
    inverse = inverse_2x2(jac_driving)
    return inverse if jac_source is None else torch.matmul(jac_source, inverse)


def dense_motion_field(sparse: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Combine the sparse motions with soft assignment masks into one dense backward flow (Eq. 7):
    ``T(z) = M_0 z + sum_k M_k T_k(z)``.

    Args:
        sparse: (B, K+1, H, W, 2) motions from :func:`sparse_motions` (background first).
        masks: (B, K+1, H, W) weights, normally a softmax over the K+1 axis.

    Returns:
        (B, H, W, 2) sampling grid into the source.
    """
    return (sparse * masks.unsqueeze(-1)).sum(dim=1)


def heatmap_differences(
    kp_driving: torch.Tensor,
    kp_source: torch.Tensor,
    spatial_size: tuple[int, int],
    variance: float,
) -> torch.Tensor:
    """Keypoint heatmap differences fed to the dense motion network (Eq. 6): ``H_k(z) = G(z; kp_D,k) -
    G(z; kp_S,k)`` with ``G(z; p) = exp(-0.5 |z - p|^2 / variance)``, plus an all-zero background map first.

    Args:
        kp_driving: (B, K, 2).
        kp_source: (B, K, 2).
        spatial_size: (H, W).
        variance: Gaussian variance in normalised units (FOMM: 0.01).

    Returns:
        (B, K+1, 1, H, W), channel 0 zero.
    """
    gaussian_driving = keypoints_to_gaussian(kp_driving, spatial_size, variance)
    gaussian_source = keypoints_to_gaussian(kp_source, spatial_size, variance)
    difference = gaussian_driving - gaussian_source
    background = difference.new_zeros((difference.shape[0], 1, *difference.shape[2:]))
    return torch.cat([background, difference], dim=1).unsqueeze(2)


def deform_sparse(source: torch.Tensor, sparse: torch.Tensor, align_corners: bool = False) -> torch.Tensor:
    """Warp the source image with each of the K+1 sparse motions (the S^k of Sec. 3.1, input to the dense motion
    network).

    Args:
        source: (B, C, H, W) image.
        sparse: (B, K+1, H', W', 2) sampling grids from :func:`sparse_motions`.
        align_corners: grid_sample corner convention (see :mod:`motiontransfer.ops.warp`).

    Returns:
        (B, K+1, C, H', W') warped copies of the source.
    """
    batch, channels, height, width = source.shape
    num_motions, out_height, out_width = sparse.shape[1:4]
    repeated = source.unsqueeze(1).expand(batch, num_motions, channels, height, width)
    repeated = repeated.reshape(batch * num_motions, channels, height, width)
    grids = sparse.reshape(batch * num_motions, out_height, out_width, 2)
    deformed = warp(repeated, grids, align_corners=align_corners)
    return deformed.view(batch, num_motions, channels, out_height, out_width)
