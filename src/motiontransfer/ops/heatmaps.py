"""Keypoints <-> heatmaps: Gaussian rendering of keypoints (FOMM Eq. 6; Monkey-Net's full-covariance Gaussians) and
the spatial soft-argmax that turns a keypoint detector's heatmaps into keypoint coordinates (FOMM Sec. 3.1), with
the heatmaps' second moments (Monkey-Net's keypoint covariances)."""

from __future__ import annotations

import torch

from motiontransfer.ops.grid import make_coordinate_grid
from motiontransfer.ops.linalg import inverse_2x2, smallest_singular_value_2x2


def keypoints_to_gaussian(kp: torch.Tensor, spatial_size: tuple[int, int], variance: float) -> torch.Tensor:
    """Render each keypoint as an isotropic, unnormalised Gaussian.

    Args:
        kp: keypoints (..., K, 2) in normalised [-1, 1] coordinates, x first (any leading batch dimensions).
        spatial_size: (H, W) of the rendered maps.
        variance: the Gaussian variance in normalised units (FOMM uses 0.01).

    Returns:
        Tensor (..., K, H, W) with ``exp(-0.5 |z - kp|^2 / variance)`` at grid point z (peak value 1); the dtype
        and device are those of ``kp``.
    """
    height, width = spatial_size
    grid = make_coordinate_grid(height, width, device=kp.device, dtype=kp.dtype)
    diff = grid - kp[..., None, None, :]
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


def soft_argmax(heatmap: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial softmax followed by the expected coordinate (a differentiable arg-max).

    Args:
        heatmap: logits (B, K, H, W); they are divided by ``temperature`` and normalised with a softmax over the
            H*W positions of each map. To use maps that already are probabilities, pass their logarithm.
        temperature: softmax temperature (FOMM: 0.1); lower is sharper.

    Returns:
        ``(probabilities, keypoints)``: probabilities (B, K, H, W), each map summing to 1, and keypoints (B, K, 2),
        the probability-weighted mean of the [-1, 1] coordinate grid (x first).
    """
    batch, num_maps, height, width = heatmap.shape
    flat = heatmap.reshape(batch, num_maps, height * width)
    probabilities = torch.softmax(flat / temperature, dim=2).view(batch, num_maps, height, width)
    grid = make_coordinate_grid(height, width, device=heatmap.device, dtype=heatmap.dtype)
    keypoints = (probabilities.unsqueeze(-1) * grid).sum(dim=(2, 3))
    return probabilities, keypoints


def heatmap_moments(probabilities: torch.Tensor, eps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of each heatmap seen as a distribution over the [-1, 1] grid (Monkey-Net Eq. 1-2:
    h_k = sum_z H_k(z) z and Sigma_k = sum_z H_k(z) (z - h_k)(z - h_k)^T).

    Args:
        probabilities: (B, K, H, W) maps, each summing to 1 (e.g. from :func:`soft_argmax`).
        eps: added to every map value first, without renormalising (the official Monkey-Net adds 1e-7 so that no
            covariance is exactly singular).

    Returns:
        ``(mean, covariance)``: (B, K, 2) x-first coordinates and (B, K, 2, 2) symmetric covariances.
    """
    height, width = probabilities.shape[-2:]
    grid = make_coordinate_grid(height, width, device=probabilities.device, dtype=probabilities.dtype)
    weights = (probabilities + eps).unsqueeze(-1)
    mean = (weights * grid).sum(dim=(2, 3))
    centred = grid - mean[:, :, None, None, :]
    covariance = (weights.unsqueeze(-1) * centred.unsqueeze(-1) * centred.unsqueeze(-2)).sum(dim=(2, 3))
    return mean, covariance


def clip_covariance(covariance: torch.Tensor, min_singular: float) -> torch.Tensor:
    """Monkey-Net's ``clip_variance``: a covariance whose smallest singular value sigma is below ``min_singular``
    (0.001 in the official configs) is scaled as a whole by ``min_singular / sigma``, so that its smallest singular
    value becomes ``min_singular``; its shape (axes and aspect ratio) is kept. Others are returned unchanged.

    Args:
        covariance: (..., 2, 2) symmetric positive (semi-)definite matrices; sigma is floored at 1e-12 so an
            exactly singular matrix gives a large, finite result.
        min_singular: the smallest allowed singular value (> 0).

    Returns:
        (..., 2, 2) ``covariance * max(min_singular, sigma) / sigma``.
    """
    sigma = smallest_singular_value_2x2(covariance).clamp_min(1e-12)
    scale = sigma.clamp_min(min_singular) / sigma
    return covariance * scale[..., None, None]


def keypoints_to_gaussian_covariance(mean: torch.Tensor, covariance: torch.Tensor,
                                     spatial_size: tuple[int, int]) -> torch.Tensor:
    """Render keypoints as unnormalised Gaussians with full covariances (Monkey-Net's heatmap encoding):
    ``exp(-0.5 (z - h)^T Sigma^-1 (z - h))``, peak value 1; with ``Sigma = variance * I`` this equals
    :func:`keypoints_to_gaussian`.

    Args:
        mean: (..., K, 2) keypoints in [-1, 1], x first.
        covariance: (..., K, 2, 2) invertible covariances (see :func:`clip_covariance`).
        spatial_size: (H, W).

    Returns:
        (..., K, H, W) maps with the dtype and device of ``mean``.
    """
    height, width = spatial_size
    grid = make_coordinate_grid(height, width, device=mean.device, dtype=mean.dtype)
    diff = grid - mean[..., None, None, :]
    precision = inverse_2x2(covariance)[..., None, None, :, :]
    mahalanobis = (diff.unsqueeze(-2) @ precision @ diff.unsqueeze(-1))[..., 0, 0]
    return torch.exp(-0.5 * mahalanobis)
