"""FOMM training (Siarohin et al. 2019, Sec. 3.3 and supplementary B) as small functions over separate networks.

One optimisation step is

1. a *generator step* (:func:`generator_step`): keypoints of the source and the driving frame, the generator's
   reconstruction of the driving frame, and the weighted losses: the perceptual pyramid loss (Eq. 9 on an image
   pyramid; its pixel-L1 fallback without VGG19 weights), with ``generator_gan > 0`` the LSGAN generator loss and
   discriminator feature matching, and with ``transform_params`` set the equivariance losses on a random TPS
   deformation of the driving frame (Eq. 11 for the keypoints, Eq. 13 for the Jacobians), and with
   ``keypoint_separation > 0`` (ours, off in the official configs) a prior that keeps keypoints apart. Their sum
   updates the keypoint detector and the generator;
2. with ``generator_gan > 0``, a *discriminator step* (:func:`discriminator_step`): the LSGAN discriminator loss on
   the real driving frame and the detached prediction (keypoints detached, as the official code), weighted by
   ``discriminator_gan``.

The losses live in :mod:`motiontransfer.losses`; this module only wires networks, losses and weights together.
Optimisers are Adam with betas (0.5, 0.999) and one learning rate per network; a learning rate of 0 freezes that
network (no optimiser, ``requires_grad`` off; it stays in train mode so BatchNorm uses batch statistics as in the
official code). The learning rate drops by 10x (MultiStepLR, gamma 0.1) at ``epoch_milestones``; the trainer steps
the schedulers once per optimisation step, so the milestones are converted to steps with
``steps_per_epoch = len(data loader)`` (``len(dataset) // batch_size`` in a single process; per process under DDP).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from motiontransfer.checkpoint import unwrap
from motiontransfer.engine.distributed import DistributedContext, wrap_module
from motiontransfer.engine.optim import (
    ADAM_BETAS,
    frozen_parameters,
    make_optimizers,
    make_schedulers,
    milestones_in_steps,
    optimise,
    step_seed,
)
from motiontransfer.engine.task import StepResult, pair_for_step
from motiontransfer.errors import ConfigError
from motiontransfer.families.fomm.config import FommExperiment, LossWeights, TrainParams, TransformParams
from motiontransfer.families.fomm.networks import build_fomm
from motiontransfer.losses import (
    PerceptualPyramidLoss,
    equivariance_jacobian_loss,
    equivariance_value_loss,
    feature_matching_loss,
    keypoint_separation_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    pyramid_key,
)
from motiontransfer.ops.transforms import RandomTPS
from motiontransfer.visualize import sample_grid

__all__ = [
    "ADAM_BETAS",
    "FommNetworks",
    "FommTask",
    "GeneratorStepOutput",
    "adversarial_generator_losses",
    "discriminator_inputs",
    "discriminator_step",
    "equivariance_losses",
    "frozen_parameters",
    "generator_step",
    "make_optimizers",
    "make_schedulers",
    "milestones_in_steps",
    "network_learning_rates",
    "pyramid_scale",
    "sample_grid",
    "sample_transform",
]

Keypoints = Mapping[str, torch.Tensor]
LossDict = dict[str, torch.Tensor]


@dataclass
class FommNetworks:
    """The three FOMM networks as used in a step (plain modules or DDP wrappers)."""

    kp_detector: nn.Module
    generator: nn.Module
    discriminator: nn.Module

    def as_dict(self) -> dict[str, nn.Module]:
        """``{'kp_detector', 'generator', 'discriminator'}`` -> module (the model-file network names)."""
        return {"kp_detector": self.kp_detector, "generator": self.generator, "discriminator": self.discriminator}


@dataclass
class GeneratorStepOutput:
    """What :func:`generator_step` computes.

    Attributes:
        loss: scalar, the sum of ``losses``.
        losses: weighted loss terms by name (``perceptual``, ``gen_gan``, ``feature_matching``,
            ``equivariance_value``, ``equivariance_jacobian``; only the enabled ones).
        generated: the generator's outputs ('prediction' (B, C, H, W), 'occlusion_map', 'deformed', 'mask', ...)
            plus 'kp_source' and 'kp_driving' (keypoint dicts) and, with equivariance, 'transformed_frame'.
        pyramid_real, pyramid_generated: image pyramids of the driving frame and the prediction, keyed
            ``prediction_<scale>`` (shared with the discriminator step, as in FOMM).
    """

    loss: torch.Tensor
    losses: LossDict
    generated: dict[str, Any]
    pyramid_real: dict[str, torch.Tensor] = field(default_factory=dict)
    pyramid_generated: dict[str, torch.Tensor] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------- losses


def sample_transform(params: TransformParams, batch: int, *, generator: torch.Generator | None = None,
                     device: torch.device | None = None, dtype: torch.dtype | None = None) -> RandomTPS:
    """B random TPS deformations with FOMM's ``transform_params`` (supplementary B.2)."""
    return RandomTPS.sample(batch, params.sigma_affine, params.sigma_tps, params.points_tps, generator=generator,
                            device=device, dtype=dtype)


