"""Motion representations shared by families.

:class:`GaussianKeypoints` is the motion of the keypoint families that describe a keypoint as a Gaussian: a mean and,
optionally, a covariance (Monkey-Net's detector estimates both; KPVP's keypoints are means only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GaussianKeypoints:
    """Keypoint Gaussians of B frames.

    Attributes:
        mean: (B, K, 2) keypoints in [-1, 1] (x first).
        var: (B, K, 2, 2) covariances, (B, K, 1, 1) variances, or None (a fixed variance, or none at all).
    """

    mean: torch.Tensor
    var: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        """Number of frames B."""
        return int(self.mean.shape[0])

    def select(self, index: slice) -> GaussianKeypoints:
        """Frames ``index`` of the batch (batch dimension kept)."""
        return GaussianKeypoints(self.mean[index], None if self.var is None else self.var[index])

    def expand(self, batch: int) -> GaussianKeypoints:
        """A batch-1 motion repeated (as a view) to ``batch`` frames."""
        var = None if self.var is None else self.var.expand(batch, -1, -1, -1)
        return GaussianKeypoints(self.mean.expand(batch, -1, -1), var)

    def as_dict(self) -> dict[str, torch.Tensor]:
        """The keypoint dict the networks take: ``{'mean': ..., 'var': ...}`` (``var`` only when set)."""
        return {"mean": self.mean} if self.var is None else {"mean": self.mean, "var": self.var}
