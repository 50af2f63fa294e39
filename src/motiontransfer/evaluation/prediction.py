"""The ``prediction`` protocol, for image-to-video models (Monkey-Net's keypoint predictor, KPVP): from the first
frame of a procedural test video (and its action, for class-conditional models) the model generates S futures of
T frames; each generated frame goes through the family's keypoint evaluator (the same regressor as AKD), and the
resulting keypoint sequences are scored:

* ``action_accuracy``: the fraction of generated sequences that the action classifier (trained on ground-truth
  sequences of the procedural actions, :mod:`motiontransfer.evaluation.actions`) assigns to the requested action,
  as Kim et al. Table 2;
* ``diversity``: the mean pairwise distance between the S futures of one input (pixels), 0 for a deterministic
  model;
* ``error_best`` / ``error_mean``: the distance (pixels) of the best / the average sample to the ground-truth
  sequence of the test video, meaningful for deterministic predictors of a known continuation.

The same scores of the ground truth itself (its frames through the evaluator) and of a still video (the first frame
repeated) bracket the model's: a good predictor approaches the first and clearly beats the second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.data.synthetic.source import is_procedural
from motiontransfer.errors import UserError
from motiontransfer.evaluation.actions import ActionClassifier, sample_diversity, sequence_error
from motiontransfer.evaluation.protocols import KeypointEvaluator
from motiontransfer.models.base import VideoPredictor

PREDICTION_METRICS = ("action_accuracy", "diversity", "error_best", "error_mean")


def _sequence(evaluator: KeypointEvaluator, frames: torch.Tensor, batch_size: int) -> np.ndarray:
    """(T, 3, H, W) frames -> (T, K, 2) evaluator keypoints (pixels)."""
    return np.concatenate([evaluator.detect(frames[i:i + batch_size])[0] for i in range(0, len(frames), batch_size)])


def score_samples(samples: np.ndarray, truth: np.ndarray, action: int, classifier: ActionClassifier
                  ) -> dict[str, float]:
    """Scores of S generated keypoint sequences of one input.

    Args:
        samples: (S, T, K, 2) generated sequences (pixels).
        truth: (T, K, 2) ground-truth sequence of the same input.
        action: index of the requested action in ``classifier.config.action_names``.
        classifier: the action classifier.

    Returns:
        ``action_accuracy``, ``diversity`` (NaN for one sample), ``error_best``, ``error_mean``.
    """
    points = torch.as_tensor(samples, dtype=torch.float32)
    with torch.no_grad():
        predicted = classifier(points).argmax(dim=1)
    errors = [sequence_error(sample, truth) for sample in points]
    return {"action_accuracy": float((predicted == action).float().mean()),
            "diversity": sample_diversity(points) if len(points) > 1 else float("nan"),
            "error_best": float(min(errors)), "error_mean": float(np.mean(errors))}


def prediction_records(model: VideoPredictor, data: str, keypoints: KeypointEvaluator, classifier: ActionClassifier,
                       *, samples: int = 4, num_frames: int = 32, num_videos: int | None = None,
                       batch_size: int = 16, progress: Callable[[Iterable[Any], int | None], Iterable[Any]] | None
                       = None) -> Iterator[dict[str, float | str]]:
    """Per-test-video records of the prediction protocol on procedural ``data``: the model's scores and, prefixed
    ``truth_`` and ``still_``, those of the ground-truth video and of the still first frame.

    Raises:
        UserError: data that is not procedural (no actions or ground truth), or fewer than ``num_frames`` frames.
    """
    if not is_procedural(data):
        raise UserError(f"the prediction protocol needs procedural data with actions (procedural:puppets, ...), "
                        f"not {data}")
    spec = ProceduralSpec.test_split(str(data), model.size)
    if spec.frames < num_frames:
        raise UserError(f"the test videos have {spec.frames} frames, fewer than the {num_frames} to predict")
    source_data = ProceduralSource(spec)
    names = tuple(classifier.config.action_names)
    count = len(source_data) if num_videos is None else min(num_videos, len(source_data))
    indices: Iterable[int] = range(count)
    if progress is not None:
        indices = progress(indices, count)
    for index in indices:
        video = source_data.video(index)
        if video.action not in names:
            raise UserError(f"the classifier does not know the action {video.action!r} of {video.name}")
        action = names.index(video.action)
        rendered = [frame for _, frame in zip(range(num_frames), source_data.frames(index), strict=False)]
        truth_points = np.stack([frame.keypoints for frame in rendered])
        truth_frames = torch.stack([frame.tensor() for frame in rendered])
        generated = np.stack([_sequence(keypoints, model.predict_video(truth_frames[0], num_frames, video.action,
                                                                       seed=seed), batch_size)
                              for seed in range(samples)])
        record: dict[str, float | str] = {"video": video.name, "action": video.action}
        record.update(score_samples(generated, truth_points, action, classifier))
        truth_detected = _sequence(keypoints, truth_frames, batch_size)[None]
        still = np.repeat(truth_detected[:, :1], num_frames, axis=1)
        for prefix, sequence in (("truth_", truth_detected), ("still_", still)):
            scores = score_samples(sequence, truth_points, action, classifier)
            record.update({prefix + key: value for key, value in scores.items() if key != "diversity"})
        yield record
