"""Official first-order-model checkpoints -> model files.

The official ``Logger.save_cpk`` writes ``{'generator', 'discriminator', 'kp_detector', 'optimizer_generator',
'optimizer_discriminator', 'optimizer_kp_detector', 'epoch'}`` with ``torch.save``. Our networks have the official
parameter names and shapes, so the ``kp_detector``, ``generator`` and (when present) ``discriminator`` state dicts
map one to one, checked strictly against the config; optimizer states and the epoch are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from motiontransfer.checkpoint import ModelFile
from motiontransfer.convert.networks import convert_networks
from motiontransfer.families.fomm.config import FommExperiment
from motiontransfer.families.fomm.networks import build_discriminator, build_generator, build_kp_detector


def convert_fomm(checkpoint: Mapping[str, Any], experiment: FommExperiment, *,
                 config_name: str | None = None) -> ModelFile:
    """Map an official checkpoint dict onto the networks of ``experiment`` (strict: same keys, same shapes).

    Args:
        checkpoint: the official dict (read by :func:`motiontransfer.convert.official.convert_official`).
        experiment: the experiment config the checkpoint was trained with.
        config_name: the config's name or path, for error messages.

    Returns:
        A ``fomm`` ModelFile with ``kp_detector``, ``generator`` and, when the checkpoint has one,
        ``discriminator``; ``metadata["config"]`` is the experiment as plain data.

    Raises:
        UserError: "the checkpoint does not match config vox-256: generator.first.conv.weight has shape ...,
            expected ...; missing keys: ...; unexpected keys: ..." (every mismatch of every network at once).
    """
    builders = {"kp_detector": build_kp_detector, "generator": build_generator, "discriminator": build_discriminator}
    return convert_networks(checkpoint, experiment, "fomm", builders, optional=("discriminator",),
                            config_name=config_name)