def equivariance_losses(kp_detector: nn.Module, driving: torch.Tensor, kp_driving: Keypoints, transform: RandomTPS,
                        weights: LossWeights, align_corners: bool) -> tuple[LossDict, torch.Tensor]:
    """Weighted equivariance losses on the deformed driving frame Y = T(X).

    Args:
        kp_detector: the keypoint detector (called once, on Y).
        driving: (B, C, H, W) driving frames X.
        kp_driving: keypoints detected in X ('value' (B, K, 2), optional 'jacobian' (B, K, 2, 2)).
        transform: the deformation T_{X<-Y}.
        weights: ``equivariance_value`` (Eq. 11) and ``equivariance_jacobian`` (Eq. 13) weights; a zero weight
            skips its term, and the Jacobian term needs Jacobians.
        align_corners: grid_sample convention of the warp.

    Returns:
        ``(losses, transformed_frame)`` with losses keyed ``equivariance_value`` / ``equivariance_jacobian``
        (scalars) and the deformed frames Y (B, C, H, W).
    """
    transformed = transform.transform_frame(driving, align_corners=align_corners)
    kp_transformed = kp_detector(transformed)
    losses: LossDict = {}
    if weights.equivariance_value != 0:
        losses["equivariance_value"] = weights.equivariance_value * equivariance_value_loss(
            kp_driving["value"], kp_transformed["value"], transform)
    if weights.equivariance_jacobian != 0 and "jacobian" in kp_driving and "jacobian" in kp_transformed:
        losses["equivariance_jacobian"] = weights.equivariance_jacobian * equivariance_jacobian_loss(
            kp_driving["jacobian"], kp_transformed["value"], kp_transformed["jacobian"], transform)
    return losses, transformed


def discriminator_inputs(pyramid: Mapping[str, torch.Tensor], pyramid_scales: Sequence[float],
                         discriminator_scales: Sequence[float]) -> dict[str, torch.Tensor]:
    """Pick the discriminator's scales out of an image pyramid, keyed as the discriminator reads them.

    The pyramid is keyed by the training scales (``train_params.scales``, floats: 'prediction_1.0'), the
    discriminator by its own scales as written in the config ('prediction_1'); scales are matched by value.

    Raises:
        ConfigError: a discriminator scale missing from the pyramid scales.
    """
    return {f"prediction_{scale}": pyramid[pyramid_key(pyramid_scale(scale, pyramid_scales))]
            for scale in discriminator_scales}


def pyramid_scale(scale: float, pyramid_scales: Sequence[float]) -> float:
    """The entry of ``pyramid_scales`` equal in value to the discriminator scale ``scale``.

    Raises:
        ConfigError: there is none (the discriminator would have no input at that scale).
    """
    match = next((s for s in pyramid_scales if float(s) == float(scale)), None)
    if match is None:
        raise ConfigError(f"model_params.discriminator_params.scales: scale {scale} is not one of "
                          f"train_params.scales {list(pyramid_scales)}")
    return match


