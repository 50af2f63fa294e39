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
