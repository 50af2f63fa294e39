"""FOMM's keypoint detector, shared by the families that find keypoints with it (FOMM, and KPVP without Jacobians):
an hourglass, a 7x7 head to K heatmaps, a spatial softmax and the soft-argmax, with optional local Jacobians
(Siarohin et al. 2019, Sec. 3.1). Module and parameter names are the official ones (``predictor``, ``kp``,
``jacobian``), so official ``kp_detector`` state dicts load with ``strict=True``."""

from __future__ import annotations

import torch
from torch import nn

from motiontransfer.nn.blocks import AntiAliasDownsample, Hourglass
from motiontransfer.ops.heatmaps import soft_argmax


def heatmap_weighted_jacobians(heatmaps: torch.Tensor, jacobian_maps: torch.Tensor) -> torch.Tensor:
    """Per-keypoint Jacobians as the heatmap-weighted sum of dense Jacobian maps (Sec. 3.1, after Eq. 5).

    Args:
        heatmaps: (B, K, H, W) keypoint probabilities (each map sums to 1).
        jacobian_maps: (B, 4 * M, H, W) with M = K (one map per keypoint) or M = 1 (shared map); the 4 channels of
            a map are the row-major entries (a, b, c, d) of [[a, b], [c, d]].

    Returns:
        (B, K, 2, 2).
    """
    batch, num_kp, height, width = heatmaps.shape
    maps = jacobian_maps.reshape(batch, -1, 4, height, width)
    weighted = heatmaps.unsqueeze(2) * maps
    return weighted.view(batch, num_kp, 4, -1).sum(dim=-1).view(batch, num_kp, 2, 2)


class KPDetector(nn.Module):
    """Keypoint (and local Jacobian) detector: anti-aliased downsampling by ``scale_factor``, an hourglass,
    a 7x7 conv to K heatmap logits (padding ``pad``; 0 shrinks the maps by 6 pixels), a spatial softmax with
    ``temperature`` and a soft-argmax (Sec. 3.1). With ``estimate_jacobian``, a second 7x7 conv predicts 4 Jacobian
    channels per keypoint (or 4 shared ones with ``single_jacobian_map``), initialised to the identity (weight 0,
    bias [1, 0, 0, 1]), pooled with the heatmaps (Eq. 5's J_k).

    Forward: image (B, num_channels, H, W) in [0, 1] -> dict with 'value' (B, K, 2), 'jacobian' (B, K, 2, 2) when
    estimated, and 'heatmap' (B, K, h, w), the softmax probabilities (h = H * scale_factor - 6 + 2 pad).
    """

    def __init__(self, block_expansion: int, num_kp: int, num_channels: int, max_features: int, num_blocks: int,
                 temperature: float, estimate_jacobian: bool = False, scale_factor: float = 1,
                 single_jacobian_map: bool = False, pad: int = 0) -> None:
        super().__init__()
        self.predictor = Hourglass(block_expansion, in_features=num_channels, max_features=max_features,
                                   num_blocks=num_blocks)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        self.jacobian: nn.Conv2d | None = None
        if estimate_jacobian:
            self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * self.num_jacobian_maps, kernel_size=(7, 7),
                                      padding=pad)
            with torch.no_grad():
                self.jacobian.weight.zero_()
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * self.num_jacobian_maps))
        self.temperature = temperature
        self.scale_factor = scale_factor
        self.down = AntiAliasDownsample(num_channels, scale_factor) if scale_factor != 1 else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, C, H, W) -> {'value': (B, K, 2), 'jacobian': (B, K, 2, 2), 'heatmap': (B, K, h, w)}."""
        if self.down is not None:
            x = self.down(x)
        features = self.predictor(x)
        heatmaps, keypoints = soft_argmax(self.kp(features), self.temperature)
        out = {"value": keypoints}
        if self.jacobian is not None:
            out["jacobian"] = heatmap_weighted_jacobians(heatmaps, self.jacobian(features))
        out["heatmap"] = heatmaps
        return out
