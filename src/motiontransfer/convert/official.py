"""Official checkpoints -> motiontransfer model files, for every registered family that has a converter.

:func:`convert_official` reads a checkpoint once (safely, :func:`~motiontransfer.convert.torch_checkpoint.
load_torch_checkpoint`), checks that it is the family's (:func:`require_family`: the registered families'
``checkpoint_layout`` matchers tell the layouts apart, and the checkpoints of methods this library does not have
are named), and hands it to the family's ``converter``. Without a config, a family whose official checkpoints share
one architecture uses its ``default_config`` (LIA: ``lia-vox-256``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from motiontransfer.checkpoint import ModelFile
from motiontransfer.convert.torch_checkpoint import load_torch_checkpoint
from motiontransfer.errors import ArgumentError, InputFileError, Term, UserError
from motiontransfer.experiment import load_experiment
from motiontransfer.registry import FamilySpec, families, family, family_names, recognize

FOREIGN_LAYOUTS: Mapping[str, tuple[str, Callable[[Mapping[str, Any]], bool]]] = MappingProxyType({
    "mraa": ("MRAA", lambda checkpoint: "region_predictor" in checkpoint),
    "tpsmm": ("TPSMM", lambda checkpoint: "inpainting_network" in checkpoint),
})
"""Checkpoints of successor methods this library cannot convert (other networks): name -> (title, recogniser)."""


def converter_names() -> tuple[str, ...]:
    """The registered families that convert official checkpoints."""
    return tuple(spec.name for spec in families() if spec.converter is not None)


def detect_family(checkpoint: Mapping[str, Any]) -> str | None:
    """Which method wrote a checkpoint dict, from its top-level keys and network parameter names: a registered
    family (its ``checkpoint_layout``), a method this library does not support (``mraa``, ``tpsmm``), or None when
    the layout is unknown."""
    found = recognize("checkpoint_layout", checkpoint)
    if found is not None:
        return found
    return next((name for name, (_, matches) in FOREIGN_LAYOUTS.items() if matches(checkpoint)), None)


def require_family(checkpoint: Mapping[str, Any], name: str, path: str | Path,
                   family_option: str | None = None) -> None:
    """Raise InputFileError naming the family found when ``checkpoint`` is not a checkpoint of the family ``name``.

    Args:
        family_option: how the caller lets the user name the family (the CLI's ``--from``), suggested with the
            right value; None suggests only the matching config.
    """
    found = detect_family(checkpoint)
    if found == name:
        return
    title = family(name).title
    if found is None:
        keys = ", ".join(repr(str(key)) for key in list(checkpoint)[:8]) or "none"
        raise InputFileError(path, f"not a {title} checkpoint (unknown layout; top-level keys: {keys})")
    if found in FOREIGN_LAYOUTS:
        raise InputFileError(path, f"looks like a {FOREIGN_LAYOUTS[found][0]} checkpoint, which motiontransfer does "
                                   f"not support; expected a {title} checkpoint")
    found_title = family(found).title
    advice = (f"use {family_option} {found} (and a {found_title} config)" if family_option is not None
              else f"load it with a {found_title} config")
    raise InputFileError(path, f"looks like a {found_title} checkpoint, not {title}; {advice}")


def read_official_checkpoint(path: str | Path, name: str, family_option: str | None = None) -> dict[str, Any]:
    """:func:`~motiontransfer.convert.torch_checkpoint.load_torch_checkpoint`, then :func:`require_family`."""
    checkpoint = load_torch_checkpoint(path)
    require_family(checkpoint, name, path, family_option)
    return checkpoint


def convert_official(path: str | Path, experiment: Any = None, config_name: str | None = None,
                     family_name: str | None = None, family_option: str | None = None) -> ModelFile:
    """Convert the official checkpoint at ``path``.

    Args:
        path: the checkpoint file.
        experiment: its experiment config; None: the ``default_config`` of ``family_name`` (or of the family
            detected in the file), for families that have one.
        config_name: the config's name or path, for messages.
        family_name: the expected family when no ``experiment`` is given (default: detected from the file).
        family_option: how the caller lets the user name the family (see :func:`require_family`).

    Raises:
        UserError / InputFileError: unreadable file, no converter for the family, another family's checkpoint,
            no config where the family needs one, or weights that do not match the config.
    """
    checkpoint = load_torch_checkpoint(path)
    if experiment is None:
        name = family_name or detect_family(checkpoint)
        spec = family(name) if name in family_names() else None
        if spec is None or spec.default_config is None:
            title = spec.title if spec is not None else "this"
            raise ArgumentError(f"{path} is not a motiontransfer model file; an official {title} checkpoint needs "
                                "its config (a bundled name such as vox-256, or the official YAML file): give ",
                                Term("config"))
        config_name = spec.default_config
        experiment = load_experiment(config_name)
    elif family_name is not None and family_name != experiment.family:
        raise UserError(f"the config is a {experiment.family} config, but the family asked for is {family_name}")
    spec = _converting(experiment.family)
    require_family(checkpoint, spec.name, path, family_option)
    assert spec.converter is not None
    return spec.converter(checkpoint, experiment, config_name=config_name)


def _converting(name: str) -> FamilySpec:
    """The spec of the family ``name`` when it converts official checkpoints; UserError otherwise."""
    spec = family(name)
    if spec.converter is None:
        raise UserError(f"no converter for family {name!r}; available: {', '.join(converter_names())}")
    return spec
