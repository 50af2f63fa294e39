"""Monkey-Net (Siarohin et al., CVPR 2019): keypoints with covariances, part-based dense motion, keypoint-guided
U-Net generator and a keypoint-conditioned discriminator.

The official code runs every network on videos (B, C, T, H, W) with Conv3d kernels (1, 3, 3) and BatchNorm3d, i.e.
frame by frame; ours are the same networks in 2D on frames (B, C, H, W), with the official module and parameter
names, so an official state dict maps one to one once each Conv3d kernel loses its time axis
(:mod:`motiontransfer.families.monkeynet.convert`).

Keypoint dicts hold ``'mean'`` (B, K, 2) in [-1, 1] (x first) and, depending on ``common_params.kp_variance``,
``'var'``: (B, K, 2, 2) full covariances (``'matrix'``, Eq. 2), (B, K, 1, 1) one variance per keypoint
(``'single'``) or nothing (a number: a fixed isotropic variance, the "no Sigma_k" ablation).

The networks are built from a :class:`~motiontransfer.families.monkeynet.config.MonkeyNetConfig` (the official
YAML ``model_params`` key for key, plus two corner policies of ours). The paper's Table 2 ablations are config
switches: ``dense_motion_params: null`` (no F), ``use_correction: false`` (no F_residual), ``use_mask: false`` (no
F_coarse), a numeric ``kp_variance`` (no Sigma_k) and ``mask_embedding_params.use_deformed_source_image: false``
(no x in M).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.families.monkeynet.config import (
    DenseMotionParams,
    KpVariance,
    MonkeyNetConfig,
    MovementEmbeddingParams,
)
from motiontransfer.nn.blocks import Hourglass, HourglassDecoder, HourglassEncoder, ResBlock2d, SameBlock2d
from motiontransfer.nn.discriminators import DiscriminatorBlock
from motiontransfer.ops.grid import make_coordinate_grid
from motiontransfer.ops.heatmaps import (
    clip_covariance,
    heatmap_moments,
    keypoints_to_gaussian,
    keypoints_to_gaussian_covariance,
    soft_argmax,
)
from motiontransfer.ops.warp import resize_flow, warp

Keypoints = Mapping[str, torch.Tensor]
HEATMAP_EPS = 1e-7
"""Added to the detector's heatmaps before their moments, as the official code (no exactly singular Sigma)."""


# ---------------------------------------------------------------------------------------------------- keypoints


def keypoint_heatmaps(kp: Keypoints, spatial_size: tuple[int, int], kp_variance: KpVariance) -> torch.Tensor:
    """Gaussian maps of keypoints (the official ``kp2gaussian``), peak value 1.

    Args:
        kp: ``'mean'`` (B, K, 2) and, for ``'matrix'`` / ``'single'``, ``'var'`` (B, K, 2, 2) / (B, K, 1, 1).
        spatial_size: (H, W).
        kp_variance: ``'matrix'`` (full covariances), ``'single'`` (one variance per keypoint) or a number.

    Returns:
        (B, K, H, W).
    """
    mean = kp["mean"]
    if kp_variance == "matrix":
        return keypoints_to_gaussian_covariance(mean, kp["var"], spatial_size)
    if kp_variance == "single":
        height, width = spatial_size
        grid = make_coordinate_grid(height, width, device=mean.device, dtype=mean.dtype)
        squared = ((grid - mean[..., None, None, :]) ** 2).sum(-1)
        return torch.exp(-0.5 * squared / kp["var"][..., 0, 0][..., None, None])
    return keypoints_to_gaussian(mean, spatial_size, float(kp_variance))


