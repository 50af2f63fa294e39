"""FOMM's patch discriminator (pix2pix-like) and its multi-scale wrapper.

Module and parameter names follow the official code (``discs.<scale>.down_blocks.{i}.conv``/``.norm``, ``conv``;
``weight_orig``/``weight_u``/``weight_v`` under spectral norm), so official state dicts load one to one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.ops.heatmaps import keypoints_to_gaussian

Keypoints = torch.Tensor | Mapping[str, torch.Tensor]


def scale_key(scale: float) -> str:
    """Module-dict key of a pyramid scale: ``str(scale)`` with '.' replaced by '-' (1 -> '1', 0.5 -> '0-5')."""
    return str(scale).replace(".", "-")


class DiscriminatorBlock(nn.Module):
    """Unpadded convolution, optional InstanceNorm2d(affine=True), LeakyReLU(0.2), optional 2x2 average pooling.

    Args:
        in_features: input channels.
        out_features: output channels.
        norm: add the instance norm (``norm`` attribute; None otherwise).
        kernel_size: convolution kernel (4 in FOMM).
        pool: finish with 2x2 average pooling.
        sn: wrap the convolution in spectral normalisation.

    Shapes: (B, in, H, W) -> (B, out, H - k + 1, W - k + 1), halved (floor) when ``pool``.
    """

    def __init__(self, in_features: int, out_features: int, norm: bool = False, kernel_size: int = 4,
                 pool: bool = False, sn: bool = False) -> None:
        super().__init__()
        conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size)
        self.conv = nn.utils.spectral_norm(conv) if sn else conv
        self.norm = nn.InstanceNorm2d(out_features, affine=True) if norm else None
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H', W') (see the class docstring)."""
        out = self.conv(x)
        if self.norm is not None:
            out = self.norm(out)
        out = F.leaky_relu(out, 0.2)
        if self.pool:
            out = F.avg_pool2d(out, (2, 2))
        return out


def keypoint_values(kp: Keypoints) -> torch.Tensor:
    """Keypoint coordinates (B, K, 2) from either a tensor or a keypoint dict with a 'value' entry."""
    return kp["value"] if isinstance(kp, Mapping) else kp


class PatchDiscriminator(nn.Module):
    """One-scale patch discriminator: ``num_blocks`` :class:`DiscriminatorBlock` (block i outputs
    min(max_features, be * 2^(i+1)) channels; instance norm from block 1; pooling after every block but the last),
    then a 1x1 convolution to one channel. With ``use_kp`` the image is concatenated with the driving keypoints'
    Gaussian heatmaps (variance ``kp_variance``) first.

    Forward: image (B, num_channels, H, W) and keypoints (B, num_kp, 2) (or a dict with 'value'; needed only with
    use_kp) -> (list of the num_blocks feature maps, prediction map (B, 1, h, w)).
    """

    def __init__(self, num_channels: int = 3, block_expansion: int = 64, num_blocks: int = 4,
                 max_features: int = 512, sn: bool = False, use_kp: bool = False, num_kp: int = 10,
                 kp_variance: float = 0.01) -> None:
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            in_channels = num_channels + num_kp * use_kp if i == 0 else min(max_features, block_expansion * 2**i)
            out_channels = min(max_features, block_expansion * 2 ** (i + 1))
            blocks.append(DiscriminatorBlock(in_channels, out_channels, norm=i != 0, kernel_size=4,
                                             pool=i != num_blocks - 1, sn=sn))
        self.down_blocks = nn.ModuleList(blocks)
        conv = nn.Conv2d(blocks[-1].conv.out_channels, 1, kernel_size=1)
        self.conv = nn.utils.spectral_norm(conv) if sn else conv
        self.use_kp = use_kp
        self.kp_variance = kp_variance

    def forward(self, x: torch.Tensor, kp: Keypoints | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(B, C, H, W) [+ keypoints (B, K, 2)] -> (feature maps, prediction map (B, 1, h, w))."""
        out = x
        if self.use_kp:
            if kp is None:
                raise ValueError("this discriminator was built with use_kp=True and needs keypoints")
            heatmaps = keypoints_to_gaussian(keypoint_values(kp), tuple(x.shape[2:]), self.kp_variance)
            out = torch.cat([out, heatmaps.to(x.dtype)], dim=1)
        feature_maps = []
        for block in self.down_blocks:
            out = block(out)
            feature_maps.append(out)
        return feature_maps, self.conv(out)


class MultiScaleDiscriminator(nn.Module):
    """One :class:`PatchDiscriminator` per image-pyramid scale, in the ModuleDict ``discs`` keyed
    :func:`scale_key` (``discs.1.*`` for scale 1).

    Args:
        scales: pyramid scales, e.g. (1,) or (1, 0.5).
        **kwargs: :class:`PatchDiscriminator` arguments (num_channels, block_expansion, num_blocks, max_features,
            sn, use_kp, num_kp, kp_variance).

    Forward: a dict of images keyed ``prediction_<scale>`` (B, C, H_s, W_s) (as made by an image pyramid) and
    optional keypoints -> dict with ``feature_maps_<scale>`` (list of tensors) and ``prediction_map_<scale>``
    (B, 1, h_s, w_s) for every scale.
    """

    def __init__(self, scales: Sequence[float] = (1,), **kwargs: float | int | bool) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.discs = nn.ModuleDict({scale_key(scale): PatchDiscriminator(**kwargs) for scale in self.scales})

    def forward(self, x: Mapping[str, torch.Tensor], kp: Keypoints | None = None) -> dict[str, torch.Tensor | list]:
        """See the class docstring."""
        out: dict[str, torch.Tensor | list] = {}
        for key, disc in self.discs.items():
            scale = key.replace("-", ".")
            feature_maps, prediction_map = disc(x["prediction_" + scale], kp)
            out["feature_maps_" + scale] = feature_maps
            out["prediction_map_" + scale] = prediction_map
        return out
