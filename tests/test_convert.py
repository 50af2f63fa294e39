"""Official FOMM checkpoints -> model files: round trip with identical outputs, clear errors for wrong configs,
other families and damaged files."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch

import motiontransfer as mt
from fomm_helpers import SIZE, config_yaml, official_checkpoint, small_experiment
from motiontransfer.checkpoint import ModelFile, load_model_file, save_model_file
from motiontransfer.convert.official import convert_official, detect_family, read_official_checkpoint
from motiontransfer.convert.torch_checkpoint import strip_prefix
from motiontransfer.errors import InputFileError, UserError
from motiontransfer.experiment import model_from_file
from motiontransfer.families.fomm.convert import convert_fomm
from motiontransfer.families.fomm.networks import build_generator, build_kp_detector
from motiontransfer.inference import pipeline


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return official_checkpoint(tmp_path_factory.mktemp("official") / "00000007-checkpoint.pth.tar", legacy=True)


def reference_outputs(checkpoint: dict, source: torch.Tensor, driving: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the official networks compute: kp_detector / generator with the checkpoint's state dicts."""
    config = small_experiment().model_params
    kp_detector, generator = build_kp_detector(config).eval(), build_generator(config).eval()
    kp_detector.load_state_dict(checkpoint["kp_detector"])
    generator.load_state_dict(checkpoint["generator"])
    with torch.no_grad():
        kp_source, kp_driving = kp_detector(source), kp_detector(driving)
        out = generator(source, kp_source=kp_source, kp_driving=kp_driving)
    return {"kp": kp_driving["value"], "jacobian": kp_driving["jacobian"], "prediction": out["prediction"]}


def model_outputs(model, source: torch.Tensor, driving: torch.Tensor) -> dict[str, torch.Tensor]:
    item = next(pipeline.animate(model, source[0], [driving[0]], mode="absolute"))
    with torch.no_grad():
        motion = model.extract_motion(driving)
    return {"kp": motion.value, "jacobian": motion.jacobian, "prediction": item["prediction"][None]}


def test_round_trip_gives_identical_keypoints_and_frames(official: Path, tmp_path: Path) -> None:
    checkpoint = read_official_checkpoint(official, "fomm")
    model_file = convert_fomm(checkpoint, small_experiment(), config_name="small")
    assert set(model_file.networks) == {"kp_detector", "generator", "discriminator"}
    assert model_file.metadata["epoch"] == 7 and model_file.metadata["config"]["family"] == "fomm"
    saved = save_model_file(tmp_path / "small.mt", model_file)
    generator = torch.Generator().manual_seed(5)
    source, driving = (torch.rand(1, 3, SIZE, SIZE, generator=generator) for _ in range(2))
    expected = reference_outputs(checkpoint, source, driving)
    for model in (model_from_file(load_model_file(saved)), mt.load(saved, accelerate=False).model,
                  mt.load(official, config=config_yaml(tmp_path / "small.yaml"), accelerate=False).model,
                  mt.load(official, config=small_experiment(), accelerate=False).model):
        got = model_outputs(model, source, driving)
        for key, value in expected.items():
            assert torch.equal(got[key], value), key
    fast = model_outputs(mt.load(official, config=small_experiment(), device="cpu").model, source, driving)
    for key, value in expected.items():  # the default CPU path: the same numbers to float32 rounding
        torch.testing.assert_close(fast[key], value, atol=1e-4, rtol=0)
    for name, state in checkpoint.items():
        if name in model_file.networks:
            assert all(torch.equal(state[key], model_file.networks[name][key]) for key in state)


def test_wrong_config_names_the_mismatching_keys(official: Path) -> None:
    with pytest.raises(UserError) as caught:
        convert_official(official, small_experiment(generator_features=16), "wide.yaml")
    message = str(caught.value)
    assert message.startswith("the checkpoint does not match config wide.yaml: ")
    assert "generator.first.conv.weight has shape (8, 3, 7, 7), expected (16, 3, 7, 7)" in message
    assert "\n" not in message
    with pytest.raises(UserError, match=r"kp_detector\.kp\.weight has shape \(5, .*expected \(6, "):
        mt.load(official, config=small_experiment(num_kp=6))


