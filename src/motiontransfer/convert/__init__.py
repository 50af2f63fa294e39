"""Official checkpoint layouts -> motiontransfer model files, one converter per family.

:func:`convert_official` dispatches on the experiment's family through :data:`CONVERTERS` (a constant table of
import paths): ``fomm`` -> :func:`motiontransfer.convert.fomm.convert_fomm_file`, ``monkeynet`` ->
:func:`motiontransfer.convert.monkeynet.convert_monkeynet_file`, ``lia`` ->
:func:`motiontransfer.convert.lia.convert_lia_file`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from motiontransfer.checkpoint import ModelFile
from motiontransfer.convert.torch_checkpoint import detect_family, load_torch_checkpoint
from motiontransfer.errors import UserError

CONVERTERS: Mapping[str, str] = MappingProxyType({
    "fomm": "motiontransfer.convert.fomm:convert_fomm_file",
    "monkeynet": "motiontransfer.convert.monkeynet:convert_monkeynet_file",
    "lia": "motiontransfer.convert.lia:convert_lia_file",
})


def convert_official(path: str | Path, experiment: Any, config_name: str | None = None) -> ModelFile:
    """Convert the official checkpoint at ``path`` of the family of ``experiment`` (its ``family`` field).

    Raises:
        UserError / InputFileError: no converter for the family, unreadable file, another family's checkpoint,
            or weights that do not match the config.
    """
    family = experiment.family
    if family not in CONVERTERS:
        raise UserError(f"no converter for family {family!r}; available: {', '.join(CONVERTERS)}")
    module_name, function_name = CONVERTERS[family].split(":")
    convert = getattr(importlib.import_module(module_name), function_name)
    return convert(path, experiment, config_name)


__all__ = ["CONVERTERS", "convert_official", "detect_family", "load_torch_checkpoint"]
