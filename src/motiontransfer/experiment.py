"""Experiment configs: one YAML file describes data, model, training and animation, validated into the dataclasses of
its family (``families/<name>/config.py``, built from the shared sections of :mod:`motiontransfer.params`).

The layouts are the official ones: first-order-model's (``dataset_params``, ``model_params``, ``train_params``,
``reconstruction_params``, ``animate_params``, ``visualizer_params``) and monkey-net's (``transfer_params`` and
``prediction_params`` instead of ``animate_params``), so the official ``config/*.yaml`` files load unchanged; a few
optional keys are ours. Any unknown key is an error naming it; an official key this library never reads gets a
warning naming it when a loaded file sets it (:func:`motiontransfer.params.warn_unused_keys`). ``family`` (ours)
names the model family; official files omit it and the family is recognised from their layout (each family's
``config_layout`` in the registry).

Bundled configs live in ``motiontransfer/configs/<family>/<name>.yaml`` and are loaded by name
(``load_experiment("vox-256")``); anything else is read as a path.

Importing this module registers the built-in families (:mod:`motiontransfer.families`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import torch

import motiontransfer.families  # noqa: F401  (registers the built-in families)
from motiontransfer.checkpoint import ModelFile
from motiontransfer.config import from_dict, load_yaml
from motiontransfer.errors import ConfigError, InputFileError, UserError
from motiontransfer.models.base import AnimationModel
from motiontransfer.params import Experiment, warn_unused_keys
from motiontransfer.registry import family, family_names, recognize


def guess_family(data: dict[str, Any]) -> str:
    """The family of a parsed config: its ``family`` key, else the registered family whose official config layout
    it matches best (monkey-net's sections, else first-order-model's).

    Raises:
        ConfigError: no ``family`` key and no family recognises the layout.
    """
    if "family" in data:
        return str(data["family"])
    found = recognize("config_layout", data)
    if found is None:
        raise ConfigError(f"family: missing, and the layout is no official one; add family: NAME "
                          f"({', '.join(family_names())})")
    return found


def experiment_from_dict(data: dict[str, Any]) -> Experiment:
    """Validate plain data (a parsed YAML file, or model-file metadata) into the family's experiment class."""
    name = guess_family(data)
    if name not in family_names():
        raise ConfigError(f"family: unknown model family {name!r}; known: {', '.join(family_names())}")
    if "model_params" not in data:
        raise ConfigError("missing required key model_params (is this an experiment config file?)")
    return from_dict(family(name).experiment, {**data, "family": name})


def bundled_configs_dir() -> Path:
    """The package folder of the bundled configs (``configs/<family>/<name>.yaml``)."""
    return Path(str(resources.files("motiontransfer") / "configs"))


def bundled_config_names() -> dict[str, Path]:
    """Names of the configs shipped in the package, mapped to their files."""
    root = bundled_configs_dir()
    names: dict[str, Path] = {}
    if root.is_dir():
        for family_dir in sorted(root.iterdir(), key=lambda p: p.name):
            if family_dir.is_dir():
                for file in sorted(family_dir.iterdir(), key=lambda p: p.name):
                    if file.name.endswith(".yaml"):
                        names.setdefault(file.name[: -len(".yaml")], file)
    return names


def resolve_config(name_or_path: str | Path) -> Path:
    """The YAML file meant by a bundled config name (``vox-256``) or a path."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise InputFileError(path, "config file not found")
        return path
    bundled = bundled_config_names()
    if text in bundled:
        return bundled[text]
    raise UserError(f"unknown config {text!r}: not a file, and not a bundled config "
                    f"({', '.join(sorted(bundled))})")


def load_experiment(name_or_path: str | Path) -> Experiment:
    """Load and validate an experiment config by bundled name or path. In a file of the user's (not a bundled
    one: those are the authors' files as published), an official key the library never reads, set to anything but
    its default, gets one warning naming it.

    Raises:
        UserError / InputFileError / ConfigError: unknown name, missing or invalid file, unknown key or bad
            value (the message names the file and the dotted key).
    """
    path = resolve_config(name_or_path)
    data = load_yaml(path)
    try:
        experiment = experiment_from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not path.resolve().is_relative_to(bundled_configs_dir().resolve()):
        warn_unused_keys(type(experiment), data, str(path))
    return experiment


def model_from_file(model_file: ModelFile, device: str | torch.device | None = None) -> AnimationModel:
    """Instantiate the model stored in ``model_file`` with the class of its family (in eval mode on ``device``,
    default CPU).

    Raises:
        UserError: an unknown family, or a config or weights that do not fit it.
    """
    return family(model_file.family).model.from_model_file(model_file, device=device)
