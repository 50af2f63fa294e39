"""Monkey-Net: networks on hand-made inputs, transfer on hand-computed numbers, the ablation switches, official
checkpoint conversion, a short run that learns, and the family going where FOMM goes (API, pipeline, trainer)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import motiontransfer as mt
from motiontransfer.convert.official import convert_official
from motiontransfer.engine.optim import frozen_parameters
from motiontransfer.errors import InputFileError, UserError
from motiontransfer.experiment import experiment_from_dict, load_experiment
from motiontransfer.families.monkeynet.animator import GaussianKeypoints, MonkeyNetAnimator, adapt_covariance
from motiontransfer.families.monkeynet.config import DenseMotionParams, MovementEmbeddingParams
from motiontransfer.families.monkeynet.convert import add_time_axis
from motiontransfer.families.monkeynet.networks import (
    DenseMotionModule,
    MovementEmbedding,
    build_monkeynet,
    heatmap_keypoints,
)
from motiontransfer.families.monkeynet.task import MonkeyNetTask, generator_step
from motiontransfer.inference import pipeline
from motiontransfer.ops import make_coordinate_grid, smallest_singular_value_2x2
from motiontransfer.training.trainer import train

TINY: dict[str, Any] = {
    "family": "monkeynet",
    "model_params": {
        "common_params": {"num_kp": 3, "kp_variance": "matrix", "num_channels": 3},
        "kp_detector_params": {"temperature": 0.1, "block_expansion": 8, "max_features": 16, "num_blocks": 3,
                               "clip_variance": 0.001},
        "generator_params": {
            "block_expansion": 8, "max_features": 16, "num_blocks": 3, "num_refinement_blocks": 1,
            "interpolation_mode": "aligned",
            "dense_motion_params": {"block_expansion": 8, "max_features": 16, "num_blocks": 3, "use_mask": True,
                                    "use_correction": True, "num_group_blocks": 1,
                                    "mask_embedding_params": {"use_heatmap": True, "use_deformed_source_image": True,
                                                              "heatmap_type": "difference", "norm_const": 100}},
            "kp_embedding_params": {"use_heatmap": True, "norm_const": 100, "heatmap_type": "difference"}},
        "discriminator_params": {"block_expansion": 8, "max_features": 16, "num_blocks": 3,
                                 "kp_embedding_params": {"norm_const": 100}},
    },
    "dataset_params": {"root_dir": "procedural:puppets:videos=6,frames=8", "frame_shape": [32, 32, 3]},
    "train_params": {"num_epochs": 100, "num_repeats": 2, "batch_size": 4, "max_steps": 4, "log_every": 2,
                     "sample_every": 2, "checkpoint_every": 2, "keep_checkpoints": 2,
                     "loss_weights": {"reconstruction": [10, 10, 10, 1]}},
}


def tiny(**model_changes: Any) -> Any:
    """The tiny experiment with ``generator_params`` / ``common_params`` entries replaced."""
    config = copy.deepcopy(TINY)
    for section, changes in model_changes.items():
        config["model_params"][section].update(changes)
    return experiment_from_dict(config)


def gaussian(mean: list[list[float]], var: float = 0.01) -> dict[str, torch.Tensor]:
    """A keypoint dict of batch 1 with isotropic covariances."""
    means = torch.tensor([mean])
    return {"mean": means, "var": var * torch.eye(2).expand(1, means.shape[1], 2, 2).clone()}


# ---------------------------------------------------------------------------------------------- keypoints


def test_detector_gives_symmetric_covariances_clipped_to_the_minimum_singular_value() -> None:
    kp_detector, _, _ = build_monkeynet(tiny().model_params)
    kp = kp_detector.eval()(torch.rand(2, 3, 32, 32))
    assert kp["mean"].shape == (2, 3, 2) and kp["var"].shape == (2, 3, 2, 2) and kp["heatmap"].shape == (2, 3, 32, 32)
    torch.testing.assert_close(kp["var"], kp["var"].transpose(-1, -2))
    assert (smallest_singular_value_2x2(kp["var"]) >= 0.001 * (1 - 1e-4)).all()
    assert kp["mean"].abs().max() <= 1


def test_single_and_fixed_variance_keypoints() -> None:
    maps = torch.zeros(1, 1, 3, 3)
    maps[0, 0, 1, 0] = maps[0, 0, 1, 2] = 0.5  # x = -1 and 1 at y = 0: Sigma = diag(1, 0)
    single = heatmap_keypoints(maps, "single")
    assert single["var"].shape == (1, 1, 1, 1)
    assert single["var"].item() == pytest.approx(0.5, abs=1e-5)  # mean of the axis variances
    assert set(heatmap_keypoints(maps, 0.01)) == {"mean"}


# ------------------------------------------------------------------------------------- movement embedding


def test_movement_embedding_channel_order_and_values() -> None:
    params = MovementEmbeddingParams(use_heatmap=True, use_difference=True, use_deformed_source_image=True,
                                     add_bg_feature_map=True, heatmap_type="gaussian", norm_const="sum")
    embedding = MovementEmbedding(num_kp=2, kp_variance="matrix", num_channels=3, params=params)
    assert embedding.out_channels == (1 + 2 + 3) * 3
    step = 2 / 7  # one pixel of an 8-px grid
    source = torch.rand(1, 3, 8, 8)
    kp_driving = gaussian([[0.0, 0.0], [0.5, -0.5]])
    kp_source = gaussian([[step, 0.0], [0.5, -0.5]])  # keypoint 0 moved one pixel right in the source
    out = embedding(source, kp_driving, kp_source).view(1, 3, 6, 8, 8)  # (B, K+1, 1 + 2 + C, H, W)
    # Background "keypoint" first: no heatmap, no shift, the source itself.
    assert torch.all(out[0, 0, :3] == 0)
    torch.testing.assert_close(out[0, 0, 3:], source[0])
    # Heatmaps normalised to sum 1.
    torch.testing.assert_close(out[0, 1:, 0].sum(dim=(1, 2)), torch.ones(2))
    # Keypoint 0: displacement h_s - h_d = (step, 0) everywhere; the source sampled one pixel to the right.
    torch.testing.assert_close(out[0, 1, 1], torch.full((8, 8), step))
    torch.testing.assert_close(out[0, 1, 2], torch.zeros(8, 8))
    torch.testing.assert_close(out[0, 1, 3:, :, :7], source[0, :, :, 1:])
    assert out[0, 1, 3:, :, 7].abs().max() < 1e-5  # sampled beyond the border: zero padding
    # Keypoint 1 did not move.
    torch.testing.assert_close(out[0, 2, 3:], source[0])


def test_difference_heatmaps_with_a_constant_norm() -> None:
    params = MovementEmbeddingParams(heatmap_type="difference", norm_const=100.0)
    embedding = MovementEmbedding(num_kp=1, kp_variance=0.01, num_channels=3, params=params)
    kp_driving, kp_source = {"mean": torch.tensor([[[0.5, 0.0]]])}, {"mean": torch.tensor([[[-0.5, 0.0]]])}
    out = embedding(torch.rand(1, 3, 5, 5), kp_driving, kp_source)
    # Grid x = -1, -0.5, 0, 0.5, 1; at (0.5, 0): exp(0) / 100 - exp(-0.5 * 1 / 0.01) / 100.
    assert out.shape == (1, 1, 5, 5)
    assert out[0, 0, 2, 3].item() == pytest.approx((1 - math.exp(-50)) / 100)
    assert out[0, 0, 2, 1].item() == pytest.approx(-(1 - math.exp(-50)) / 100)


# -------------------------------------------------------------------------------------------- dense motion


def dense_module(**changes: Any) -> DenseMotionModule:
    params = DenseMotionParams(block_expansion=8, max_features=16, num_blocks=2, use_mask=True,
                               use_correction=True, **changes)
    return DenseMotionModule(num_kp=2, num_channels=3, kp_variance="matrix", params=params).eval()


def test_initial_dense_motion_is_the_background_weighted_coarse_flow() -> None:
    module = dense_module()
    shift = [0.1, -0.2]
    kp_driving = gaussian([[0.0, 0.0], [0.3, 0.3]])
    kp_source = gaussian([[0.1, -0.2], [0.4, 0.1]])  # both keypoints moved by `shift`
    out = module(torch.rand(1, 3, 8, 8), kp_driving, kp_source)
    # Zero final weights, bias [2, 0, 0]: masks softmax(2, 0, 0) everywhere, no correction.
    weight = 1 / (math.exp(2) + 2)
    torch.testing.assert_close(out["mask"][0, :, 0, 0], torch.tensor([math.exp(2), 1, 1]) * weight)
    expected = make_coordinate_grid(8, 8) + 2 * weight * torch.tensor(shift)
    torch.testing.assert_close(out["deformation"][0], expected)
    torch.testing.assert_close(out["correction"], torch.zeros(1, 2, 8, 8))


def test_a_one_hot_part_mask_gives_that_part_translation() -> None:
    module = dense_module()
    with torch.no_grad():
        module.hourglass.decoder.conv.bias.copy_(torch.tensor([-50.0, 50.0, -50.0, 0.0, 0.0]))
    kp_driving = gaussian([[0.0, 0.0], [0.5, 0.5]])
    kp_source = gaussian([[0.2, 0.1], [0.5, 0.5]])
    out = module(torch.rand(1, 3, 8, 8), kp_driving, kp_source)
    # F = F_coarse = rho(h_s - h_d) of keypoint 0 (Eq. 5): driving grid point z samples the source at z + (0.2, 0.1).
    torch.testing.assert_close(out["deformation"][0], make_coordinate_grid(8, 8) + torch.tensor([0.2, 0.1]))


def test_ablation_switches_change_the_motion_network() -> None:
    full = tiny()
    _, generator, _ = build_monkeynet(full.model_params)
    assert generator.dense_motion_module.hourglass.decoder.conv.out_channels == 3 + 1 + 2
    no_correction = tiny(generator_params={"dense_motion_params": {
        **TINY["model_params"]["generator_params"]["dense_motion_params"], "use_correction": False}})
    _, generator, _ = build_monkeynet(no_correction.model_params)
    assert generator.dense_motion_module.hourglass.decoder.conv.out_channels == 4
    no_coarse = tiny(generator_params={"dense_motion_params": {
        **TINY["model_params"]["generator_params"]["dense_motion_params"], "use_mask": False}})
    _, generator, _ = build_monkeynet(no_coarse.model_params)
    assert generator.dense_motion_module.hourglass.decoder.conv.out_channels == 2
    no_source = tiny(generator_params={"dense_motion_params": {
        **TINY["model_params"]["generator_params"]["dense_motion_params"],
        "mask_embedding_params": {"use_heatmap": True, "use_deformed_source_image": False,
                                  "heatmap_type": "difference", "norm_const": 100}}})
    _, generator, _ = build_monkeynet(no_source.model_params)
    assert generator.dense_motion_module.mask_embedding.out_channels == 4  # heatmaps only, background included
    no_flow = tiny(generator_params={"dense_motion_params": None})
    _, generator, _ = build_monkeynet(no_flow.model_params)
    source = torch.rand(1, 3, 32, 32)
    out = generator.eval()(source, gaussian([[0.5, 0.0]] * 3), gaussian([[0.0, 0.0]] * 3))
    torch.testing.assert_close(out["deformed"], source)  # no F: the identity warp whatever the keypoints
    no_covariance = tiny(common_params={"kp_variance": 0.01})
    kp_detector, _, _ = build_monkeynet(no_covariance.model_params)
    assert set(kp_detector.eval()(source)) == {"mean", "heatmap"}


def test_both_flow_parts_off_is_a_config_error() -> None:
    with pytest.raises(Exception, match="use_mask and use_correction"):
        tiny(generator_params={"dense_motion_params": {
            **TINY["model_params"]["generator_params"]["dense_motion_params"], "use_mask": False,
            "use_correction": False}})


# ------------------------------------------------------------------------------------ generator, discriminator


def test_generator_identity_motion_is_exact_and_the_discriminator_starts_with_the_image() -> None:
    experiment = tiny()
    kp_detector, generator, discriminator = build_monkeynet(experiment.model_params)
    source = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        kp = kp_detector.eval()(source)
        out = generator.eval()(source, kp, kp)
        maps, prediction = discriminator(out["prediction"], kp, kp)
    assert out["prediction"].shape == (2, 3, 32, 32) and 0 <= out["prediction"].min() <= out["prediction"].max() <= 1
    torch.testing.assert_close(out["deformed"], source, atol=1e-5, rtol=0)
    assert len(maps) == 1 + 3 and maps[0] is out["prediction"]
    assert prediction.shape[:2] == (2, 1)


# ---------------------------------------------------------------------------------------------- transfer


def test_relative_transfer_on_hand_computed_numbers() -> None:
    model = MonkeyNetAnimator(tiny())
    source = GaussianKeypoints(torch.tensor([[[0.1, 0.2], [0.3, -0.4], [0.0, 0.0]]]), torch.eye(2).repeat(1, 3, 1, 1))
    initial = GaussianKeypoints(torch.tensor([[[0.0, 0.0], [0.5, 0.5], [0.2, 0.2]]]),
                                2 * torch.eye(2).repeat(1, 3, 1, 1))
    driving = GaussianKeypoints(torch.tensor([[[0.1, 0.1], [0.5, 0.4], [0.2, 0.2]]]),
                                4 * torch.eye(2).repeat(1, 3, 1, 1))
    out = model.transfer(source, driving, initial, mode="relative")
    torch.testing.assert_close(out.mean, torch.tensor([[[0.2, 0.3], [0.3, -0.5], [0.0, 0.0]]]))
    assert out.var is driving.var  # covariances of the driving frame (Sec. 3.4)
    assert model.transfer(source, driving, initial, mode="absolute") is driving
    model.normalization.adapt_variance = True
    adapted = model.transfer(source, driving, initial, mode="relative")
    torch.testing.assert_close(adapted.var, 2 * torch.eye(2).repeat(1, 3, 1, 1))  # 4 * (1/2) * 1
    model.normalization.clip_mean = True
    far = GaussianKeypoints(driving.mean + 5, driving.var)
    assert model.transfer(source, far, initial, mode="relative").mean.max() == 1


def test_adapted_covariance_is_made_symmetric_positive_definite() -> None:
    source = torch.tensor([[[[1.0, 0.5], [0.5, 1.0]]]])
    initial = torch.eye(2)[None, None]
    driving = torch.tensor([[[[1.0, 0.0], [0.0, -1.0]]]])  # not a covariance: a negative eigenvalue
    out = adapt_covariance(source, driving, initial)
    torch.testing.assert_close(out, out.transpose(-1, -2))
    assert torch.linalg.eigvalsh(out).min() > 0


def test_movement_multiplier_scales_by_the_convex_hull_ratio() -> None:
    model = MonkeyNetAnimator(tiny())
    square = torch.tensor([[[0.0, 0.0], [0.4, 0.0], [0.4, 0.4]]])  # area 0.08
    big = torch.tensor([[[0.0, 0.0], [0.8, 0.0], [0.8, 0.8]]])  # area 0.32: movement halves
    moved = big + torch.tensor([0.2, 0.0])
    out = model.transfer(GaussianKeypoints(square), GaussianKeypoints(moved), GaussianKeypoints(big),
                         mode="relative", adapt_scale=True)
    torch.testing.assert_close(out.mean, square + torch.tensor([0.1, 0.0]))


# ---------------------------------------------------------------------------------------- official checkpoints


def official_checkpoint(experiment: Any, path: Path) -> Path:
    """Our networks' weights saved in the official 3D layout and top-level keys."""
    networks = build_monkeynet(experiment.model_params)
    names = ("kp_detector", "generator", "discriminator")
    checkpoint: dict[str, Any] = {name: add_time_axis(net.state_dict())
                                  for name, net in zip(names, networks, strict=True)}
    checkpoint.update({"optimizer_generator": {}, "optimizer_discriminator": {}, "optimizer_kp_detector": {},
                       "epoch": 7, "it": 1234})
    torch.save(checkpoint, path)
    return path