def _maps(outputs: Mapping[str, Any], scales: Sequence[float], kind: str) -> list[Any]:
    return [outputs[f"{kind}_{scale}"] for scale in scales]


def adversarial_generator_losses(discriminator: nn.Module, real: Mapping[str, torch.Tensor],
                                 generated: Mapping[str, torch.Tensor], kp_driving: torch.Tensor,
                                 scales: Sequence[float], weights: LossWeights) -> LossDict:
    """The generator's adversarial terms: ``generator_gan * LSGAN`` and, when any feature-matching weight is
    non-zero, feature matching between the discriminator features of real and generated images.

    Args:
        discriminator: the multi-scale discriminator (its parameters should be frozen by the caller).
        real, generated: discriminator inputs (see :func:`discriminator_inputs`), (B, C, H_s, W_s) per scale.
        kp_driving: (B, K, 2) detached driving keypoints (used when the discriminator has ``use_kp``).
        scales: the discriminator's scales.
        weights: ``generator_gan`` and ``feature_matching``.

    Returns:
        ``{'gen_gan': scalar[, 'feature_matching': scalar]}``.
    """
    fake_out = discriminator(generated, kp=kp_driving)
    losses = {"gen_gan": weights.generator_gan * lsgan_generator_loss(_maps(fake_out, scales, "prediction_map"))}
    if sum(weights.feature_matching) != 0:
        with torch.no_grad():
            real_out = discriminator(real, kp=kp_driving)
        losses["feature_matching"] = feature_matching_loss(_maps(real_out, scales, "feature_maps"),
                                                           _maps(fake_out, scales, "feature_maps"),
                                                           weights.feature_matching)
    return losses


def generator_step(networks: FommNetworks, source: torch.Tensor, driving: torch.Tensor,
                   perceptual: PerceptualPyramidLoss, train_params: TrainParams, *, align_corners: bool,
                   discriminator_scales: Sequence[float] = (1,), generator: torch.Generator | None = None
                   ) -> GeneratorStepOutput:
    """FOMM's generator-side forward pass and weighted losses (the official ``GeneratorFullModel``, unfused).

    Args:
        networks: keypoint detector, generator, discriminator (the discriminator is only used with
            ``generator_gan > 0``; pass it with frozen parameters, see :func:`frozen_parameters`).
        source, driving: (B, C, H, W) frames in [0, 1] of the same videos.
        perceptual: the perceptual pyramid loss (holds the image pyramid of ``train_params.scales``).
        train_params: loss weights and transform parameters.
        align_corners: grid_sample convention (``model_params.align_corners``).
        discriminator_scales: the discriminator's pyramid scales.
        generator: random generator for the TPS transform (on the frames' device).

    Returns:
        A :class:`GeneratorStepOutput`; ``loss`` is differentiable with respect to the keypoint detector and
        generator parameters.
    """
    weights = train_params.loss_weights
    kp_source = networks.kp_detector(source)
    kp_driving = networks.kp_detector(driving)
    generated: dict[str, Any] = dict(networks.generator(source, kp_source=kp_source, kp_driving=kp_driving))
    generated.update(kp_source=kp_source, kp_driving=kp_driving)
    pyramid_real = perceptual.pyramid(driving)
    pyramid_generated = perceptual.pyramid(generated["prediction"])
    losses: LossDict = {"perceptual": perceptual.pyramid_loss(pyramid_generated, pyramid_real)}  # Eq. 9, pyramid
    if weights.generator_gan != 0:
        scales = train_params.scales
        losses.update(adversarial_generator_losses(
            networks.discriminator, discriminator_inputs(pyramid_real, scales, discriminator_scales),
            discriminator_inputs(pyramid_generated, scales, discriminator_scales), kp_driving["value"].detach(),
            discriminator_scales, weights))
    if train_params.transform_params is not None and (weights.equivariance_value or weights.equivariance_jacobian):
        transform = sample_transform(train_params.transform_params, driving.shape[0], generator=generator,
                                     device=driving.device, dtype=driving.dtype)
        equivariance, transformed = equivariance_losses(networks.kp_detector, driving, kp_driving, transform,
                                                        weights, align_corners)
        losses.update(equivariance)
        generated["transformed_frame"] = transformed
    if weights.keypoint_separation != 0:
        sigma = train_params.keypoint_separation_sigma
        losses["keypoint_separation"] = weights.keypoint_separation * 0.5 * (
            keypoint_separation_loss(kp_source["value"], sigma) + keypoint_separation_loss(kp_driving["value"], sigma))
    loss = torch.stack(list(losses.values())).sum()
    return GeneratorStepOutput(loss, losses, generated, pyramid_real, pyramid_generated)


