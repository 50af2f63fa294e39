"""The inference runtime (motiontransfer.inference.runtime, nn.precision): the fast path agrees with the eager
networks to 1e-4 for every family, bf16 islands keep keypoints and motion in float32, bad precisions are refused,
and a model prepared for inference cannot be saved."""

from __future__ import annotations

import math

import pytest
import torch

from fomm_helpers import randomize_
from motiontransfer.api import load
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.errors import ArgumentError, CapabilityError
from motiontransfer.experiment import load_experiment
from motiontransfer.inference import pipeline, runtime
from motiontransfer.inference.onnx_export import export_onnx
from motiontransfer.inference.runtime import check_precision, prepare_model
from motiontransfer.models.base import AnimationModel
from motiontransfer.nn.precision import PrecisionIsland, wrap_precision_islands
from motiontransfer.pretrained import bundled_family
from motiontransfer.registry import family

CPU = torch.device("cpu")
FAMILY_CONFIGS = {
    "fomm": "synthetic-faces-64",
    "monkeynet": "monkeynet-synthetic-faces-64",
    "lia": "lia-synthetic-faces-64",
    "kpvp": "kpvp-synthetic-faces-64",
}
needs_bf16 = pytest.mark.skipif(not runtime.bf16_supported(CPU), reason="this CPU has no native bfloat16")


def _model(name: str, seed: int = 0) -> AnimationModel:
    experiment = load_experiment(FAMILY_CONFIGS[name])
    torch.manual_seed(seed)
    model = family(name).model(experiment)
    for network in model.networks_present():
        randomize_(getattr(model, network), seed)
    return model.eval()


def _fresh_copy(model: AnimationModel) -> AnimationModel:
    copy = type(model)(model.experiment)
    copy.load_state_dict(model.state_dict())
    return copy.eval()


