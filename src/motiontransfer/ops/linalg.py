"""Small closed-form linear algebra that exports to ONNX (which has no matrix-inverse operator)."""

from __future__ import annotations

import torch


def inverse_2x2(m: torch.Tensor) -> torch.Tensor:
    """Invert a batch of 2x2 matrices with the adjugate formula ``[[d, -b], [-c, a]] / (ad - bc)``.

    Args:
        m: (..., 2, 2) invertible matrices.

    Returns:
        (..., 2, 2) inverses; equal to ``torch.linalg.inv(m)`` up to float rounding (no singularity check:
        a singular matrix gives inf/nan, as an exported graph would).
    """
    a, b = m[..., 0, 0], m[..., 0, 1]
    c, d = m[..., 1, 0], m[..., 1, 1]
    det = a * d - b * c
    rows = [torch.stack([d, -b], dim=-1), torch.stack([-c, a], dim=-1)]
    return torch.stack(rows, dim=-2) / det[..., None, None]


def smallest_singular_value_2x2(matrix: torch.Tensor) -> torch.Tensor:
    """Smallest singular value of 2x2 matrices in closed form, |det M| / sigma_max with
    sigma_max = sqrt((s1 + s2) / 2), s1 = |M|_F^2, s2 = sqrt((a^2 + b^2 - c^2 - d^2)^2 + 4 (ac + bd)^2) for
    M = [[a, b], [c, d]]. The official Monkey-Net computes the same value as sqrt((s1 - s2) / 2), which cancels
    catastrophically in float32 for nearly singular covariances (6% error at sigma 5e-4 next to 0.5); this form
    does not.

    Args:
        matrix: (..., 2, 2).

    Returns:
        (...,) non-negative values (0 for the zero matrix).
    """
    a, b = matrix[..., 0, 0], matrix[..., 0, 1]
    c, d = matrix[..., 1, 0], matrix[..., 1, 1]
    s1 = a**2 + b**2 + c**2 + d**2
    tiny = torch.finfo(matrix.dtype).tiny  # inside the square roots: finite gradients at 0 (e.g. M = c I)
    s2 = torch.sqrt(((a**2 + b**2 - c**2 - d**2) ** 2 + 4 * (a * c + b * d) ** 2).clamp_min(tiny))
    largest = torch.sqrt(((s1 + s2) / 2).clamp_min(tiny))
    return (a * d - b * c).abs() / largest


def nearest_positive_definite(matrix: torch.Tensor, floor: float = 1e-6) -> torch.Tensor:
    """Make 2x2 matrices symmetric positive definite as the official Monkey-Net transfer does: symmetrise,
    eigendecompose, replace eigenvalues <= 0 by ``floor`` (positive ones are kept), recompose.

    Args:
        matrix: (..., 2, 2).
        floor: the value non-positive eigenvalues become.

    Returns:
        (..., 2, 2) symmetric matrices with positive eigenvalues.
    """
    symmetric = (matrix + matrix.transpose(-1, -2)) / 2
    eigenvalues, eigenvectors = torch.linalg.eigh(symmetric)
    eigenvalues = torch.where(eigenvalues <= 0, torch.full_like(eigenvalues, floor), eigenvalues)
    return (eigenvectors * eigenvalues.unsqueeze(-2)) @ eigenvectors.transpose(-1, -2)
