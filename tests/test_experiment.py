"""Experiment configs: bundled official values, official-style files, strict validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from motiontransfer.config import to_dict
from motiontransfer.errors import ConfigError, InputFileError, UserError
from motiontransfer.experiment import bundled_config_names, experiment_from_dict, load_experiment
from motiontransfer.families.fomm.config import vox256_config

# An official-style file as users hold them (the layout of first-order-model's config/*.yaml): image_shape
# instead of frame_shape, a discriminator without `sn`, partial jitter, crop/resize augmentation.
OFFICIAL_STYLE = """
dataset_params:
  root_dir: data/moving-gif
  image_shape: [256, 256, 3]
  id_sampling: False
  augmentation_params:
    flip_param:
      horizontal_flip: True
      time_flip: True
    crop_param:
      size: [256, 256]
    resize_param:
      ratio: [0.9, 1.1]
    jitter_param:
      hue: 0.5
model_params:
  common_params: {num_kp: 10, num_channels: 3, estimate_jacobian: True}
  kp_detector_params: {temperature: 0.1, block_expansion: 32, max_features: 1024, scale_factor: 0.25,
                       num_blocks: 5, single_jacobian_map: True}
  generator_params:
    block_expansion: 64
    max_features: 512
    num_down_blocks: 2
    num_bottleneck_blocks: 6
    estimate_occlusion_map: True
    dense_motion_params: {block_expansion: 64, max_features: 1024, num_blocks: 5, scale_factor: 0.25}
  discriminator_params: {scales: [1], block_expansion: 32, max_features: 512, num_blocks: 4}
train_params:
  num_epochs: 100
  num_repeats: 25
  epoch_milestones: [60, 90]
  lr_generator: 2.0e-4
  lr_discriminator: 2.0e-4
  lr_kp_detector: 2.0e-4
  batch_size: 36
  scales: [1, 0.5, 0.25, 0.125]
  checkpoint_freq: 100
  transform_params: {sigma_affine: 0.05, sigma_tps: 0.005, points_tps: 5}
  loss_weights:
    generator_gan: 1
    discriminator_gan: 1
    feature_matching: [10, 10, 10, 10]
    perceptual: [10, 10, 10, 10, 10]
    equivariance_value: 10
    equivariance_jacobian: 10
reconstruction_params: {num_videos: 1000, format: '.mp4'}
animate_params:
  num_pairs: 50
  format: '.mp4'
  normalization_params: {adapt_movement_scale: False, use_relative_movement: True, use_relative_jacobian: True}
visualizer_params: {kp_size: 5, draw_border: True, colormap: 'gist_rainbow'}
"""

OFFICIAL_NAMES = ["vox-256", "vox-adv-256", "taichi-256", "taichi-adv-256", "mgif-256", "bair-256", "fashion-256",
                  "nemo-256"]


@pytest.mark.parametrize("name", OFFICIAL_NAMES)
def test_bundled_official_configs_load(name: str) -> None:
    assert name in bundled_config_names()
    exp = load_experiment(name)
    assert exp.family == "fomm" and exp.frame_size == 256
    assert exp.model_params.common_params.num_kp == 10 and exp.model_params.common_params.estimate_jacobian
    tp = exp.train_params
    assert (tp.lr_generator, tp.lr_discriminator) == (2e-4, 2e-4) and tp.scales == [1, 0.5, 0.25, 0.125]
    assert tp.loss_weights.perceptual == [10] * 5 and tp.loss_weights.feature_matching == [10] * 4
    assert (tp.loss_weights.equivariance_value, tp.loss_weights.equivariance_jacobian) == (10, 10)
    assert tp.transform_params is not None and tp.transform_params.points_tps == 5
    assert experiment_from_dict(to_dict(exp)) == exp


def test_per_dataset_values_match_the_reference() -> None:
    expected = {  # name: (batch, epochs, repeats, milestones, generator_gan, sn, use_kp)
        "vox-256": (40, 100, 75, [60, 90], 0, True, False),
        "vox-adv-256": (36, 150, 75, [], 1, False, True),
        "taichi-256": (30, 100, 150, [60, 90], 0, False, False),
        "taichi-adv-256": (27, 150, 150, [], 1, False, True),
        "mgif-256": (36, 100, 25, [60, 90], 1, True, False),
        "bair-256": (36, 20, 1, [12, 18], 1, True, False),
        "fashion-256": (27, 100, 50, [60, 90], 1, False, False),
        "nemo-256": (36, 100, 8, [60, 90], 1, True, False),
    }
    for name, (batch, epochs, repeats, milestones, gan, sn, use_kp) in expected.items():
        exp = load_experiment(name)
        tp, disc = exp.train_params, exp.model_params.discriminator_params
        assert (tp.batch_size, tp.num_epochs, tp.num_repeats, tp.epoch_milestones) == (batch, epochs, repeats,
                                                                                          milestones), name
        assert (tp.loss_weights.generator_gan, disc.sn, disc.use_kp) == (gan, sn, use_kp), name
    assert load_experiment("vox-256").model_params == vox256_config()
    assert load_experiment("taichi-adv-256").train_params.lr_kp_detector == 0
    assert load_experiment("mgif-256").model_params.kp_detector_params.single_jacobian_map
    assert load_experiment("vox-256").dataset_params.id_sampling


def test_official_style_file_loads_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "mgif-256.yaml"
    path.write_text(OFFICIAL_STYLE)
    exp = load_experiment(path)
    assert exp.frame_size == 256 and exp.dataset_params.frame_shape is None
    assert exp.model_params.kp_detector_params.single_jacobian_map
    assert exp.model_params.discriminator_params.sn is False
    aug = exp.dataset_params.augmentation_params
    assert aug.jitter_param is not None and aug.jitter_param.hue == 0.5 and aug.jitter_param.brightness == 0.0
    assert aug.crop_param is not None and aug.crop_param.size == [256, 256]


def test_typo_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(OFFICIAL_STYLE.replace("num_bottleneck_blocks", "num_botleneck_blocks"))
    with pytest.raises(ConfigError, match=r"typo\.yaml.*model_params\.generator_params\.num_botleneck_blocks"):
        load_experiment(path)


def test_unknown_names_and_missing_files() -> None:
    with pytest.raises(UserError, match="unknown config 'vox-1024'"):
        load_experiment("vox-1024")
    with pytest.raises(InputFileError, match="not found"):
        load_experiment("missing.yaml")
    with pytest.raises(ConfigError, match="model_params"):
        experiment_from_dict({"train_params": {}})
    with pytest.raises(ConfigError, match="family"):
        experiment_from_dict({"family": "x2face", "model_params": {}})
