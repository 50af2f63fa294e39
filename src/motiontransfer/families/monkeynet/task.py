"""Monkey-Net training (Siarohin et al. 2019, Sec. 3.4) as small functions over separate networks.

One optimisation step is

1. a *generator step* (:func:`generator_step`): the detector's keypoints of the source and the driving frame
   (one batch, so BatchNorm sees both, as the official code), the generator's reconstruction of the driving frame,
   and the loss ``sum_i reconstruction[i] * mean |D_i(real) - D_i(fake)|`` over the discriminator's maps [image,
   block_1, ..., block_n] (the first term is the pixel L1; weights [10, 10, 10, 10, 1]) plus ``generator_gan`` times
   the LSGAN generator loss and, when ``reconstruction_deformed`` is set, that weight times the L1 of the warped
   source. Their sum updates the keypoint detector and the generator;
2. a *discriminator step* (:func:`discriminator_step`): ``discriminator_gan`` times the LSGAN discriminator loss on
   the real frame and the detached prediction, with detached keypoints.

Deviations from the official code, both without effect on what the networks compute: the real image's
discriminator maps are targets in the feature matching (detached, so no gradient reaches the keypoint detector
through the real branch's keypoint embedding), and ``detach_kp_discriminator`` must be true (every official
config sets it; with false the official code also trains the detector on the discriminator loss).
Optimisers are Adam (0.5, 0.999) with the single ``lr``, divided by 10 at ``epoch_milestones``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from motiontransfer.checkpoint import unwrap
from motiontransfer.engine.distributed import DistributedContext, wrap_module
from motiontransfer.engine.optim import (
    frozen_parameters,
    make_optimizers,
    make_schedulers,
    milestones_in_steps,
    optimise,
)
from motiontransfer.engine.task import StepResult, pair_for_step
from motiontransfer.errors import ConfigError
from motiontransfer.families.monkeynet.config import MonkeyNetExperiment, MonkeyNetLossWeights
from motiontransfer.families.monkeynet.networks import build_monkeynet, detach_keypoints, select_keypoints
from motiontransfer.losses import feature_matching_loss, lsgan_discriminator_loss, lsgan_generator_loss
from motiontransfer.visualize import sample_grid

Keypoints = Mapping[str, torch.Tensor]


@dataclass
class GeneratorStepOutput:
    """The result of :func:`generator_step`: the weighted total ``loss``, its named terms, the generator's
    outputs and both keypoint dicts (with gradients; ``heatmap`` dropped)."""

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    generated: dict[str, torch.Tensor]
    kp_source: dict[str, torch.Tensor]
    kp_driving: dict[str, torch.Tensor]


def detect_pair(kp_detector: nn.Module, source: torch.Tensor,
                driving: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Keypoints of source and driving frames (B, C, H, W) from one detector call on both (BatchNorm statistics
    over the 2B frames, as the official code). Returns ``(kp_source, kp_driving)`` dicts of batch B."""
    batch = source.shape[0]
    kp = kp_detector(torch.cat([source, driving], dim=0))
    return select_keypoints(kp, slice(0, batch)), select_keypoints(kp, slice(batch, None))


def generator_step(kp_detector: nn.Module, generator: nn.Module, discriminator: nn.Module, source: torch.Tensor,
                   driving: torch.Tensor, weights: MonkeyNetLossWeights, *,
                   detach_kp_generator: bool = False) -> GeneratorStepOutput:
    """The generator-side losses of one batch (see the module docstring).

    Args:
        kp_detector, generator, discriminator: the networks (the discriminator's parameters should be frozen by
            the caller; gradients pass through it).
        source, driving: (B, C, H, W) frames of the same videos in [0, 1].
        weights: the loss weights.
        detach_kp_generator: give the generator detached keypoints (the detector then learns only through the
            discriminator's keypoint embedding).

    Returns:
        :class:`GeneratorStepOutput`.
    """
    kp_source, kp_driving = detect_pair(kp_detector, source, driving)
    kp_gen_source, kp_gen_driving = ((detach_keypoints(kp_source), detach_keypoints(kp_driving))
                                     if detach_kp_generator else (kp_source, kp_driving))
    generated = generator(source, kp_gen_driving, kp_gen_source)
    fake_maps, fake_prediction = discriminator(generated["prediction"], kp_driving, kp_source)
    real_maps, _ = discriminator(driving, kp_driving, kp_source)
    losses = {"reconstruction": feature_matching_loss([real_maps], [fake_maps], weights.reconstruction)}
    if weights.generator_gan != 0:
        losses["generator_gan"] = weights.generator_gan * lsgan_generator_loss([fake_prediction])
    if weights.reconstruction_deformed != 0:
        deformed_error = (generated["deformed"] - driving).abs().mean()
        losses["reconstruction_deformed"] = weights.reconstruction_deformed * deformed_error
    total = torch.stack(list(losses.values())).sum()
    return GeneratorStepOutput(total, losses, generated, kp_source, kp_driving)


