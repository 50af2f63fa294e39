"""First Order Motion Model (Siarohin et al., NeurIPS 2019): keypoint detector, dense motion network, occlusion-aware
generator and discriminator, with the official module structure and parameter names, so that the ``kp_detector``,
``generator`` and ``discriminator`` state dicts of an official checkpoint load with ``strict=True``.

The config dataclasses mirror the official YAML ``model_params`` section key for key (defaults are the official
constructor defaults; fields without one are required), plus ``align_corners``, the project's single grid_sample
policy. Build them from YAML with :func:`motiontransfer.config.from_dict` and the networks with :func:`build_fomm`.

Keypoint dicts, as returned by :class:`KPDetector` and consumed by the other modules, hold ``'value'`` (B, K, 2) in
[-1, 1] coordinates (x first) and optionally ``'jacobian'`` (B, K, 2, 2); a missing Jacobian means identity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.nn.blocks import AntiAliasDownsample, DownBlock2d, Hourglass, ResBlock2d, SameBlock2d, UpBlock2d
from motiontransfer.nn.discriminators import MultiScaleDiscriminator
from motiontransfer.ops.heatmaps import soft_argmax
from motiontransfer.ops.motion import deform_sparse, dense_motion_field, heatmap_differences, sparse_motions
from motiontransfer.ops.warp import resize_flow, warp

Keypoints = Mapping[str, torch.Tensor]


# --------------------------------------------------------------------------------------------------------- configs


@dataclass
class CommonParams:
    """``model_params.common_params``: shared by all three networks."""

    num_kp: int
    num_channels: int = 3
    estimate_jacobian: bool = False


@dataclass
class KPDetectorParams:
    """``model_params.kp_detector_params``."""

    temperature: float
    block_expansion: int
    max_features: int
    num_blocks: int
    scale_factor: float = 1
    single_jacobian_map: bool = False
    pad: int = 0


@dataclass
class DenseMotionParams:
    """``model_params.generator_params.dense_motion_params``."""

    block_expansion: int
    max_features: int
    num_blocks: int
    scale_factor: float = 1
    kp_variance: float = 0.01


@dataclass
class GeneratorParams:
    """``model_params.generator_params``; without dense_motion_params the generator does not warp."""

    block_expansion: int
    max_features: int
    num_down_blocks: int
    num_bottleneck_blocks: int
    estimate_occlusion_map: bool = False
    dense_motion_params: DenseMotionParams | None = None


@dataclass
class DiscriminatorParams:
    """``model_params.discriminator_params``. Scales keep their YAML type: 1 -> key '1', 1.0 -> key '1-0'."""

    scales: tuple[int | float, ...] = (1,)
    block_expansion: int = 64
    max_features: int = 512
    num_blocks: int = 4
    sn: bool = False
    use_kp: bool = False
    kp_variance: float = 0.01


@dataclass
class FOMMConfig:
    """The official ``model_params`` plus two corner policies of ours.

    ``align_corners``: grid_sample's convention for every warp; False is what the official code does under
    torch >= 1.3, True what it did under torch 1.0 when it was trained. ``flow_resize_align_corners``: the
    convention of the generator's resizing of the dense motion to another resolution; False is the official code's
    under every torch since 0.4.1. Only True/True makes an identity motion an exact identity warp (with False the
    warp zooms by W / (W - 1) and resizing shifts border pixels by up to half a pixel, an L1 error of about 0.03 on
    64-px procedural faces), so our own configs use True/True; official checkpoints keep the defaults.
    """

    common_params: CommonParams
    kp_detector_params: KPDetectorParams
    generator_params: GeneratorParams
    discriminator_params: DiscriminatorParams = field(default_factory=DiscriminatorParams)
    align_corners: bool = False
    flow_resize_align_corners: bool = False


def vox256_config() -> FOMMConfig:
    """The official ``config/vox-256.yaml`` model parameters (discriminator with spectral norm)."""
    return FOMMConfig(
        common_params=CommonParams(num_kp=10, num_channels=3, estimate_jacobian=True),
        kp_detector_params=KPDetectorParams(temperature=0.1, block_expansion=32, max_features=1024, num_blocks=5,
                                            scale_factor=0.25),
        generator_params=GeneratorParams(
            block_expansion=64, max_features=512, num_down_blocks=2, num_bottleneck_blocks=6,
            estimate_occlusion_map=True,
            dense_motion_params=DenseMotionParams(block_expansion=64, max_features=1024, num_blocks=5,
                                                  scale_factor=0.25),
        ),
        discriminator_params=DiscriminatorParams(scales=(1,), block_expansion=32, max_features=512, num_blocks=4,
                                                 sn=True),
    )


# ---------------------------------------------------------------------------------------------- keypoint detector


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


# -------------------------------------------------------------------------------------------- dense motion network


class DenseMotionNetwork(nn.Module):
    """Predicts the dense backward flow T_{S<-D} and the occlusion map from the sparse keypoint motions (Sec. 3.1,
    3.2), at ``scale_factor`` of the input resolution.

    Input of the hourglass: (K+1) * (C+1) channels = for each of the K+1 motions (background first) the heatmap
    difference (Eq. 6) and the source warped by that motion (Eq. 4). Outputs: masks M_k (softmax over K+1), the flow
    of Eq. 7, and with ``estimate_occlusion_map`` a sigmoid occlusion map.

    Forward: source (B, C, H, W), kp_source, kp_driving (keypoint dicts) -> dict with 'sparse_deformed'
    (B, K+1, C, h, w), 'mask' (B, K+1, h, w), 'deformation' (B, h, w, 2) and optionally 'occlusion_map'
    (B, 1, h, w), with (h, w) = (H, W) * scale_factor.
    """

    def __init__(self, block_expansion: int, num_blocks: int, max_features: int, num_kp: int, num_channels: int,
                 estimate_occlusion_map: bool = False, scale_factor: float = 1, kp_variance: float = 0.01,
                 align_corners: bool = False) -> None:
        super().__init__()
        self.hourglass = Hourglass(block_expansion=block_expansion, in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
                          if estimate_occlusion_map else None)
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        self.align_corners = align_corners
        self.down = AntiAliasDownsample(num_channels, scale_factor) if scale_factor != 1 else None

    def forward(self, source: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints) -> dict[str, torch.Tensor]:
        """See the class docstring."""
        if self.down is not None:
            source = self.down(source)
        batch, _, height, width = source.shape
        size = (height, width)
        heatmaps = heatmap_differences(kp_driving["value"], kp_source["value"], size, self.kp_variance)
        sparse = sparse_motions(kp_source["value"], kp_source.get("jacobian"), kp_driving["value"],
                                kp_driving.get("jacobian"), size)
        deformed = deform_sparse(source, sparse, align_corners=self.align_corners)
        hourglass_input = torch.cat([heatmaps, deformed], dim=2).view(batch, -1, height, width)
        prediction = self.hourglass(hourglass_input)
        mask = torch.softmax(self.mask(prediction), dim=1)
        out = {"sparse_deformed": deformed, "mask": mask, "deformation": dense_motion_field(sparse, mask)}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(prediction))
        return out


# ------------------------------------------------------------------------------------------------------- generator


def _as_kwargs(params: DenseMotionParams | Mapping[str, Any]) -> dict[str, Any]:
    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)


class OcclusionAwareGenerator(nn.Module):
    """Occlusion-aware generator (Sec. 3.2; Johnson-style encoder / bottleneck / decoder): a 7x7 SameBlock2d,
    ``num_down_blocks`` DownBlock2d, then the features are warped with the dense motion (resized to their size) and
    multiplied by the occlusion map (Eq. 8), ``num_bottleneck_blocks`` ResBlock2d (``bottleneck.r{i}``),
    ``num_down_blocks`` UpBlock2d, a 7x7 conv and a sigmoid.

    Inference can cache the source-side work: ``forward(source, kp_source, kp_driving)`` equals
    ``decode(encode_source(source), source, kp_source, kp_driving)``.

    Returns a dict with 'prediction' (B, C, H, W) in [0, 1] and, with a dense motion network, 'mask',
    'sparse_deformed', 'deformation' (B, h, w, 2), 'occlusion_map' (if estimated) and 'deformed' (the source warped
    at full resolution, (B, C, H, W)).
    """

    def __init__(self, num_channels: int, num_kp: int, block_expansion: int, max_features: int,
                 num_down_blocks: int, num_bottleneck_blocks: int, estimate_occlusion_map: bool = False,
                 dense_motion_params: DenseMotionParams | Mapping[str, Any] | None = None,
                 align_corners: bool = False, flow_resize_align_corners: bool = False) -> None:
        super().__init__()
        self.dense_motion_network = None
        if dense_motion_params is not None:
            self.dense_motion_network = DenseMotionNetwork(
                num_kp=num_kp, num_channels=num_channels, estimate_occlusion_map=estimate_occlusion_map,
                align_corners=align_corners, **_as_kwargs(dense_motion_params))
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))
        self.down_blocks = nn.ModuleList([
            DownBlock2d(min(max_features, block_expansion * 2**i), min(max_features, block_expansion * 2 ** (i + 1)),
                        kernel_size=(3, 3), padding=(1, 1))
            for i in range(num_down_blocks)
        ])
        self.up_blocks = nn.ModuleList([
            UpBlock2d(min(max_features, block_expansion * 2 ** (num_down_blocks - i)),
                      min(max_features, block_expansion * 2 ** (num_down_blocks - i - 1)),
                      kernel_size=(3, 3), padding=(1, 1))
            for i in range(num_down_blocks)
        ])
        bottleneck_features = min(max_features, block_expansion * 2**num_down_blocks)
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(bottleneck_features, kernel_size=(3, 3), padding=(1, 1)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.estimate_occlusion_map = estimate_occlusion_map
        self.num_channels = num_channels
        self.align_corners = align_corners
        self.flow_resize_align_corners = flow_resize_align_corners

    def encode_source(self, source: torch.Tensor) -> torch.Tensor:
        """Source-side encoder (cacheable per source image).

        Args:
            source: (B, C, H, W) in [0, 1].

        Returns:
            (B, C', H / 2^n, W / 2^n) features, n = num_down_blocks, C' = min(max_features, be * 2^n).
        """
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        return out

    def decode(self, features: torch.Tensor, source: torch.Tensor, kp_source: Keypoints,
               kp_driving: Keypoints) -> dict[str, torch.Tensor]:
        """Warp the encoded source towards the driving keypoints and decode an image.

        Args:
            features: (B, C', h', w') from :meth:`encode_source` of ``source``.
            source: (B, C, H, W) source image (used by the dense motion network and for 'deformed').
            kp_source: keypoint dict of the source.
            kp_driving: keypoint dict of the driving frame.

        Returns:
            The output dict described in the class docstring.
        """
        out: dict[str, torch.Tensor] = {}
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network(source, kp_source=kp_source, kp_driving=kp_driving)
            out["mask"] = motion["mask"]
            out["sparse_deformed"] = motion["sparse_deformed"]
            out["deformation"] = motion["deformation"]
            flow = resize_flow(motion["deformation"], tuple(features.shape[2:]), self.flow_resize_align_corners)
            features = warp(features, flow, align_corners=self.align_corners)
            if "occlusion_map" in motion:
                occlusion = motion["occlusion_map"]
                out["occlusion_map"] = occlusion
                if occlusion.shape[2:] != features.shape[2:]:
                    occlusion = F.interpolate(occlusion, size=features.shape[2:], mode="bilinear",
                                              align_corners=False)
                features = features * occlusion  # Eq. 8
            full_flow = resize_flow(motion["deformation"], tuple(source.shape[2:]), self.flow_resize_align_corners)
            out["deformed"] = warp(source, full_flow, align_corners=self.align_corners)
        decoded = self.bottleneck(features)
        for block in self.up_blocks:
            decoded = block(decoded)
        out["prediction"] = torch.sigmoid(self.final(decoded))
        return out

    def forward(self, source: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints) -> dict[str, torch.Tensor]:
        """source (B, C, H, W), keypoint dicts -> output dict (see the class docstring)."""
        return self.decode(self.encode_source(source), source, kp_source, kp_driving)


# --------------------------------------------------------------------------------------------------------- builder


def build_kp_detector(config: FOMMConfig) -> KPDetector:
    """The :class:`KPDetector` of ``config``."""
    common, params = config.common_params, config.kp_detector_params
    return KPDetector(block_expansion=params.block_expansion, num_kp=common.num_kp, num_channels=common.num_channels,
                      max_features=params.max_features, num_blocks=params.num_blocks,
                      temperature=params.temperature, estimate_jacobian=common.estimate_jacobian,
                      scale_factor=params.scale_factor, single_jacobian_map=params.single_jacobian_map,
                      pad=params.pad)


def build_generator(config: FOMMConfig) -> OcclusionAwareGenerator:
    """The :class:`OcclusionAwareGenerator` of ``config``."""
    common, params = config.common_params, config.generator_params
    return OcclusionAwareGenerator(
        num_channels=common.num_channels, num_kp=common.num_kp, block_expansion=params.block_expansion,
        max_features=params.max_features, num_down_blocks=params.num_down_blocks,
        num_bottleneck_blocks=params.num_bottleneck_blocks, estimate_occlusion_map=params.estimate_occlusion_map,
        dense_motion_params=params.dense_motion_params, align_corners=config.align_corners,
        flow_resize_align_corners=config.flow_resize_align_corners)


def build_discriminator(config: FOMMConfig) -> MultiScaleDiscriminator:
    """The :class:`~motiontransfer.nn.discriminators.MultiScaleDiscriminator` of ``config``."""
    common, params = config.common_params, config.discriminator_params
    return MultiScaleDiscriminator(
        scales=params.scales, num_channels=common.num_channels, num_kp=common.num_kp,
        block_expansion=params.block_expansion, num_blocks=params.num_blocks, max_features=params.max_features,
        sn=params.sn, use_kp=params.use_kp, kp_variance=params.kp_variance)


def build_fomm(config: FOMMConfig) -> tuple[KPDetector, OcclusionAwareGenerator, MultiScaleDiscriminator]:
    """Build ``(kp_detector, generator, discriminator)`` from a :class:`FOMMConfig` (e.g. :func:`vox256_config`).
    Their state dicts match the official checkpoint's ``kp_detector``, ``generator`` and ``discriminator``."""
    return build_kp_detector(config), build_generator(config), build_discriminator(config)
