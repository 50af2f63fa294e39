"""Optimisation helpers shared by the families' training tasks: Adam per network (betas (0.5, 0.999), as FOMM
and Monkey-Net), MultiStepLR schedules stepped every step, per-step seeds, and freezing a network while a loss
passes through it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from motiontransfer.checkpoint import unwrap
from motiontransfer.errors import ConfigError

ADAM_BETAS = (0.5, 0.999)


@contextlib.contextmanager
def frozen_parameters(module: nn.Module) -> Iterator[nn.Module]:
    """Turn ``requires_grad`` off for every parameter of ``module`` inside the block (restored after), so that a
    loss can pass gradients *through* a network without computing gradients *for* it."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield module
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def make_optimizers(modules: Mapping[str, nn.Module], learning_rates: Mapping[str, float]
                    ) -> dict[str, torch.optim.Adam]:
    """One Adam (betas (0.5, 0.999), FOMM) per network whose learning rate is positive; frozen networks get none."""
    optimizers = {}
    for name, module in modules.items():
        rate = learning_rates[name]
        if rate < 0:
            raise ConfigError(f"train_params: learning rate of {name} must be >= 0, got {rate}")
        if rate > 0:
            optimizers[name] = torch.optim.Adam(unwrap(module).parameters(), lr=rate, betas=ADAM_BETAS)
    return optimizers


def milestones_in_steps(epoch_milestones: Sequence[int], steps_per_epoch: int) -> list[int]:
    """Epoch milestones -> step milestones (``epoch * steps_per_epoch``) for schedulers stepped every step."""
    return [int(epoch) * int(steps_per_epoch) for epoch in epoch_milestones]


def make_schedulers(optimizers: Mapping[str, torch.optim.Optimizer], step_milestones: Sequence[int]
                    ) -> dict[str, torch.optim.lr_scheduler.MultiStepLR]:
    """MultiStepLR (gamma 0.1, FOMM) for every optimiser, at the given step milestones."""
    return {name: torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(step_milestones), gamma=0.1)
            for name, optimizer in optimizers.items()}


def decay_schedulers(optimizers: Mapping[str, torch.optim.Optimizer], every: int, gamma: float
                     ) -> dict[str, torch.optim.lr_scheduler.StepLR]:
    """StepLR for every optimiser: the learning rate times ``gamma`` every ``every`` steps (KPVP: 0.95 / 20000)."""
    return {name: torch.optim.lr_scheduler.StepLR(optimizer, step_size=every, gamma=gamma)
            for name, optimizer in optimizers.items()}


def step_seed(seed: int, rank: int, step: int) -> int:
    """A 32-bit seed for the random draws of step ``step`` of process ``rank`` (reproducible, independent)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def optimise(optimizers: Mapping[str, torch.optim.Optimizer], names: Sequence[str], loss: torch.Tensor) -> None:
    """Zero the named optimisers' gradients, back-propagate ``loss`` and step them (names without an optimiser,
    i.e. frozen networks, are skipped; nothing happens when none is left or the loss has no gradient)."""
    selected = [optimizers[name] for name in names if name in optimizers]
    if not selected or not loss.requires_grad:
        return
    for optimizer in selected:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for optimizer in selected:
        optimizer.step()
