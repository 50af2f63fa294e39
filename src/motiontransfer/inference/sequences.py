"""The keypoints a trained model finds on every frame of a dataset split: the training data of the motion
predictors that learn from detected keypoints (Monkey-Net's keypoint predictor, KPVP's pseudo-labels)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from motiontransfer.data.splits import SplitVideo, split_videos
from motiontransfer.inference.pipeline import stack_batches
from motiontransfer.models.base import AnimationModel
from motiontransfer.models.motion import GaussianKeypoints


def keypoint_sequences(model: AnimationModel, data: str | Path, *, num_videos: int | None = None,
                       batch_size: int = 16, progress: bool = True) -> list[Any]:
    """The detector's keypoints on every frame of the training videos of ``data``.

    Args:
        model: a trained model (used in eval mode).
        data: a dataset folder (its train split) or a ``procedural:`` spec (its train split at the model's size).
        num_videos: only the first N videos.
        batch_size: frames per detector call.
        progress: show a progress bar over the videos (stderr).

    Returns:
        One motion of batch T (the video's frames, as :class:`~motiontransfer.models.motion.GaussianKeypoints`)
        per video, on the CPU.
    """
    return detect_sequences(model, split_videos(data, model.size, "train", num_videos), batch_size=batch_size,
                            progress=progress)


def detect_sequences(model: AnimationModel, videos: Sequence[SplitVideo], *, batch_size: int = 16,
                     progress: bool = True) -> list[Any]:
    """:func:`keypoint_sequences` of given videos: ``model.extract_motion`` of every frame, streamed in batches,
    concatenated per video on the CPU (the motion must have ``mean`` and optional ``var`` tensors)."""
    sequences = []
    model.eval()
    with torch.no_grad():
        for video in tqdm(videos, desc="keypoints", unit="video", disable=not progress, leave=False):
            parts = [model.extract_motion(batch.to(model.device))
                     for batch in stack_batches(video.frames(), batch_size)]
            mean = torch.cat([part.mean for part in parts]).cpu()
            var = None if parts[0].var is None else torch.cat([part.var for part in parts]).cpu()
            sequences.append(GaussianKeypoints(mean, var))
    return sequences
