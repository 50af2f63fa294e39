"""Training losses shared by the model families: image pyramid, VGG19 perceptual pyramid (with an offline pixel
fallback), FOMM's equivariance constraints, GAN losses (LSGAN, feature matching, non-saturating, R1) and the
Gaussian KL divergence.

Equation numbers refer to the FOMM paper (Siarohin et al., NeurIPS 2019): Eq. 9 is the perceptual reconstruction
loss, Eqs. 10-13 the (extended) equivariance constraints. Every loss returns a scalar tensor and leaves the loss
weights of a configuration (``loss_weights`` in FOMM) to the caller, except where FOMM folds them into the loss
(per-layer perceptual and feature-matching weights).

No weights are ever downloaded: VGG19 is built in pure PyTorch and loads a torchvision-format state dict
(``vgg19-dcbb9e9d.pth``) from a configured file or the torch hub cache when one exists.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.errors import ConfigError, InputFileError, UserError
from motiontransfer.nn.blocks import AntiAliasDownsample, sequential_taps
from motiontransfer.nn.discriminators import scale_key
from motiontransfer.ops.linalg import inverse_2x2
from motiontransfer.ops.transforms import CoordinateTransform
from motiontransfer.pretrained import find_vgg19_weights, vgg19_search_locations

FallbackMode = Literal["l1_pyramid", "none"]

# ---------------------------------------------------------------------------------------------------------------
# Image pyramid
# ---------------------------------------------------------------------------------------------------------------


def pyramid_key(scale: float) -> str:
    """Dict key of a pyramid level, as FOMM: ``prediction_<str(scale)>`` (1 -> 'prediction_1', 0.5 ->
    'prediction_0.5')."""
    return f"prediction_{scale}"


class ImagePyramid(nn.Module):
    """Anti-aliased downsampled copies of an image (FOMM's ImagePyramide, Sec. 3.3).

    Each level is an :class:`~motiontransfer.nn.blocks.AntiAliasDownsample` (Gaussian blur with zero padding, then
    subsampling), kept in the ModuleDict ``downs`` under ``str(scale)`` with '.' replaced by '-'. The zero padding
    darkens the outermost few pixels of the blurred levels, exactly as the official code does.

    Args:
        scales: pyramid scales in (0, 1], e.g. (1, 0.5, 0.25, 0.125).
        num_channels: image channels C.

    Forward: (B, C, H, W) -> dict ``{pyramid_key(s): (B, C, floor(H s), floor(W s))}`` for every scale s
    (keys 'prediction_1', 'prediction_0.5', ..., the names :class:`~motiontransfer.nn.MultiScaleDiscriminator`
    reads).
    """

    def __init__(self, scales: Sequence[float], num_channels: int) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.downs = nn.ModuleDict({scale_key(s): AntiAliasDownsample(num_channels, s) for s in self.scales})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """See the class docstring."""
        return {pyramid_key(s): self.downs[scale_key(s)](x) for s in self.scales}


# ---------------------------------------------------------------------------------------------------------------
# VGG19 features (pure PyTorch, torchvision key layout)
# ---------------------------------------------------------------------------------------------------------------

# torchvision's vgg19 ("E") configuration up to relu5_1: conv widths, "M" = 2x2 max pool.
_VGG19_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                                        512)
# Indices in ``features`` after which FOMM's five slices end: relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG19_SLICE_ENDS: tuple[int, ...] = (1, 6, 11, 20, 29)
# Four 2x2 max pools precede relu5_1, so the input needs at least 2^4 pixels per side.
VGG19_MIN_SIZE = 16
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg19_layers() -> list[nn.Module]:
    """The first 30 layers of torchvision's ``vgg19().features`` (indices 0..29, ending with relu5_1)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            channels = int(item)
    return layers


class Vgg19Features(nn.Module):
    """The five VGG19 feature slices of FOMM's perceptual loss (Eq. 9), with ImageNet normalisation inside.

    ``features`` is an ``nn.Sequential`` laid out like torchvision's ``vgg19().features[:30]``, so its parameters
    are named ``features.0.weight``, ``features.0.bias``, ..., ``features.28.bias`` as in torchvision's state dict
    (see :func:`load_vgg19_weights`). The slices end after layers 1, 6, 11, 20 and 29 (relu1_1, relu2_1, relu3_1,
    relu4_1, relu5_1). Parameters are frozen (``requires_grad=False``); gradients still flow to the input.
    The weights are random until loaded.

    Forward: images (B, 3, H, W) in [0, 1], H, W >= 16 -> list of 5 feature maps
    (B, 64, H, W), (B, 128, H/2, W/2), (B, 256, H/4, W/4), (B, 512, H/8, W/8), (B, 512, H/16, W/16) (floored).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*_vgg19_layers())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """See the class docstring."""
        if x.shape[1] != 3:
            raise ValueError(f"VGG19 features need 3-channel images, got {x.shape[1]} channels")
        if min(x.shape[2:]) < VGG19_MIN_SIZE:
            raise ValueError(f"VGG19 features need images of at least {VGG19_MIN_SIZE} px per side, "
                             f"got {tuple(x.shape[2:])}")
        return sequential_taps(self.features, (x - self.mean.to(x)) / self.std.to(x), VGG19_SLICE_ENDS)




def load_vgg19_weights(path: str | os.PathLike[str]) -> Vgg19Features:
    """Build a frozen :class:`Vgg19Features` from a torchvision-format VGG19 state dict file.

    The file (read with ``torch.load(weights_only=True)`` on the CPU) may hold a full ``vgg19`` state dict or only
    its ``features.*`` entries; ``classifier.*`` and the features after relu5_1 (``features.30`` and on) are
    ignored.

    Raises:
        InputFileError: the file cannot be read or is not a VGG19 state dict (missing keys, wrong shapes).
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unreadable / not a torch file / pickled objects refused by weights_only
        raise InputFileError(path, f"cannot read VGG19 weights: {error}") from error
    if not isinstance(state, Mapping):
        raise InputFileError(path, "is not a state dict (expected torchvision's vgg19 weights)")
    model = Vgg19Features()
    own = model.state_dict()
    selected = {key: value for key, value in state.items() if key in own}
    missing = sorted(set(own) - set(selected))
    if missing:
        raise InputFileError(path, f"is not a torchvision VGG19 state dict (missing {', '.join(missing[:4])}"
                                   f"{', ...' if len(missing) > 4 else ''})")
    for key, value in selected.items():
        if not isinstance(value, torch.Tensor) or value.shape != own[key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise InputFileError(path, f"{key} has shape {shape}, expected {tuple(own[key].shape)}")
    model.load_state_dict(selected)
    return model.eval()


# ---------------------------------------------------------------------------------------------------------------
# Perceptual pyramid loss (Eq. 9 on a pyramid)
# ---------------------------------------------------------------------------------------------------------------


class PerceptualPyramidLoss(nn.Module):
    """FOMM's multi-scale perceptual reconstruction loss (Eq. 9 on an image pyramid), with an offline fallback.

    With VGG19 weights: ``sum_s sum_i weights[i] * mean |phi_i(pred_s) - phi_i(target_s)|`` over pyramid scales s and
    the five VGG slices phi_i (target features are computed without gradient, as FOMM detaches them). Scales at which
    the image would be smaller than 16 px on a side (VGG19 needs 16 px for its four max pools; e.g. 0.125 at 64 px)
    are skipped; a ValueError is raised only if no scale is left.

    Without weights (see :func:`motiontransfer.pretrained.find_vgg19_weights`) the loss warns once per loss object,
    naming the places searched, and computes the fallback: with ``"l1_pyramid"`` a pixel L1 pyramid
    ``sum_s sum(weights) * mean |pred_s - target_s|`` over all scales. Multiplying by the sum of the VGG slice
    weights keeps its magnitude comparable to the perceptual loss (each VGG term is itself an L1 of features), so
    configured loss weights stay meaningful; the fallback matters because without a reconstruction loss the
    generator gets no gradient at all. With ``"none"`` the constructor raises :class:`UserError` instead.

    Args:
        scales: pyramid scales (FOMM: 1, 0.5, 0.25, 0.125).
        weights: per-slice weights, five values (FOMM: 10 each).
        vgg_weights: configured path of a torchvision ``vgg19-*.pth`` file, or None to look in the torch hub cache.
        fallback: "l1_pyramid" or "none" (see above).
        num_channels: image channels C (3 for VGG; any count for the fallback).

    Attributes:
        uses_vgg: True when VGG19 weights were found and loaded.

    Forward: prediction (B, C, H, W) and target (B, C, H, W), values in [0, 1] -> scalar. The module's buffers and
    VGG follow the device and dtype of the prediction.
    """

    def __init__(
        self,
        scales: Sequence[float] = (1, 0.5, 0.25, 0.125),
        weights: Sequence[float] = (10.0,) * 5,
        vgg_weights: str | os.PathLike[str] | None = None,
        fallback: FallbackMode = "l1_pyramid",
        num_channels: int = 3,
    ) -> None:
        super().__init__()
        if fallback not in ("l1_pyramid", "none"):
            raise ConfigError(f"perceptual loss fallback must be 'l1_pyramid' or 'none', got {fallback!r}")
        if len(weights) != len(VGG19_SLICE_ENDS):
            raise ConfigError(f"perceptual loss needs {len(VGG19_SLICE_ENDS)} weights (one per VGG19 slice), "
                              f"got {len(weights)}")
        self.scales = tuple(scales)
        self.weights = tuple(float(w) for w in weights)
        self.fallback = fallback
        self.pyramid = ImagePyramid(self.scales, num_channels)
        self.searched = vgg19_search_locations(vgg_weights)
        path = find_vgg19_weights(vgg_weights)
        if path is None and fallback == "none":
            raise UserError("VGG19 weights for the perceptual loss were not found (searched: "
                            f"{'; '.join(self.searched)}) and the fallback is 'none'; put torchvision's "
                            "vgg19-dcbb9e9d.pth at one of these places or choose fallback 'l1_pyramid'")
        if path is not None and num_channels != 3:
            raise ConfigError(f"the VGG19 perceptual loss needs 3-channel images, got num_channels={num_channels}")
        self.vgg = load_vgg19_weights(path) if path is not None else None
        self.weights_path = path
        self._fallback_warned = False

    @property
    def uses_vgg(self) -> bool:
        """True when the VGG19 perceptual loss is used (weights found), False for the fallback."""
        return self.vgg is not None

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """See the class docstring."""
        self._follow(prediction)
        return self.pyramid_loss(self.pyramid(prediction), self.pyramid(target))

    def pyramid_loss(self, prediction: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The loss from pyramids already computed with :attr:`pyramid` (so that a trainer can share them with the
        discriminator, as FOMM does): dicts keyed ``prediction_<scale>`` -> scalar."""
        self._follow(next(iter(prediction.values())))
        if self.vgg is None:
            self._warn_fallback()
            return self._pixel_pyramid_loss(prediction, target)
        return self._vgg_pyramid_loss(prediction, target)

    def _follow(self, x: torch.Tensor) -> None:
        """Move buffers and VGG to the input's device and floating dtype when they differ."""
        reference = next(iter(self.buffers()))
        if reference.device != x.device or reference.dtype != x.dtype:
            self.to(device=x.device, dtype=x.dtype)

    def _warn_fallback(self) -> None:
        """Warn, once per loss object, that the pixel fallback replaces the VGG perceptual loss."""
        if self._fallback_warned:
            return
        self._fallback_warned = True
        warnings.warn(f"VGG19 weights for the perceptual loss were not found (searched: {'; '.join(self.searched)}); "
                      "using the fallback pixel L1 pyramid loss instead of the VGG perceptual loss. Put torchvision's "
                      "vgg19-dcbb9e9d.pth at one of these places to use the perceptual loss.",
                      UserWarning, stacklevel=3)

    def _pixel_pyramid_loss(self, prediction: Mapping[str, torch.Tensor],
                            target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``sum_s sum(weights) * mean |pred_s - target_s|`` (target detached)."""
        total = sum(self.weights)
        terms = [total * (prediction[pyramid_key(s)] - target[pyramid_key(s)].detach()).abs().mean()
                 for s in self.scales]
        return torch.stack(terms).sum()

    def _vgg_pyramid_loss(self, prediction: Mapping[str, torch.Tensor],
                          target: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``sum_s sum_i weights[i] * mean |phi_i(pred_s) - phi_i(target_s)|`` over the scales VGG can process."""
        assert self.vgg is not None
        terms = []
        for s in self.scales:
            pred, real = prediction[pyramid_key(s)], target[pyramid_key(s)]
            if min(pred.shape[2:]) < VGG19_MIN_SIZE:
                continue
            pred_features = self.vgg(pred)
            with torch.no_grad():
                real_features = self.vgg(real)
            for weight, a, b in zip(self.weights, pred_features, real_features, strict=True):
                if weight != 0:
                    terms.append(weight * (a - b).abs().mean())
        if not terms and all(w == 0 for w in self.weights):
            return next(iter(prediction.values())).new_zeros(())
        if not terms:
            raise ValueError(f"every pyramid scale {self.scales} makes the image smaller than {VGG19_MIN_SIZE} px, "
                             "too small for the VGG19 perceptual loss")
        return torch.stack(terms).sum()


# ---------------------------------------------------------------------------------------------------------------
# Equivariance constraints (Eqs. 10-13)
# ---------------------------------------------------------------------------------------------------------------


def equivariance_value_loss(kp_driving_value: torch.Tensor, kp_transformed_value: torch.Tensor,
                            transform: CoordinateTransform) -> torch.Tensor:
    """Keypoint equivariance, Eq. 11: ``mean |p_X - T_{X<-Y}(p_Y)|``.

    Args:
        kp_driving_value: (B, K, 2) keypoints detected in the frame X.
        kp_transformed_value: (B, K, 2) keypoints detected in Y = X deformed by ``transform``.
        transform: the deformation T_{X<-Y} (e.g. :class:`~motiontransfer.ops.transforms.RandomTPS`).

    Returns:
        Scalar L1 (mean over batch, keypoints and coordinates), 0 for an exactly equivariant detector.
    """
    return (kp_driving_value - transform.warp_coordinates(kp_transformed_value)).abs().mean()


def equivariance_jacobian_loss(kp_driving_jacobian: torch.Tensor, kp_transformed_value: torch.Tensor,
                               kp_transformed_jacobian: torch.Tensor,
                               transform: CoordinateTransform) -> torch.Tensor:
    """Jacobian equivariance in the normalised form of Eq. 13: ``mean |1 - J_X^{-1} (dT/dp at p_Y) J_Y|``.

    Eq. 12 (``J_X = dT(p_Y) J_Y``) with a plain L1 would push the Jacobians towards 0; Eq. 13 compares
    ``J_X^{-1} dT(p_Y) J_Y`` with the 2x2 identity instead. dT/dp comes from ``transform.jacobian`` (autograd).

    Args:
        kp_driving_jacobian: (B, K, 2, 2) Jacobians J_X detected in X (invertible).
        kp_transformed_value: (B, K, 2) keypoints p_Y detected in Y.
        kp_transformed_jacobian: (B, K, 2, 2) Jacobians J_Y detected in Y.
        transform: the deformation T_{X<-Y}.

    Returns:
        Scalar L1 (mean over batch, keypoints and the 4 entries).
    """
    jacobian_transformed = transform.jacobian(kp_transformed_value) @ kp_transformed_jacobian
    normalised = inverse_2x2(kp_driving_jacobian) @ jacobian_transformed
    eye = torch.eye(2, device=normalised.device, dtype=normalised.dtype)
    return (eye - normalised).abs().mean()


def keypoint_separation_loss(keypoints: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separation prior on unsupervised keypoints (ours for FOMM; after Zhang et al., CVPR 2018, Eq. 6):
    ``mean over pairs k != l of exp(-|p_k - p_l|^2 / (2 sigma^2))``.

    FOMM's losses do not stop several keypoints from settling on the same spot, and on small-motion data one keypoint
    with its affine Jacobian explains most of a rigid motion, so they do; this term pushes keypoints closer than about
    2 sigma apart and is nearly 0 beyond.

    Args:
        keypoints: (B, K, 2) keypoints in [-1, 1] coordinates, K >= 2.
        sigma: length scale in the same coordinates (> 0).

    Returns:
        Scalar in (0, 1]: 1 when all keypoints coincide.
    """
    num_kp = keypoints.shape[1]
    if num_kp < 2:
        return keypoints.new_zeros(())
    squared = (keypoints[:, :, None, :] - keypoints[:, None, :, :]).pow(2).sum(-1)  # (B, K, K)
    closeness = torch.exp(-squared / (2 * sigma**2))
    off_diagonal = ~torch.eye(num_kp, dtype=torch.bool, device=keypoints.device)
    return closeness[:, off_diagonal].mean()


# ---------------------------------------------------------------------------------------------------------------
# GAN losses
# ---------------------------------------------------------------------------------------------------------------


def lsgan_generator_loss(prediction_maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Least-squares generator loss (FOMM ``gen_gan``): ``sum_s mean (1 - D_s(G))^2``.

    Args:
        prediction_maps: one discriminator map (B, 1, h_s, w_s) of the generated images per scale.

    Returns:
        Scalar (unweighted; FOMM multiplies by ``loss_weights.generator_gan``).
    """
    return torch.stack([((1 - m) ** 2).mean() for m in prediction_maps]).sum()


def lsgan_discriminator_loss(real_maps: Sequence[torch.Tensor], fake_maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Least-squares discriminator loss (FOMM ``disc_gan``): ``sum_s mean[(1 - D_s(real))^2 + D_s(fake)^2]``.

    Args:
        real_maps: per-scale maps (B, 1, h_s, w_s) of real images.
        fake_maps: per-scale maps of generated images (computed from detached images), same shapes.

    Returns:
        Scalar (unweighted; FOMM multiplies by ``loss_weights.discriminator_gan``).
    """
    terms = [((1 - r) ** 2 + f**2).mean() for r, f in zip(real_maps, fake_maps, strict=True)]
    return torch.stack(terms).sum()


def feature_matching_loss(real_features: Sequence[Sequence[torch.Tensor]],
                          fake_features: Sequence[Sequence[torch.Tensor]],
                          weights: Sequence[float]) -> torch.Tensor:
    """Discriminator feature matching (FOMM ``feature_matching``, weights [10] * 4):
    ``sum_s sum_i weights[i] * mean |F_si(real) - F_si(fake)|``, layers with weight 0 skipped.

    Args:
        real_features: per scale, the discriminator's feature maps of the real images (treated as targets: detached,
            which leaves the generator's gradient unchanged).
        fake_features: the same for the generated images.
        weights: one weight per feature layer (at least as many as layers; extra weights are unused).

    Returns:
        Scalar.
    """
    terms = []
    for real_scale, fake_scale in zip(real_features, fake_features, strict=True):
        if len(weights) < len(real_scale):
            raise ValueError(f"{len(real_scale)} feature maps but only {len(weights)} feature matching weights")
        for weight, a, b in zip(weights, real_scale, fake_scale, strict=False):
            if weight != 0:
                terms.append(weight * (a.detach() - b).abs().mean())
    if not terms:
        raise ValueError("feature matching got no feature maps with a non-zero weight")
    return torch.stack(terms).sum()


def nonsaturating_generator_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """Non-saturating (logistic) generator loss: ``mean softplus(-D(G))`` = ``-mean log sigmoid(D(G))``.

    Args:
        fake_pred: discriminator logits of generated images, any shape, e.g. (B, 1).
    """
    return F.softplus(-fake_pred).mean()


def nonsaturating_discriminator_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Logistic discriminator loss: ``mean softplus(-D(real)) + mean softplus(D(fake))``.

    Args:
        real_pred: logits of real images, e.g. (B, 1).
        fake_pred: logits of (detached) generated images.
    """
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def r1_penalty(real_pred: torch.Tensor, real_img: torch.Tensor) -> torch.Tensor:
    """R1 gradient penalty on real images: ``mean_b ||d sum D(real) / d real_b||^2`` (unweighted; StyleGAN2 scales it
    by gamma / 2 and the lazy-regularisation interval).

    Args:
        real_pred: discriminator logits (B, ...) computed from ``real_img``.
        real_img: (B, C, H, W) real images with ``requires_grad=True``.

    Returns:
        Scalar, differentiable with respect to the discriminator parameters (``create_graph=True``).
    """
    if not real_img.requires_grad:
        raise ValueError("r1_penalty needs real_img.requires_grad_(True) before the discriminator is applied")
    (grad,) = torch.autograd.grad(real_pred.sum(), real_img, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


# ---------------------------------------------------------------------------------------------------------------
# VAE
# ---------------------------------------------------------------------------------------------------------------


def kl_divergence_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form ``KL(N(mu, exp(logvar)) || N(0, I))`` = ``-1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))``.

    Args:
        mu: (..., D) posterior means.
        logvar: (..., D) posterior log variances.

    Returns:
        Scalar: summed over the latent dimension D, averaged over all leading (batch) dimensions.
    """
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)
    return kl.mean()
