"""First Order Motion Model (Siarohin et al., NeurIPS 2019): keypoint detector
(:class:`~motiontransfer.models.keypoint_detector.KPDetector`, shared with KPVP), dense motion network,
occlusion-aware generator and discriminator, with the official module structure and parameter names, so that the
``kp_detector``, ``generator`` and ``discriminator`` state dicts of an official checkpoint load with ``strict=True``.

The networks are built from a :class:`~motiontransfer.families.fomm.config.FOMMConfig` (the official YAML
``model_params``) with :func:`build_fomm`.

Keypoint dicts, as returned by the detector and consumed by the other modules, hold ``'value'`` (B, K, 2) in
[-1, 1] coordinates (x first) and optionally ``'jacobian'`` (B, K, 2, 2); a missing Jacobian means identity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.errors import ConfigError
from motiontransfer.families.fomm.config import DenseMotionParams, FOMMConfig
from motiontransfer.models.keypoint_detector import KPDetector
from motiontransfer.nn.blocks import AntiAliasDownsample, DownBlock2d, Hourglass, ResBlock2d, SameBlock2d, UpBlock2d
from motiontransfer.nn.discriminators import MultiScaleDiscriminator
from motiontransfer.ops.motion import deform_sparse, dense_motion_field, heatmap_differences, sparse_motions
from motiontransfer.ops.warp import resize_flow, warp

Keypoints = Mapping[str, torch.Tensor]


# -------------------------------------------------------------------------------------------- dense motion network


class DenseMotionNetwork(nn.Module):
    """Predicts the dense backward flow T_{S<-D} and the occlusion map from the sparse keypoint motions (Sec. 3.1,
    3.2), at ``scale_factor`` of the input resolution.

    Input of the hourglass: (K+1) * (C+1) channels = for each of the K+1 motions (background first) the heatmap
    difference (Eq. 6) and the source warped by that motion (Eq. 4). Outputs: masks M_k (softmax over K+1), the flow
    of Eq. 7, and with ``estimate_occlusion_map`` ``num_occlusion_maps`` sigmoid occlusion maps (1 officially; one
    per generator resolution with the generator's ``multi_scale_occlusion``).

    Forward: source (B, C, H, W), kp_source, kp_driving (keypoint dicts) -> dict with 'sparse_deformed'
    (B, K+1, C, h, w), 'mask' (B, K+1, h, w), 'deformation' (B, h, w, 2) and optionally 'occlusion_map'
    (B, 1, h, w), the first map, and 'occlusion_maps' (B, num_occlusion_maps, h, w), all of them, with
    (h, w) = (H, W) * scale_factor.
    """

    def __init__(self, block_expansion: int, num_blocks: int, max_features: int, num_kp: int, num_channels: int,
                 estimate_occlusion_map: bool = False, scale_factor: float = 1, kp_variance: float = 0.01,
                 align_corners: bool = False, num_occlusion_maps: int = 1) -> None:
        super().__init__()
        self.hourglass = Hourglass(block_expansion=block_expansion, in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters, num_occlusion_maps, kernel_size=(7, 7),
                                    padding=(3, 3))
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
            occlusion_maps = torch.sigmoid(self.occlusion(prediction))
            out["occlusion_map"] = occlusion_maps[:, :1]
            out["occlusion_maps"] = occlusion_maps
        return out


# ------------------------------------------------------------------------------------------------------- generator


def _as_kwargs(params: DenseMotionParams | Mapping[str, Any]) -> dict[str, Any]:
    return dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)


class OcclusionAwareGenerator(nn.Module):
    """Occlusion-aware generator (Sec. 3.2; Johnson-style encoder / bottleneck / decoder): a 7x7 SameBlock2d,
    ``num_down_blocks`` DownBlock2d, then the features are warped with the dense motion (resized to their size) and
    multiplied by the occlusion map (Eq. 8), ``num_bottleneck_blocks`` ResBlock2d (``bottleneck.r{i}``),
    ``num_down_blocks`` UpBlock2d, a 7x7 conv and a sigmoid.

    With ``multi_scale_occlusion`` the features of every encoder level are warped and masked by their own occlusion
    map and concatenated to the decoder's input at that level (the up blocks after the first and the final conv take
    twice the channels); with ``image_blend`` the sigmoid output is blended with the warped source image by the
    finest occlusion map (see :class:`GeneratorParams`).

    Inference can cache the source-side work: ``forward(source, kp_source, kp_driving)`` equals
    ``decode(encode_source(source), source, kp_source, kp_driving)``.

    Returns a dict with 'prediction' (B, C, H, W) in [0, 1] and, with a dense motion network, 'mask',
    'sparse_deformed', 'deformation' (B, h, w, 2), 'occlusion_map' and 'occlusion_maps' (if estimated) and
    'deformed' (the source warped at full resolution, (B, C, H, W)); with ``image_blend`` also 'synthesis', the
    decoder's own image before the blend.
    """

    def __init__(self, num_channels: int, num_kp: int, block_expansion: int, max_features: int,
                 num_down_blocks: int, num_bottleneck_blocks: int, estimate_occlusion_map: bool = False,
                 dense_motion_params: DenseMotionParams | Mapping[str, Any] | None = None,
                 align_corners: bool = False, flow_resize_align_corners: bool = False, image_blend: bool = False,
                 multi_scale_occlusion: bool = False) -> None:
        super().__init__()
        if (image_blend or multi_scale_occlusion) and (dense_motion_params is None or not estimate_occlusion_map):
            raise ConfigError("image_blend and multi_scale_occlusion need a dense motion network with an occlusion map")
        self.dense_motion_network = None
        if dense_motion_params is not None:
            self.dense_motion_network = DenseMotionNetwork(
                num_kp=num_kp, num_channels=num_channels, estimate_occlusion_map=estimate_occlusion_map,
                align_corners=align_corners, num_occlusion_maps=num_down_blocks + 1 if multi_scale_occlusion else 1,
                **_as_kwargs(dense_motion_params))

        def channels(level: int) -> int:
            return min(max_features, block_expansion * 2**level)

        skip = 2 if multi_scale_occlusion else 1
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))
        self.down_blocks = nn.ModuleList([
            DownBlock2d(channels(i), channels(i + 1), kernel_size=(3, 3), padding=(1, 1))
            for i in range(num_down_blocks)
        ])
        self.up_blocks = nn.ModuleList([
            UpBlock2d(channels(num_down_blocks - i) * (1 if i == 0 else skip), channels(num_down_blocks - i - 1),
                      kernel_size=(3, 3), padding=(1, 1))
            for i in range(num_down_blocks)
        ])
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(channels(num_down_blocks), kernel_size=(3, 3),
                                                           padding=(1, 1)))
        self.final = nn.Conv2d(block_expansion * skip, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.estimate_occlusion_map = estimate_occlusion_map
        self.num_channels = num_channels
        self.align_corners = align_corners
        self.flow_resize_align_corners = flow_resize_align_corners
        self.image_blend = image_blend
        self.multi_scale_occlusion = multi_scale_occlusion

    def encode_source(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Source-side encoder (cacheable per source image).

        Args:
            source: (B, C, H, W) in [0, 1].

        Returns:
            The features of every level, finest first: ``num_down_blocks + 1`` tensors (B, C_l, H / 2^l, W / 2^l)
            with C_l = min(max_features, be * 2^l). The official decoder reads only the last one.
        """
        levels = [self.first(source)]
        for block in self.down_blocks:
            levels.append(block(levels[-1]))
        return levels

    def _warp_level(self, features: torch.Tensor, deformation: torch.Tensor,
                    occlusion: torch.Tensor | None) -> torch.Tensor:
        """Features (B, C, h, w) warped by the dense motion (B, h', w', 2) resized to (h, w), times the occlusion
        map (B, 1, h'', w'') resized to (h, w) when given (Eq. 8)."""
        size = tuple(features.shape[2:])
        warped = warp(features, resize_flow(deformation, size, self.flow_resize_align_corners),
                      align_corners=self.align_corners)
        if occlusion is None:
            return warped
        if occlusion.shape[2:] != warped.shape[2:]:
            occlusion = F.interpolate(occlusion, size=size, mode="bilinear", align_corners=False)
        return warped * occlusion

    def _synthesise(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """Decoder: bottleneck on the coarsest level, up blocks (with the finer levels concatenated when
        ``multi_scale_occlusion``), final 7x7 conv and sigmoid -> (B, C, H, W)."""
        decoded = self.bottleneck(levels[-1])
        for i, block in enumerate(self.up_blocks):
            if self.multi_scale_occlusion and i > 0:
                decoded = torch.cat([decoded, levels[-1 - i]], dim=1)
            decoded = block(decoded)
        if self.multi_scale_occlusion:
            decoded = torch.cat([decoded, levels[0]], dim=1)
        return torch.sigmoid(self.final(decoded))

    def decode(self, features: list[torch.Tensor], source: torch.Tensor, kp_source: Keypoints,
               kp_driving: Keypoints) -> dict[str, torch.Tensor]:
        """Warp the encoded source towards the driving keypoints and decode an image.

        Args:
            features: the levels from :meth:`encode_source` of ``source`` (finest first).
            source: (B, C, H, W) source image (used by the dense motion network and for 'deformed').
            kp_source: keypoint dict of the source.
            kp_driving: keypoint dict of the driving frame.

        Returns:
            The output dict described in the class docstring.
        """
        out: dict[str, torch.Tensor] = {}
        levels = list(features)
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network(source, kp_source=kp_source, kp_driving=kp_driving)
            for key in ("mask", "sparse_deformed", "deformation", "occlusion_map", "occlusion_maps"):
                if key in motion:
                    out[key] = motion[key]
            deformation = motion["deformation"]
            maps = motion.get("occlusion_maps")
            if self.multi_scale_occlusion:
                assert maps is not None
                levels = [self._warp_level(level, deformation, maps[:, index:index + 1])
                          for index, level in enumerate(levels)]
            else:
                levels[-1] = self._warp_level(levels[-1], deformation, motion.get("occlusion_map"))
            full_flow = resize_flow(deformation, tuple(source.shape[2:]), self.flow_resize_align_corners)
            out["deformed"] = warp(source, full_flow, align_corners=self.align_corners)
        prediction = self._synthesise(levels)
        if self.image_blend:
            visible = out["occlusion_map"]
            if visible.shape[2:] != prediction.shape[2:]:
                visible = F.interpolate(visible, size=prediction.shape[2:], mode="bilinear", align_corners=False)
            out["synthesis"] = prediction
            prediction = (1 - visible) * prediction + visible * out["deformed"]
        out["prediction"] = prediction
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
        flow_resize_align_corners=config.flow_resize_align_corners, image_blend=params.image_blend,
        multi_scale_occlusion=params.multi_scale_occlusion)


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
