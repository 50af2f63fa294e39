"""FOMM training: the step functions, optimisers and schedules, the trainer loop, checkpoints, resume and CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from motiontransfer.checkpoint import load_model_file
from motiontransfer.cli import main
from motiontransfer.data.datasets import open_training_data
from motiontransfer.engine.distributed import DistributedContext
from motiontransfer.errors import ConfigError, UserError
from motiontransfer.families.fomm.task import (
    FommTask,
    discriminator_inputs,
    frozen_parameters,
    generator_step,
    make_optimizers,
    make_schedulers,
    milestones_in_steps,
)
from motiontransfer.losses import PerceptualPyramidLoss, keypoint_separation_loss
from motiontransfer.params import ResizeParams
from motiontransfer.training import train
from motiontransfer.training.checkpoints import load_training_state, read_latest
from motiontransfer.video.io import read_image
from training_helpers import TINY_DATA, tiny_experiment, write_tiny_config

pytestmark = pytest.mark.filterwarnings("ignore:VGG19 weights for the perceptual loss were not found")


@pytest.fixture(autouse=True)
def _no_vgg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty torch hub cache: the perceptual loss uses its pixel fallback whatever the machine holds."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def _batch(size: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    dataset = open_training_data(TINY_DATA, 32, seed=seed)
    items = [dataset[i] for i in range(size)]
    return {key: torch.stack([item[key] for item in items]) for key in ("source", "driving")}


def _task(**train_params: object) -> FommTask:
    return FommTask(tiny_experiment(**train_params), DistributedContext(), steps_per_epoch=4)


def _generator_output(task: FommTask, batch: dict[str, torch.Tensor]):  # type: ignore[no-untyped-def]
    experiment = task.experiment
    with frozen_parameters(task.plain.discriminator):
        return generator_step(task.plain, batch["source"], batch["driving"], task.perceptual,
                              experiment.train_params, align_corners=experiment.model_params.align_corners,
                              discriminator_scales=task.discriminator_scales,
                              generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------------------------------------ training step


@pytest.mark.slow
def test_fifty_steps_lower_the_reconstruction_loss() -> None:
    task = _task(batch_size=4, num_repeats=8)
    dataset = open_training_data(TINY_DATA, 32, num_repeats=8)
    loader = DataLoader(dataset, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0),
                        drop_last=True)
    perceptual = []
    step = 0
    while step < 50:
        for batch in loader:
            perceptual.append(task.train_step(batch, step).losses["perceptual"])
            step += 1
            if step == 50:
                break
    first, last = np.mean(perceptual[:10]), np.mean(perceptual[-10:])
    assert np.isfinite(perceptual).all()
    assert last < 0.75 * first, (first, last)


def test_gradients_reach_the_keypoint_detector_and_the_generator() -> None:
    task = _task()
    out = _generator_output(task, _batch())
    out.loss.backward()
    kp, gen = task.plain.kp_detector, task.plain.generator
    for name, parameter in [("kp", kp.kp.weight), ("jacobian", kp.jacobian.weight),
                            ("hourglass", kp.predictor.encoder.down_blocks[0].conv.weight),
                            ("final", gen.final.weight), ("first", gen.first.conv.weight),
                            ("dense motion", gen.dense_motion_network.mask.weight),
                            ("occlusion", gen.dense_motion_network.occlusion.weight)]:
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in task.plain.discriminator.parameters())


def test_perceptual_loss_alone_still_trains_both_networks() -> None:
    task = _task(transform_params=None)
    out = _generator_output(task, _batch())
    assert set(out.losses) == {"perceptual"}
    out.loss.backward()
    assert task.plain.kp_detector.kp.weight.grad.abs().sum() > 0
    assert task.plain.generator.final.weight.grad.abs().sum() > 0


def test_equivariance_losses_are_present_finite_and_configurable() -> None:
    batch = _batch()
    out = _generator_output(_task(), batch)
    assert set(out.losses) == {"perceptual", "equivariance_value", "equivariance_jacobian"}
    assert all(torch.isfinite(value) and value > 0 for value in out.losses.values())
    assert out.generated["transformed_frame"].shape == batch["driving"].shape
    assert torch.allclose(out.loss, sum(out.losses.values()))
    only_value = _generator_output(_task(loss_weights={"equivariance_jacobian": 0}), batch)
    assert set(only_value.losses) == {"perceptual", "equivariance_value"}
    none = _generator_output(_task(loss_weights={"equivariance_jacobian": 0, "equivariance_value": 0}), batch)
    assert set(none.losses) == {"perceptual"} and "transformed_frame" not in none.generated


def test_keypoint_separation_prior_is_off_by_default_and_weighted_when_on() -> None:
    batch = _batch()
    assert "keypoint_separation" not in _generator_output(_task(), batch).losses
    task = _task(loss_weights={"keypoint_separation": 2.0}, keypoint_separation_sigma=0.2)
    out = _generator_output(task, batch)
    kp_source, kp_driving = out.generated["kp_source"]["value"], out.generated["kp_driving"]["value"]
    expected = 2.0 * 0.5 * (keypoint_separation_loss(kp_source, 0.2) + keypoint_separation_loss(kp_driving, 0.2))
    assert torch.allclose(out.losses["keypoint_separation"], expected)
    task.plain.kp_detector.zero_grad()
    out.losses["keypoint_separation"].backward()
    assert task.plain.kp_detector.kp.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="keypoint_separation_sigma"):
        _task(keypoint_separation_sigma=0)


def test_adversarial_step_trains_the_discriminator_only_in_its_own_step() -> None:
    task = _task(loss_weights={"generator_gan": 1})
    batch = _batch()
    out = _generator_output(task, batch)
    assert {"gen_gan", "feature_matching"} <= set(out.losses)
    assert all(torch.isfinite(value) for value in out.losses.values())
    out.loss.backward()
    assert all(p.grad is None for p in task.plain.discriminator.parameters())
    assert all(p.requires_grad for p in task.plain.discriminator.parameters())  # restored after the block
    before = {k: v.clone() for k, v in task.plain.discriminator.state_dict().items()}
    losses = task.train_step(batch, 0).losses
    assert {"disc_gan", "gen_gan", "feature_matching", "l1"} <= set(losses)
    after = task.plain.discriminator.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight_orig"))


def test_discriminator_scales_are_matched_by_value() -> None:
    pyramid = {"prediction_1.0": torch.zeros(1), "prediction_0.5": torch.ones(1)}
    inputs = discriminator_inputs(pyramid, [1.0, 0.5], (1, 0.5))
    assert set(inputs) == {"prediction_1", "prediction_0.5"} and inputs["prediction_0.5"].item() == 1
    with pytest.raises(ConfigError, match=r"scale 0\.25"):
        discriminator_inputs(pyramid, [1.0, 0.5], (0.25,))
    with pytest.raises(ConfigError, match=r"scale 1 is not one of train_params\.scales"):
        FommTask(tiny_experiment(loss_weights={"generator_gan": 1}, scales=[0.5]), DistributedContext(), 1)


# ------------------------------------------------------------------------------------- optimisers and schedules


def test_each_network_gets_its_learning_rate_and_adam_betas() -> None:
    task = _task(lr_kp_detector=1e-4, lr_generator=3e-4, lr_discriminator=5e-4, loss_weights={"generator_gan": 1})
    rates = {name: opt.param_groups[0]["lr"] for name, opt in task.optimizers.items()}
    assert rates == {"kp_detector": 1e-4, "generator": 3e-4, "discriminator": 5e-4}
    assert all(opt.param_groups[0]["betas"] == (0.5, 0.999) for opt in task.optimizers.values())
    owned = {id(p) for p in task.optimizers["generator"].param_groups[0]["params"]}
    assert owned == {id(p) for p in task.plain.generator.parameters()}
    assert "discriminator" not in _task().optimizers  # generator_gan 0: the discriminator is never trained


def test_learning_rate_zero_freezes_a_network() -> None:
    task = _task(lr_kp_detector=0.0)
    assert "kp_detector" not in task.optimizers
    assert not any(p.requires_grad for p in task.plain.kp_detector.parameters())
    before = {k: v.clone() for k, v in task.plain.kp_detector.named_parameters()}
    generator_before = task.plain.generator.final.weight.clone()
    task.train_step(_batch(), 0)
    assert all(torch.equal(before[k], v) for k, v in task.plain.kp_detector.named_parameters())
    assert not torch.equal(generator_before, task.plain.generator.final.weight)
    with pytest.raises(ConfigError, match="must be >= 0"):
        make_optimizers({"generator": task.plain.generator}, {"generator": -1.0})


def test_schedulers_drop_the_rate_tenfold_at_epoch_milestones_converted_to_steps() -> None:
    assert milestones_in_steps([60, 90], steps_per_epoch=25) == [1500, 2250]
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizers = {"generator": torch.optim.Adam([parameter], lr=1.0)}
    scheduler = make_schedulers(optimizers, milestones_in_steps([2, 3], steps_per_epoch=3))["generator"]
    rates = []
    for _ in range(10):
        rates.append(optimizers["generator"].param_groups[0]["lr"])
        optimizers["generator"].step()
        scheduler.step()
    assert rates == pytest.approx([1.0] * 6 + [0.1] * 3 + [0.01])
    task = _task(epoch_milestones=[1])  # steps_per_epoch 4 in _task
    assert set(task.schedulers) == set(task.optimizers)
    for step in range(4):
        task.train_step(_batch(), step)
    assert task.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(2e-5)


# ---------------------------------------------------------------------------------- trainer, checkpoints, resume


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-step run of the tiny config (checkpoints every 2 steps, keeping 2)."""
    run = tmp_path_factory.mktemp("training") / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(tiny_experiment(), out_dir=run, progress=False)
    assert (result.start_step, result.step, result.steps_per_epoch) == (0, 6, 4)
    return run


