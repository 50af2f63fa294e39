"""Official monkey-net checkpoints -> model files.

The official ``Logger.save_cpk`` writes ``{'generator', 'discriminator', 'kp_detector', 'optimizer_generator',
'optimizer_discriminator', 'optimizer_kp_detector', 'epoch', 'it'}`` with ``torch.save``. The official networks are
3D (Conv3d kernels (1, k, k) over B x C x T x H x W, BatchNorm3d, InstanceNorm3d); ours are the same networks in
2D with the same names, so each 5-D convolution kernel drops its time axis of size 1 and everything else maps one
to one, checked strictly against the config. A state dict written by a vendored synchronised BatchNorm without
``num_batches_tracked`` buffers gets them as 0 (they only matter with ``momentum=None``, which no config uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from motiontransfer.checkpoint import ModelFile
from motiontransfer.convert.networks import convert_networks
from motiontransfer.errors import UserError
from motiontransfer.families.monkeynet.config import MonkeyNetExperiment
from motiontransfer.families.monkeynet.networks import build_discriminator, build_generator, build_kp_detector

BUILDERS = {"kp_detector": build_kp_detector, "generator": build_generator, "discriminator": build_discriminator}


def drop_time_axis(state: dict[str, Any]) -> dict[str, Any]:
    """Official 3D state dict -> ours: 5-D kernels (out, in, 1, k, k) become (out, in, k, k); running-mean
    buffers without a ``num_batches_tracked`` sibling get one (0).

    Raises:
        UserError: a kernel with a temporal extent other than 1 (a temporal model this library does not have).
    """
    out: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.dim() == 5:
            if value.shape[2] != 1:
                raise UserError(f"{key} is a temporal kernel of shape {tuple(value.shape)}; only frame-wise "
                                f"(1, k, k) kernels convert")
            value = value[:, :, 0]
        out[key] = value
    for key in list(out):
        if key.endswith(".running_mean"):
            tracked = key[: -len("running_mean")] + "num_batches_tracked"
            out.setdefault(tracked, torch.tensor(0, dtype=torch.long))
    return out


def add_time_axis(state: Mapping[str, Any]) -> dict[str, Any]:
    """Ours -> the official 3D layout (every 4-D kernel gains a time axis of size 1): the inverse of
    :func:`drop_time_axis`, used to write official-layout files (tests, export for the official code)."""
    return {key: value.unsqueeze(2) if isinstance(value, torch.Tensor) and value.dim() == 4 else value
            for key, value in state.items()}


def convert_monkeynet(checkpoint: Mapping[str, Any], experiment: MonkeyNetExperiment, *,
                      config_name: str | None = None) -> ModelFile:
    """Map an official checkpoint dict onto the networks of ``experiment`` (time axes dropped, then strict).

    Returns:
        A ``monkeynet`` ModelFile with ``kp_detector``, ``generator`` and, when present, ``discriminator``.

    Raises:
        UserError: every missing, unexpected or misshapen key at once, naming the config.
    """
    return convert_networks(checkpoint, experiment, "monkeynet", BUILDERS, optional=("discriminator",),
                            adapt=drop_time_axis, config_name=config_name)