def heatmap_keypoints(probabilities: torch.Tensor, kp_variance: KpVariance,
                      clip_variance: float | None = None) -> dict[str, torch.Tensor]:
    """Keypoints from detector heatmaps (the official ``gaussian2kp``; Eq. 1-2): means, and covariances clipped to
    a smallest singular value of ``clip_variance`` (``'matrix'``) or the mean of the two axis variances
    (``'single'``).

    Args:
        probabilities: (B, K, H, W) softmax maps.

    Returns:
        ``{'mean': (B, K, 2)}`` plus ``'var'`` (B, K, 2, 2) or (B, K, 1, 1) unless kp_variance is a number.
    """
    mean, covariance = heatmap_moments(probabilities, eps=HEATMAP_EPS)
    if kp_variance == "matrix":
        var = clip_covariance(covariance, clip_variance) if clip_variance else covariance
        return {"mean": mean, "var": var}
    if kp_variance == "single":
        axes = torch.diagonal(covariance, dim1=-2, dim2=-1)
        return {"mean": mean, "var": axes.mean(-1)[..., None, None]}
    return {"mean": mean}


class KPDetector(nn.Module):
    """Keypoint detector Delta (Sec. 3.1): an hourglass with a final 3x3 convolution to K maps, a spatial softmax
    with ``temperature``, and the maps' moments as keypoints.

    Shapes: (B, C, H, W) in [0, 1] -> keypoint dict (see the module docstring) plus ``'heatmap'`` (B, K, h, w).
    """

    def __init__(self, block_expansion: int, num_kp: int, num_channels: int, max_features: int, num_blocks: int,
                 temperature: float, kp_variance: KpVariance, scale_factor: float = 1.0,
                 clip_variance: float | None = None) -> None:
        super().__init__()
        self.predictor = Hourglass(block_expansion, in_features=num_channels, num_blocks=num_blocks,
                                   max_features=max_features, out_features=num_kp)
        self.temperature = temperature
        self.kp_variance = kp_variance
        self.scale_factor = scale_factor
        self.clip_variance = clip_variance

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, C, H, W) -> ``{'mean', 'var' (unless fixed), 'heatmap'}``."""
        if self.scale_factor != 1:
            x = F.interpolate(x, scale_factor=(self.scale_factor, self.scale_factor))
        probabilities, _ = soft_argmax(self.predictor(x), self.temperature)
        kp = heatmap_keypoints(probabilities, self.kp_variance, self.clip_variance)
        kp["heatmap"] = probabilities
        return kp


# ------------------------------------------------------------------------------------------- movement embedding


class MovementEmbedding(nn.Module):
    """Keypoint representation for the other networks (the official ``MovementEmbeddingModule``; no parameters).

    For each keypoint k (after the background one when ``add_bg_feature_map``), in this channel order: its
    normalised heatmap (1), the displacement h_s - h_d (2), the source warped by that displacement (C).

    Forward: source (B, C, H, W), driving and source keypoint dicts -> (B, out_channels, h, w) with (h, w) the
    source size times ``scale_factor``.
    """

    def __init__(self, num_kp: int, kp_variance: KpVariance, num_channels: int, params: MovementEmbeddingParams,
                 align_corners: bool = True) -> None:
        super().__init__()
        self.params = params
        self.num_kp = num_kp
        self.kp_variance = kp_variance
        self.align_corners = align_corners
        per_kp = 1 * params.use_heatmap + 2 * params.use_difference + num_channels * params.use_deformed_source_image
        self.out_channels = per_kp * (num_kp + params.add_bg_feature_map)

    def normalize_heatmap(self, heatmap: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) maps divided by their sums (``norm_const: sum``) or by the constant."""
        if self.params.norm_const == "sum":
            return heatmap / heatmap.sum(dim=(2, 3), keepdim=True)
        return heatmap / float(self.params.norm_const)

    def forward(self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints) -> torch.Tensor:
        """See the class docstring."""
        params = self.params
        if params.scale_factor != 1:
            source = F.interpolate(source, scale_factor=(params.scale_factor, params.scale_factor))
        batch, _, height, width = source.shape
        parts: list[torch.Tensor] = []  # each (B, K', c, h, w)
        if params.use_heatmap:
            heatmap = self.normalize_heatmap(keypoint_heatmaps(kp_driving, (height, width), self.kp_variance))
            if params.heatmap_type == "difference":
                heatmap = heatmap - self.normalize_heatmap(
                    keypoint_heatmaps(kp_source, (height, width), self.kp_variance))
            if params.add_bg_feature_map:
                heatmap = torch.cat([heatmap.new_zeros(batch, 1, height, width), heatmap], dim=1)
            parts.append(heatmap.unsqueeze(2))
        if params.use_difference or params.use_deformed_source_image:
            shift = self.displacements(kp_driving, kp_source)  # (B, K', 2)
            if params.use_difference:
                parts.append(shift[..., None, None].expand(-1, -1, -1, height, width))
            if params.use_deformed_source_image:
                parts.append(self.shifted_sources(source, shift))
        return torch.cat(parts, dim=2).reshape(batch, -1, height, width)

    def displacements(self, kp_driving: Keypoints, kp_source: Keypoints) -> torch.Tensor:
        """h_s - h_d per keypoint (B, K', 2), with a zero background row first when ``add_bg_feature_map``."""
        shift = kp_source["mean"] - kp_driving["mean"]
        if self.params.add_bg_feature_map:
            shift = torch.cat([shift.new_zeros(shift.shape[0], 1, 2), shift], dim=1)
        return shift

    def shifted_sources(self, source: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """The source sampled at z + shift_k for every k: (B, C, h, w), (B, K', 2) -> (B, K', C, h, w)."""
        batch, channels, height, width = source.shape
        count = shift.shape[1]
        grid = make_coordinate_grid(height, width, device=source.device, dtype=source.dtype)
        grids = grid[None, None] + shift[:, :, None, None, :]
        repeated = source.unsqueeze(1).expand(-1, count, -1, -1, -1).reshape(batch * count, channels, height, width)
        warped = warp(repeated, grids.reshape(batch * count, height, width, 2), align_corners=self.align_corners)
        return warped.view(batch, count, channels, height, width)


def optional_embedding(num_kp: int, kp_variance: KpVariance, num_channels: int,
                       params: MovementEmbeddingParams | None, align_corners: bool) -> MovementEmbedding | None:
    """A :class:`MovementEmbedding` when ``params`` are given (a config's ``kp_embedding_params``), else None."""
    if params is None:
        return None
    return MovementEmbedding(num_kp, kp_variance, num_channels, params, align_corners)


def embedding_channels(embedding: MovementEmbedding | None) -> int:
    """Channels an optional embedding adds (0 without one)."""
    return 0 if embedding is None else embedding.out_channels


# ------------------------------------------------------------------------------------------------ dense motion


class DenseMotionModule(nn.Module):
    """Motion network M (Sec. 3.2, Fig. 3): from the mask embedding of the source and both keypoint sets, an
    hourglass predicts K + 1 part masks (softmax; the first is the static background) and a residual flow;
    F = F_coarse + F_residual with F_coarse = sum_k M_k rho(h_s,k - h_d,k) (Eq. 5-6), returned as the absolute
    sampling grid z + F(z). The last convolution starts at zero with background bias ``bg_init``, so the initial
    motion is the identity.

    Forward: source (B, C, H, W), keypoint dicts -> ``deformation`` (B, h, w, 2) (sampling grid in [-1, 1]),
    ``mask`` (B, K+1, h, w) when ``use_mask``, ``correction`` (B, 2, h, w) when ``use_correction``.
    """

    def __init__(self, num_kp: int, num_channels: int, kp_variance: KpVariance, params: DenseMotionParams,
                 align_corners: bool = True) -> None:
        super().__init__()
        mask_params = MovementEmbeddingParams(**{**vars(params.mask_embedding_params), "add_bg_feature_map": True})
        self.mask_embedding = MovementEmbedding(num_kp, kp_variance, num_channels, mask_params, align_corners)
        difference_params = MovementEmbeddingParams(use_difference=True, use_heatmap=False,
                                                    use_deformed_source_image=False, add_bg_feature_map=True)
        self.difference_embedding = MovementEmbedding(num_kp, kp_variance, num_channels, difference_params,
                                                      align_corners)
        channels = self.mask_embedding.out_channels
        self.group_blocks = nn.ModuleList([
            SameBlock2d(channels, channels, groups=num_kp + 1, kernel_size=1, padding=0)
            for _ in range(params.num_group_blocks)])
        out_features = (num_kp + 1) * params.use_mask + 2 * params.use_correction
        self.hourglass = Hourglass(params.block_expansion, in_features=channels, num_blocks=params.num_blocks,
                                   max_features=params.max_features, out_features=out_features)
        final = self.hourglass.decoder.conv
        assert final is not None
        with torch.no_grad():
            final.weight.zero_()
            bias = [params.bg_init] + [0.0] * num_kp if params.use_mask else []
            final.bias.copy_(torch.tensor(bias + [0.0, 0.0] * params.use_correction))
        self.num_kp = num_kp
        self.use_mask = params.use_mask
        self.use_correction = params.use_correction
        self.scale_factor = params.scale_factor

    def forward(self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints) -> dict[str, torch.Tensor]:
        """See the class docstring."""
        if self.scale_factor != 1:
            source = F.interpolate(source, scale_factor=(self.scale_factor, self.scale_factor))
        prediction = self.mask_embedding(source, kp_driving, kp_source)
        for block in self.group_blocks:
            prediction = F.leaky_relu(block(prediction), 0.2)
        prediction = self.hourglass(prediction)
        batch, _, height, width = prediction.shape
        out: dict[str, torch.Tensor] = {}
        flow = prediction.new_zeros(batch, 2, height, width)
        if self.use_mask:
            mask = torch.softmax(prediction[:, : self.num_kp + 1], dim=1)
            shift = self.difference_embedding.displacements(kp_driving, kp_source)  # (B, K+1, 2)
            flow = flow + (mask.unsqueeze(2) * shift[..., None, None]).sum(dim=1)  # F_coarse
            out["mask"] = mask
        if self.use_correction:
            correction = prediction[:, -2:]
            flow = flow + correction  # F_residual
            out["correction"] = correction
        grid = make_coordinate_grid(height, width, device=flow.device, dtype=flow.dtype)
        out["deformation"] = flow.permute(0, 2, 3, 1) + grid
        return out


def identity_deformation(source: torch.Tensor) -> dict[str, torch.Tensor]:
    """The "no F" ablation's motion: the identity sampling grid (B, H, W, 2) of the source's size."""
    batch, _, height, width = source.shape
    grid = make_coordinate_grid(height, width, device=source.device, dtype=source.dtype)
    return {"deformation": grid.expand(batch, -1, -1, -1)}


def resize_deformation(deformation: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """A sampling grid (B, h, w, 2) at another resolution, by ``GeneratorParams.interpolation_mode``:
    ``nearest``, ``trilinear`` (bilinear, align_corners False) or ``aligned`` (bilinear, align_corners True)."""
    if tuple(deformation.shape[1:3]) == tuple(size):
        return deformation
    if mode == "nearest":
        return F.interpolate(deformation.permute(0, 3, 1, 2), size=size, mode="nearest").permute(0, 2, 3, 1)
    return resize_flow(deformation, size, align_corners=mode == "aligned")


# --------------------------------------------------------------------------------------------------- generator


class MotionTransferGenerator(nn.Module):
    """Generator G (Sec. 3.3): a U-Net whose encoder features of the source (all levels, the image included) are
    warped by the dense motion and joined with the keypoint embedding resized to each level, decoded, refined by
    ``num_refinement_blocks`` residual blocks and a 1x1 ``conv-last``, and squashed by a sigmoid.

    Inference can cache the source-side encoder: ``forward(s, kd, ks)`` equals ``decode(encode_source(s), s, kd,
    ks)``.

    Returns a dict with ``prediction`` (B, C, H, W) in [0, 1], ``deformed`` (the source warped by the motion,
    (B, C, H, W)), ``deformation`` (B, h, w, 2) and, from the motion network, ``mask`` / ``correction``.
    """

    def __init__(self, num_channels: int, num_kp: int, kp_variance: KpVariance, block_expansion: int,
                 max_features: int, num_blocks: int, num_refinement_blocks: int,
                 dense_motion_params: DenseMotionParams | None = None,
                 kp_embedding_params: MovementEmbeddingParams | None = None, align_corners: bool = True,
                 interpolation_mode: str = "nearest") -> None:
        super().__init__()
        self.appearance_encoder = HourglassEncoder(block_expansion, num_channels, num_blocks, max_features)
        self.kp_embedding_module = optional_embedding(num_kp, kp_variance, num_channels, kp_embedding_params,
                                                      align_corners)
        embedding_features = embedding_channels(self.kp_embedding_module)
        self.dense_motion_module = None
        if dense_motion_params is not None:
            self.dense_motion_module = DenseMotionModule(num_kp, num_channels, kp_variance, dense_motion_params,
                                                         align_corners)
        self.video_decoder = HourglassDecoder(block_expansion, num_channels, num_blocks, max_features,
                                              additional_features_for_block=embedding_features)
        features = self.video_decoder.out_filters
        self.refinement_module = nn.Sequential()
        for i in range(num_refinement_blocks):
            self.refinement_module.add_module(f"r{i}", ResBlock2d(features, kernel_size=3, padding=1))
        self.refinement_module.add_module("conv-last", nn.Conv2d(features, num_channels, kernel_size=1))
        self.align_corners = align_corners
        self.interpolation_mode = interpolation_mode

    def encode_source(self, source: torch.Tensor) -> list[torch.Tensor]:
        """(B, C, H, W) -> the encoder's list [source, d_1, ..., d_n] (cacheable per source image)."""
        return self.appearance_encoder(source)

    def motion(self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints) -> dict[str, torch.Tensor]:
        """The dense motion module's output (identity without one)."""
        if self.dense_motion_module is None:
            return identity_deformation(source)
        return self.dense_motion_module(source, kp_driving, kp_source)

    def warp_to(self, image: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Backward-warp (B, C, h, w) features with the deformation resized to their resolution."""
        grid = resize_deformation(deformation, tuple(image.shape[2:]), self.interpolation_mode)
        return warp(image, grid, align_corners=self.align_corners)

    def decode(self, skips: list[torch.Tensor], source: torch.Tensor, kp_driving: Keypoints,
               kp_source: Keypoints) -> dict[str, torch.Tensor]:
        """Warp the cached encoder features towards the driving keypoints and decode (see the class docstring)."""
        out = dict(self.motion(source, kp_driving, kp_source))
        deformation = out["deformation"]
        warped = [self.warp_to(skip, deformation) for skip in skips]
        if self.kp_embedding_module is not None:
            embedding = self.kp_embedding_module(source, kp_driving, kp_source)
            warped = [torch.cat([skip, F.interpolate(embedding, size=tuple(skip.shape[2:]))], dim=1)
                      for skip in warped]
        out["deformed"] = self.warp_to(source, deformation)
        out["prediction"] = torch.sigmoid(self.refinement_module(self.video_decoder(warped)))
        return out

    def forward(self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints) -> dict[str, torch.Tensor]:
        """source (B, C, H, W), driving and source keypoint dicts -> output dict (see the class docstring)."""
        return self.decode(self.encode_source(source), source, kp_driving, kp_source)


# ----------------------------------------------------------------------------------------------- discriminator


class Discriminator(nn.Module):
    """Pix2pix-like discriminator with keypoint embedding (the official Monkey-Net one): the image joined with the
    keypoint embedding, ``num_blocks`` :class:`~motiontransfer.nn.discriminators.DiscriminatorBlock` (4x4 unpadded
    convolution, instance norm from block 1, LeakyReLU 0.2, 2x2 average pooling after every block), a 1x1
    convolution to one channel.

    Forward: image (B, C, H, W), driving and source keypoint dicts -> (feature maps [image, block_1, ...,
    block_n], prediction map (B, 1, h, w)). The image itself is the first "feature", so feature matching with
    weights [10, 10, 10, 10, 1] starts with a pixel L1 term, as the paper's loss.
    """

    def __init__(self, num_channels: int = 3, num_kp: int = 10, kp_variance: KpVariance = 0.01,
                 block_expansion: int = 64, num_blocks: int = 4, max_features: int = 512, scale_factor: float = 1.0,
                 kp_embedding_params: MovementEmbeddingParams | None = None, align_corners: bool = True) -> None:
        super().__init__()
        self.kp_embedding = optional_embedding(num_kp, kp_variance, num_channels, kp_embedding_params, align_corners)
        blocks = []
        for i in range(num_blocks):
            in_channels = (num_channels + embedding_channels(self.kp_embedding) if i == 0
                           else min(max_features, block_expansion * 2**i))
            blocks.append(DiscriminatorBlock(in_channels, min(max_features, block_expansion * 2 ** (i + 1)),
                                             norm=i != 0, kernel_size=4, pool=True))
        self.down_blocks = nn.ModuleList(blocks)
        self.conv = nn.Conv2d(blocks[-1].conv.out_channels, 1, kernel_size=1)
        self.scale_factor = scale_factor

    def forward(self, x: torch.Tensor, kp_driving: Keypoints | None = None,
                kp_source: Keypoints | None = None) -> tuple[list[torch.Tensor], torch.Tensor]:
        """See the class docstring."""
        maps = [x]
        if self.scale_factor != 1:
            x = F.interpolate(x, scale_factor=(self.scale_factor, self.scale_factor))
        out = x
        if self.kp_embedding is not None:
            if kp_driving is None or kp_source is None:
                raise ValueError("this discriminator embeds keypoints and needs the driving and source keypoints")
            out = torch.cat([x, self.kp_embedding(x, kp_driving, kp_source)], dim=1)
        for block in self.down_blocks:
            out = block(out)
            maps.append(out)
        return maps, self.conv(out)


# ------------------------------------------------------------------------------------------------------ builders


def build_kp_detector(config: MonkeyNetConfig) -> KPDetector:
    """The :class:`KPDetector` of ``config``."""
    common, params = config.common_params, config.kp_detector_params
    return KPDetector(params.block_expansion, common.num_kp, common.num_channels, params.max_features,
                      params.num_blocks, params.temperature, common.kp_variance, params.scale_factor,
                      params.clip_variance)


def build_generator(config: MonkeyNetConfig) -> MotionTransferGenerator:
    """The :class:`MotionTransferGenerator` of ``config``."""
    common, params = config.common_params, config.generator_params
    return MotionTransferGenerator(common.num_channels, common.num_kp, common.kp_variance, params.block_expansion,
                                   params.max_features, params.num_blocks, params.num_refinement_blocks,
                                   params.dense_motion_params, params.kp_embedding_params, config.align_corners,
                                   params.interpolation_mode)


def build_discriminator(config: MonkeyNetConfig) -> Discriminator:
    """The :class:`Discriminator` of ``config``."""
    common, params = config.common_params, config.discriminator_params
    return Discriminator(common.num_channels, common.num_kp, common.kp_variance, params.block_expansion,
                         params.num_blocks, params.max_features, params.scale_factor, params.kp_embedding_params,
                         config.align_corners)


def build_monkeynet(config: MonkeyNetConfig) -> tuple[KPDetector, MotionTransferGenerator, Discriminator]:
    """``(kp_detector, generator, discriminator)`` of ``config``; their state dicts match an official checkpoint's
    after :mod:`motiontransfer.families.monkeynet.convert` drops the Conv3d time axis."""
    return build_kp_detector(config), build_generator(config), build_discriminator(config)


def detach_keypoints(kp: Keypoints) -> dict[str, torch.Tensor]:
    """A keypoint dict with every tensor detached."""
    return {key: value.detach() for key, value in kp.items()}


def select_keypoints(kp: Keypoints, index: Any) -> dict[str, torch.Tensor]:
    """A keypoint dict indexed along the batch (``'heatmap'`` dropped)."""
    return {key: value[index] for key, value in kp.items() if key != "heatmap"}


# -------------------------------------------------------------------------------------------- image-to-video


class KeypointPredictor(nn.Module):
    """The image-to-video keypoint predictor (the official ``PredictionModule``; Sec. 4.4): a GRU over keypoint
    sequences whose input at each time step is the keypoints of that frame (zeros after the observed ones) and
    whose output, through a linear layer, is that frame's keypoints: means through tanh and, with full covariances,
    ``A^T A`` of a predicted 2x2 matrix A (symmetric positive semi-definite).

    Args:
        num_kp: K.
        with_covariance: the sequences carry (B, T, K, 2, 2) covariances (``kp_variance: matrix``); otherwise
            means only.
        num_features, num_layers, dropout: the GRU's hidden size, depth and dropout between layers.

    Shapes: mean (B, T, K, 2) [and var (B, T, K, 2, 2)] -> the same dict for every time step.
    """

    def __init__(self, num_kp: int, with_covariance: bool, num_features: int = 1024, num_layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        input_size = num_kp * (2 + 4 * with_covariance)
        self.rnn = nn.GRU(input_size=input_size, hidden_size=num_features, num_layers=num_layers,
                          dropout=dropout if num_layers > 1 else 0.0, batch_first=True)
        self.linear = nn.Linear(num_features, input_size)
        self.num_kp = num_kp
        self.with_covariance = with_covariance

    def forward(self, mean: torch.Tensor, var: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """See the class docstring."""
        batch, steps = mean.shape[:2]
        inputs = [mean.reshape(batch, steps, -1)]
        if self.with_covariance:
            if var is None:
                raise ValueError("this predictor works on covariances too; pass var (B, T, K, 2, 2)")
            inputs.append(var.reshape(batch, steps, -1))
        hidden, _ = self.rnn(torch.cat(inputs, dim=-1))
        output = self.linear(hidden).view(batch, steps, self.num_kp, -1)
        out = {"mean": torch.tanh(output[..., :2])}
        if self.with_covariance:
            root = output[..., 2:].reshape(batch, steps, self.num_kp, 2, 2)
            out["var"] = root.transpose(-1, -2) @ root
        return out

    def rollout(self, mean: torch.Tensor, var: torch.Tensor | None, num_frames: int
                ) -> dict[str, torch.Tensor]:
        """Predict ``num_frames`` frames from the observed first ones (the official protocol: unobserved steps are
        fed as zeros, observed ones are kept as given).

        Args:
            mean: (B, T0, K, 2) observed means (T0 <= num_frames). var: (B, T0, K, 2, 2) or None.

        Returns:
            ``mean`` (B, num_frames, K, 2) and, with covariances, ``var`` (B, num_frames, K, 2, 2).
        """
        observed = mean.shape[1]
        padded_mean = F.pad(mean, (0, 0, 0, 0, 0, num_frames - observed))
        padded_var = None if var is None else F.pad(var, (0, 0, 0, 0, 0, 0, 0, num_frames - observed))
        out = self(padded_mean, padded_var if self.with_covariance else None)
        out["mean"] = torch.cat([mean, out["mean"][:, observed:]], dim=1)
        if "var" in out:
            assert var is not None
            out["var"] = torch.cat([var, out["var"][:, observed:]], dim=1)
        return out
