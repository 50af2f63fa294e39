"""Model files: round trip, safe loading, clear errors, atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from motiontransfer.checkpoint import ModelFile, is_model_file, load_model_file, save_model_file, state_dicts
from motiontransfer.errors import InputFileError


def small_model() -> ModelFile:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    other = torch.nn.Linear(2, 2)
    return ModelFile("fomm", state_dicts({"generator": net, "kp_detector": other}),
                     {"config": {"num_kp": 10, "scales": [1, 0.5]}, "step": 7})


def test_round_trip_keeps_every_tensor_and_the_metadata(tmp_path: Path) -> None:
    model = small_model()
    path = save_model_file(tmp_path / "m.mt", model)
    loaded = load_model_file(path)
    assert loaded.family == "fomm" and loaded.metadata == model.metadata
    assert set(loaded.networks) == {"generator", "kp_detector"}
    for name, state in model.networks.items():
        assert set(loaded.networks[name]) == set(state)
        for key, value in state.items():
            assert torch.equal(loaded.networks[name][key], value)
    assert "1.num_batches_tracked" in loaded.networks["generator"]
    assert is_model_file(path)


def test_model_files_get_the_usual_permissions_and_float16_storage(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        path = save_model_file(tmp_path / "m.mt", small_model(), float_dtype=torch.float16)
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not safetensors' owner-only 0600
    loaded = load_model_file(path)
    weight = loaded.networks["generator"]["0.weight"]
    assert weight.dtype == torch.float16
    assert torch.allclose(weight.float(), small_model().networks["generator"]["0.weight"], atol=1e-3)
    assert loaded.networks["generator"]["1.num_batches_tracked"].dtype == torch.int64


def test_tied_weights_are_saved(tmp_path: Path) -> None:
    shared = torch.ones(3)
    path = save_model_file(tmp_path / "t.mt", ModelFile("fomm", {"a": {"w": shared, "v": shared}}))
    assert torch.equal(load_model_file(path).networks["a"]["v"], shared)


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"", "too short"), (b"\x00" * 4, "too short"), (b"garbage that is not safetensors", "not a motiontransfer")],
)
def test_bad_files_raise_errors_naming_the_file(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "bad.mt"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=needle) as info:
        load_model_file(path)
    assert "bad.mt" in str(info.value)
    assert not is_model_file(path)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = save_model_file(tmp_path / "m.mt", small_model())
    data = path.read_bytes()
    cut = tmp_path / "cut.mt"
    cut.write_bytes(data[: len(data) - 40])
    with pytest.raises(InputFileError, match="truncated"):
        load_model_file(cut)


def test_foreign_safetensors_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(InputFileError, match="not a motiontransfer model file"):
        load_model_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="not found"):
        load_model_file(tmp_path / "none.mt")


def test_failed_save_leaves_the_existing_file_intact(tmp_path: Path) -> None:
    path = save_model_file(tmp_path / "m.mt", small_model())
    before = path.read_bytes()
    with pytest.raises(ValueError, match="network names"):
        save_model_file(path, ModelFile("fomm", {"bad.name": {"w": torch.zeros(1)}}))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.mt"]


def test_state_dicts_unwraps_data_parallel() -> None:
    net = torch.nn.Linear(2, 3)
    wrapped = torch.nn.DataParallel(net)
    assert set(state_dicts({"g": wrapped})["g"]) == {"weight", "bias"}


def test_interrupted_write_leaves_the_existing_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import motiontransfer.checkpoint as checkpoint

    path = save_model_file(tmp_path / "m.mt", small_model())
    before = path.read_bytes()

    def crash(tensors: dict, filename: str, metadata: dict) -> None:
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_model_file(path, small_model())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.mt"]