def test_missing_and_unexpected_keys_are_listed() -> None:
    experiment = small_experiment()
    config = experiment.model_params
    kp_detector, generator = build_kp_detector(config).state_dict(), build_generator(config).state_dict()
    del generator["final.bias"]
    kp_detector["extra.weight"] = torch.zeros(1)
    with pytest.raises(UserError) as caught:
        convert_fomm({"kp_detector": kp_detector, "generator": generator}, experiment, config_name="small")
    assert "missing keys: generator.final.bias" in str(caught.value)
    assert "unexpected keys: kp_detector.extra.weight" in str(caught.value)


def test_dataparallel_prefix_is_stripped() -> None:
    assert strip_prefix({"module.a": 1, "module.b": 2}) == {"a": 1, "b": 2}
    assert strip_prefix({"module.a": 1, "b": 2}) == {"module.a": 1, "b": 2}


@pytest.mark.parametrize(
    ("checkpoint", "family", "needle"),
    [
        ({"gen": {"enc.fc.0.weight": torch.zeros(1)}, "dis": {}, "args": {}}, "lia", "with a LIA config"),
        ({"generator": {"appearance_encoder.down_blocks.0.conv.weight": torch.zeros(1)},
          "kp_detector": {"predictor.x": torch.zeros(1)}}, "monkeynet", "with a Monkey-Net config"),
        ({"kp_detector": {}, "inpainting_network": {}, "dense_motion_network": {}}, "tpsmm", "does not support"),
        ({"weights": {}}, None, "unknown layout"),
    ],
)
def test_other_families_are_recognised(checkpoint: dict, family: str | None, needle: str, tmp_path: Path) -> None:
    assert detect_family(checkpoint) == family
    path = tmp_path / "other.pth"
    torch.save(checkpoint, path)
    with pytest.raises(InputFileError, match=needle) as caught:
        read_official_checkpoint(path, "fomm")
    if family == "lia":
        assert "looks like a LIA checkpoint" in str(caught.value)
    if family in ("lia", "monkeynet"):  # only convert has --from; the commands that load a checkpoint do not
        assert "--from" not in str(caught.value)
        with pytest.raises(InputFileError, match=f"use --from {family}"):
            read_official_checkpoint(path, "fomm", family_option="--from")


class NotAWeight:
    pass


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_damaged_and_foreign_files(official: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(official.read_bytes()[: official.stat().st_size // 2])
    with pytest.raises(InputFileError, match="truncated or corrupt"):
        read_official_checkpoint(truncated, "fomm")
    with pytest.raises(InputFileError, match="not found"):
        read_official_checkpoint(tmp_path / "missing.pth.tar", "fomm")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        read_official_checkpoint(tmp_path / "empty.pth", "fomm")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(InputFileError, match="not a checkpoint dict"):
        read_official_checkpoint(tmp_path / "tensor.pth", "fomm")
    with (tmp_path / "code.pth").open("wb") as handle:
        pickle.dump({"generator": NotAWeight()}, handle)
    with pytest.raises(InputFileError, match="refusing to unpickle"):
        read_official_checkpoint(tmp_path / "code.pth", "fomm")


def test_load_mistakes(official: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs its config"):
        mt.load(official)
    converted = convert_fomm(read_official_checkpoint(official, "fomm"), small_experiment())
    saved = save_model_file(tmp_path / "m.mt", converted)
    with pytest.raises(UserError, match="carries its own config"):
        mt.load(saved, config="vox-256")
    with pytest.raises(InputFileError, match="not found"):
        mt.load(tmp_path / "nope.mt")
    truncated = tmp_path / "cut.mt"
    truncated.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(InputFileError, match="truncated"):
        mt.load(truncated)
    with pytest.raises(InputFileError, match="already a motiontransfer model file"):
        read_official_checkpoint(saved, "fomm")
    model_file = load_model_file(saved)
    config = copy.deepcopy(model_file.metadata["config"])
    config["model_params"]["common_params"]["num_kp"] = 6
    wrong = ModelFile("fomm", model_file.networks, {"config": config})
    with pytest.raises(UserError, match="do not match the model file's config"):
        model_from_file(wrong)
    with pytest.raises(UserError, match="unknown model family 'dragon'"):
        model_from_file(ModelFile("dragon", {}, {}))
