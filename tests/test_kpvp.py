"""KPVP: Gaussian maps and keypoints on hand-made inputs, the translator's blending and ablation switches, the
cVAE's shapes and KL term, each stage learning on a short run, pseudo-labels, and the family going where the others
go (model files, pipeline, CLI train stages and predict)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from motiontransfer.engine.optim import frozen_parameters
from motiontransfer.errors import ConfigError, UserError
from motiontransfer.experiment import experiment_from_dict, load_experiment
from motiontransfer.families.kpvp.animator import KPVPAnimator
from motiontransfer.families.kpvp.config import KPVPExperiment
from motiontransfer.families.kpvp.networks import (
    ImageTranslator,
    MotionGenerator,
    SequenceDiscriminator,
    action_one_hot,
    build_detector,
    build_motion_networks,
    keypoint_maps,
)
from motiontransfer.families.kpvp.stages import PseudoLabels, make_pseudo_labels, train_motion_generator
from motiontransfer.families.kpvp.task import KPVPTask, translation_losses
from motiontransfer.families.monkeynet.animator import GaussianKeypoints
from motiontransfer.losses import kl_divergence_normal
from motiontransfer.ops import make_coordinate_grid
from motiontransfer.training.stages import run_stages

ACTIONS = ["wave", "squat", "jump", "walk", "arm_circles", "clap", "kick", "side_bend", "jumping_jacks"]
TINY: dict[str, Any] = {
    "family": "kpvp",
    "dataset_params": {"root_dir": "procedural:puppets:videos=4,frames=12", "frame_shape": [32, 32, 3]},
    "model_params": {
        "num_kp": 3,
        "detector": {"block_expansion": 8, "max_features": 16, "num_blocks": 2, "temperature": 0.1},
        "translator": {"block_expansion": 8, "max_features": 16, "num_down_blocks": 2, "num_residual_blocks": 1,
                       "keypoint_sigma": 0.1},
        "image_discriminator": {"block_expansion": 8, "max_features": 16, "num_blocks": 3},
        "motion_generator": {"hidden_sizes": [16, 12], "latent_dim": 4, "actions": ACTIONS,
                             "discriminator_hidden_size": 8},
    },
    "train_params": {"batch_size": 2, "max_steps": 3, "log_every": 1, "sample_every": 2, "checkpoint_every": 2,
                     "scales": [1, 0.5], "loss_weights": {"perceptual": [10, 10, 10, 10, 10]}},
    "motion_params": {"num_frames": 6, "num_steps": 40, "batch_size": 8, "lr": 3e-3},
}


def tiny(**changes: Any) -> KPVPExperiment:
    """The tiny experiment with ``model_params`` sub-sections updated by ``changes`` (section -> dict)."""
    config = copy.deepcopy(TINY)
    for section, values in changes.items():
        config["model_params"][section].update(values)
    experiment = experiment_from_dict(config)
    assert isinstance(experiment, KPVPExperiment)
    return experiment


# ------------------------------------------------------------------------------------------------ keypoints


def test_gaussian_maps_follow_eq_2_up_to_its_constant() -> None:
    keypoints = torch.tensor([[[0.0, 0.0], [1.0, -1.0]]])
    maps = keypoint_maps(keypoints, (5, 5), sigma=0.5)
    assert maps.shape == (1, 2, 5, 5)
    assert maps[0, 0, 2, 2] == 1 and maps[0, 1, 0, 4] == 1  # peak 1 at the keypoint (row y, column x)
    # One grid step is 0.5 in [-1, 1] units: exp(-0.5^2 / (2 * 0.5^2)) = exp(-0.5); a diagonal step exp(-1).
    torch.testing.assert_close(maps[0, 0, 2, 3], torch.tensor(math.exp(-0.5)))
    torch.testing.assert_close(maps[0, 0, 1, 1], torch.tensor(math.exp(-1.0)))


def test_detector_finds_the_expected_coordinate_of_its_softmax_map() -> None:
    detector = build_detector(tiny().model_params).eval()
    with torch.no_grad():
        out = detector(torch.rand(2, 3, 32, 32))
    heatmap = out["heatmap"]
    assert heatmap.shape == (2, 3, 32, 32)  # the padded head keeps the input size
    torch.testing.assert_close(heatmap.sum(dim=(2, 3)), torch.ones(2, 3))
    expected = (heatmap[..., None] * make_coordinate_grid(32, 32)).sum(dim=(2, 3))  # Eq. 1
    torch.testing.assert_close(out["value"], expected)
    assert "jacobian" not in out


# ----------------------------------------------------------------------------------------------- translator


def _force_mask(translator: ImageTranslator, logit: float) -> None:
    """Make the mask channel a constant sigmoid(logit), whatever the input."""
    with torch.no_grad():
        translator.final.weight[-1].zero_()
        translator.final.bias[-1] = logit


def test_translator_blends_the_reference_and_the_synthesis_with_its_mask() -> None:
    config = tiny().model_params
    translator = ImageTranslator(config.num_kp, 3, config.translator).eval()
    image, kp, kp_target = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 2) - 0.5, torch.rand(2, 3, 2) - 0.5
    with torch.no_grad():
        out = translator(image, kp, kp_target)
        assert out["prediction"].shape == (2, 3, 32, 32) and out["mask"].shape == (2, 1, 32, 32)
        torch.testing.assert_close(out["prediction"], out["mask"] * image + (1 - out["mask"]) * out["generated"])
        _force_mask(translator, 30.0)  # m = 1: the background is the reference everywhere (Eq. 3)
        torch.testing.assert_close(translator(image, kp, kp_target)["prediction"], image)
        _force_mask(translator, -30.0)  # m = 0: the synthesis alone
        out = translator(image, kp, kp_target)
        torch.testing.assert_close(out["prediction"], out["generated"])


def test_translator_ablation_switches() -> None:
    full = tiny().model_params
    no_mask = tiny(translator={"use_background_mask": False}).model_params
    no_reference = tiny(translator={"use_reference_keypoints": False}).model_params
    image, kp, kp_target = torch.rand(1, 3, 32, 32), torch.zeros(1, 3, 2), torch.full((1, 3, 2), 0.3)
    translator = ImageTranslator(3, 3, no_mask.translator).eval()
    out = translator(image, kp, kp_target)
    torch.testing.assert_close(out["prediction"], out["generated"])
    assert out["mask"].abs().max() == 0
    # The join layer sees the features and K maps per keypoint set: 2K with the reference keypoints, K without.
    assert ImageTranslator(3, 3, full.translator).join.conv.in_channels == 16 + 6
    without = ImageTranslator(3, 3, no_reference.translator).eval()
    assert without.join.conv.in_channels == 16 + 3
    with torch.no_grad():  # without reference keypoints, k does not matter
        torch.testing.assert_close(without(image, kp, kp_target)["prediction"],
                                   without(image, kp + 0.5, kp_target)["prediction"])


# ----------------------------------------------------------------------------------------------- motion (cVAE)


def test_motion_generator_shapes_through_the_lstms() -> None:
    params = tiny().model_params.motion_generator
    generator = MotionGenerator(3, params)
    future, first, actions = torch.rand(5, 6, 3, 2) * 2 - 1, torch.rand(5, 3, 2) - 0.5, torch.tensor([0, 1, 2, 8, 4])
    mean, logvar = generator.encode(future, first, actions)
    assert mean.shape == logvar.shape == (5, 4)
    out = generator(future, first, actions)
    assert out["reconstruction"].shape == (5, 6, 3, 2) and out["reconstruction"].abs().max() < 1
    sampled = generator.sample(first, actions, 9, generator=torch.Generator().manual_seed(1))
    assert sampled.shape == (5, 9, 3, 2)
    torch.testing.assert_close(sampled, generator.sample(first, actions, 9, torch.Generator().manual_seed(1)))
    assert not torch.allclose(sampled, generator.sample(first, actions, 9, torch.Generator().manual_seed(2)))
    out["reconstruction"].sum().backward()  # gradients reach the encoder through the reparameterisation
    assert generator.encoder.layers[0].weight_ih_l0.grad is not None
    assert SequenceDiscriminator(3, 8)(future).shape == (5, 1)


def test_action_conditioning_and_the_unconditional_mode() -> None:
    reference = torch.zeros(2, 3)
    torch.testing.assert_close(action_one_hot(torch.tensor([2, 0]), 3, 2, reference),
                               torch.tensor([[0.0, 0, 1], [1, 0, 0]]))
    assert action_one_hot(None, 0, 2, reference).shape == (2, 0)
    with pytest.raises(ValueError, match="needs an action"):
        action_one_hot(None, 3, 2, reference)
    with pytest.raises(ValueError, match="indices"):
        action_one_hot(torch.tensor([3, 0]), 3, 2, reference)
    unconditional = MotionGenerator(3, tiny(motion_generator={"actions": []}).model_params.motion_generator)
    assert unconditional.sample(torch.zeros(2, 3, 2), None, 4).shape == (2, 4, 3, 2)


def test_kl_term_matches_its_closed_form() -> None:
    mean, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[math.log(2.0), math.log(0.5)]])
    # KL(N(mu, s^2) || N(0, 1)) = 1/2 (s^2 + mu^2 - 1 - ln s^2), per dimension.
    expected = 0.5 * (2 + 0.25 - 1 - math.log(2)) + 0.5 * (0.5 + 1 - 1 - math.log(0.5))
    assert kl_divergence_normal(mean, logvar).item() == pytest.approx(expected, rel=1e-6)
    posterior = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    prior = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    assert kl_divergence_normal(mean, logvar).item() == pytest.approx(
        torch.distributions.kl_divergence(posterior, prior).sum().item(), rel=1e-6)


# ------------------------------------------------------------------------------------------- stages learn


def test_stage_1_a_short_run_lowers_the_translation_loss() -> None:
    experiment = tiny()
    from motiontransfer.engine.distributed import DistributedContext

    task = KPVPTask(experiment, DistributedContext(), steps_per_epoch=10)
    networks = task.networks()
    optimizer = torch.optim.Adam([*networks["kp_detector"].parameters(), *networks["translator"].parameters()],
                                 lr=2e-3, betas=(0.5, 0.999))
    torch.manual_seed(0)
    frames = torch.rand(2, 3, 32, 32)
    source, driving = frames, frames.roll(3, dims=3)
    losses = []
    for _ in range(40):
        with frozen_parameters(networks["image_discriminator"]):
            total, terms, _ = translation_losses(networks["kp_detector"], networks["translator"],
                                                 networks["image_discriminator"], task.perceptual, source, driving,
                                                 generator_gan=0.0)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(terms["perceptual"].item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    assert networks["kp_detector"].kp.weight.grad is not None  # the detector learns through the translator


def _drifting_labels(count: int = 12, frames: int = 10) -> PseudoLabels:
    """Keypoints moving right at an action-dependent speed (0.02 or 0.05 per frame) from different starts."""
    sequences, actions = [], []
    for index in range(count):
        speed = 0.02 if index % 2 == 0 else 0.05
        start = -0.6 + 0.05 * index
        track = start + speed * np.arange(frames, dtype=np.float32)
        points = np.zeros((frames, 3, 2), np.float32)
        points[..., 0] = track[:, None]
        points[..., 1] = np.linspace(-0.5, 0.5, 3, dtype=np.float32)
        sequences.append(points)
        actions.append(ACTIONS[index % 2])
    return PseudoLabels(sequences, [f"v{i}" for i in range(count)], actions)


def test_stage_3_a_short_run_lowers_the_motion_loss() -> None:
    result = train_motion_generator(tiny(), _drifting_labels(), steps=120, progress=False)
    first, last = result.history[0], result.history[-1]
    assert {"kl", "l1", "generator_gan", "discriminator_gan"} <= set(last)
    assert last["l1"] < 0.5 * first["l1"]


def test_stage_3_refuses_labels_it_cannot_use() -> None:
    labels = _drifting_labels()
    with pytest.raises(UserError, match="at least"):
        train_motion_generator(tiny(), PseudoLabels([s[:4] for s in labels.sequences], labels.names,
                                                    labels.actions), steps=2, progress=False)
    with pytest.raises(UserError, match="does not list"):
        train_motion_generator(tiny(), PseudoLabels(labels.sequences, labels.names, ["dance"] * 12), steps=2,
                               progress=False)
    unconditional = tiny(motion_generator={"actions": []})
    assert train_motion_generator(unconditional, PseudoLabels(labels.sequences, labels.names, [None] * 12),
                                  steps=3, progress=False).history


def test_pseudo_labels_are_the_detector_keypoints_with_actions(tmp_path: Path) -> None:
    model = KPVPAnimator(tiny()).eval()
    labels = make_pseudo_labels(model, "procedural:puppets:videos=3,frames=5", progress=False)
    assert len(labels.sequences) == 3 and labels.sequences[0].shape == (5, 3, 2)
    assert all(action in ACTIONS for action in labels.actions)
    with torch.no_grad():
        from motiontransfer.data.splits import split_videos

        frames = torch.stack(list(split_videos("procedural:puppets:videos=3,frames=5", 32, "train")[0].frames()))
        np.testing.assert_allclose(labels.sequences[0], model.extract_motion(frames).mean.numpy(), atol=1e-5)
    path = labels.save(tmp_path / "labels.npz")
    restored = PseudoLabels.load(path)
    assert restored.names == labels.names and restored.actions == labels.actions
    for a, b in zip(restored.sequences, labels.sequences, strict=True):
        np.testing.assert_array_equal(a, b)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a pseudo-label file"):
        PseudoLabels.load(tmp_path / "bad.npz")


# ------------------------------------------------------------------------------------- the common interface


def test_relative_transfer_on_hand_computed_numbers() -> None:
    model = KPVPAnimator(tiny())
    source = GaussianKeypoints(torch.tensor([[[0.1, 0.2], [-0.3, 0.0], [0.0, 0.5]]]))
    initial = GaussianKeypoints(torch.tensor([[[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]]))
    driving = GaussianKeypoints(torch.tensor([[[0.1, -0.1], [0.2, 0.0], [0.0, 0.0]]]))
    torch.testing.assert_close(model.transfer(source, driving, initial).mean,
                               torch.tensor([[[0.2, 0.1], [-0.1, 0.0], [0.0, 0.5]]]))
    assert model.transfer(source, driving, initial, mode="absolute") is driving


def test_model_file_round_trip_and_predict_video() -> None:
    experiment = tiny()
    generator, _ = build_motion_networks(experiment.model_params)
    model = KPVPAnimator(experiment, motion_generator=generator).eval()
    image = torch.rand(3, 32, 32)
    frames = model.predict_video(image, 7, action="jump", seed=3)
    assert frames.shape == (7, 3, 32, 32) and frames.min() >= 0 and frames.max() <= 1
    restored = KPVPAnimator.from_model_file(model.to_model_file()).eval()
    torch.testing.assert_close(restored.predict_video(image, 7, action="jump", seed=3), frames)
    with torch.no_grad():  # the first frame renders the source's own keypoints
        state = model.encode_source(image[None])
        torch.testing.assert_close(frames[:1], model.render(state, state.motion)["prediction"])
    with pytest.raises(UserError, match="generates the actions"):
        model.predict_video(image, 3, action="dance")
    with pytest.raises(UserError, match="no motion generator"):
        KPVPAnimator(experiment).eval().predict_video(image, 3, action="jump")


def test_the_visualisation_shows_the_background_mask() -> None:
    from motiontransfer.visualize import animation_grid

    model = KPVPAnimator(tiny()).eval()
    source = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        state = model.encode_source(source)
        out = model.render(state, state.motion)
    assert out["background_mask"].shape == (1, 1, 32, 32) and out["generated"].shape == (1, 3, 32, 32)
    item = {"source": source[0], "driving": source[0], "prediction": out["prediction"][0],
            "source_keypoints": state.motion.mean[0], "driving_keypoints": state.motion.mean[0],
            "background_mask": torch.ones(1, 32, 32)}
    grid = animation_grid(item, padding=0)
    assert grid.shape == (32, 128, 3) and (grid[:, 64:96] == 255).all()  # third panel: the mask, white


def test_bundled_configs_load_and_an_unknown_key_is_an_error() -> None:
    penn = load_experiment("kpvp-penn-128")
    assert isinstance(penn, KPVPExperiment) and penn.frame_size == 128 and penn.model_params.num_kp == 40
    assert penn.model_params.motion_generator.hidden_sizes == [1024, 1024]
    assert penn.motion_params.loss_weights.l1 == 1000 and penn.motion_params.loss_weights.generator_gan == 2
    assert load_experiment("kpvp-nemo-128").model_params.motion_generator.actions == []
    assert load_experiment("kpvp-synthetic-puppets-64").model_params.motion_generator.actions == ACTIONS
    config = copy.deepcopy(TINY)
    config["model_params"]["translator"]["use_bg_mask"] = False
    with pytest.raises(ConfigError, match="use_bg_mask"):
        experiment_from_dict(config)


@pytest.mark.slow
def test_train_stages_predict_and_animate_commands(tmp_path: Path) -> None:
    import yaml

    from motiontransfer.cli import main
    from motiontransfer.video.io import count_frames, write_image

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "motion_params": {**TINY["motion_params"], "num_steps": 5}}))
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(run), "--stage", "1"]) == 0
    assert not (run / "kpvp.mt").exists()
    assert main(["train", "--resume", str(run), "--stage", "2", "--stage", "3"]) == 0
    assert (run / "pseudo-labels.npz").is_file() and (run / "kpvp.mt").is_file()
    image = tmp_path / "source.png"
    write_image(image, torch.rand(3, 32, 32))
    samples = tmp_path / "futures"
    assert main(["predict", "--checkpoint", str(run / "kpvp.mt"), "--source", str(image), "--action", "wave",
                 "--frames", "5", "--samples", "2", "--out", str(samples)]) == 0
    assert sorted(p.name for p in samples.iterdir()) == ["contact-sheet.png", "sample-0.mp4", "sample-1.mp4"]
    assert count_frames(samples / "sample-1.mp4") == 5
    assert main(["predict", "--checkpoint", str(run / "kpvp.mt"), "--source", str(image), "--action", "wave",
                 "--frames", "3", "--samples", "3", "--out", str(samples)]) == 0  # an earlier samples folder
    assert len(list(samples.glob("sample-*.mp4"))) == 3 and count_frames(samples / "sample-0.mp4") == 3
    video = tmp_path / "reconstruction"
    assert main(["reconstruct", "--checkpoint", str(run / "kpvp.mt"), "--data",
                 "procedural:puppets:videos=2,frames=4", "--out", str(video)]) == 0
    driving = next(video.glob("*.mp4"))
    assert main(["animate", "--checkpoint", str(run / "kpvp.mt"), "--source", str(image), "--driving",
                 str(driving), "--out", str(tmp_path / "animated.mp4"), "--visualize"]) == 0
    assert count_frames(tmp_path / "animated.mp4") == 4 and (tmp_path / "animated-viz.mp4").is_file()
    # Mistakes exit 2 and write nothing.
    assert main(["predict", "--checkpoint", str(run / "kpvp.mt"), "--source", str(image), "--action", "dance",
                 "--out", str(tmp_path / "bad.mp4")]) == 2
    assert main(["predict", "--checkpoint", str(run / "kpvp.mt"), "--source", str(image), "--action", "wave",
                 "--samples", "2", "--out", str(tmp_path / "bad.mp4")]) == 2
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me")
    assert main(["predict", "--checkpoint", str(run / "kpvp.mt"), "--source", str(image), "--action", "wave",
                 "--samples", "2", "--out", str(precious)]) == 2
    assert (precious / "thesis.tex").read_text() == "keep me"
    assert main(["train", "--resume", str(run), "--stage", "4"]) == 2
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "other"), "--stage", "2"]) == 2
    assert not (tmp_path / "bad.mp4").exists() and not (tmp_path / "other").exists()


def test_stages_2_and_3_refuse_another_family_and_a_missing_run(tmp_path: Path) -> None:
    from motiontransfer.cli import main
    from motiontransfer.training.checkpoints import save_checkpoint

    run = tmp_path / "fomm-run"
    save_checkpoint(run, step=1, epoch=0, family="fomm", config={}, networks={"x": {"w": torch.zeros(1)}},
                    training_state={}, keep=1)
    with pytest.raises(UserError, match="is a fomm run"):
        run_stages(resume=run, stages=[2, 3], progress=False)
    assert main(["train", "--resume", str(run), "--stage", "2"]) == 2
    with pytest.raises(UserError, match="resume RUN"):
        run_stages(stages=[3], progress=False)
    with pytest.raises(UserError, match="no checkpoint"):
        run_stages(resume=tmp_path / "empty", stages=[2], progress=False)


def test_steps_bounds_every_stage_of_a_run(tmp_path: Path) -> None:
    result = run_stages(tiny(), out_dir=tmp_path / "run", steps=2, progress=False)  # motion_params.num_steps: 40
    assert result.stage1.step == 2
    assert len(result.outputs[3].result.history) == 2  # one entry per step at 2 steps
    assert (tmp_path / "run" / "kpvp.mt").is_file()


def test_actions_the_config_does_not_list_fail_before_the_expensive_stages(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import motiontransfer.families.kpvp.stages as kpvp

    few = tiny(motion_generator={"actions": ["wave", "squat"]})
    with pytest.raises(UserError, match="does not list"):
        run_stages(few, out_dir=tmp_path / "new", progress=False)
    assert not (tmp_path / "new").exists(), "refused before stage 1"
    run = tmp_path / "run"
    run_stages(few, out_dir=run, stages=[1], steps=1, progress=False)  # stage 1 alone is not checked

    def labelling(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("stage 2 started")

    monkeypatch.setattr(kpvp, "make_pseudo_labels", labelling)
    with pytest.raises(UserError, match=r"actions the config does not list \(.*jump"):
        run_stages(resume=run, stages=[2, 3], progress=False)
    assert not (run / "pseudo-labels.npz").exists()


def test_videos_without_action_labels_are_refused_by_a_conditional_config() -> None:
    from motiontransfer.families.kpvp.stages import check_actions

    with pytest.raises(UserError, match="2 of the 3 training videos have no action label"):
        check_actions(["wave", None, None], ["wave"])
    check_actions([None, None], [])  # unconditional: anything goes
    check_actions(["wave", "squat"], ["squat", "wave", "jump"])