def test_official_checkpoint_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    experiment = tiny()
    path = official_checkpoint(experiment, tmp_path / "official.pth.tar")
    raw = torch.load(path, weights_only=True)
    assert raw["kp_detector"]["predictor.encoder.down_blocks.0.conv.weight"].dim() == 5
    model_file = convert_official(path, experiment)
    assert model_file.family == "monkeynet" and model_file.metadata["epoch"] == 7
    assert "discriminator" in model_file.networks
    converted = MonkeyNetAnimator.from_model_file(model_file)
    reference = MonkeyNetAnimator(experiment)
    reference.kp_detector.load_state_dict({k: v.squeeze(2) if v.dim() == 5 else v
                                           for k, v in raw["kp_detector"].items()})
    reference.generator.load_state_dict({k: v.squeeze(2) if v.dim() == 5 else v for k, v in raw["generator"].items()})
    reference.eval()
    source, driving = torch.rand(3, 32, 32), torch.rand(4, 3, 32, 32)
    ours = [f["prediction"] for f in pipeline.animate(converted, source, driving)]
    theirs = [f["prediction"] for f in pipeline.animate(reference, source, driving)]
    torch.testing.assert_close(torch.stack(ours), torch.stack(theirs))
    # The same through the public API, with the config given as for FOMM.
    animator = mt.load(path, config=_write_config(experiment, tmp_path))
    frames = list(animator.animate(source.permute(1, 2, 0).numpy(), driving.permute(0, 2, 3, 1).numpy()))
    assert len(frames) == 4 and frames[0].shape == (32, 32, 3)


