"""The family registry: a toy family registered in a few lines trains, animates and evaluates through the command
line with no other code knowing it; the registry's lookups, layouts and teardown."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from motiontransfer.cli import main
from motiontransfer.config import to_dict
from motiontransfer.engine.task import StepResult, pair_for_step
from motiontransfer.errors import ArgumentError, CapabilityError, Term, UserError
from motiontransfer.experiment import experiment_from_dict, load_experiment
from motiontransfer.models.base import AnimationModel, SourceState
from motiontransfer.models.motion import GaussianKeypoints
from motiontransfer.params import DatasetParams, RunParams
from motiontransfer.registry import (
    GENERIC_MATCH,
    SPECIFIC_MATCH,
    FamilySpec,
    family,
    family_names,
    recognize,
    register,
    registered,
    unregister,
)
from motiontransfer.training.checkpoints import read_latest
from motiontransfer.video.io import VideoWriter, count_frames, write_image
from motiontransfer.visualize import image_grid

# ------------------------------------------------------------------------------------------------ the toy family


@dataclass
class ToyExperiment:
    model_params: dict[str, Any] = field(default_factory=dict)
    family: Literal["toy"] = "toy"
    dataset_params: DatasetParams = field(default_factory=lambda: DatasetParams(frame_shape=[32, 32, 3]))
    train_params: RunParams = field(default_factory=lambda: RunParams(batch_size=2, log_every=1))

    @property
    def frame_size(self) -> int:
        return self.dataset_params.frame_size or 32


class IdentityAnimator(AnimationModel):
    """Renders the source whatever the motion: the simplest model the pipeline can run."""

    family = "toy"
    experiment_type = ToyExperiment
    inference_networks = ("generator",)

    def __init__(self, experiment: ToyExperiment) -> None:
        super().__init__()
        self.experiment, self.size = experiment, experiment.frame_size
        self.generator = nn.Conv2d(3, 3, 1)

    def extract_motion(self, frames: torch.Tensor) -> GaussianKeypoints:
        return GaussianKeypoints(frames.mean(dim=(1, 2, 3))[:, None, None].expand(-1, 3, 2))

    def relative_motion(self, source_motion: Any, driving_motion: Any, driving_initial: Any, scale: float) -> Any:
        return driving_motion

    def encode_source(self, source: torch.Tensor) -> SourceState:
        return SourceState(source, self.extract_motion(source), None)

    def render(self, source_state: SourceState, target_motion: Any) -> dict[str, torch.Tensor]:
        return {"prediction": source_state.image.expand(target_motion.batch_size, -1, -1, -1)}

    def motion_keypoints(self, motion: GaussianKeypoints) -> torch.Tensor:
        return motion.mean


class CopyTask:
    """Trains the 1x1 convolution to copy the driving frame."""

    family = "toy"

    def __init__(self, experiment: ToyExperiment, context: Any, steps_per_epoch: int) -> None:
        self.device = context.device
        self.generator = nn.Conv2d(3, 3, 1).to(self.device)
        self.optimizers = {"generator": torch.optim.Adam(self.generator.parameters(), lr=1e-2)}
        self.schedulers: dict[str, Any] = {}

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator}

    def train_step(self, batch: Mapping[str, Any], step: int) -> StepResult:
        _, driving = pair_for_step(batch, [self.generator], self.device)
        loss = (self.generator(driving) - driving).abs().mean()
        self.optimizers["generator"].zero_grad()
        loss.backward()
        self.optimizers["generator"].step()
        return StepResult({"l1": float(loss)}, {"driving": driving.detach()})

    def sample_image(self, result: StepResult) -> np.ndarray:
        return image_grid([list(result.outputs["driving"])])


@pytest.fixture
def toy() -> Iterator[FamilySpec]:
    spec = register(FamilySpec(model=IdentityAnimator, title="Toy", task=CopyTask))
    yield spec
    unregister("toy")


# ---------------------------------------------------------------------------------------------------- tests

DATA = "procedural:shapes:videos=4,frames=6"


def test_a_toy_family_trains_animates_and_evaluates_through_the_cli(toy: FamilySpec, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "toy.yaml"
    config.write_text(yaml.safe_dump(to_dict(ToyExperiment())))
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--data", DATA, "--out", str(run), "--steps", "2"]) == 0
    record = read_latest(run)
    assert record is not None and record.family == "toy" and record.step == 2
    source, driving = tmp_path / "source.png", tmp_path / "driving.mp4"
    write_image(source, torch.rand(3, 32, 32))
    with VideoWriter(driving, fps=10) as writer:
        for _ in range(3):
            writer.write(torch.rand(3, 32, 32))
    out = tmp_path / "out.mp4"
    assert main(["animate", "--checkpoint", str(record.model), "--source", str(source), "--driving", str(driving),
                 "--out", str(out), "--visualize"]) == 0
    assert count_frames(out) == 3
    assert main(["evaluate", "--checkpoint", str(record.model), "--data", DATA, "--metrics", "l1,psnr",
                 "--num-videos", "2"]) == 0
    table = capsys.readouterr().out
    assert "l1" in table and "frames" in table
    # the capability errors of a model without a predictor reach the command line as one line
    assert main(["predict", "--checkpoint", str(record.model), "--source", str(source), "--out",
                 str(tmp_path / "p.mp4")]) == 2
    assert "a toy model animates from a driving video" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--stage", "2"]) == 2
    assert "the toy family trains in one stage (1); --stage [2] does not fit" in capsys.readouterr().err


def test_register_lookup_and_teardown(toy: FamilySpec) -> None:
    assert family("toy") is toy and toy.name == "toy" and toy.experiment is ToyExperiment
    assert "toy" in family_names()
    assert experiment_from_dict({"family": "toy", "model_params": {}}).frame_size == 32
    with pytest.raises(ValueError, match="already registered"):
        register(FamilySpec(model=IdentityAnimator, title="Another toy"))
    replaced = FamilySpec(model=IdentityAnimator, title="Replaced")
    with registered(replaced):
        assert family("toy") is replaced
    assert family("toy") is toy


def test_unknown_families_are_user_errors() -> None:
    assert "toy" not in family_names()  # the fixture of the other tests unregistered it
    with pytest.raises(UserError, match="unknown model family 'toy'; known: fomm"):
        family("toy")
    with pytest.raises(UserError, match="unknown model family 'toy'"):
        experiment_from_dict({"family": "toy", "model_params": {}})


def test_official_layouts_are_recognised_by_their_strongest_match() -> None:
    fomm = {"generator": {"first.conv.weight": torch.zeros(1)}, "kp_detector": {"kp.weight": torch.zeros(1)}}
    monkeynet = {"generator": {"video_decoder.x": torch.zeros(1)}, "kp_detector": {"kp.weight": torch.zeros(1)}}
    assert recognize("checkpoint_layout", fomm) == "fomm"
    assert recognize("checkpoint_layout", monkeynet) == "monkeynet"
    assert recognize("checkpoint_layout", {"gen": {}}) == "lia"
    assert recognize("checkpoint_layout", {"weights": {}}) is None
    assert recognize("config_layout", {"model_params": {}}) == "fomm"
    assert recognize("config_layout", {"model_params": {}, "transfer_params": {}}) == "monkeynet"
    clash = FamilySpec(model=IdentityAnimator, title="Clash", config_layout=lambda data: SPECIFIC_MATCH)
    with registered(clash), pytest.raises(ValueError, match="equally strongly"):
        recognize("config_layout", {"model_params": {}, "transfer_params": {}})
    generic = FamilySpec(model=IdentityAnimator, title="Generic", config_layout=lambda data: GENERIC_MATCH)
    with registered(generic), pytest.raises(ValueError, match="equally strongly"):
        recognize("config_layout", {"model_params": {}})


def test_the_transfer_template_is_the_same_for_every_family(toy: FamilySpec) -> None:
    model = IdentityAnimator(ToyExperiment())
    motion = GaussianKeypoints(torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]]))
    assert model.transfer(motion, motion, None, "absolute") is motion
    with pytest.raises(ValueError, match="initial driving frame"):
        model.transfer(motion, motion, None, "relative")
    with pytest.raises(UserError, match="unknown transfer mode"):
        model.transfer(motion, motion, motion, "sideways")  # type: ignore[arg-type]
    with pytest.raises(CapabilityError, match="cannot generate videos from an image"):
        model.predict_video(torch.zeros(3, 32, 32), 2)
    with pytest.raises(CapabilityError, match="no latent motion directions"):
        model.walk_directions(torch.zeros(1, 3, 32, 32), torch.zeros(2))


def test_lia_cannot_adapt_the_scale_and_says_so_without_naming_a_flag() -> None:
    from motiontransfer.families.lia.animator import LatentMotion, LIAAnimator
    from motiontransfer.families.lia.config import LIAConfig, LIAExperiment

    model = LIAAnimator(LIAExperiment(LIAConfig(size=64, style_dim=8, motion_dim=2, max_channels=8)))
    motion = LatentMotion(torch.zeros(1, 2))
    with pytest.raises(CapabilityError) as caught:
        model.transfer(motion, motion, motion, "relative", adapt_scale=True)
    assert str(caught.value) == ("a lia model cannot adapt the movement scale (adapt_scale): it has no keypoints to "
                                 "measure the sizes with")
    assert caught.value.render({"adapt_scale": "--adapt-scale"}).startswith(
        "a lia model cannot adapt the movement scale (--adapt-scale)")


def test_argument_errors_name_parameters_in_python_and_flags_on_the_command_line() -> None:
    error = ArgumentError(Term("steps"), " must be at least 1, got 0")
    assert str(error) == "steps must be at least 1, got 0"
    assert error.render({"steps": "--steps"}) == "--steps must be at least 1, got 0"
    assert ArgumentError("a {steps} path").render({"steps": "--steps"}) == "a {steps} path"  # text is never parsed


def test_unused_official_keys_warn_once_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "mine.yaml"
    data = to_dict(load_experiment("synthetic-faces-64"))
    data["visualizer_params"] = {"kp_size": 9}
    data["train_params"]["checkpoint_freq"] = 3
    data["animate_params"]["normalization_params"]["use_relative_movement"] = False
    config.write_text(yaml.safe_dump(data))
    with pytest.warns(UserWarning) as caught:
        load_experiment(config)
    messages = sorted(str(warning.message) for warning in caught)
    keys = ["animate_params.normalization_params.use_relative_movement", "train_params.checkpoint_freq",
            "visualizer_params"]
    assert [message.split(": ")[1].split(" ")[0] for message in messages] == keys
    assert all("never read" in message for message in messages)
