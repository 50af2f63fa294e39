"""Official checkpoint layouts -> motiontransfer model files, one converter per family.

:func:`convert_official` reads a checkpoint once (safely, :func:`load_torch_checkpoint`), checks that it is the
family's, and dispatches through :data:`CONVERTERS` (a constant table of import paths) to the family's converter of
checkpoint dicts: ``fomm`` -> :func:`motiontransfer.convert.fomm.convert_fomm`, ``monkeynet`` ->
:func:`motiontransfer.convert.monkeynet.convert_monkeynet`, ``lia`` -> :func:`motiontransfer.convert.lia.convert_lia`.
Without a config, families whose official checkpoints share one architecture (LIA) use their default config
(:data:`motiontransfer.experiment.DEFAULT_OFFICIAL_CONFIGS`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from motiontransfer.checkpoint import ModelFile
from motiontransfer.convert.torch_checkpoint import (
    FAMILY_TITLES,
    detect_family,
    load_torch_checkpoint,
    require_family,
)
from motiontransfer.errors import UserError
from motiontransfer.experiment import DEFAULT_OFFICIAL_CONFIGS, load_experiment

CONVERTERS: Mapping[str, str] = MappingProxyType({
    "fomm": "motiontransfer.convert.fomm:convert_fomm",
    "monkeynet": "motiontransfer.convert.monkeynet:convert_monkeynet",
    "lia": "motiontransfer.convert.lia:convert_lia",
})


def convert_official(path: str | Path, experiment: Any = None, config_name: str | None = None,
                     family: str | None = None, family_option: str | None = None) -> ModelFile:
    """Convert the official checkpoint at ``path``.

    Args:
        path: the checkpoint file.
        experiment: its experiment config; None: the default config of ``family`` (or of the family detected in
            the file), for families that have one.
        config_name: the config's name or path, for messages.
        family: the expected family when no ``experiment`` is given (default: detected from the file).
        family_option: the command-line option naming the family (``--from``), for the message about another
            family's checkpoint.

    Raises:
        UserError / InputFileError: unreadable file, no converter for the family, another family's checkpoint,
            no config where the family needs one, or weights that do not match the config.
    """
    checkpoint = load_torch_checkpoint(path)
    if experiment is None:
        family = family or detect_family(checkpoint)
        if family not in DEFAULT_OFFICIAL_CONFIGS:
            title = FAMILY_TITLES.get(str(family), "this")
            raise UserError(f"{path} is not a motiontransfer model file; an official {title} checkpoint needs its "
                            "config (a bundled name such as vox-256, or the official YAML file): pass config= / "
                            "--config")
        config_name = DEFAULT_OFFICIAL_CONFIGS[family]
        experiment = load_experiment(config_name)
    elif family is not None and family != experiment.family:
        raise UserError(f"the config is a {experiment.family} config, but the family asked for is {family}")
    family = experiment.family
    if family not in CONVERTERS:
        raise UserError(f"no converter for family {family!r}; available: {', '.join(CONVERTERS)}")
    require_family(checkpoint, family, path, family_option)
    module_name, function_name = CONVERTERS[family].split(":")
    convert = getattr(importlib.import_module(module_name), function_name)
    return convert(checkpoint, experiment, config_name=config_name)


__all__ = ["CONVERTERS", "convert_official", "detect_family", "load_torch_checkpoint"]
