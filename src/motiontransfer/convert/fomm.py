"""Official first-order-model checkpoints -> model files.

The official ``Logger.save_cpk`` writes ``{'generator', 'discriminator', 'kp_detector', 'optimizer_generator',
'optimizer_discriminator', 'optimizer_kp_detector', 'epoch'}`` with ``torch.save``. Our networks have the official
parameter names and shapes, so the ``kp_detector``, ``generator`` and (when present) ``discriminator`` state dicts
map one to one, checked strictly against the config; optimizer states and the epoch are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from motiontransfer.checkpoint import ModelFile
from motiontransfer.convert.networks import convert_networks
from motiontransfer.convert.torch_checkpoint import load_torch_checkpoint, require_family
from motiontransfer.experiment import FommExperiment
from motiontransfer.models.fomm import build_discriminator, build_generator, build_kp_detector


def read_official_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load an official FOMM checkpoint (``torch.load(weights_only=True)``, CPU).

    Raises:
        InputFileError: missing, truncated or non-dict file, or another family's checkpoint (the message names
            it, e.g. "looks like a LIA checkpoint, not FOMM; use --from lia").
    """
    checkpoint = load_torch_checkpoint(path)
    require_family(checkpoint, "fomm", path)
    return checkpoint


def convert_fomm(checkpoint: Mapping[str, Any], experiment: FommExperiment, *,
                 config_name: str | None = None) -> ModelFile:
    """Map an official checkpoint dict onto the networks of ``experiment`` (strict: same keys, same shapes).

    Args:
        checkpoint: as returned by :func:`read_official_checkpoint`.
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


def convert_fomm_file(path: str | Path, experiment: FommExperiment, config_name: str | None = None) -> ModelFile:
    """:func:`read_official_checkpoint` then :func:`convert_fomm`."""
    return convert_fomm(read_official_checkpoint(path), experiment, config_name=config_name)