def _write_config(experiment: Any, tmp_path: Path) -> Path:
    import yaml

    from motiontransfer.config import to_dict

    path = tmp_path / "monkeynet.yaml"
    data = to_dict(experiment)
    del data["family"]  # official files have no family key: recognised from their sections
    path.write_text(yaml.safe_dump(data))
    return path


def test_conversion_refuses_a_wrong_config_another_family_and_temporal_kernels(tmp_path: Path) -> None:
    path = official_checkpoint(tiny(), tmp_path / "official.pth.tar")
    bigger = tiny(generator_params={"num_refinement_blocks": 2})
    with pytest.raises(UserError, match="does not match config"):
        convert_official(path, bigger, "bigger")
    fomm_like = {"generator": {"first.conv.weight": torch.zeros(8, 3, 7, 7)},
                 "kp_detector": {"kp.weight": torch.zeros(3, 8, 7, 7)}}
    torch.save(fomm_like, tmp_path / "fomm.pth.tar")
    with pytest.raises(InputFileError, match="FOMM"):
        convert_official(tmp_path / "fomm.pth.tar", tiny())
    temporal = torch.load(path, weights_only=True)
    key = "appearance_encoder.down_blocks.0.conv.weight"
    temporal["generator"][key] = temporal["generator"][key].repeat(1, 1, 3, 1, 1)
    torch.save(temporal, tmp_path / "temporal.pth.tar")
    with pytest.raises(UserError, match="temporal kernel"):
        convert_official(tmp_path / "temporal.pth.tar", tiny())


