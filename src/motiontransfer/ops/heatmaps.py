"""Keypoints <-> heatmaps: Gaussian rendering of keypoints (FOMM Eq. 6) and the spatial soft-argmax that turns
a keypoint detector's heatmaps into keypoint coordinates (FOMM Sec. 3.1, Eq. 5 weights)."""

from __future__ import annotations

import torch

from motiontransfer.ops.grid import make_coordinate_grid


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
