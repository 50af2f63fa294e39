"""Bounded fuzzing of the readers: damaged copies of a small mp4, PNG, model file (safetensors) and PyTorch checkpoint
either read (possibly partly, with a warning) or raise the library's UserError, never anything else.

A seeded loop (the same mutations every run, about 10 s in all): each round flips, overwrites, inserts, deletes or
cuts bytes of the pristine file and hands the result to every reader of that kind of file. For a whole model
(``motiontransfer.load`` of a tiny FOMM model file) the damage goes into the header, where the description is: damaged
weights are just other numbers.
"""

from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fomm_helpers import model_file
from motiontransfer.api import load
from motiontransfer.checkpoint import ModelFile, load_model_file, read_header, save_model_file
from motiontransfer.convert.torch_checkpoint import load_torch_checkpoint
from motiontransfer.errors import UserError
from motiontransfer.video.io import (
    VideoReader,
    count_frames,
    probe,
    read_frames,
    read_image,
    write_image,
    write_video,
)

ROUNDS = 300
TIME_LIMIT = 10.0  # seconds per kind of file; the loop stops early rather than run long


def mutate(data: bytes, rng: random.Random, region: int | None = None) -> bytes:
    """One random damage of ``data``: flipped bits, a run of 0x00 / 0xFF / random bytes written over it, bytes
    inserted or deleted, or the file cut short; sometimes two of them. ``region``: damage only the first ``region``
    bytes."""
    if region is not None:
        return mutate(data[:region], rng) + data[region:]
    buffer = bytearray(data)
    for _ in range(rng.choice((1, 1, 2))):
        kind = rng.randrange(6)
        at = rng.randrange(len(buffer)) if buffer else 0
        if kind == 0:
            for _ in range(rng.randint(1, 8)):
                buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
        elif kind == 1:
            length = rng.randint(1, 64)
            buffer[at:at + length] = bytes([rng.choice((0x00, 0xFF))]) * len(buffer[at:at + length])
        elif kind == 2:
            length = rng.randint(1, 64)
            buffer[at:at + length] = rng.randbytes(len(buffer[at:at + length]))
        elif kind == 3:
            buffer[at:at] = rng.randbytes(rng.randint(1, 32))
        elif kind == 4:
            del buffer[at:at + rng.randint(1, 64)]
        else:
            del buffer[at:]
    return bytes(buffer)


def _read_video(path: Path) -> Any:
    with VideoReader(path, size=16) as reader:
        frames = list(reader)
    return probe(path), count_frames(path), frames, read_frames(path, [0])


def _read_image(path: Path) -> Any:
    return read_image(path), read_image(path, size=8)


def _read_model_file(path: Path) -> Any:
    return read_header(path), load_model_file(path)


def _pristine_video(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    base = rng.random((16, 24, 3), dtype=np.float32)
    return write_video(folder / "clip.mp4", (np.roll(base, t, axis=1) for t in range(6)), fps=10)


def _pristine_image(folder: Path) -> Path:
    return write_image(folder / "image.png", np.random.default_rng(1).random((12, 10, 3), dtype=np.float32))


def _pristine_model_file(folder: Path) -> Path:
    networks = {"net": {"weight": torch.randn(4, 3), "bias": torch.zeros(4), "steps": torch.arange(3)}}
    return save_model_file(folder / "model.mt", ModelFile("fomm", networks, {"config": {"size": 16}}))


def _header_size(path: Path) -> int:
    """Bytes of a safetensors file's length field and JSON header."""
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def _pristine_checkpoint(folder: Path) -> Path:
    path = folder / "official.pth.tar"
    torch.save({"generator": {"w": torch.randn(3, 2)}, "kp_detector": {"b": torch.zeros(2)}, "epoch": 3}, path)
    return path


KINDS: dict[str, tuple[Callable[[Path], Path], Callable[[Path], Any]]] = {
    "mp4": (_pristine_video, _read_video),
    "png": (_pristine_image, _read_image),
    "safetensors": (_pristine_model_file, _read_model_file),
    "pytorch": (_pristine_checkpoint, load_torch_checkpoint),
    "model": (lambda folder: model_file(folder / "tiny.mt"), lambda path: load(path, device="cpu")),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_damaged_files_read_or_raise_a_user_error(kind: str, tmp_path: Path) -> None:
    make, read = KINDS[kind]
    pristine = make(tmp_path)
    read(pristine)  # the undamaged file reads
    data = pristine.read_bytes()
    region = _header_size(pristine) if kind == "model" else None
    rng = random.Random(f"fuzz-{kind}")
    outcomes = {"read": 0, "refused": 0}
    started = time.monotonic()
    for round_number in range(ROUNDS):
        if time.monotonic() - started > TIME_LIMIT:
            break
        damaged = tmp_path / f"damaged{''.join(pristine.suffixes)}"
        damaged.write_bytes(mutate(data, rng, region))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a partly readable file warns; that is allowed
                read(damaged)
            outcomes["read"] += 1
        except UserError:
            outcomes["refused"] += 1
        except Exception as exc:  # anything else is a bug: say which damage triggers it
            (tmp_path / "crash").write_bytes(damaged.read_bytes())
            pytest.fail(f"{kind} round {round_number}: {type(exc).__name__}: {exc} (the file: {tmp_path / 'crash'})")
    assert outcomes["refused"] > 0, outcomes