def test_official_configs_load_and_names_are_unique_across_families() -> None:
    from motiontransfer.experiment import bundled_config_names

    taichi = load_experiment("monkeynet-taichi-64")
    assert taichi.family == "monkeynet" and taichi.frame_size == 64
    assert taichi.model_params.kp_detector_params.clip_variance == 0.001
    assert taichi.train_params.loss_weights.reconstruction == [10, 10, 10, 10, 1]
    assert load_experiment("monkeynet-vox-256").model_params.generator_params.interpolation_mode == "trilinear"
    files = [path.name for path in bundled_config_names().values()]
    all_files = sorted(p.name for p in Path(mt.__file__).parent.joinpath("configs").glob("*/*.yaml"))
    assert sorted(files) == all_files  # no name hidden by another family's file


# ------------------------------------------------------------------------------------------------- training


@pytest.mark.slow
def test_a_short_run_lowers_the_reconstruction_loss() -> None:
    experiment = tiny()
    torch.manual_seed(0)
    kp_detector, generator, discriminator = build_monkeynet(experiment.model_params)
    parameters = list(kp_detector.parameters()) + list(generator.parameters())
    optimizer = torch.optim.Adam(parameters, lr=1e-3, betas=(0.5, 0.999))
    frames = torch.rand(2, 3, 32, 32)
    source, driving = frames, frames.roll(2, dims=3)
    weights = experiment.train_params.loss_weights
    weights.generator_gan = 0
    losses = []
    for _ in range(40):
        with frozen_parameters(discriminator):
            out = generator_step(kp_detector, generator, discriminator, source, driving, weights)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.losses["reconstruction"].item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    assert kp_detector.predictor.encoder.down_blocks[0].conv.weight.grad is not None  # the detector learns too


