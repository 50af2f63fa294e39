"""The FOMM generator's options of ours (after TPSMM): the image-level occlusion blend and multi-scale occlusion with
warped skips. Off by default, so the official layout is unchanged (its parameter counts and conversion parity are
tested in test_fomm_networks.py and test_convert.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from motiontransfer.config import from_dict
from motiontransfer.errors import ConfigError
from motiontransfer.families.fomm.config import (
    CommonParams,
    DenseMotionParams,
    FOMMConfig,
    GeneratorParams,
    KPDetectorParams,
)
from motiontransfer.families.fomm.networks import build_generator, build_kp_detector

SIZE = 32


def config(down_blocks: int = 2, **options: bool) -> FOMMConfig:
    """A tiny 32-px config with exact identity warps (align_corners true/true)."""
    return FOMMConfig(
        common_params=CommonParams(num_kp=4, num_channels=3, estimate_jacobian=True),
        kp_detector_params=KPDetectorParams(temperature=0.1, block_expansion=8, max_features=32, num_blocks=2,
                                            pad=3),
        generator_params=GeneratorParams(
            block_expansion=8, max_features=32, num_down_blocks=down_blocks, num_bottleneck_blocks=1,
            estimate_occlusion_map=True,
            dense_motion_params=DenseMotionParams(block_expansion=8, max_features=32, num_blocks=2,
                                                  scale_factor=0.5),
            **options),
        align_corners=True, flow_resize_align_corners=True)


def frames(seed: int = 0, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, SIZE, SIZE, generator=generator),
            torch.rand(batch, 3, SIZE, SIZE, generator=generator))


def force_occlusion(generator: torch.nn.Module, value: float) -> None:
    """Make every occlusion map a constant sigmoid(value)."""
    head = generator.dense_motion_network.occlusion
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(value)


def networks(seed: int = 0, **options: bool) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    cfg = config(**options)
    kp_detector, generator = build_kp_detector(cfg), build_generator(cfg)
    # non-trivial Jacobians, so that a warp is not an identity by accident
    with torch.no_grad():
        kp_detector.jacobian.weight.normal_(0, 0.01)
    return kp_detector.eval(), generator.eval()


@pytest.mark.parametrize("multi_scale", [False, True])
def test_occlusion_one_returns_the_warped_source_and_zero_the_synthesis(multi_scale: bool) -> None:
    kp_detector, generator = networks(image_blend=True, multi_scale_occlusion=multi_scale)
    source, driving = frames()
    with torch.no_grad():
        kp_source, kp_driving = kp_detector(source), kp_detector(driving)
        force_occlusion(generator, 100.0)  # sigmoid(100) == 1 in float32
        visible = generator(source, kp_source, kp_driving)
        force_occlusion(generator, -100.0)  # sigmoid(-100) ~ 4e-44
        occluded = generator(source, kp_source, kp_driving)
    assert torch.equal(visible["occlusion_map"], torch.ones_like(visible["occlusion_map"]))
    assert torch.equal(visible["prediction"], visible["deformed"])
    assert not torch.allclose(visible["deformed"], source, atol=1e-3)  # the motion really warps
    assert torch.allclose(occluded["prediction"], occluded["synthesis"], atol=1e-6, rtol=0)
    assert not torch.allclose(occluded["prediction"], occluded["deformed"], atol=1e-2)


def test_blend_mixes_synthesis_and_warped_source_by_the_full_resolution_map() -> None:
    kp_detector, generator = networks(image_blend=True)
    source, driving = frames(seed=1)
    with torch.no_grad():
        out = generator(source, kp_detector(source), kp_detector(driving))
    # the map is predicted at half resolution (dense motion scale 0.5) and upsampled bilinearly
    assert out["occlusion_map"].shape == (2, 1, SIZE // 2, SIZE // 2)
    visible = torch.nn.functional.interpolate(out["occlusion_map"], size=(SIZE, SIZE), mode="bilinear",
                                              align_corners=False)
    expected = (1 - visible) * out["synthesis"] + visible * out["deformed"]
    assert torch.allclose(out["prediction"], expected, atol=1e-6)


def test_identity_motion_with_an_open_map_reproduces_the_source_exactly() -> None:
    # source = driving: identical keypoints and Jacobians, an exact identity warp (align_corners true/true)
    kp_detector, generator = networks(image_blend=True, multi_scale_occlusion=True)
    source, _ = frames(seed=2)
    force_occlusion(generator, 100.0)
    with torch.no_grad():
        kp = kp_detector(source)
        out = generator(source, kp, kp)
    assert (out["prediction"] - source).abs().max() < 1e-5


def test_multi_scale_occlusion_predicts_one_map_per_resolution_and_widens_the_decoder() -> None:
    _, generator = networks(image_blend=True, multi_scale_occlusion=True)
    state = generator.state_dict()
    assert state["dense_motion_network.occlusion.weight"].shape[0] == 3  # levels 32, 16 and 8 px
    # up block 0 takes the bottleneck (32 ch); up block 1 its 16-ch output plus the warped 16-ch skip
    assert state["up_blocks.0.conv.weight"].shape[1] == 32
    assert state["up_blocks.1.conv.weight"].shape[1] == 32
    assert state["final.weight"].shape[1] == 16  # 8 decoded + 8 warped first-level channels
    kp_detector, _ = networks()
    source, driving = frames()
    with torch.no_grad():
        out = generator(source, kp_detector(source), kp_detector(driving))
    assert out["occlusion_maps"].shape == (2, 3, SIZE // 2, SIZE // 2)
    assert torch.equal(out["occlusion_map"], out["occlusion_maps"][:, :1])


def test_options_off_keep_the_official_layout() -> None:
    official = build_generator(config()).state_dict()
    blended = build_generator(config(image_blend=True)).state_dict()
    # the image blend adds no parameter at all
    assert {k: v.shape for k, v in official.items()} == {k: v.shape for k, v in blended.items()}
    assert official["dense_motion_network.occlusion.weight"].shape[0] == 1
    assert official["final.weight"].shape[1] == 8


def test_each_level_of_a_multi_scale_generator_is_masked_by_its_own_map() -> None:
    # closing the map of the coarsest level only must change the output; with every map closed and no image
    # blend the decoder sees no source information at all, so two different sources give the same image
    kp_detector, generator = networks(multi_scale_occlusion=True)
    source, driving = frames(seed=3)
    other = torch.rand_like(source)
    head = generator.dense_motion_network.occlusion
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-100.0)
        kp_s, kp_d = kp_detector(source), kp_detector(driving)
        a = generator(source, kp_s, kp_d)["prediction"]
        b = generator(other, kp_s, kp_d)["prediction"]
    assert torch.allclose(a, b, atol=1e-6)


def test_encode_then_decode_equals_forward_with_the_options() -> None:
    kp_detector, generator = networks(image_blend=True, multi_scale_occlusion=True)
    source, driving = frames(seed=4)
    with torch.no_grad():
        kp_source, kp_driving = kp_detector(source), kp_detector(driving)
        full = generator(source, kp_source, kp_driving)
        levels = generator.encode_source(source)
        split = generator.decode(levels, source, kp_source, kp_driving)
    assert [tuple(level.shape[1:]) for level in levels] == [(8, 32, 32), (16, 16, 16), (32, 8, 8)]
    for key in full:
        assert torch.equal(full[key], split[key]), key


def test_with_the_blend_the_image_loss_reaches_the_keypoints_through_the_warped_source() -> None:
    # with the map fully open the prediction is the warped source alone: the decoder gets no gradient and the
    # keypoint detector still does (the official generator's keypoints learn only through the decoded features)
    torch.manual_seed(0)
    kp_detector, generator = networks(image_blend=True)
    kp_detector.train()
    generator.train()
    force_occlusion(generator, 100.0)
    source, driving = frames(seed=5)
    out = generator(source, kp_detector(source), kp_detector(driving))
    (out["prediction"] - driving).abs().mean().backward()
    assert generator.final.weight.grad is None or generator.final.weight.grad.abs().sum() == 0
    assert kp_detector.kp.weight.grad is not None and kp_detector.kp.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("option", ["image_blend", "multi_scale_occlusion"])
def test_options_need_dense_motion_with_an_occlusion_map(option: str) -> None:
    with pytest.raises(ConfigError, match=option):
        GeneratorParams(block_expansion=8, max_features=32, num_down_blocks=1, num_bottleneck_blocks=1,
                        estimate_occlusion_map=False,
                        dense_motion_params=DenseMotionParams(block_expansion=8, max_features=32, num_blocks=2),
                        **{option: True})
    with pytest.raises(ConfigError, match=option):
        from_dict(GeneratorParams, {"block_expansion": 8, "max_features": 32, "num_down_blocks": 1,
                                    "num_bottleneck_blocks": 1, "estimate_occlusion_map": True, option: True})


def test_options_are_read_from_yaml_keys() -> None:
    params = from_dict(GeneratorParams, {
        "block_expansion": 8, "max_features": 32, "num_down_blocks": 1, "num_bottleneck_blocks": 1,
        "estimate_occlusion_map": True, "image_blend": True, "multi_scale_occlusion": True,
        "dense_motion_params": {"block_expansion": 8, "max_features": 32, "num_blocks": 2}})
    assert params.image_blend and params.multi_scale_occlusion
    generator = build_generator(dataclasses.replace(config(), generator_params=params))
    assert generator.image_blend and generator.multi_scale_occlusion
