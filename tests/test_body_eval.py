"""The mediapipe body evaluator: its conversion of mediapipe's output (checked against a stand-in module with the
same interface, so it runs without the optional extra), the missing-extra error, and its choice by the runner."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from motiontransfer.errors import UserError
from motiontransfer.evaluation.bodies import NUM_POSE_LANDMARKS, MediapipePoseEvaluator
from motiontransfer.evaluation.metrics import average_keypoint_distance, missing_keypoint_rate
from motiontransfer.evaluation.runner import default_evaluators


class FakePose:
    """mediapipe.solutions.pose.Pose's interface: landmarks at normalised positions that follow the brightest
    column of the image; visibility 0.9 for even landmarks and 0.2 for odd ones; no body in a black image."""

    created: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **options: Any) -> None:
        FakePose.created.append(options)

    def process(self, image: np.ndarray) -> SimpleNamespace:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        if image.max() == 0:
            return SimpleNamespace(pose_landmarks=None)
        width = image.shape[1]
        column = int(image.sum(axis=(0, 2)).argmax())
        marks = [SimpleNamespace(x=(column + 0.5) / width, y=(i + 1) / (NUM_POSE_LANDMARKS + 1),
                                 visibility=0.9 if i % 2 == 0 else 0.2) for i in range(NUM_POSE_LANDMARKS)]
        return SimpleNamespace(pose_landmarks=SimpleNamespace(landmark=marks))

    def close(self) -> None:
        pass


@pytest.fixture
def fake_mediapipe(monkeypatch: pytest.MonkeyPatch) -> None:
    FakePose.created = []
    monkeypatch.setitem(sys.modules, "mediapipe", SimpleNamespace(solutions=SimpleNamespace(
        pose=SimpleNamespace(Pose=FakePose))))


def bar_frame(column: int, size: int = 40) -> torch.Tensor:
    frame = torch.zeros(3, size, size)
    frame[:, :, column] = 1.0
    return frame


def test_landmarks_in_pixels_with_visibility_and_no_body(fake_mediapipe: None) -> None:
    evaluator = MediapipePoseEvaluator()
    assert FakePose.created == [{"static_image_mode": True, "model_complexity": 1, "min_detection_confidence": 0.5}]
    points, found = evaluator.detect(torch.stack([bar_frame(10), bar_frame(14), torch.zeros(3, 40, 40)]))
    assert points.shape == (3, NUM_POSE_LANDMARKS, 2) and found.shape == (3, NUM_POSE_LANDMARKS)
    np.testing.assert_allclose(points[0, :, 0], 10.5)
    np.testing.assert_allclose(points[0, 3, 1], 4 / 34 * 40)
    assert found[0, ::2].all() and not found[0, 1::2].any()
    assert np.isnan(points[2]).all() and not found[2].any()
    # a body moved by 4 px gives AKD 4; the black frame loses every landmark found in the target
    assert average_keypoint_distance(points[1:2], points[0:1], found[1:2], found[0:1]) == pytest.approx(4.0)
    assert missing_keypoint_rate(found[2][None], found[0][None]) == 1.0


def test_missing_mediapipe_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(UserError, match="body-eval"):
        MediapipePoseEvaluator()


def test_runner_chooses_the_body_evaluator(fake_mediapipe: None, tmp_path: Path) -> None:
    keypoints, identity, skipped = default_evaluators(tmp_path, ["l1", "akd", "mkr", "aed"], "body")
    assert isinstance(keypoints, MediapipePoseEvaluator) and identity is None
    assert skipped == {"aed": "there is no identity embedding for bodies"}
    with pytest.raises(UserError, match="unknown evaluator"):
        default_evaluators(tmp_path, ["akd"], "hands")