def test_trainer_runs_monkeynet_and_the_run_animates(tmp_path: Path) -> None:
    result = train(tiny(), out_dir=tmp_path / "run", progress=False)
    assert result.step == 4 and result.checkpoint is not None
    assert {"reconstruction", "generator_gan", "discriminator_gan", "l1"} <= set(result.losses)
    assert set(result.networks) == {"kp_detector", "generator", "discriminator"}
    assert any((tmp_path / "run" / "samples").iterdir())


def test_task_refuses_an_undetached_discriminator() -> None:
    experiment = tiny()
    experiment.train_params.detach_kp_discriminator = False
    from motiontransfer.engine.distributed import DistributedContext

    with pytest.raises(Exception, match="detach_kp_discriminator"):
        MonkeyNetTask(experiment, DistributedContext(), steps_per_epoch=1)


# ------------------------------------------------------------------------------------------- image-to-video


def predictor_experiment() -> Any:
    config = copy.deepcopy(TINY)
    config["prediction_params"] = {"rnn_params": {"num_features": 32}, "num_frames": 6, "batch_size": 4,
                                   "lr": 0.01}
    return experiment_from_dict(config)


def test_predictor_rollout_keeps_the_observed_frames_and_gives_covariances() -> None:
    from motiontransfer.families.monkeynet.animator import build_keypoint_predictor

    predictor = build_keypoint_predictor(predictor_experiment())
    assert sorted(predictor.state_dict()) == ["linear.bias", "linear.weight", "rnn.bias_hh_l0", "rnn.bias_ih_l0",
                                              "rnn.weight_hh_l0", "rnn.weight_ih_l0"]  # the official names
    assert predictor.rnn.input_size == 3 * (2 + 4)
    mean, var = torch.rand(2, 1, 3, 2) - 0.5, 0.01 * torch.eye(2).expand(2, 1, 3, 2, 2)
    out = predictor.rollout(mean, var, 5)
    assert out["mean"].shape == (2, 5, 3, 2) and out["var"].shape == (2, 5, 3, 2, 2)
    torch.testing.assert_close(out["mean"][:, :1], mean)
    assert out["mean"].abs().max() <= 1  # tanh
    assert torch.linalg.eigvalsh(out["var"][:, 1:]).min() >= -1e-6  # A^T A


