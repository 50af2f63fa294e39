"""Reading the authors' PyTorch checkpoints safely (telling the families' layouts apart is
:mod:`motiontransfer.convert.official`'s job).

Official checkpoints are plain ``torch.save`` pickles (FOMM's ``.pth.tar`` is not a tar archive). They are read
with ``torch.load(weights_only=True)``, which refuses to run pickled code: only tensors and plain containers load.
"""

from __future__ import annotations

import argparse
import io
import pickle
import pickletools
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from motiontransfer.checkpoint import is_model_file
from motiontransfer.errors import InputFileError

# AssertionError: torch's weights-only unpickler asserts on some damaged persistent ids.
_READ_ERRORS = (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError, ValueError,
                AttributeError, ImportError, IndexError, KeyError, TypeError, UnicodeDecodeError, AssertionError)
# What torch's weights-only unpickler says when a pickle names a class or function it does not allow (as opposed to
# bytes that are not a pickle at all).
_FORBIDDEN_OBJECT_MARKERS = ("Unsupported global", "allowed global", "unrecognized function", "Can only build",
                             "Unsupported class", "safe_globals")


def load_torch_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a ``torch.save`` checkpoint dict onto the CPU without executing pickled code.

    Raises:
        InputFileError: missing file, a motiontransfer model file (nothing to convert), a truncated or corrupt
            file, one holding objects other than tensors and plain containers, or one that is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "checkpoint not found" if not path.exists() else "is not a file")
    if path.stat().st_size == 0:
        raise InputFileError(path, "checkpoint file is empty")
    if is_model_file(path):
        raise InputFileError(path, "is already a motiontransfer model file; load it directly, without a config")
    try:
        # LIA's trainer pickles its argparse Namespace: plain attributes, allowed as data (no code runs).
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if any(marker in str(exc) for marker in _FORBIDDEN_OBJECT_MARKERS):
            raise InputFileError(path, "holds Python objects other than tensors and plain containers; refusing to "
                                       "unpickle them (only weights are loaded)") from None
        if _is_pickle(path):
            raise InputFileError(path, "a Python pickle that torch.load cannot read as weights; refusing to unpickle "
                                       "it (only weights are loaded)") from None
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise InputFileError(path, f"not a PyTorch checkpoint (unreadable: {_unpickler_reason(exc)}); the file "
                                       "may be damaged, or another kind of file") from None
        raise InputFileError(path, f"cannot be read as a PyTorch checkpoint; the file may be truncated or "
                                   f"corrupt ({_first_line(exc)})") from None
    except _READ_ERRORS as exc:
        raise InputFileError(path, f"cannot be read as a PyTorch checkpoint; the file may be truncated or corrupt "
                                   f"({_first_line(exc)})") from None
    if not isinstance(checkpoint, dict):
        raise InputFileError(path, f"holds a {type(checkpoint).__name__}, not a checkpoint dict of networks")
    return checkpoint


def strip_prefix(state: Mapping[str, Any], prefix: str = "module.") -> dict[str, Any]:
    """Drop a (Distributed)DataParallel ``module.`` prefix when every key has it; otherwise copy as is."""
    keys = list(state)
    if keys and all(str(key).startswith(prefix) for key in keys):
        return {str(key)[len(prefix):]: value for key, value in state.items()}
    return dict(state)


def _is_pickle(path: Path, limit: int = 64 * 2**20) -> bool:
    """Whether the file's first ``limit`` bytes hold a complete pickle stream: its opcodes are only scanned
    (pickletools, in memory so that a bogus length cannot make it read or allocate much), nothing is built or run."""
    with path.open("rb") as handle:
        data = io.BytesIO(handle.read(limit))
    try:
        for _ in pickletools.genops(data):
            pass
    except Exception:  # any complaint of the scanner means: not a pickle
        return False
    return True


def _unpickler_reason(exc: BaseException) -> str:
    """What torch's weights-only unpickler objected to (``Unsupported operand 121``), without its long advice."""
    match = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
    return match.group(1).strip() if match else _first_line(exc)


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (just the type when the message is empty)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
