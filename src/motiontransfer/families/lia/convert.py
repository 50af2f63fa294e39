"""Official LIA checkpoints -> model files.

LIA's trainer saves ``{'gen', 'dis', 'g_optim', 'd_optim', 'args'}`` (``args`` an argparse Namespace, which
:func:`~motiontransfer.convert.torch_checkpoint.load_torch_checkpoint` reads as plain data); the released
``vox.pt``, ``taichi.pt`` and ``ted.pt`` hold at least ``gen``. Our generator has the official names, so ``gen``
maps one to one onto ``generator`` (and ``dis``, when present, onto ``discriminator``), strictly against the
config (default: the official 256 px architecture).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from motiontransfer.checkpoint import ModelFile
from motiontransfer.convert.networks import convert_networks
from motiontransfer.families.lia.config import LIAExperiment
from motiontransfer.families.lia.networks import Generator, build_discriminator

BUILDERS = {"generator": Generator, "discriminator": build_discriminator}
OFFICIAL_NAMES = {"generator": "gen", "discriminator": "dis"}


def convert_lia(checkpoint: Mapping[str, Any], experiment: LIAExperiment, *,
                config_name: str | None = None) -> ModelFile:
    """Map an official checkpoint dict onto the networks of ``experiment`` (strict).

    Raises:
        UserError: every missing, unexpected or misshapen key at once, naming the config.
    """
    renamed = {ours: checkpoint[theirs] for ours, theirs in OFFICIAL_NAMES.items() if theirs in checkpoint}
    return convert_networks(renamed, experiment, "lia", BUILDERS, optional=("discriminator",),
                            config_name=config_name)