def test_run_folder_holds_checkpoints_samples_and_tensorboard_events(trained_run: Path) -> None:
    folder = trained_run / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "latest.json", "step-00000004.mt", "step-00000004.optim.pt", "step-00000006.mt", "step-00000006.optim.pt"]
    latest = json.loads((folder / "latest.json").read_text())
    assert latest == {"step": 6, "epoch": 1, "family": "fomm", "model": "step-00000006.mt",
                      "training_state": "step-00000006.optim.pt", "data": TINY_DATA}
    model = load_model_file(folder / "step-00000006.mt")
    assert set(model.networks) == {"kp_detector", "generator", "discriminator"}
    assert model.family == "fomm" and model.metadata["step"] == 6 and model.metadata["epoch"] == 1
    assert model.metadata["config"]["train_params"]["max_steps"] == 6
    state = load_training_state(folder / "step-00000006.optim.pt")
    assert set(state["optimizers"]) == {"kp_detector", "generator"} and state["step"] == 6
    assert sorted(p.name for p in (trained_run / "samples").iterdir()) == [
        "step-00000002.png", "step-00000004.png", "step-00000006.png"]
    sheet = read_image(trained_run / "samples" / "step-00000006.png")
    assert sheet.shape[1:] == (4 * 34 + 2, 5 * 34 + 2)  # 4 examples x 5 columns of 32 px cells
    assert list((trained_run / "tensorboard").glob("events.out.tfevents.*"))
    assert (trained_run / "config.yaml").is_file()


