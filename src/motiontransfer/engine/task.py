"""The training task: what a model family gives the generic training loop (:func:`motiontransfer.training.train`).

A task owns its networks, optimisers and schedulers and does one optimisation step at a time; the loop owns the
data, the step count, logging, samples, checkpoints and resuming.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn


@dataclass
class StepResult:
    """The outcome of one optimisation step.

    Attributes:
        losses: loss values by name (Python floats, already weighted as optimised; may hold monitoring values).
        outputs: detached tensors the task's :meth:`TrainingTask.sample_image` draws from.
    """

    losses: dict[str, float]
    outputs: dict[str, Any] = field(default_factory=dict)


class TrainingTask(Protocol):
    """What a model family provides to the training loop; built as ``task(experiment, context, steps_per_epoch)``
    with a :class:`~motiontransfer.engine.distributed.DistributedContext`."""

    family: str
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]

    def networks(self) -> dict[str, nn.Module]:
        """Plain (unwrapped) networks by model-file name."""
        ...

    def train_step(self, batch: Mapping[str, Any], step: int) -> StepResult:
        """One optimisation step (including the schedulers' step); ``step`` counts the steps done before it."""
        ...

    def sample_image(self, result: StepResult) -> np.ndarray:
        """An (H, W, 3) uint8 picture of a step's outputs."""
        ...


def pair_for_step(batch: Mapping[str, Any], modules: Iterable[nn.Module], device: torch.device
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The start of every family's training step: ``modules`` in training mode and the batch's ``source`` and
    ``driving`` frames (B, C, H, W) on ``device``."""
    for module in modules:
        module.train()
    return batch["source"].to(device, non_blocking=True), batch["driving"].to(device, non_blocking=True)
