"""Real-body evaluator for AKD and MKR: mediapipe Pose's 33 body landmarks.

Needs the optional ``body-eval`` extra (``pip install -e ".[body-eval]"``: mediapipe 0.10.21, whose wheel carries
the pose models, so nothing is downloaded). It plays the role of the pretrained pose estimator the papers use on
body datasets (FOMM used OpenPose on TaiChi): keypoints of the generated and of the ground-truth frame are compared
(AKD), and a landmark counts as missing (MKR) where mediapipe's visibility is below a threshold, or where no body
is found at all. Frames are processed independently (static image mode), like every frame of an evaluation.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import torch

from motiontransfer.errors import UserError
from motiontransfer.video.io import to_uint8_hwc

NUM_POSE_LANDMARKS = 33
DEFAULT_VISIBILITY_THRESHOLD = 0.5


def _import_mediapipe() -> Any:
    try:
        return importlib.import_module("mediapipe")
    except ImportError as exc:
        raise UserError(f"the body evaluator needs mediapipe ({exc}); pip install -e \".[body-eval]\"") from exc


class MediapipePoseEvaluator:
    """mediapipe Pose landmarks as a ``KeypointEvaluator`` (see :mod:`motiontransfer.evaluation.protocols`).

    Args:
        model_complexity: mediapipe's pose model (0 lite, 1 full, 2 heavy; 2 is not in the wheel). Default 1.
        min_detection_confidence: mediapipe's person detection threshold.
        visibility_threshold: a landmark counts as found when its visibility exceeds this.

    Raises:
        UserError: mediapipe is not installed.
    """

    name = "mediapipe pose (33 landmarks)"

    def __init__(self, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 visibility_threshold: float = DEFAULT_VISIBILITY_THRESHOLD) -> None:
        mediapipe = _import_mediapipe()
        self.visibility_threshold = visibility_threshold
        self.pose = mediapipe.solutions.pose.Pose(static_image_mode=True, model_complexity=model_complexity,
                                                  min_detection_confidence=min_detection_confidence)

    def landmarks(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One (H, W, 3) uint8 RGB image -> ((33, 2) pixel coordinates, (33,) found); NaN and False when no
        body is found."""
        height, width = image.shape[:2]
        result = self.pose.process(np.ascontiguousarray(image))
        if result.pose_landmarks is None:
            return np.full((NUM_POSE_LANDMARKS, 2), np.nan), np.zeros(NUM_POSE_LANDMARKS, dtype=bool)
        marks = result.pose_landmarks.landmark
        points = np.array([[mark.x * width, mark.y * height] for mark in marks], dtype=np.float64)
        found = np.array([mark.visibility > self.visibility_threshold for mark in marks], dtype=bool)
        return points, found

    def detect(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, H, W) frames in [0, 1] -> ((B, 33, 2) pixel coordinates, (B, 33) found)."""
        results = [self.landmarks(to_uint8_hwc(frame)) for frame in frames]
        return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])

    def close(self) -> None:
        """Release mediapipe's graph."""
        self.pose.close()
