"""ONNX export (``motiontransfer export``): FOMM's graphs in ONNX Runtime against PyTorch to 1e-4, the graphs chained
as docs/export.md chains them against the model's own transfer and render, the command end to end, refusals (another
family, a missing extra, a bad format or output folder) and the atomic output folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fomm_helpers import config_yaml, model_file, official_checkpoint, randomize_, small_animator, small_config_dict
from motiontransfer.checkpoint import save_model_file
from motiontransfer.cli import main
from motiontransfer.config import to_dict
from motiontransfer.errors import ArgumentError, CapabilityError, OutputFileError, UserError
from motiontransfer.experiment import experiment_from_dict, load_experiment
from motiontransfer.families.fomm.animator import FOMMAnimator
from motiontransfer.families.fomm.networks import build_fomm
from motiontransfer.families.lia.animator import LIAAnimator
from motiontransfer.inference import onnx_export
from motiontransfer.inference.onnx_export import MANIFEST, TOLERANCE, check_output_folder, export_onnx, require_onnx

ort = pytest.importorskip("onnxruntime")

TINY_SIZE = 32
GRAPHS = ("kp_detector", "source_encoder", "renderer")


def tiny_config(**generator: Any) -> dict[str, Any]:
    """A FOMM experiment at 32 px with a few channels: the export and its checks in well under a second."""
    return {
        "dataset_params": {"frame_shape": [TINY_SIZE, TINY_SIZE, 3]},
        "model_params": {
            "common_params": {"num_kp": 3, "num_channels": 3, "estimate_jacobian": True},
            "kp_detector_params": {"temperature": 0.1, "block_expansion": 4, "max_features": 8, "num_blocks": 2,
                                   "scale_factor": 0.5, "pad": 3},
            "generator_params": {
                "block_expansion": 4, "max_features": 8, "num_down_blocks": 1, "num_bottleneck_blocks": 1,
                "estimate_occlusion_map": True,
                "dense_motion_params": {"block_expansion": 4, "max_features": 8, "num_blocks": 2,
                                        "scale_factor": 0.5},
                **generator,
            },
            "discriminator_params": {"scales": [1], "block_expansion": 4, "max_features": 8, "num_blocks": 2},
        },
    }


def animator_of(config: dict[str, Any], seed: int = 0) -> FOMMAnimator:
    """Random non-trivial weights (Jacobians away from the identity's zero head), eval mode."""
    experiment = experiment_from_dict(config)
    kp_detector, generator, _ = build_fomm(experiment.model_params)
    randomize_(kp_detector, seed)
    randomize_(generator, seed + 1)
    return FOMMAnimator(experiment, kp_detector, generator).eval()


def run(args: list[Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary files or folders of the atomic writer."""
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def session(path: Path) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def chained_relative_animation(folder: Path, source: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """docs/export.md's recipe: the three graphs in ONNX Runtime, relative motion in numpy."""
    kp_detector, encoder, renderer = (session(folder / f"{name}.onnx") for name in GRAPHS)
    kp_source, jac_source = kp_detector.run(None, {"frames": source})
    features = dict(zip([o.name for o in encoder.get_outputs()], encoder.run(None, {"source": source}), strict=True))
    kp_driving, jac_driving = kp_detector.run(None, {"frames": driving})
    kp_target = kp_driving - kp_driving[:1] + kp_source                       # Eq. 14
    jac_target = jac_driving @ np.linalg.inv(jac_driving[:1]) @ jac_source     # Eq. 15
    prediction, _ = renderer.run(None, {"source": source, **features, "source_keypoints": kp_source,
                                        "source_jacobians": jac_source, "driving_keypoints": kp_target,
                                        "driving_jacobians": jac_target})
    return prediction


def assert_exported(model: FOMMAnimator, folder: Path, generator: dict[str, Any], chain: bool = True) -> None:
    """The folder's files and manifest, every check within the tolerance, and (``chain``) the chained graphs equal
    to the model's own relative transfer and render."""
    assert sorted(path.name for path in folder.iterdir()) == sorted([*(f"{name}.onnx" for name in GRAPHS), MANIFEST])
    manifest = json.loads((folder / MANIFEST).read_text())
    assert (manifest["format"], manifest["family"], manifest["frame_size"]) == ("onnx", "fomm", model.size)
    assert manifest["config"] == json.loads(json.dumps(to_dict(model.experiment)))
    for name in GRAPHS:
        check = manifest["graphs"][name]["check"]
        assert check["max_abs_diff"] <= TOLERANCE and check["batch"] == 3
    renderer = manifest["graphs"]["renderer"]
    levels = [item["name"] for item in renderer["inputs"] if item["name"].startswith("source_features")]
    down = model.experiment.model_params.generator_params.num_down_blocks
    assert levels == ([f"source_features_{i}" for i in range(down + 1)] if generator.get("multi_scale_occlusion")
                      else [f"source_features_{down}"])
    assert [item["name"] for item in manifest["graphs"]["source_encoder"]["outputs"]] == levels
    outputs = {item["name"]: item["shape"] for item in renderer["outputs"]}
    assert outputs["prediction"] == ["batch", 3, model.size, model.size]
    assert outputs["occlusion_map"][:2] == ["batch", 1]
    if not chain:
        return
    generator_ = torch.Generator().manual_seed(5)
    source = torch.rand(1, 3, model.size, model.size, generator=generator_)
    driving = torch.rand(4, 3, model.size, model.size, generator=generator_)
    with torch.no_grad():
        state = model.encode_source(source)
        motion = model.extract_motion(driving)
        target = model.transfer(state.motion, motion, motion.select(slice(0, 1)), mode="relative")
        expected = model.render(state, target)["prediction"].numpy()
    got = chained_relative_animation(folder, source.numpy(), driving.numpy())
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= TOLERANCE


# ----------------------------------------------------------------------------------------------- fast tier


def test_tiny_model_round_trip(tmp_path: Path) -> None:
    model = animator_of(tiny_config())
    result = export_onnx(model, tmp_path / "onnx")
    assert [check.name for check in result.checks] == list(GRAPHS)
    assert all(check.max_abs_diff <= TOLERANCE for check in result.checks)
    assert_exported(model, tmp_path / "onnx", {}, chain=False)
    assert not model.training and not any(module.training for module in model.modules())
    assert leftovers(tmp_path) == []


def test_a_family_without_graphs_is_refused_with_a_capability_error(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    lia = LIAAnimator(experiment_from_dict({"family": "lia", "model_params": {
        "size": 64, "style_dim": 32, "motion_dim": 5, "max_channels": 16}})).eval()
    with pytest.raises(CapabilityError, match="a lia model cannot be exported to ONNX yet"):
        export_onnx(lia, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()
    path = tmp_path / "lia.mt"
    save_model_file(path, lia.to_model_file())
    code, out, err = run(["export", "--checkpoint", path, "--out", tmp_path / "onnx"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("motiontransfer: error: a lia model cannot be exported to ONNX yet")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "onnx").exists()


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_without_the_extra_one_line_says_what_to_install(missing: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # `import <missing>` now raises ImportError
    with pytest.raises(UserError, match=r'pip install "motiontransfer\[export\]"'):
        require_onnx()
    code, out, err = run(["export", "--checkpoint", "fomm-faces", "--out", tmp_path / "onnx"], capsys)
    assert code == 2 and out == ""
    assert err == ("motiontransfer: error: ONNX export needs the onnx and onnxruntime packages "
                   f'({missing} is not installed): pip install "motiontransfer[export]"\n')
    assert not (tmp_path / "onnx").exists()


def test_user_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / MANIFEST).write_text("{}")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    file = tmp_path / "file"
    file.write_text("x")
    cases = {
        ("--checkpoint", "fomm-faces", "--out", tmp_path / "a", "--format", "tflite"):
            "--format tflite: unknown export format; available: onnx",
        ("--checkpoint", tmp_path / "missing.mt", "--out", tmp_path / "a"):
            f"{tmp_path / 'missing.mt'}: checkpoint not found",
        ("--checkpoint", "fomm-faces", "--out", previous):
            f"{previous} already holds an export; pass --overwrite to replace it, or choose another --out folder",
        ("--checkpoint", "fomm-faces", "--out", other, "--overwrite"):
            f"{other} is a folder that is not empty and holds no export (e.g. notes.txt); refusing to replace it: "
            "choose a new or empty --out folder",
        ("--checkpoint", "fomm-faces", "--out", file): f"{file}: is a file, not a folder",
        ("--checkpoint", "fomm-faces", "--out", file / "below"):
            f"{file / 'below'}: cannot be written: {file} is a file, not a folder",
    }
    for args, message in cases.items():
        code, out, err = run(["export", *args], capsys)
        assert (code, out, err) == (2, "", f"motiontransfer: error: {message}\n"), args
    assert not (tmp_path / "a").exists()
    assert (other / "notes.txt").read_text() == "mine" and (previous / MANIFEST).read_text() == "{}"


def test_output_folder_rules(tmp_path: Path) -> None:
    assert check_output_folder(tmp_path / "new") == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    assert check_output_folder(tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "previous").mkdir()
    (tmp_path / "previous" / MANIFEST).write_text("{}")
    with pytest.raises(ArgumentError, match="already holds an export; pass overwrite"):
        check_output_folder(tmp_path / "previous")
    assert check_output_folder(tmp_path / "previous", overwrite=True) == tmp_path / "previous"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "model.mt").write_text("x")
    with pytest.raises(ArgumentError, match="holds no export"):
        check_output_folder(tmp_path / "mine", overwrite=True)
    with pytest.raises(OutputFileError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "mine" / "model.mt", overwrite=True)


def test_a_failed_check_writes_nothing_and_keeps_the_previous_export(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    previous = tmp_path / "onnx"
    previous.mkdir()
    (previous / MANIFEST).write_text('{"previous": true}')
    monkeypatch.setattr(onnx_export, "TOLERANCE", -1.0)  # every comparison fails
    with pytest.raises(RuntimeError, match=r"differs from PyTorch .* nothing was written"):
        export_onnx(animator_of(tiny_config()), previous, overwrite=True)
    assert [path.name for path in previous.iterdir()] == [MANIFEST]
    assert (previous / MANIFEST).read_text() == '{"previous": true}'
    assert leftovers(tmp_path) == []


def test_a_model_not_on_the_cpu_is_refused_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = animator_of(tiny_config())
    monkeypatch.setattr(FOMMAnimator, "device", property(lambda self: torch.device("meta")))
    with pytest.raises(ArgumentError, match="ONNX export runs on the CPU; the model is on meta"):
        export_onnx(model, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


# ----------------------------------------------------------------------------------------------- slow tier


@pytest.mark.slow
def test_tiny_model_chained_graphs_match_the_models_transfer_and_render(tmp_path: Path) -> None:
    model = animator_of(tiny_config())
    export_onnx(model, tmp_path / "onnx")
    assert_exported(model, tmp_path / "onnx", {})


@pytest.mark.slow
@pytest.mark.parametrize("generator", [{}, {"image_blend": True}, {"multi_scale_occlusion": True},
                                       {"image_blend": True, "multi_scale_occlusion": True}],
                         ids=["official", "blend", "multi-scale", "blend+multi-scale"])
def test_small_model_round_trip_with_the_generator_options(generator: dict[str, Any], tmp_path: Path) -> None:
    config = small_config_dict()
    config["model_params"]["generator_params"].update(generator)
    model = animator_of(config, seed=3)
    export_onnx(model, tmp_path / "onnx")
    assert_exported(model, tmp_path / "onnx", generator)


@pytest.mark.slow
def test_without_jacobians_the_graphs_take_and_give_keypoints_only(tmp_path: Path) -> None:
    config = tiny_config()
    config["model_params"]["common_params"]["estimate_jacobian"] = False
    result = export_onnx(animator_of(config), tmp_path / "onnx")
    graphs = result.manifest["graphs"]
    assert [item["name"] for item in graphs["kp_detector"]["outputs"]] == ["keypoints"]
    assert [item["name"] for item in graphs["renderer"]["inputs"]] == [
        "source", "source_features_1", "source_keypoints", "driving_keypoints"]
    assert all(check.max_abs_diff <= TOLERANCE for check in result.checks)


@pytest.mark.slow
def test_export_command_end_to_end_and_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = model_file(tmp_path / "small.mt")
    out = tmp_path / "exports" / "small"
    code, stdout, err = run(["export", "--format", "onnx", "--checkpoint", checkpoint, "--out", out], capsys)
    assert code == 0, err
    lines = stdout.splitlines()
    assert len(lines) == 4 and lines[-1] == f"wrote {out}: fomm at 64 px, 3 ONNX graphs (opset 17) and manifest.json"
    for line, name in zip(lines, GRAPHS, strict=False):
        assert line.startswith(f"{name}.onnx: onnxruntime matches PyTorch, max abs difference ")
        assert line.endswith("(batch 3, tolerance 0.0001)")
    assert_exported(small_animator(), out, {})
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    code, stdout, err = run(["export", "--checkpoint", checkpoint, "--out", out], capsys)
    assert code == 2 and "already holds an export; pass --overwrite" in err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before
    code, stdout, err = run(["export", "--checkpoint", checkpoint, "--out", out, "--overwrite"], capsys)
    assert code == 0, err
    assert sorted(path.name for path in out.iterdir()) == sorted(before)
    assert leftovers(out.parent) == []


@pytest.mark.slow
def test_official_checkpoint_with_config_and_bundled_model(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    official = official_checkpoint(tmp_path / "vox-cpk.pth.tar")
    code, _, err = run(["export", "--checkpoint", official, "--config", config_yaml(tmp_path / "small.yaml"),
                        "--out", tmp_path / "official"], capsys)
    assert code == 0, err
    assert_exported(small_animator(), tmp_path / "official", {})
    code, stdout, err = run(["export", "--checkpoint", "fomm-faces", "--out", tmp_path / "faces"], capsys)
    assert code == 0, err
    assert "wrote" in stdout
    manifest = json.loads((tmp_path / "faces" / MANIFEST).read_text())
    assert manifest["family"] == "fomm" and manifest["frame_size"] == 64


@pytest.mark.slow
def test_bundled_synthetic_config_with_blend_and_multi_scale_occlusion(tmp_path: Path) -> None:
    experiment = load_experiment("synthetic-faces-64")
    params = experiment.model_params.generator_params
    assert params.image_blend and params.multi_scale_occlusion
    model = FOMMAnimator(experiment).eval()
    export_onnx(model, tmp_path / "onnx")
    assert_exported(model, tmp_path / "onnx", {"multi_scale_occlusion": True})


@pytest.mark.slow
def test_official_vox_256_layout_with_random_weights(tmp_path: Path) -> None:
    model = FOMMAnimator(load_experiment("vox-256")).eval()
    result = export_onnx(model, tmp_path / "onnx")
    assert all(check.max_abs_diff <= TOLERANCE for check in result.checks)
    manifest = result.manifest
    assert manifest["frame_size"] == 256 and manifest["config"]["model_params"]["common_params"]["num_kp"] == 10
    assert [item["name"] for item in manifest["graphs"]["renderer"]["inputs"]] == [
        "source", "source_features_2", "source_keypoints", "source_jacobians", "driving_keypoints",
        "driving_jacobians"]
    assert manifest["graphs"]["renderer"]["outputs"][0]["shape"] == ["batch", 3, 256, 256]
