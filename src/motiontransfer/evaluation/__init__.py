"""Evaluation: image and keypoint metrics, the papers' protocols, evaluators and the ``evaluate`` runner.

Heavier parts (protocols, runner, evaluator networks, dlib faces, learned metrics) are imported from their modules.
"""

from motiontransfer.evaluation.metrics import (
    MetricInputError,
    average_euclidean_distance,
    average_keypoint_distance,
    frechet_distance,
    l1_error,
    missing_keypoint_rate,
    psnr,
    ssim,
)

__all__ = [
    "MetricInputError",
    "average_euclidean_distance",
    "average_keypoint_distance",
    "frechet_distance",
    "l1_error",
    "missing_keypoint_rate",
    "psnr",
    "ssim",
]
