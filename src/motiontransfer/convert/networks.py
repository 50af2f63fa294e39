"""The part of converting an official checkpoint that every keypoint family shares: build the config's networks,
adapt and strictly load the checkpoint's state dicts into them, and wrap them in a model file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from motiontransfer.checkpoint import ModelFile, state_dicts
from motiontransfer.config import to_dict
from motiontransfer.convert.torch_checkpoint import strip_prefix
from motiontransfer.models.base import load_state_dicts

StateAdapter = Callable[[dict[str, Any]], dict[str, Any]]


def convert_networks(checkpoint: Mapping[str, Any], experiment: Any, family: str,
                     builders: Mapping[str, Callable[[Any], nn.Module]], *, optional: tuple[str, ...] = (),
                     adapt: StateAdapter | None = None, config_name: str | None = None) -> ModelFile:
    """Map the networks of an official checkpoint dict onto those ``experiment`` describes.

    Args:
        checkpoint: the official dict (``{'generator': state dict, 'kp_detector': ..., 'epoch': ...}``).
        experiment: the experiment config the checkpoint was trained with (``model_params`` builds the networks).
        family: the model file's family.
        builders: network name -> function building it from ``experiment.model_params``.
        optional: names that are converted only when the checkpoint has them (e.g. the discriminator).
        adapt: applied to each state dict (after dropping a DataParallel ``module.`` prefix) before loading.
        config_name: the config's name or path, for error messages.

    Returns:
        A ModelFile with the converted networks; ``metadata`` holds the config as plain data, where it came from
        and the checkpoint's epoch when it has one.

    Raises:
        UserError: "the checkpoint does not match config X: ..." listing every missing, unexpected or misshapen
            key of every network.
    """
    names = [name for name in builders if name not in optional or isinstance(checkpoint.get(name), Mapping)]
    modules = {name: builders[name](experiment.model_params) for name in names}
    states = {}
    for name in names:
        if isinstance(checkpoint.get(name), Mapping):
            state = strip_prefix(checkpoint[name])
            states[name] = adapt(state) if adapt is not None else state
    load_state_dicts(modules, states, f"the checkpoint does not match config {config_name or '(given)'}")
    metadata: dict[str, Any] = {"config": to_dict(experiment), "converted_from": f"{family} official checkpoint"}
    if isinstance(checkpoint.get("epoch"), int):
        metadata["epoch"] = checkpoint["epoch"]
    return ModelFile(family, state_dicts(modules), metadata)
