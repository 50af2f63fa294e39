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

from torch import nn

from motiontransfer.checkpoint import ModelFile, state_dicts
from motiontransfer.config import to_dict
from motiontransfer.convert.torch_checkpoint import load_torch_checkpoint, require_family, strip_prefix
from motiontransfer.experiment import FommExperiment
from motiontransfer.models.base import load_state_dicts
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
    config = experiment.model_params
    modules: dict[str, nn.Module] = {"kp_detector": build_kp_detector(config), "generator": build_generator(config)}
    if isinstance(checkpoint.get("discriminator"), Mapping):
        modules["discriminator"] = build_discriminator(config)
    states = {name: strip_prefix(checkpoint[name]) for name in modules}
    load_state_dicts(modules, states, f"the checkpoint does not match config {config_name or '(given)'}")
    metadata: dict[str, Any] = {"config": to_dict(experiment), "converted_from": "fomm official checkpoint"}
    if isinstance(checkpoint.get("epoch"), int):
        metadata["epoch"] = checkpoint["epoch"]
    return ModelFile("fomm", state_dicts(modules), metadata)


def convert_fomm_file(path: str | Path, experiment: FommExperiment, config_name: str | None = None) -> ModelFile:
    """:func:`read_official_checkpoint` then :func:`convert_fomm`."""
    return convert_fomm(read_official_checkpoint(path), experiment, config_name=config_name)