def discriminator_step(discriminator: nn.Module, real: Mapping[str, torch.Tensor],
                       generated: Mapping[str, torch.Tensor], kp_driving: torch.Tensor, scales: Sequence[float],
                       weight: float) -> tuple[torch.Tensor, LossDict]:
    """FOMM's discriminator loss (the official ``DiscriminatorFullModel``): ``weight * LSGAN`` on real images and
    detached generated images.

    Args:
        discriminator: the multi-scale discriminator (trainable).
        real: discriminator inputs of the real driving frames, (B, C, H_s, W_s) per scale.
        generated: the same for the predictions; detached here.
        kp_driving: (B, K, 2) driving keypoints; detached here.
        scales: the discriminator's scales.
        weight: ``loss_weights.discriminator_gan``.

    Returns:
        ``(loss, {'disc_gan': loss})``.
    """
    kp = kp_driving.detach()
    fake_out = discriminator({k: v.detach() for k, v in generated.items()}, kp=kp)
    real_out = discriminator(dict(real), kp=kp)
    loss = weight * lsgan_discriminator_loss(_maps(real_out, scales, "prediction_map"),
                                             _maps(fake_out, scales, "prediction_map"))
    return loss, {"disc_gan": loss}


# ------------------------------------------------------------------------------------------ learning rates


def network_learning_rates(train_params: TrainParams) -> dict[str, float]:
    """Learning rate of each network; the discriminator's is 0 (frozen) when ``generator_gan`` is 0, since it
    is then never trained."""
    adversarial = train_params.loss_weights.generator_gan != 0
    return {"kp_detector": train_params.lr_kp_detector, "generator": train_params.lr_generator,
            "discriminator": train_params.lr_discriminator if adversarial else 0.0}


# ---------------------------------------------------------------------------------------------------------- task