def _animate(model: AnimationModel, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions (B, 3, S, S), transferred keypoints (B, K, 2)) of frames[1:] driving frames[0]."""
    with torch.no_grad():
        state = model.encode_source(frames[:1])
        driving = model.extract_motion(frames[1:])
        target = model.transfer(state.motion, driving, driving.select(slice(0, 1)), "relative")
        return model.render(state, target)["prediction"], model.motion_keypoints(target)


def _frames(size: int, count: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    coarse = torch.rand(count, 3, size // 8, size // 8, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _eager_and_fast(name: str, precision: str) -> tuple[AnimationModel, tuple[torch.Tensor, torch.Tensor],
                                                       tuple[torch.Tensor, torch.Tensor]]:
    """(the fast model, eager's (predictions, keypoints), fast's (predictions, keypoints)) of family ``name``."""
    eager = _model(name)
    fast = prepare_model(_fresh_copy(eager), precision, accelerate=True)
    frames = _frames(eager.size)
    return fast, _animate(eager, frames), _animate(fast, frames)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / float(((a - b) ** 2).mean()))


# ------------------------------------------------------------------------------------------------ islands


def test_precision_island_runs_in_bf16_and_returns_the_callers_dtype():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 6, 3, padding=1)
    reference = torch.nn.Conv2d(4, 6, 3, padding=1)
    reference.load_state_dict(conv.state_dict())
    island = PrecisionIsland(conv, torch.bfloat16)
    x = torch.rand(2, 4, 8, 8)
    out = island(x)
    assert island.module.weight.dtype == torch.bfloat16
    assert out.dtype == torch.float32 and out.shape == (2, 6, 8, 8)
    expected = reference(x)
    assert not torch.equal(out, expected)  # it did run in bf16
    torch.testing.assert_close(out, expected, atol=0.05, rtol=0.02)


def test_precision_island_casts_lists_and_leaves_integer_tensors():
    class Joiner(torch.nn.Module):
        def forward(self, items, index):
            assert all(item.dtype == torch.bfloat16 for item in items) and index.dtype == torch.int64
            return {"sum": items[0] + items[1], "index": index}

    out = PrecisionIsland(Joiner(), torch.bfloat16)([torch.ones(2), torch.ones(2)], torch.arange(2))
    assert out["sum"].dtype == torch.float32 and out["index"].dtype == torch.int64
    assert out["sum"].tolist() == [2.0, 2.0]


def test_wrap_precision_islands_wraps_list_items_and_skips_missing_paths():
    root = torch.nn.Module()
    root.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)])
    root.head = torch.nn.Linear(2, 1)
    root.maybe = None
    wrapped = wrap_precision_islands(root, ["blocks", "head", "maybe", "absent.layer"], torch.bfloat16)
    assert wrapped == ["blocks.0", "blocks.1", "head"]
    assert all(isinstance(block, PrecisionIsland) for block in root.blocks)
    assert isinstance(root.head, PrecisionIsland)
    assert root.head(torch.ones(3, 2)).dtype == torch.float32


# ------------------------------------------------------------------------------------------------ precision names


def test_check_precision_refuses_unknown_names():
    with pytest.raises(ArgumentError, match="precision must be fp32 or bf16, got 'fp16'"):
        check_precision("fp16", CPU)


def test_bf16_without_native_support_is_a_clear_capability_error(monkeypatch):
    monkeypatch.setattr(runtime, "bf16_supported", lambda device: False)
    with pytest.raises(CapabilityError, match="bfloat16 precision is not available: this CPU has neither"):
        check_precision("bf16", CPU)
    assert check_precision("fp32", CPU) == "fp32"


# ------------------------------------------------------------------------------------------------ whole models


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILY_CONFIGS))
def test_fast_fp32_path_agrees_with_eager_to_1e4_for_every_family(name):
    fast, (expected, expected_points), (got, points) = _eager_and_fast(name, "fp32")
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) <= 1e-4
    assert torch.allclose(points, expected_points, atol=1e-5, rtol=0)
    assert fast.inference_only == "fast fp32"


BF16_FAMILIES = sorted(name for name in FAMILY_CONFIGS if family(name).model.reduced_precision_modules)


def test_families_with_and_without_a_bf16_path():
    assert BF16_FAMILIES == ["fomm", "kpvp", "monkeynet"]
    with pytest.raises(CapabilityError, match=r"a lia model has no bfloat16 path .*; use precision fp32"):
        prepare_model(_model("lia"), "bf16")


@pytest.mark.slow
@needs_bf16
@pytest.mark.parametrize("name", BF16_FAMILIES)
def test_bf16_path_keeps_motion_in_fp32_and_stays_close(name):
    fast, (expected, expected_points), (got, points) = _eager_and_fast(name, "bf16")
    assert got.dtype == torch.float32
    assert torch.allclose(points, expected_points, atol=1e-5, rtol=0)  # keypoints never see bf16
    assert _psnr(got, expected) >= 35.0  # random weights; trained models are measured in benchmarks/speed.py
    islands = [module for module in fast.modules() if isinstance(module, PrecisionIsland)]
    assert islands and len(islands) >= len(fast.reduced_precision_modules)


@needs_bf16
@pytest.mark.parametrize("name", ["fomm-faces", "fomm-puppets"])
def test_bf16_on_the_bundled_trained_models_stays_above_40_db(name):
    data = ProceduralSource(ProceduralSpec(family=bundled_family(name), size=64, videos=2, frames=12, seed=0,
                                           split="test"))
    source, driving = data.frame(0, 0).tensor(), [frame.tensor() for frame in data.frames(1)]
    frames = {}
    for precision in ("fp32", "bf16"):
        model = load(name, device="cpu", precision=precision).model
        frames[precision] = torch.stack([item["prediction"] for item in
                                         pipeline.animate(model, source, iter(driving), mode="relative")])
    assert frames["bf16"].dtype == torch.float32
    assert 40.0 <= _psnr(frames["bf16"], frames["fp32"]) < 200.0  # close, and not the same computation


def test_eager_fp32_leaves_the_model_as_it_was():
    model = _model("fomm")
    state = {key: value.clone() for key, value in model.state_dict().items()}
    assert prepare_model(model, "fp32", accelerate=False) is model
    assert model.inference_only is None
    assert all(torch.equal(value, state[key]) for key, value in model.state_dict().items())
    model.to_model_file()  # still saveable


def test_a_model_prepared_for_inference_cannot_be_saved():
    model = prepare_model(_model("fomm"), "fp32", accelerate=True)
    with pytest.raises(CapabilityError, match=r"prepared for inference \(fast fp32\) and cannot be saved"):
        model.to_model_file()


def test_onnx_export_refuses_a_model_prepared_for_inference(tmp_path):
    model = prepare_model(_model("fomm"), "fp32", accelerate=True)
    with pytest.raises(CapabilityError, match="load it with accelerate=False"):
        export_onnx(model, tmp_path / "graphs")
    assert not (tmp_path / "graphs").exists()


@pytest.mark.parametrize("size, expected", [(256, 1), (512, 1), (128, 4), (64, 8), (32, 8)])
def test_default_batch_size_on_the_cpu_keeps_about_one_256_px_frame_per_pass(size, expected):
    assert runtime.default_batch_size(CPU, size) == expected
    assert runtime.default_batch_size(torch.device("cuda"), size) == 8
