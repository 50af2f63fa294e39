"""KPVP's stage 1 (Kim et al. 2019, Sec. 2), run by the generic trainer: Q finds the keypoints of two frames v, v'
of one video (one call on both, so BatchNorm sees the 2B frames), T translates v to v' from them (Eq. 3), and the
loss is the perceptual loss (VGG19, or its pixel fallback offline) + ``generator_gan`` * the logistic GAN loss of the
image discriminator (Eq. 4); the discriminator then takes its logistic loss on v' and the detached translation.
Stages 2 and 3 are in :mod:`motiontransfer.families.kpvp.stages`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from motiontransfer.checkpoint import unwrap
from motiontransfer.engine.distributed import DistributedContext, wrap_module
from motiontransfer.engine.optim import decay_schedulers, frozen_parameters, make_optimizers, optimise
from motiontransfer.engine.task import StepResult, pair_for_step
from motiontransfer.families.kpvp.config import KPVPExperiment
from motiontransfer.families.kpvp.networks import ImageTranslator, build_detector, build_image_discriminator
from motiontransfer.losses import PerceptualPyramidLoss, nonsaturating_discriminator_loss, nonsaturating_generator_loss
from motiontransfer.visualize import sample_grid


def translation_losses(kp_detector: nn.Module, translator: nn.Module, discriminator: nn.Module,
                       perceptual: PerceptualPyramidLoss, source: torch.Tensor, driving: torch.Tensor,
                       generator_gan: float) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Eq. 4's L_{Q,T} on a batch.

    Args:
        source, driving: v and v' (B, C, H, W) in [0, 1], frames of the same videos.
        generator_gan: the GAN term's weight (0 leaves the discriminator out).

    Returns:
        (total, named weighted terms, outputs): outputs hold ``prediction``, ``mask``, ``generated`` (B, ...)
        and ``kp_source``, ``kp_driving`` (B, K, 2).
    """
    batch = source.shape[0]
    keypoints = kp_detector(torch.cat([source, driving]))["value"]
    kp_source, kp_driving = keypoints[:batch], keypoints[batch:]
    out = translator(source, kp_source, kp_driving)
    losses = {"perceptual": perceptual(out["prediction"], driving)}
    if generator_gan != 0:
        _, logits = discriminator(out["prediction"])
        losses["generator_gan"] = generator_gan * nonsaturating_generator_loss(logits)
    return torch.stack(list(losses.values())).sum(), losses, {**out, "kp_source": kp_source,
                                                              "kp_driving": kp_driving}


class KPVPTask:
    """Stage 1 for the generic :func:`motiontransfer.training.trainer.train` loop: networks ``kp_detector``,
    ``translator`` and ``image_discriminator``."""

    family = "kpvp"

    def __init__(self, experiment: KPVPExperiment, context: DistributedContext, steps_per_epoch: int) -> None:
        self.experiment = experiment
        self.context = context
        params = experiment.train_params
        config = experiment.model_params
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(params.seed)
            plain: dict[str, nn.Module] = {
                "kp_detector": build_detector(config),
                "translator": ImageTranslator(config.num_kp, config.num_channels, config.translator),
                "image_discriminator": build_image_discriminator(config)}
        weights = params.loss_weights
        self.train_discriminator = weights.generator_gan != 0 and weights.discriminator_gan != 0
        plain["image_discriminator"].requires_grad_(self.train_discriminator)
        self.wrapped = {name: wrap_module(module, context) for name, module in plain.items()}
        self.plain = {name: unwrap(module) for name, module in self.wrapped.items()}
        rates = {"kp_detector": params.lr, "translator": params.lr,
                 "image_discriminator": params.lr if self.train_discriminator else 0.0}
        self.optimizers = make_optimizers(self.plain, rates)
        self.schedulers = decay_schedulers(self.optimizers, params.lr_decay_every, params.lr_decay)
        self.perceptual = PerceptualPyramidLoss(params.scales, weights.perceptual, vgg_weights=params.vgg_weights,
                                                fallback=params.perceptual_fallback).to(context.device)

    def networks(self) -> dict[str, nn.Module]:
        """The plain networks by model-file name."""
        return dict(self.plain)

    def train_step(self, batch: Mapping[str, Any], step: int) -> StepResult:
        """One step on ``{'source': (B, C, H, W), 'driving': (B, C, H, W), ...}`` in [0, 1]; the values include
        ``l1``, the unweighted mean absolute translation error (monitoring only)."""
        source, driving = pair_for_step(batch, self.wrapped.values(), self.context.device)
        weights = self.experiment.train_params.loss_weights
        with frozen_parameters(self.plain["image_discriminator"]):
            total, losses, out = translation_losses(
                self.wrapped["kp_detector"], self.wrapped["translator"], self.plain["image_discriminator"],
                self.perceptual, source, driving, weights.generator_gan if self.train_discriminator else 0.0)
        optimise(self.optimizers, ("kp_detector", "translator"), total)
        prediction = out["prediction"].detach()
        if self.train_discriminator:
            discriminator = self.wrapped["image_discriminator"]
            _, real = discriminator(driving)
            _, fake = discriminator(prediction)
            losses["discriminator_gan"] = weights.discriminator_gan * nonsaturating_discriminator_loss(real, fake)
            optimise(self.optimizers, ("image_discriminator",), losses["discriminator_gan"])
        for scheduler in self.schedulers.values():
            scheduler.step()
        values = {name: float(value.detach()) for name, value in losses.items()}
        values["l1"] = float((prediction - driving).abs().mean())
        outputs = {"source": source, "driving": driving, "prediction": prediction, "mask": out["mask"].detach(),
                   "kp_source": out["kp_source"].detach(), "kp_driving": out["kp_driving"].detach()}
        return StepResult(values, outputs)

    def sample_image(self, result: StepResult) -> np.ndarray:
        """The sample sheet of a step; the fourth column is the background mask m (white: source kept)."""
        out = result.outputs
        return sample_grid(out["source"], out["driving"], out["kp_source"], out["kp_driving"], out["prediction"],
                           out["mask"])
