"""LIA training (Wang et al. 2022, Sec. 3.4; the official trainer.py) as small functions over separate networks.

One step: the generator reconstructs the driving frame from the source frame (absolute motion, Eq. 11) and is
trained with ``l1`` * L1 (in LIA's [-1, 1] range, as the official code) + the perceptual pyramid (VGG19, [10] * 5;
its pixel-L1 fallback offline) + ``generator_gan`` * the non-saturating GAN loss of a StyleGAN2 discriminator; then
the discriminator takes ``discriminator_gan`` * its logistic loss on the real frame and the detached
reconstruction. Adam as StyleGAN2 with lazy regularisation (which the official trainer sets up without applying a
regulariser): lr * r and betas (0, 0.99) ** r with r = reg_every / (reg_every + 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from motiontransfer.checkpoint import unwrap
from motiontransfer.engine.distributed import DistributedContext, wrap_module
from motiontransfer.engine.optim import frozen_parameters, optimise
from motiontransfer.engine.task import StepResult, pair_for_step
from motiontransfer.families.lia.config import LIAExperiment, LIALossWeights
from motiontransfer.families.lia.networks import Generator, build_discriminator, to_signed
from motiontransfer.losses import (
    PerceptualPyramidLoss,
    nonsaturating_discriminator_loss,
    nonsaturating_generator_loss,
)
from motiontransfer.visualize import sample_grid


def stylegan2_adam(module: nn.Module, lr: float, reg_every: int) -> torch.optim.Adam:
    """Adam with StyleGAN2's lazy-regularisation scaling: lr * r, betas (0 ** r, 0.99 ** r), r = k / (k + 1)."""
    ratio = reg_every / (reg_every + 1)
    return torch.optim.Adam(unwrap(module).parameters(), lr=lr * ratio, betas=(0.0**ratio, 0.99**ratio))


def generator_losses(generator: nn.Module, discriminator: nn.Module, perceptual: PerceptualPyramidLoss,
                     source: torch.Tensor, driving: torch.Tensor, weights: LIALossWeights
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """The generator's weighted losses on a batch.

    Args:
        source, driving: (B, 3, S, S) frames of the same videos in [0, 1].

    Returns:
        (total, named weighted terms, reconstruction (B, 3, S, S) in [-1, 1]).
    """
    target = to_signed(driving)
    reconstruction = generator(to_signed(source), target)
    losses = {"l1": weights.l1 * (reconstruction - target).abs().mean(),
              "perceptual": perceptual((reconstruction + 1) / 2, driving)}
    if weights.generator_gan != 0:
        losses["generator_gan"] = weights.generator_gan * nonsaturating_generator_loss(discriminator(reconstruction))
    return torch.stack(list(losses.values())).sum(), losses, reconstruction


class LIATask:
    """LIA for the generic :func:`motiontransfer.training.trainer.train` loop (networks ``generator`` and
    ``discriminator``; the generator is the official ``gen``)."""

    family = "lia"

    def __init__(self, experiment: LIAExperiment, context: DistributedContext, steps_per_epoch: int) -> None:
        self.experiment = experiment
        self.context = context
        params = experiment.train_params
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(params.seed)
            generator, discriminator = Generator(experiment.model_params), build_discriminator(experiment.model_params)
        self.train_discriminator = params.loss_weights.generator_gan != 0 and params.loss_weights.discriminator_gan != 0
        discriminator.requires_grad_(self.train_discriminator)
        self.wrapped = {"generator": wrap_module(generator, context),
                        "discriminator": wrap_module(discriminator, context)}
        self.plain = {name: unwrap(module) for name, module in self.wrapped.items()}
        self.optimizers = {"generator": stylegan2_adam(generator, params.lr, params.g_reg_every)}
        if self.train_discriminator:
            self.optimizers["discriminator"] = stylegan2_adam(discriminator, params.lr, params.d_reg_every)
        self.schedulers: dict[str, Any] = {}
        self.perceptual = PerceptualPyramidLoss(params.scales, params.loss_weights.perceptual,
                                                vgg_weights=params.vgg_weights,
                                                fallback=params.perceptual_fallback).to(context.device)

    def networks(self) -> dict[str, nn.Module]:
        """The plain networks by model-file name."""
        return dict(self.plain)

    def train_step(self, batch: Mapping[str, Any], step: int) -> StepResult:
        """One step on ``{'source': (B, 3, S, S), 'driving': (B, 3, S, S), ...}`` in [0, 1]; the loss values
        include ``l1_unit``, the unweighted mean absolute error on the [0, 1] scale (monitoring only)."""
        source, driving = pair_for_step(batch, self.wrapped.values(), self.context.device)
        weights = self.experiment.train_params.loss_weights
        with frozen_parameters(self.plain["discriminator"]):
            total, losses, reconstruction = generator_losses(self.wrapped["generator"], self.plain["discriminator"],
                                                             self.perceptual, source, driving, weights)
        optimise(self.optimizers, ("generator",), total)
        if self.train_discriminator:
            discriminator = self.wrapped["discriminator"]
            real_pred = discriminator(to_signed(driving))  # separate calls: the minibatch stddev must not mix them
            fake_pred = discriminator(reconstruction.detach())
            losses["discriminator_gan"] = weights.discriminator_gan * nonsaturating_discriminator_loss(real_pred,
                                                                                                    fake_pred)
            optimise(self.optimizers, ("discriminator",), losses["discriminator_gan"])
        prediction = ((reconstruction.detach() + 1) / 2).clamp(0, 1)
        values = {name: float(value.detach()) for name, value in losses.items()}
        values["l1_unit"] = float((prediction - driving).abs().mean())
        return StepResult(values, {"source": source, "driving": driving, "prediction": prediction})

    def sample_image(self, result: StepResult) -> np.ndarray:
        """Source | driving | source | blank | reconstruction (LIA has no keypoints or occlusion map)."""
        out = result.outputs
        none = out["source"].new_zeros(out["source"].shape[0], 0, 2)
        return sample_grid(out["source"], out["driving"], none, none, out["prediction"], None)