class FommTask:
    """FOMM for the generic :func:`motiontransfer.training.trainer.train` loop.

    Builds the networks (initialised from ``train_params.seed`` without touching torch's global random state), the
    loss modules, the per-network Adam optimisers and MultiStepLR schedulers, and wraps trainable networks for DDP.

    Args:
        experiment: the FOMM experiment.
        context: process placement (device, rank, world size).
        steps_per_epoch: optimisation steps per epoch (converts ``epoch_milestones`` to steps).
    """

    family = "fomm"

    def __init__(self, experiment: FommExperiment, context: DistributedContext, steps_per_epoch: int) -> None:
        self.experiment = experiment
        self.context = context
        params = experiment.train_params
        config = experiment.model_params
        self.seed = params.seed
        self.discriminator_scales = tuple(config.discriminator_params.scales)
        if params.loss_weights.generator_gan != 0:
            for scale in self.discriminator_scales:
                pyramid_scale(scale, params.scales)
        if params.loss_weights.equivariance_jacobian and not config.common_params.estimate_jacobian:
            warnings.warn("loss_weights.equivariance_jacobian is ignored: the model does not estimate Jacobians "
                          "(common_params.estimate_jacobian is false)", UserWarning, stacklevel=2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(params.seed)
            kp_detector, generator, discriminator = build_fomm(config)
        self.learning_rates = network_learning_rates(params)
        plain = {"kp_detector": kp_detector, "generator": generator, "discriminator": discriminator}
        for name, module in plain.items():
            module.requires_grad_(self.learning_rates[name] > 0)
        wrapped = {name: wrap_module(module, context) for name, module in plain.items()}
        self.wrapped = FommNetworks(**wrapped)
        self.plain = FommNetworks(**{name: unwrap(module) for name, module in wrapped.items()})
        self.perceptual = PerceptualPyramidLoss(params.scales, params.loss_weights.perceptual,
                                                vgg_weights=params.vgg_weights, fallback=params.perceptual_fallback,
                                                num_channels=config.common_params.num_channels).to(context.device)
        self.optimizers = make_optimizers(self.plain.as_dict(), self.learning_rates)
        self.schedulers = make_schedulers(self.optimizers, milestones_in_steps(params.epoch_milestones,
                                                                               steps_per_epoch))
        self.train_discriminator = params.loss_weights.generator_gan != 0 and "discriminator" in self.optimizers

    def networks(self) -> dict[str, nn.Module]:
        """The plain networks by model-file name (what a checkpoint saves)."""
        return self.plain.as_dict()

    def train_step(self, batch: Mapping[str, Any], step: int) -> StepResult:
        """One optimisation step on a batch ``{'source': (B, C, H, W), 'driving': (B, C, H, W), ...}``.

        Returns:
            The step's loss values (floats, including ``l1``, the unweighted mean absolute reconstruction error,
            a monitoring value that is not optimised) and detached outputs for :meth:`sample_image`.
        """
        device = self.context.device
        source, driving = pair_for_step(batch, self.wrapped.as_dict().values(), device)
        generator = torch.Generator(device=device).manual_seed(step_seed(self.seed, self.context.rank, step))
        params = self.experiment.train_params
        networks = FommNetworks(self.wrapped.kp_detector, self.wrapped.generator, self.plain.discriminator)
        with frozen_parameters(self.plain.discriminator):
            out = generator_step(networks, source, driving, self.perceptual, params,
                                 align_corners=self.experiment.model_params.align_corners,
                                 discriminator_scales=self.discriminator_scales, generator=generator)
        optimise(self.optimizers, ("kp_detector", "generator"), out.loss)
        losses = dict(out.losses)
        if self.train_discriminator:
            scales, pyramid_scales = self.discriminator_scales, params.scales
            disc_loss, disc_losses = discriminator_step(
                self.wrapped.discriminator, discriminator_inputs(out.pyramid_real, pyramid_scales, scales),
                discriminator_inputs(out.pyramid_generated, pyramid_scales, scales),
                out.generated["kp_driving"]["value"], scales, params.loss_weights.discriminator_gan)
            optimise(self.optimizers, ("discriminator",), disc_loss)
            losses.update(disc_losses)
        for scheduler in self.schedulers.values():
            scheduler.step()
        prediction = out.generated["prediction"].detach()
        values = {name: float(value.detach()) for name, value in losses.items()}
        values["l1"] = float((prediction - driving).abs().mean())
        outputs = {"source": source, "driving": driving, "prediction": prediction,
                   "kp_source": out.generated["kp_source"]["value"].detach(),
                   "kp_driving": out.generated["kp_driving"]["value"].detach(),
                   "occlusion_map": out.generated.get("occlusion_map")}
        return StepResult(values, outputs)

    def sample_image(self, result: StepResult) -> np.ndarray:
        """The sample sheet of a step (see :func:`sample_grid`)."""
        out = result.outputs
        occlusion = out.get("occlusion_map")
        return sample_grid(out["source"], out["driving"], out["kp_source"], out["kp_driving"], out["prediction"],
                           None if occlusion is None else occlusion.detach())