def discriminator_step(discriminator: nn.Module, driving: torch.Tensor, prediction: torch.Tensor,
                       kp_source: Keypoints, kp_driving: Keypoints, weight: float) -> torch.Tensor:
    """``weight`` times the LSGAN discriminator loss on the real frames and the (detached) predictions, with
    detached keypoints: a scalar."""
    kp_source, kp_driving = detach_keypoints(kp_source), detach_keypoints(kp_driving)
    _, real_prediction = discriminator(driving, kp_driving, kp_source)
    _, fake_prediction = discriminator(prediction.detach(), kp_driving, kp_source)
    return weight * lsgan_discriminator_loss([real_prediction], [fake_prediction])


class MonkeyNetTask:
    """Monkey-Net for the generic :func:`motiontransfer.training.trainer.train` loop.

    Args:
        experiment: the Monkey-Net experiment.
        context: process placement (device, rank, world size).
        steps_per_epoch: optimisation steps per epoch (converts ``epoch_milestones`` to steps).

    Raises:
        ConfigError: ``detach_kp_discriminator: false`` (see the module docstring).
    """

    family = "monkeynet"

    def __init__(self, experiment: MonkeyNetExperiment, context: DistributedContext, steps_per_epoch: int) -> None:
        self.experiment = experiment
        self.context = context
        params = experiment.train_params
        if not params.detach_kp_discriminator:
            raise ConfigError("train_params.detach_kp_discriminator: false is not supported (the keypoint "
                              "detector is trained by the generator losses only); set it to true")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(params.seed)
            kp_detector, generator, discriminator = build_monkeynet(experiment.model_params)
        plain = {"kp_detector": kp_detector, "generator": generator, "discriminator": discriminator}
        self.train_discriminator = params.loss_weights.discriminator_gan != 0 and params.lr > 0
        learning_rates = {"kp_detector": params.lr, "generator": params.lr,
                          "discriminator": params.lr if self.train_discriminator else 0.0}
        for name, module in plain.items():
            module.requires_grad_(learning_rates[name] > 0)
        self.wrapped = {name: wrap_module(module, context) for name, module in plain.items()}
        self.plain = {name: unwrap(module) for name, module in self.wrapped.items()}
        self.optimizers = make_optimizers(self.plain, learning_rates)
        self.schedulers = make_schedulers(self.optimizers, milestones_in_steps(params.epoch_milestones,
                                                                               steps_per_epoch))

    def networks(self) -> dict[str, nn.Module]:
        """The plain networks by model-file name (what a checkpoint saves)."""
        return dict(self.plain)

    def train_step(self, batch: Mapping[str, Any], step: int) -> StepResult:
        """One optimisation step on a batch ``{'source': (B, C, H, W), 'driving': (B, C, H, W), ...}``.

        Returns:
            The step's loss values (floats, plus ``l1``, the unweighted mean absolute reconstruction error, a
            monitoring value) and detached outputs for :meth:`sample_image`.
        """
        source, driving = pair_for_step(batch, self.wrapped.values(), self.context.device)
        params = self.experiment.train_params
        with frozen_parameters(self.plain["discriminator"]):
            out = generator_step(self.wrapped["kp_detector"], self.wrapped["generator"], self.plain["discriminator"],
                                 source, driving, params.loss_weights,
                                 detach_kp_generator=params.detach_kp_generator)
        optimise(self.optimizers, ("kp_detector", "generator"), out.loss)
        losses = dict(out.losses)
        prediction = out.generated["prediction"].detach()
        if self.train_discriminator:
            losses["discriminator_gan"] = discriminator_step(
                self.wrapped["discriminator"], driving, prediction, out.kp_source, out.kp_driving,
                params.loss_weights.discriminator_gan)
            optimise(self.optimizers, ("discriminator",), losses["discriminator_gan"])
        for scheduler in self.schedulers.values():
            scheduler.step()
        values = {name: float(value.detach()) for name, value in losses.items()}
        values["l1"] = float((prediction - driving).abs().mean())
        outputs = {"source": source, "driving": driving, "prediction": prediction,
                   "kp_source": out.kp_source["mean"].detach(), "kp_driving": out.kp_driving["mean"].detach()}
        return StepResult(values, outputs)

    def sample_image(self, result: StepResult) -> np.ndarray:
        """The sample sheet of a step (:func:`motiontransfer.visualize.sample_grid`; no occlusion column)."""
        out = result.outputs
        return sample_grid(out["source"], out["driving"], out["kp_source"], out["kp_driving"], out["prediction"],
                           None)
