"""The prediction protocol: scores of hand-made keypoint sequences, the per-video records of a stand-in predictor,
and the clear refusal of models that do not generate videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fomm_helpers import small_animator
from motiontransfer.errors import UserError
from motiontransfer.evaluation.actions import ActionClassifier, ActionClassifierConfig
from motiontransfer.evaluation.prediction import prediction_records, score_samples
from motiontransfer.models.base import check_predictor


class MovesRight(ActionClassifier):
    """Two actions: 'right' when the mean x of the last frame exceeds that of the first, else 'still'."""

    def __init__(self, num_keypoints: int = 3) -> None:
        super().__init__(ActionClassifierConfig(num_keypoints, ("still", "right")))

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        moved = sequences[:, -1, :, 0].mean(dim=1) - sequences[:, 0, :, 0].mean(dim=1)
        return torch.stack([-moved, moved], dim=1)


def test_scores_of_hand_made_sequences() -> None:
    truth = np.zeros((4, 3, 2))
    truth[:, :, 0] = np.arange(4)[:, None]  # moves right by 1 px per frame
    near = truth + np.array([0.0, 3.0])  # the same motion 3 px lower
    still = np.zeros((4, 3, 2))
    scores = score_samples(np.stack([near, still]), truth, action=1, classifier=MovesRight())
    assert scores["action_accuracy"] == 0.5
    assert scores["error_best"] == pytest.approx(1.5)  # still: mean |(0, 0) - (t, 0)| over t = 0..3
    assert scores["error_mean"] == pytest.approx((3.0 + 1.5) / 2)
    # diversity: pairwise distance between the two samples, mean over frames: |(t, 3)| averaged
    assert scores["diversity"] == pytest.approx(np.mean([np.hypot(t, 3) for t in range(4)]))
    assert np.isnan(score_samples(near[None], truth, 1, MovesRight())["diversity"])


class StillPredictor:
    """An image-to-video stand-in: repeats the source frame."""

    size = 32

    def predict_video(self, source: torch.Tensor, num_frames: int, action: str | None = None,
                      seed: int = 0) -> torch.Tensor:
        return source[None].repeat(num_frames, 1, 1, 1)


class BrightnessKeypoints:
    """A stand-in evaluator: 15 keypoints (the puppets') whose x is the frame's mean brightness times 20."""

    name = "brightness"

    def detect(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        x = frames.mean(dim=(1, 2, 3)).numpy() * 20
        points = np.stack([np.stack([x, np.full_like(x, float(y))], -1) for y in range(15)], axis=1)
        return points, np.ones(points.shape[:2], dtype=bool)


def test_records_of_a_still_predictor_equal_the_still_reference() -> None:
    classifier = MovesRight()
    classifier.config = ActionClassifierConfig(15, ("wave", "squat", "jump", "walk", "arm_circles", "clap", "kick",
                                                   "side_bend", "jumping_jacks"))
    records = list(prediction_records(StillPredictor(), "procedural:puppets:videos=2,frames=4,size=32",
                                      BrightnessKeypoints(), classifier, samples=2, num_frames=4))
    assert len(records) == 2
    for record in records:
        assert record["diversity"] == 0.0  # a deterministic model
        assert record["error_mean"] == pytest.approx(record["still_error_mean"])
        assert record["action_accuracy"] == record["still_action_accuracy"]
        assert record["truth_error_mean"] >= 0


def test_models_without_video_generation_are_refused() -> None:
    with pytest.raises(UserError, match="image-to-video"):
        check_predictor(small_animator())
    with pytest.raises(UserError, match="procedural"):
        next(prediction_records(StillPredictor(), "/tmp/videos", BrightnessKeypoints(), MovesRight()))
    with pytest.raises(UserError, match="fewer than"):
        next(prediction_records(StillPredictor(), "procedural:puppets:frames=4", BrightnessKeypoints(),
                                MovesRight(), num_frames=8))
