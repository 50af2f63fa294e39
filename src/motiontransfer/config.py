"""Typed configuration: dataclasses filled from YAML or dicts, with strict validation.

Every config in the project is a (possibly nested) dataclass. :func:`from_dict` builds one from plain data and
refuses unknown keys, missing required keys and values of the wrong type, naming the offending key by its full
dotted path (``model.kp_detector.num_kp``), so a typo in a YAML file is an error instead of a silently ignored
setting.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import numpy as np
import yaml

from motiontransfer.errors import ConfigError, InputFileError

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that holds a mapping; raise :class:`InputFileError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "config file not found")
    try:
        with path.open("r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise InputFileError(path, f"not valid YAML: {yaml_problem(exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputFileError(path, "a config file must hold a mapping of keys to values")
    return data


def yaml_problem(exc: yaml.YAMLError) -> str:
    """One line describing a YAML syntax error: where (1-based line and column) and what, e.g. ``line 2, column 2:
    expected ',' or ']', but got ':' (in a flow sequence started at line 1, column 4)``."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return " ".join(str(exc).split())
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    text = " ".join(str(exc.problem or exc.context or "syntax error").split())
    if exc.context and exc.problem and exc.context_mark is not None:
        context = re.sub(r"^(while )?(parsing|scanning) ", "in ", " ".join(exc.context.split()))
        text += f" ({context} started at line {exc.context_mark.line + 1}, column {exc.context_mark.column + 1})"
    return where + text


def from_yaml(cls: type[T], path: str | Path) -> T:
    """Load ``path`` and validate it into the dataclass ``cls`` (see :func:`from_dict`)."""
    try:
        return from_dict(cls, load_yaml(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``.

    Args:
        cls: a dataclass type; nested dataclass fields are built recursively.
        data: a mapping of field names to values (typically parsed YAML).
        where: dotted prefix used in error messages (internal).

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: on an unknown key, a missing required key, or a value of the wrong type.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        names = ", ".join(_join(where, key) for key in unknown)
        raise ConfigError(f"unknown key(s) {names}; valid keys: {', '.join(sorted(fields))}")
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], _join(where, name))
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {_join(where, name)}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def to_dict(config: Any) -> Any:
    """Turn a config dataclass (or any nesting of dataclasses, lists, dicts, paths and numpy values) into plain
    data suitable for YAML or JSON: tuples become lists, paths strings, numpy values Python numbers."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        return value

    return plain(config)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {hint}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where=where)
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or hint is tuple) else items
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_type, value_type = args if args else (Any, Any)
        return {
            _convert(key_type, k, where): _convert(value_type, v, _join(where, str(k))) for k, v in value.items()
        }
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if hint is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    raise TypeError(f"unsupported config type {hint!r} at {where}")