def test_predictor_learns_a_constant_drift() -> None:
    from motiontransfer.families.monkeynet.predictor import train_keypoint_predictor

    model = MonkeyNetAnimator(predictor_experiment())
    steps = torch.arange(10, dtype=torch.float32)[:, None, None] * 0.05
    sequences = [GaussianKeypoints(torch.full((10, 3, 2), start) + steps, 0.01 * torch.eye(2).repeat(10, 3, 1, 1))
                 for start in torch.linspace(-0.4, 0.0, 8)]
    result = train_keypoint_predictor(model, sequences, epochs=60, progress=False)
    assert result.losses[-1] < 0.3 * result.losses[0]


def test_predict_video_and_the_predictor_in_the_model_file(tmp_path: Path) -> None:
    from motiontransfer.families.monkeynet.animator import build_keypoint_predictor

    experiment = predictor_experiment()
    model = MonkeyNetAnimator(experiment, predictor=build_keypoint_predictor(experiment)).eval()
    frames = model.predict_video(torch.rand(3, 32, 32), 7)
    assert frames.shape == (7, 3, 32, 32) and frames.min() >= 0 and frames.max() <= 1
    restored = MonkeyNetAnimator.from_model_file(model.to_model_file())
    assert restored.predictor is not None
    torch.testing.assert_close(restored.predict_video(torch.ones(3, 32, 32) * 0.5, 3),
                               model.predict_video(torch.ones(3, 32, 32) * 0.5, 3))
    with pytest.raises(UserError, match="fit_keypoint_predictor"):
        MonkeyNetAnimator(experiment).eval().predict_video(torch.rand(3, 32, 32), 3)