def test_tensorboard_has_the_loss_scalars(trained_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained_run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/perceptual", "loss/equivariance_value", "loss/l1", "lr/generator"} <= tags
    assert [event.step for event in events.Scalars("loss/l1")] == [2, 4, 6]


def test_resume_restores_the_saved_state_and_continues_the_step_count(trained_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    saved = load_model_file(run / "checkpoints" / "step-00000006.mt").networks
    result = train(out_dir=None, resume=run, steps=6, progress=False)  # already done: restores only
    assert (result.start_step, result.step, result.checkpoint) == (6, 6, None)
    for name, module in result.networks.items():
        for key, value in module.state_dict().items():
            assert torch.equal(value, saved[name][key]), (name, key)
    result = train(resume=run, steps=8, progress=False)
    assert (result.start_step, result.step) == (6, 8)
    assert read_latest(run).step == 8
    state = load_training_state(run / "checkpoints" / "step-00000008.optim.pt")
    assert int(state["optimizers"]["generator"]["state"][0]["step"]) == 8


@pytest.mark.slow
def test_resumed_training_matches_uninterrupted_training(tmp_path: Path) -> None:
    straight = train(tiny_experiment(max_steps=5, checkpoint_every=3), out_dir=tmp_path / "a", progress=False)
    train(tiny_experiment(max_steps=3, checkpoint_every=3), out_dir=tmp_path / "b", progress=False)
    resumed = train(resume=tmp_path / "b", steps=5, progress=False)  # resumes mid-epoch (4 steps per epoch)
    assert resumed.start_step == 3
    for name, module in straight.networks.items():
        other = resumed.networks[name].state_dict()
        for key, value in module.state_dict().items():
            assert torch.allclose(value.float(), other[key].float(), atol=1e-5), (name, key)


def test_trains_from_a_dataset_folder_with_resize_augmentation(tmp_path: Path) -> None:
    from motiontransfer.data.synthetic.writer import write_dataset

    write_dataset("shapes", tmp_path / "data", videos=4, frames=6, size=32, seed=0, test_videos=1,
                  video_format="png", progress=False)
    experiment = tiny_experiment(max_steps=2, batch_size=2)
    experiment.dataset_params.augmentation_params.resize_param = ResizeParams(ratio=[0.9, 1.1])
    result = train(experiment, data=tmp_path / "data", out_dir=tmp_path / "run", steps=3, progress=False)
    assert result.step == 3 and result.steps_per_epoch == 4  # 4 videos x 2 repeats / batch 2
    assert read_latest(tmp_path / "run").data == str(tmp_path / "data")
    saved = load_model_file(tmp_path / "run" / "checkpoints" / "step-00000003.mt").metadata["config"]
    assert saved["train_params"]["max_steps"] == 3  # --steps is recorded for --resume
    assert experiment.train_params.max_steps == 2  # the caller's experiment is not modified


def test_new_run_refuses_a_folder_with_a_run_and_resume_needs_a_checkpoint(trained_run: Path,
                                                                            tmp_path: Path) -> None:
    with pytest.raises(UserError, match="already holds a training run"):
        train(tiny_experiment(), out_dir=trained_run, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no checkpoint to resume from"):
        train(resume=tmp_path / "empty", progress=False)
    with pytest.raises(UserError, match="not both"):
        train(tiny_experiment(), resume=trained_run, progress=False)
    with pytest.raises(UserError, match="fewer than batch_size"):
        train(tiny_experiment(batch_size=64), out_dir=tmp_path / "small", progress=False)


# ------------------------------------------------------------------------------------------------------------ CLI


def test_train_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_tiny_config(tmp_path / "tiny.yaml", max_steps=2)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 0
    assert "trained steps 0..2" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "3"]) == 0
    assert "trained steps 2..3" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["train"], "give --config"),
    (["train", "--config", "no-such-config", "--out", "{tmp}/run"], "unknown config"),
    (["train", "--config", "{tiny}"], "--out is required"),
    (["train", "--config", "{tiny}", "--out", "{tmp}/run", "--steps", "0"], "--steps must be at least 1"),
    (["train", "--resume", "{tmp}"], "no checkpoint to resume from"),
    (["train", "--resume", "{tmp}/missing"], "run folder does not exist"),
    (["train", "--config", "{tiny}", "--out", "{tmp}/run", "--data", "{tmp}/nothing"], "does not exist"),
    (["train", "--config", "{tiny}", "--out", "{tmp}/run", "--device", "tpu"], "device"),
    (["train", "--config", "{rotation}", "--out", "{tmp}/run"], "rotation_param"),
])
def test_train_command_user_errors_exit_2(args: list[str], message: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    tiny = write_tiny_config(tmp_path / "tiny.yaml")
    rotation = tmp_path / "rotation.yaml"
    rotation.write_text(tiny.read_text().replace("augmentation_params:",
                                                 "augmentation_params:\n    rotation_param: {degrees: 10}"))
    values = {"tmp": str(tmp_path), "tiny": str(tiny), "rotation": str(rotation)}
    assert main([arg.format(**values) for arg in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("motiontransfer: error:") and message in err and "\n" not in err


# -------------------------------------------------------------------------------------------------- small configs


@pytest.mark.parametrize("name", ["synthetic-faces-64", "synthetic-puppets-64", "synthetic-faces-128",
                                  "synthetic-puppets-128"])
@pytest.mark.slow
def test_bundled_cpu_configs_take_a_training_step(name: str) -> None:
    from motiontransfer.experiment import load_experiment

    experiment = load_experiment(name)
    params = experiment.train_params
    assert params.loss_weights.generator_gan == 0 and params.perceptual_fallback == "l1_pyramid"
    assert PerceptualPyramidLoss(params.scales, params.loss_weights.perceptual).scales == tuple(params.scales)
    experiment.train_params.batch_size = 2
    size = experiment.frame_size
    dataset = open_training_data(experiment.dataset_params.root_dir, size)
    batch = {key: torch.stack([dataset[i][key] for i in range(2)]) for key in ("source", "driving")}
    result = FommTask(experiment, DistributedContext(), steps_per_epoch=100).train_step(batch, 0)
    assert all(np.isfinite(v) for v in result.losses.values())
    assert result.outputs["prediction"].shape == (2, 3, size, size)


def test_cleaning_removes_leftovers_of_interrupted_saves_only(tmp_path: Path) -> None:
    from motiontransfer.training.checkpoints import checkpoint_dir, clean_checkpoint_dir

    folder = checkpoint_dir(tmp_path)
    folder.mkdir(parents=True)
    leftovers = [".step-00000003.tmp-1a2b3c4d.mt", ".tmpQGwz1O"]  # ours, and safetensors' own temporary file
    kept = ["notes.txt", "model.tmp-1a2b3c4d.mt", ".tmpTooLongName"]
    for name in leftovers + kept:
        (folder / name).write_text("x")
    clean_checkpoint_dir(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(kept)


def test_channels_last_keeps_the_numbers_and_skips_five_dimensional_weights() -> None:
    from motiontransfer.engine.distributed import to_channels_last
    from motiontransfer.families.lia.config import LIAConfig
    from motiontransfer.families.lia.networks import Generator

    torch.manual_seed(0)
    generator = Generator(LIAConfig(size=64, style_dim=16, motion_dim=3, max_channels=8)).eval()
    frames = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = generator(frames, frames.flip(0))
        to_channels_last(generator)
        got = generator(frames.contiguous(memory_format=torch.channels_last), frames.flip(0))
    # Float32 rounding only (another convolution algorithm sums in another order): outputs are in about [-1, 1].
    torch.testing.assert_close(got, expected, atol=5e-4, rtol=0)
    conv = generator.enc.net_app.convs[0][0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert generator.dec.conv1.conv.weight.dim() == 5  # modulated conv weights untouched


def test_train_to_steps_starts_reuses_and_resumes_a_run(tmp_path: Path) -> None:
    from motiontransfer.training import train_to_steps

    run = tmp_path / "run"
    first = train_to_steps(tiny_experiment(checkpoint_every=2), run, 2, progress=False)
    assert first.name == "step-00000002.mt"
    modified = first.stat().st_mtime_ns
    assert train_to_steps(tiny_experiment(), run, 2, progress=False) == first  # done already: reused as is
    assert first.stat().st_mtime_ns == modified
    assert train_to_steps(tiny_experiment(), run, 4, progress=False).name == "step-00000004.mt"  # resumed
