"""FOMM networks: official parameter counts and state-dict keys (vox-256), forward behaviour on small configs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from motiontransfer.config import from_dict
from motiontransfer.families.fomm.config import (
    CommonParams,
    DenseMotionParams,
    DiscriminatorParams,
    FOMMConfig,
    GeneratorParams,
    KPDetectorParams,
    vox256_config,
)
from motiontransfer.families.fomm.networks import KPDetector, build_fomm
from motiontransfer.nn import Hourglass, MultiScaleDiscriminator
from motiontransfer.ops import make_coordinate_grid

SIZE = 64


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def small_config(**changes: object) -> FOMMConfig:
    """64 px: kp detector and dense motion at half resolution with 3 hourglass blocks, 5 keypoints."""
    config = FOMMConfig(
        common_params=CommonParams(num_kp=5, num_channels=3, estimate_jacobian=True),
        kp_detector_params=KPDetectorParams(temperature=0.1, block_expansion=8, max_features=64, num_blocks=3,
                                            scale_factor=0.5),
        generator_params=GeneratorParams(
            block_expansion=8, max_features=32, num_down_blocks=2, num_bottleneck_blocks=2,
            estimate_occlusion_map=True,
            dense_motion_params=DenseMotionParams(block_expansion=8, max_features=64, num_blocks=3, scale_factor=0.5),
        ),
        discriminator_params=DiscriminatorParams(scales=(1, 0.5), block_expansion=8, max_features=32, num_blocks=3,
                                                 sn=True, use_kp=True),
    )
    return dataclasses.replace(config, **changes)


def images(batch: int = 2, seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    source = torch.rand(batch, 3, SIZE, SIZE, generator=generator, dtype=dtype)
    driving = torch.rand(batch, 3, SIZE, SIZE, generator=generator, dtype=dtype)
    return source, driving


@pytest.fixture(scope="module")
def vox_models() -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    return build_fomm(vox256_config())


@pytest.fixture(scope="module")
def small_models() -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    return build_fomm(small_config())


# -------------------------------------------------------------------------------------- official structure (vox-256)


def test_vox256_parameter_counts(vox_models) -> None:
    kp_detector, generator, discriminator = vox_models
    assert count(kp_detector) == 14_215_368
    assert count(generator) == 45_575_391
    assert count(generator.dense_motion_network) == 37_730_268
    assert count(discriminator) == 2_758_849


def test_vox256_state_dict_keys_and_shapes(vox_models) -> None:
    kp_detector, generator, discriminator = vox_models
    kp_keys = {k: tuple(v.shape) for k, v in kp_detector.state_dict().items()}
    assert kp_keys["predictor.encoder.down_blocks.0.conv.weight"] == (64, 3, 3, 3)
    assert kp_keys["predictor.encoder.down_blocks.4.conv.weight"] == (1024, 512, 3, 3)
    assert kp_keys["predictor.decoder.up_blocks.0.conv.weight"] == (512, 1024, 3, 3)
    assert kp_keys["predictor.decoder.up_blocks.4.conv.weight"] == (32, 128, 3, 3)
    assert kp_keys["kp.weight"] == (10, 35, 7, 7)
    assert kp_keys["jacobian.weight"] == (40, 35, 7, 7)
    assert kp_keys["down.weight"] == (3, 1, 13, 13)
    for suffix in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert f"predictor.encoder.down_blocks.0.norm.{suffix}" in kp_keys
    gen_keys = {k: tuple(v.shape) for k, v in generator.state_dict().items()}
    assert gen_keys["dense_motion_network.hourglass.encoder.down_blocks.0.conv.weight"] == (128, 44, 3, 3)
    assert gen_keys["dense_motion_network.hourglass.decoder.up_blocks.1.conv.weight"] == (512, 2048, 3, 3)
    assert gen_keys["dense_motion_network.mask.weight"] == (11, 108, 7, 7)
    assert gen_keys["dense_motion_network.occlusion.weight"] == (1, 108, 7, 7)
    assert gen_keys["dense_motion_network.down.weight"] == (3, 1, 13, 13)
    assert gen_keys["first.conv.weight"] == (64, 3, 7, 7)
    assert gen_keys["down_blocks.1.conv.weight"] == (256, 128, 3, 3)
    assert gen_keys["up_blocks.1.conv.weight"] == (64, 128, 3, 3)
    assert gen_keys["bottleneck.r5.conv2.weight"] == (256, 256, 3, 3)
    assert "bottleneck.r0.norm1.running_var" in gen_keys
    assert gen_keys["final.weight"] == (3, 64, 7, 7)
    disc_keys = {k: tuple(v.shape) for k, v in discriminator.state_dict().items()}
    assert all(key.startswith("discs.1.") for key in disc_keys)
    assert disc_keys["discs.1.down_blocks.0.conv.weight_orig"] == (64, 3, 4, 4)
    assert disc_keys["discs.1.down_blocks.0.conv.weight_u"] == (64,)
    assert disc_keys["discs.1.down_blocks.0.conv.weight_v"] == (48,)
    assert disc_keys["discs.1.down_blocks.3.norm.weight"] == (512,)
    assert "discs.1.down_blocks.0.norm.weight" not in disc_keys  # no norm in the first block
    assert disc_keys["discs.1.conv.weight_orig"] == (1, 512, 1, 1)


def test_single_jacobian_map_has_four_channels() -> None:
    params = dataclasses.asdict(vox256_config().kp_detector_params) | {"single_jacobian_map": True}
    detector = KPDetector(num_kp=10, num_channels=3, estimate_jacobian=True, **params)
    assert tuple(detector.state_dict()["jacobian.weight"].shape) == (4, 35, 7, 7)
    assert detector.jacobian is not None and detector.jacobian.bias.tolist() == [1.0, 0.0, 0.0, 1.0]


def test_official_yaml_model_params_give_the_vox256_config() -> None:
    model_params = {
        "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
        "kp_detector_params": {"temperature": 0.1, "block_expansion": 32, "max_features": 1024,
                               "scale_factor": 0.25, "num_blocks": 5},
        "generator_params": {"block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
                             "num_bottleneck_blocks": 6, "estimate_occlusion_map": True,
                             "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5,
                                                     "scale_factor": 0.25}},
        "discriminator_params": {"scales": [1], "block_expansion": 32, "max_features": 512, "num_blocks": 4,
                                 "sn": True},
    }
    assert from_dict(FOMMConfig, model_params) == vox256_config()


# ------------------------------------------------------------------------------------------ forward, small configs


def test_forward_shapes_and_ranges(small_models) -> None:
    kp_detector, generator, _ = small_models
    kp_detector.eval()
    generator.eval()
    source, driving = images()
    with torch.no_grad():
        kp_source, kp_driving = kp_detector(source), kp_detector(driving)
        out = generator(source, kp_source=kp_source, kp_driving=kp_driving)
    assert kp_source["value"].shape == (2, 5, 2)
    assert kp_source["jacobian"].shape == (2, 5, 2, 2)
    assert kp_source["heatmap"].shape == (2, 5, 26, 26)  # 64 * 0.5 = 32, minus 6 for the unpadded 7x7 conv
    assert kp_source["value"].abs().max() <= 1
    assert out["prediction"].shape == (2, 3, SIZE, SIZE)
    assert out["deformed"].shape == (2, 3, SIZE, SIZE)
    assert out["mask"].shape == (2, 6, 32, 32)
    assert out["sparse_deformed"].shape == (2, 6, 3, 32, 32)
    assert out["deformation"].shape == (2, 32, 32, 2)
    assert out["occlusion_map"].shape == (2, 1, 32, 32)
    assert out["prediction"].min() >= 0 and out["prediction"].max() <= 1
    torch.testing.assert_close(out["mask"].sum(dim=1), torch.ones(2, 32, 32))
    assert out["occlusion_map"].min() >= 0 and out["occlusion_map"].max() <= 1


def test_kp_detector_padding_keeps_the_heatmap_size() -> None:
    params = dataclasses.replace(small_config().kp_detector_params, pad=3)
    detector = KPDetector(num_kp=5, num_channels=3, estimate_jacobian=False, **dataclasses.asdict(params))
    out = detector(images()[0])
    assert out["heatmap"].shape == (2, 5, 32, 32)
    assert "jacobian" not in out and detector.jacobian is None


def test_jacobians_are_identity_at_initialisation(small_models) -> None:
    kp_detector = small_models[0]
    kp_detector.train()
    for seed in range(2):
        jacobian = kp_detector(images(seed=seed)[0])["jacobian"]
        torch.testing.assert_close(jacobian, torch.eye(2).expand(2, 5, 2, 2))


def test_gradients_reach_kp_detector_and_generator() -> None:
    torch.manual_seed(1)
    kp_detector, generator, _ = build_fomm(small_config())
    with torch.no_grad():  # move the Jacobian conv off its zero init so that its weights receive gradients too
        kp_detector.jacobian.weight.normal_(0, 1e-3)
    source, driving = images()
    out = generator(source, kp_source=kp_detector(source), kp_driving=kp_detector(driving))
    (out["prediction"] - driving).abs().mean().backward()
    named = dict(kp_detector.named_parameters()) | {f"g.{k}": v for k, v in generator.named_parameters()}
    for name in ("kp.weight", "jacobian.weight", "predictor.encoder.down_blocks.0.conv.weight", "g.first.conv.weight",
                 "g.dense_motion_network.mask.weight", "g.dense_motion_network.occlusion.weight",
                 "g.bottleneck.r1.conv2.weight", "g.final.weight"):
        grad = named[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_encode_source_then_decode_equals_forward(small_models) -> None:
    kp_detector, generator, _ = small_models
    kp_detector.eval()
    generator.eval()
    source, driving = images(seed=3)
    with torch.no_grad():
        kp_source, kp_driving = kp_detector(source), kp_detector(driving)
        full = generator(source, kp_source, kp_driving)
        features = generator.encode_source(source)
        assert [tuple(level.shape) for level in features] == [(2, 8, SIZE, SIZE), (2, 16, SIZE // 2, SIZE // 2),
                                                              (2, 32, SIZE // 4, SIZE // 4)]
        split = generator.decode(features, source, kp_source, kp_driving)
    assert full.keys() == split.keys()
    for key in full:
        assert torch.equal(full[key], split[key]), key


def test_state_dict_round_trip_gives_identical_outputs(small_models) -> None:
    torch.manual_seed(5)
    fresh = build_fomm(small_config())
    for model, copy in zip(small_models, fresh, strict=True):
        copy.load_state_dict(model.state_dict(), strict=True)
        model.eval()
        copy.eval()
    source, driving = images(seed=4)
    with torch.no_grad():
        outputs = []
        for kp_detector, generator, discriminator in (small_models, fresh):
            kp_source, kp_driving = kp_detector(source), kp_detector(driving)
            generated = generator(source, kp_source, kp_driving)
            prediction = generated["prediction"]
            pyramid = {"prediction_1": prediction, "prediction_0.5": prediction[..., ::2, ::2]}
            outputs.append((kp_driving, generated, discriminator(pyramid, kp=kp_driving)))
    for first, second in zip(*outputs, strict=True):
        assert first.keys() == second.keys()
        for key in first:
            if isinstance(first[key], list):
                assert all(torch.equal(a, b) for a, b in zip(first[key], second[key], strict=True)), key
            else:
                assert torch.equal(first[key], second[key]), key


def test_models_follow_the_input_dtype() -> None:
    kp_detector, generator, discriminator = (m.double().eval() for m in build_fomm(small_config()))
    source, driving = images(dtype=torch.float64)
    with torch.no_grad():
        kp_source, kp_driving = kp_detector(source), kp_detector(driving)
        out = generator(source, kp_source, kp_driving)
        scores = discriminator({"prediction_1": source, "prediction_0.5": source[..., ::2, ::2]}, kp=kp_driving)
    assert all(value.dtype == torch.float64 for value in (*kp_source.values(), *out.values()))
    assert scores["prediction_map_1"].dtype == torch.float64


def test_models_contain_no_hard_coded_device() -> None:
    """Everything created inside the forward passes follows the inputs: a model on the meta device runs on meta
    tensors (a tensor created on the CPU would make an op fail)."""
    with torch.device("meta"):
        kp_detector, generator, discriminator = build_fomm(small_config())
    source = torch.empty(1, 3, SIZE, SIZE, device="meta")
    kp = kp_detector(source)
    out = generator(source, kp, kp)
    scores = discriminator({"prediction_1": source, "prediction_0.5": source[..., ::2, ::2]}, kp=kp)
    assert all(v.device.type == "meta" for v in (*kp.values(), *out.values(), scores["prediction_map_0.5"]))


def test_identical_keypoints_give_the_identity_deformation() -> None:
    """kp_S == kp_D with J = I: every sparse motion is the identity, so is their mask-weighted sum (Eq. 7), and with
    align_corners=True every sparsely deformed source is the (downsampled) source. (The generator then resizes the
    flow bilinearly with align_corners=False, as the official code does, which is not identity-preserving.)"""
    torch.manual_seed(2)
    _, generator, _ = build_fomm(small_config(align_corners=True))
    generator.eval()
    source, _ = images()
    kp = {"value": torch.rand(2, 5, 2) * 2 - 1, "jacobian": torch.eye(2).expand(2, 5, 2, 2)}
    with torch.no_grad():
        out = generator(source, kp, kp)
        small_source = generator.dense_motion_network.down(source)
    torch.testing.assert_close(out["deformation"], make_coordinate_grid(32, 32).expand(2, 32, 32, 2))
    expected = small_source.unsqueeze(1).expand(2, 6, 3, 32, 32)
    torch.testing.assert_close(out["sparse_deformed"], expected, atol=1e-5, rtol=0)  # (z - kp) + kp rounds


def test_generator_without_dense_motion_only_decodes() -> None:
    params = dataclasses.replace(small_config().generator_params, dense_motion_params=None)
    _, generator, _ = build_fomm(small_config(generator_params=params))
    assert generator.dense_motion_network is None
    source, _ = images()
    out = generator(source, {"value": torch.zeros(2, 5, 2)}, {"value": torch.zeros(2, 5, 2)})
    assert list(out) == ["prediction"]


def test_multiscale_discriminator_outputs(small_models) -> None:
    discriminator = small_models[2]
    assert set(discriminator.discs) == {"1", "0-5"}
    source, _ = images()
    kp = torch.rand(2, 5, 2) * 2 - 1
    pyramid = {"prediction_1": source, "prediction_0.5": source[..., ::2, ::2]}
    out = discriminator(pyramid, kp=kp)
    assert set(out) == {"feature_maps_1", "prediction_map_1", "feature_maps_0.5", "prediction_map_0.5"}
    assert [tuple(f.shape) for f in out["feature_maps_1"]] == [(2, 16, 30, 30), (2, 32, 13, 13), (2, 32, 10, 10)]
    assert out["prediction_map_1"].shape == (2, 1, 10, 10)
    assert out["prediction_map_0.5"].shape == (2, 1, 2, 2)
    torch.testing.assert_close(discriminator(pyramid, kp={"value": kp})["prediction_map_1"], out["prediction_map_1"])
    with pytest.raises(ValueError, match="use_kp"):
        discriminator(pyramid)


def test_discriminator_without_keypoints() -> None:
    discriminator = MultiScaleDiscriminator(scales=(1,), num_channels=3, block_expansion=8, num_blocks=2,
                                            max_features=16)
    assert "discs.1.down_blocks.0.conv.weight" in discriminator.state_dict()
    out = discriminator({"prediction_1": torch.rand(1, 3, 16, 16)})
    assert out["prediction_map_1"].shape == (1, 1, 3, 3)


def test_hourglass_shapes_and_skip_list_is_left_intact() -> None:
    hourglass = Hourglass(block_expansion=4, in_features=3, num_blocks=3, max_features=16)
    assert hourglass.out_filters == 7
    x = torch.rand(1, 3, 16, 16)
    features = hourglass.encoder(x)
    assert [f.shape[1] for f in features] == [3, 8, 16, 16]
    assert hourglass.decoder(features).shape == (1, 7, 16, 16)
    assert len(features) == 4