def test_train_predictor_and_predict_commands(tmp_path: Path) -> None:
    from motiontransfer.checkpoint import save_model_file
    from motiontransfer.cli import main
    from motiontransfer.video.io import count_frames, write_image

    model_path = tmp_path / "model.mt"
    save_model_file(model_path, MonkeyNetAnimator(predictor_experiment()).to_model_file())
    with_predictor = tmp_path / "with-predictor.mt"
    assert main(["train-predictor", "--checkpoint", str(model_path), "--out", str(with_predictor), "--data",
                 "procedural:puppets:videos=3,frames=8", "--epochs", "2"]) == 0
    image = tmp_path / "source.png"
    write_image(image, torch.rand(3, 32, 32))
    video = tmp_path / "out.mp4"
    assert main(["predict", "--checkpoint", str(with_predictor), "--source", str(image), "--out", str(video),
                 "--frames", "5", "--visualize"]) == 0
    assert count_frames(video) == 5 and (tmp_path / "out-viz.mp4").exists()
    # Mistakes exit 2 with a message and write nothing.
    assert main(["train-predictor", "--checkpoint", str(model_path), "--out", str(model_path)]) == 2
    assert main(["train-predictor", "--checkpoint", "fomm-faces", "--out", str(tmp_path / "x.mt")]) == 2
    assert main(["predict", "--checkpoint", "fomm-faces", "--source", str(image), "--out",
                 str(tmp_path / "fomm.mp4")]) == 2
    assert main(["predict", "--checkpoint", str(model_path), "--source", str(image), "--out",
                 str(tmp_path / "none.mp4")]) == 2
    assert not (tmp_path / "fomm.mp4").exists() and not (tmp_path / "none.mp4").exists()


def test_convert_animate_and_reconstruct_commands_take_monkeynet(tmp_path: Path) -> None:
    from motiontransfer.cli import main
    from motiontransfer.video.io import VideoWriter, count_frames, write_image

    experiment = tiny()
    official = official_checkpoint(experiment, tmp_path / "official.pth.tar")
    config = _write_config(experiment, tmp_path)
    converted = tmp_path / "converted.mt"
    assert main(["convert", "--from", "monkeynet", "--config", str(config), "--input", str(official),
                 "--out", str(converted)]) == 0
    assert main(["convert", "--from", "fomm", "--config", str(config), "--input", str(official),
                 "--out", str(tmp_path / "wrong.mt")]) == 2
    assert not (tmp_path / "wrong.mt").exists()
    image, driving = tmp_path / "source.png", tmp_path / "driving.mp4"
    write_image(image, torch.rand(3, 32, 32))
    with VideoWriter(driving, fps=10) as writer:
        for _ in range(6):
            writer.write(torch.rand(3, 32, 32))
    for checkpoint, extra in ((converted, []), (official, ["--config", str(config)])):
        out = tmp_path / f"{checkpoint.stem}.mp4"
        assert main(["animate", "--checkpoint", str(checkpoint), *extra, "--source", str(image), "--driving",
                     str(driving), "--out", str(out), "--visualize"]) == 0
        assert count_frames(out) == 6
    assert main(["reconstruct", "--checkpoint", str(converted), "--data", "procedural:puppets:videos=2,frames=4",
                 "--out", str(tmp_path / "recon")]) == 0
