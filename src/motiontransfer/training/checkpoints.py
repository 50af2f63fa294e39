"""Training checkpoints: crash-safe pairs of files plus a pointer to the last complete pair.

Layout of a run folder::

    RUN/checkpoints/step-00001000.mt         model file (safetensors): every network, metadata config/step/epoch/family
    RUN/checkpoints/step-00001000.optim.pt   optimiser and scheduler states (torch.save; read with weights_only=True)
    RUN/checkpoints/latest.json              {"step", "epoch", "family", "model", "training_state", "data"}

Crash safety: each file is written under a hidden temporary name and renamed when complete
(:func:`motiontransfer.fileio.atomic_output`); ``latest.json`` is written last, so it only ever names a complete
pair. Older pairs are deleted only after the new ``latest.json`` is in place, keeping the newest ``keep``. After a
crash, :func:`clean_checkpoint_dir` removes leftovers (temporary files, files of a pair newer than ``latest.json``).
A ``.mt`` file alone is a complete model file, usable for inference without the optimiser state.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from motiontransfer.checkpoint import ModelFile, StateDict, load_model_file, save_model_file
from motiontransfer.errors import InputFileError, UserError
from motiontransfer.fileio import atomic_output, atomic_write_text

__all__ = [
    "CHECKPOINT_DIR",
    "LATEST_NAME",
    "CheckpointRecord",
    "checkpoint_dir",
    "checkpoint_stem",
    "clean_checkpoint_dir",
    "load_checkpoint",
    "load_training_state",
    "prune_checkpoints",
    "read_latest",
    "save_checkpoint",
]

CHECKPOINT_DIR = "checkpoints"
LATEST_NAME = "latest.json"
_STEP_FILE = re.compile(r"^step-(\d{8,})\.(mt|optim\.pt)$")


@dataclass(frozen=True)
class CheckpointRecord:
    """One complete checkpoint, as named by ``latest.json``.

    Attributes:
        step: optimisation steps done.
        epoch: epochs completed (``step // steps_per_epoch``).
        family: model family.
        model: path of the ``.mt`` model file.
        training_state: path of the ``.optim.pt`` file.
        data: the training data the run used (folder or ``procedural:`` spec), or None.
    """

    step: int
    epoch: int
    family: str
    model: Path
    training_state: Path
    data: str | None = None


def checkpoint_dir(run_dir: str | Path) -> Path:
    """``RUN/checkpoints``."""
    return Path(run_dir) / CHECKPOINT_DIR


def checkpoint_stem(step: int) -> str:
    """File stem of the checkpoint after ``step`` steps: ``step-00001000``."""
    return f"step-{step:08d}"


def save_checkpoint(run_dir: str | Path, *, step: int, epoch: int, family: str, config: dict[str, Any],
                    networks: dict[str, StateDict], training_state: dict[str, Any], keep: int,
                    data: str | None = None) -> CheckpointRecord:
    """Write the checkpoint of ``step`` (model file, then training state, then ``latest.json``) and prune.

    Args:
        run_dir: the run folder.
        step, epoch: progress counters stored in the metadata and ``latest.json``.
        family: model family.
        config: the experiment as plain data (``motiontransfer.config.to_dict``).
        networks: network name -> state dict (CPU or device tensors).
        training_state: optimiser and scheduler states (anything ``torch.load(weights_only=True)`` can read).
        keep: number of newest checkpoints to keep (>= 1).
        data: the training data string, recorded so that ``--resume`` can find it again.

    Returns:
        The new :class:`CheckpointRecord`.
    """
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = checkpoint_stem(step)
    model_path, state_path = folder / f"{stem}.mt", folder / f"{stem}.optim.pt"
    metadata = {"config": config, "step": step, "epoch": epoch, "family": family}
    save_model_file(model_path, ModelFile(family, networks, metadata))
    with atomic_output(state_path) as temp:
        torch.save({"step": step, "epoch": epoch, **training_state}, temp)
    record = CheckpointRecord(step, epoch, family, model_path, state_path, data)
    latest = {"step": step, "epoch": epoch, "family": family, "model": model_path.name,
              "training_state": state_path.name, "data": data}
    atomic_write_text(folder / LATEST_NAME, json.dumps(latest, indent=2) + "\n")
    prune_checkpoints(run_dir, keep)
    return record


def read_latest(run_dir: str | Path) -> CheckpointRecord | None:
    """The checkpoint named by ``RUN/checkpoints/latest.json``, or None when there is none.

    Raises:
        InputFileError: ``latest.json`` is unreadable or names files that do not exist.
    """
    path = checkpoint_dir(run_dir) / LATEST_NAME
    if not path.is_file():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        record = CheckpointRecord(int(content["step"]), int(content["epoch"]), str(content["family"]),
                                  path.parent / content["model"], path.parent / content["training_state"],
                                  content.get("data"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(path, f"unreadable checkpoint pointer ({exc})") from None
    for file in (record.model, record.training_state):
        if not file.is_file():
            raise InputFileError(file, "named by latest.json but missing")
    return record


def _step_files(folder: Path) -> dict[int, list[Path]]:
    """Checkpoint files in ``folder`` grouped by step."""
    groups: dict[int, list[Path]] = {}
    for entry in folder.iterdir() if folder.is_dir() else ():
        match = _STEP_FILE.match(entry.name)
        if match and entry.is_file():
            groups.setdefault(int(match.group(1)), []).append(entry)
    return groups


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints up to the one ``latest.json`` names (never that one)."""
    latest = read_latest(run_dir)
    if latest is None:
        return
    groups = _step_files(checkpoint_dir(run_dir))
    older = sorted(step for step in groups if step <= latest.step)
    for step in older[: max(0, len(older) - max(1, keep))]:
        if step != latest.step:
            for file in groups[step]:
                file.unlink(missing_ok=True)


_RUST_TEMPFILE = re.compile(r"\.tmp[A-Za-z0-9]{6}")
"""Names of the temporary files that safetensors (Rust's ``tempfile`` crate) creates next to the file it writes."""


def _is_temporary(name: str) -> bool:
    """A temporary file of ours (``.<name>.tmp-<hex><suffix>``, see :mod:`motiontransfer.fileio`) or of
    safetensors (``.tmpXXXXXX``)."""
    return (name.startswith(".") and ".tmp-" in name) or _RUST_TEMPFILE.fullmatch(name) is not None


def clean_checkpoint_dir(run_dir: str | Path) -> None:
    """Remove what an interrupted save can leave behind: hidden temporary files of the atomic writes and the files
    of a checkpoint newer than ``latest.json`` (written before the crash but never made current)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if _is_temporary(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
    latest = read_latest(run_dir)
    limit = -1 if latest is None else latest.step
    for step, files in _step_files(folder).items():
        if step > limit:
            for file in files:
                file.unlink(missing_ok=True)


def load_training_state(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Read an ``.optim.pt`` file with ``torch.load(weights_only=True)`` (no code from the file is executed).

    Raises:
        InputFileError: unreadable or not a training-state file.
    """
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated file, not a torch file, or objects refused by weights_only
        raise InputFileError(path, f"cannot read the training state ({exc})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise InputFileError(path, "not a motiontransfer training-state file")
    return state


def require_latest(run_dir: str | Path) -> CheckpointRecord:
    """:func:`read_latest` of a run that must have a checkpoint.

    Raises:
        InputFileError: the folder does not exist, or a damaged pointer. UserError: no checkpoint in it.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputFileError(run_dir, "run folder does not exist (no checkpoint to resume from)")
    record = read_latest(run_dir)
    if record is None:
        raise UserError(f"{run_dir}: no checkpoint to resume from ({CHECKPOINT_DIR}/{LATEST_NAME} is missing)")
    return record


def load_checkpoint(run_dir: str | Path, device: str | torch.device = "cpu"
                    ) -> tuple[CheckpointRecord, ModelFile, dict[str, Any]]:
    """The latest checkpoint of a run: its record, model file and training state.

    Raises:
        UserError: the folder holds no checkpoint (no ``checkpoints/latest.json``).
        InputFileError: a damaged checkpoint.
    """
    record = require_latest(run_dir)
    return record, load_model_file(record.model, device="cpu"), load_training_state(record.training_state, device)
