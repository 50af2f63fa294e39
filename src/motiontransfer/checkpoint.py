"""Model files: safetensors weights plus JSON metadata, read without executing any pickled code.

A model file (suffix ``.mt`` by convention) is one safetensors file. Its tensors are the state dicts of the
model's networks, each key prefixed by the network name (``kp_detector.kp.weight``, ``generator.final.weight``);
its string metadata holds ``format`` (``motiontransfer``), ``format_version``, ``family`` (``fomm``, ...) and
``metadata`` (a JSON document with at least the model ``config``). Writing is atomic: a temporary file is
renamed onto the target only when complete, so an interrupted save never damages an existing file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from motiontransfer.errors import InputFileError
from motiontransfer.fileio import atomic_output

FORMAT = "motiontransfer"
FORMAT_VERSION = 1
StateDict = dict[str, torch.Tensor]


@dataclass
class ModelFile:
    """The contents of a model file.

    Attributes:
        family: model family name (``fomm``, ``monkeynet``, ``lia``, ``kpvp``).
        networks: network name -> state dict (tensors on the CPU as stored).
        metadata: JSON-able dict; ``metadata["config"]`` is the model's config as plain data.
    """

    family: str
    networks: dict[str, StateDict]
    metadata: dict[str, Any] = field(default_factory=dict)


def save_model_file(path: str | Path, model: ModelFile, float_dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` to ``path`` atomically and return the path.

    Tensors are made contiguous and moved to the CPU; tensors shared between keys (tied weights) are cloned
    so safetensors accepts them. ``float_dtype`` (e.g. ``torch.float16``) stores floating-point tensors in that
    type to halve the file; loading casts them back to the networks' own dtype. Integer tensors are kept.
    """
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for network, state in model.networks.items():
        if "." in network:
            raise ValueError(f"network names must not contain '.', got {network!r}")
        for key, value in state.items():
            tensor = value.detach().to("cpu")
            if float_dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(float_dtype)
            tensor = tensor.contiguous()
            if tensor.data_ptr() in seen and tensor.numel() > 0:
                tensor = tensor.clone()
            seen.add(tensor.data_ptr())
            tensors[f"{network}.{key}"] = tensor
    header = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "family": model.family,
        "networks": json.dumps(sorted(model.networks)),
        "metadata": json.dumps(model.metadata),
    }
    with atomic_output(path) as temp:
        save_file(tensors, str(temp), metadata=header)
        # safetensors creates its files owner-only (0600); give the model file the usual permissions instead.
        os.chmod(temp, 0o666 & ~_current_umask())
    return Path(path)


def _current_umask() -> int:
    """The process umask (reading it means setting it; it is put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def load_model_file(path: str | Path, device: str | torch.device = "cpu") -> ModelFile:
    """Read a model file written by :func:`save_model_file`.

    Raises:
        InputFileError: missing, truncated or corrupt file, or a safetensors file that is not a motiontransfer
            model file.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "model file not found")
    header = read_header(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputFileError(path, f"cannot read the weights ({exc}); the file may be truncated") from None
    family, names, metadata = _described_contents(path, header)
    networks: dict[str, StateDict] = {name: {} for name in names}
    for key, value in tensors.items():
        network, _, rest = key.partition(".")
        networks.setdefault(network, {})[rest] = value
    return ModelFile(family, networks, metadata)


def _described_contents(path: Path, header: Mapping[str, str]) -> tuple[str, list[str], dict[str, Any]]:
    """(family, network names, metadata) from a model file's header strings.

    Raises:
        InputFileError: a missing family, or network names / metadata that are not the JSON written by
            :func:`save_model_file` (a damaged header).
    """
    try:
        names = json.loads(header.get("networks", "[]"))
        metadata = json.loads(header.get("metadata", "{}"))
    except (json.JSONDecodeError, TypeError) as exc:
        raise InputFileError(path, f"the model file's description is damaged ({exc})") from None
    family = header.get("family")
    if not isinstance(family, str) or not family:
        raise InputFileError(path, "the model file's description is damaged (no model family)")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names) \
            or not isinstance(metadata, dict):
        raise InputFileError(path, "the model file's description is damaged (bad network list or metadata)")
    return family, names, metadata


def read_header(path: str | Path) -> dict[str, str]:
    """The string metadata of a motiontransfer model file, without reading the tensors.

    Raises:
        InputFileError: the file is not a (complete) safetensors file, or not one written by this library.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            size_bytes = handle.read(8)
            if len(size_bytes) < 8:
                raise InputFileError(path, "not a model file (too short)")
            size = int.from_bytes(size_bytes, "little")
            if size <= 0 or size > 100_000_000:
                raise InputFileError(path, "not a motiontransfer model file (no safetensors header)")
            raw = handle.read(size)
            if len(raw) < size:
                raise InputFileError(path, "the file is truncated")
            header = json.loads(raw)
            if not isinstance(header, dict):
                raise TypeError("the header is not a JSON object")
            data_length = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"),
                              default=0)
            handle.seek(0, 2)
            if handle.tell() < 8 + size + data_length:
                raise InputFileError(path, "the file is truncated")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError, IndexError,
            AttributeError):
        raise InputFileError(path, "not a motiontransfer model file (unreadable safetensors header)") from None
    metadata = header.get("__metadata__") or {}
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise InputFileError(path, "a safetensors file, but not a motiontransfer model file")
    version = str(metadata.get("format_version", "0"))
    if not version.isascii() or not version.isdigit():
        raise InputFileError(path, f"the model file's description is damaged (format version {version!r})")
    if int(version) > FORMAT_VERSION:
        raise InputFileError(path, f"written by a newer motiontransfer (format {version})")
    return metadata


def is_model_file(path: str | Path) -> bool:
    """True when ``path`` is a readable motiontransfer model file (checks the header only)."""
    try:
        read_header(path)
    except InputFileError:
        return False
    return True


def state_dicts(modules: Mapping[str, torch.nn.Module]) -> dict[str, StateDict]:
    """``{name: module.state_dict()}``, unwrapping DistributedDataParallel / compiled modules."""
    return {name: unwrap(module).state_dict() for name, module in modules.items()}


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a DistributedDataParallel / DataParallel / torch.compile wrapper."""
    while True:
        if isinstance(module, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
            module = module.module
        elif isinstance(getattr(module, "_orig_mod", None), torch.nn.Module):  # torch.compile wrapper
            module = module._orig_mod
        else:
            return module
