"""Training Monkey-Net's image-to-video keypoint predictor (Sec. 4.4; the official ``prediction.py``).

1. :func:`~motiontransfer.inference.sequences.keypoint_sequences`: the trained detector's keypoints on every frame
   of the training videos (streamed, in batches; the detector is frozen);
2. :func:`train_keypoint_predictor`: each epoch draws one window of ``num_frames`` consecutive frames per video; the
   GRU sees the first ``init_frames`` frames' keypoints and zeros after them and is trained with the L1 between its
   outputs and the detected keypoints (means, and covariances when the model has them) on the unobserved frames.
   Adam with ``lr``; ReduceLROnPlateau (patience 50) on the epoch's mean loss, as the official code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motiontransfer.errors import ArgumentError, Term, UserError
from motiontransfer.families.monkeynet.animator import MonkeyNetAnimator, build_keypoint_predictor
from motiontransfer.families.monkeynet.networks import KeypointPredictor
from motiontransfer.inference.sequences import keypoint_sequences
from motiontransfer.models.motion import GaussianKeypoints


@dataclass
class PredictorTraining:
    """The result of :func:`train_keypoint_predictor`: the trained ``predictor`` (eval mode) and the mean loss of
    every epoch."""

    predictor: KeypointPredictor
    losses: list[float] = field(default_factory=list)


def _windows(sequences: list[GaussianKeypoints], num_frames: int, full_covariance: bool,
             rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One random window of ``num_frames`` consecutive frames per sequence: means (N, T, K, 2), covariances
    (N, T, K, 2, 2) or None."""
    starts = [int(rng.integers(0, s.batch_size - num_frames + 1)) for s in sequences]
    mean = torch.stack([s.mean[start:start + num_frames] for s, start in zip(sequences, starts, strict=True)])
    if not full_covariance:
        return mean, None
    var = torch.stack([s.var[start:start + num_frames]  # type: ignore[index]
                       for s, start in zip(sequences, starts, strict=True)])
    return mean, var


def predictor_loss(predictor: KeypointPredictor, mean: torch.Tensor, var: torch.Tensor | None,
                   init_frames: int) -> torch.Tensor:
    """The official objective on a batch of windows: the GRU gets the first ``init_frames`` frames (zeros after)
    and is scored by the L1 of its means (plus that of its covariances, when it predicts them) on the others."""
    observed_mean = mean.clone()
    observed_mean[:, init_frames:] = 0
    observed_var = None
    if var is not None:
        observed_var = var.clone()
        observed_var[:, init_frames:] = 0
    out = predictor(observed_mean, observed_var)
    loss = (out["mean"][:, init_frames:] - mean[:, init_frames:]).abs().mean()
    if var is not None:
        loss = loss + (out["var"][:, init_frames:] - var[:, init_frames:]).abs().mean()
    return loss


def train_keypoint_predictor(model: MonkeyNetAnimator, sequences: list[GaussianKeypoints], *,
                             epochs: int | None = None, seed: int = 0, progress: bool = True) -> PredictorTraining:
    """Train the predictor of ``model.experiment.prediction_params`` on detected keypoint sequences.

    Args:
        model: the Monkey-Net model whose keypoints the sequences are (its config sizes the predictor).
        sequences: from :func:`keypoint_sequences`; each at least ``num_frames`` frames long.
        epochs: overrides ``prediction_params.num_epochs``.
        seed: fixes the initialisation and the windows.
        progress: show a progress bar with the loss (stderr).

    Returns:
        :class:`PredictorTraining`; the predictor is on the model's device.

    Raises:
        UserError: no sequences, or one shorter than ``num_frames``.
    """
    params = model.experiment.prediction_params
    epochs = params.num_epochs if epochs is None else epochs
    if not sequences:
        raise UserError("no keypoint sequences to train the predictor on")
    shortest = min(s.batch_size for s in sequences)
    if shortest < params.num_frames:
        raise UserError(f"the training videos need at least prediction_params.num_frames = {params.num_frames} "
                        f"frames; the shortest has {shortest}")
    if not 0 < params.init_frames < params.num_frames:
        raise UserError(f"prediction_params.init_frames must be between 1 and num_frames - 1, "
                        f"got {params.init_frames}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        predictor = build_keypoint_predictor(model.experiment).to(model.device)
    full_covariance = predictor.with_covariance
    optimizer = torch.optim.Adam(predictor.parameters(), lr=params.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=50)
    rng = np.random.default_rng(seed)
    result = PredictorTraining(predictor)
    bar = tqdm(range(epochs), desc="predictor", unit="epoch", disable=not progress, leave=False)
    predictor.train()
    for _ in bar:
        mean, var = _windows(sequences, params.num_frames, full_covariance, rng)
        order = torch.from_numpy(rng.permutation(len(mean)))
        epoch_losses = []
        for start in range(0, len(order), params.batch_size):
            index = order[start:start + params.batch_size]
            batch_var = None if var is None else var[index].to(model.device)
            loss = predictor_loss(predictor, mean[index].to(model.device), batch_var, params.init_frames)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
        result.losses.append(float(np.mean(epoch_losses)))
        scheduler.step(result.losses[-1])
        bar.set_postfix(loss=f"{result.losses[-1]:.4g}")
    predictor.eval()
    return result


def fit_keypoint_predictor(model: MonkeyNetAnimator, data: str | Path | None = None, *,
                           num_videos: int | None = None, epochs: int | None = None, seed: int = 0,
                           progress: bool = True) -> tuple[int, PredictorTraining]:
    """Give ``model`` a keypoint predictor trained on the keypoints its detector finds in the training videos of
    ``data`` (default: the config's ``dataset_params.root_dir``):
    :func:`~motiontransfer.inference.sequences.keypoint_sequences`, then
    :func:`train_keypoint_predictor`; the predictor is set as ``model.predictor``.

    Returns:
        (number of videos used, the training result).

    Raises:
        UserError: no data given or configured, or videos too short (see :func:`train_keypoint_predictor`).
    """
    data = data or model.experiment.dataset_params.root_dir
    if data is None:
        raise ArgumentError("no training data: give ", Term("data"), " (a dataset folder or procedural:FAMILY) or set "
                            "dataset_params.root_dir")
    sequences = keypoint_sequences(model, data, num_videos=num_videos, progress=progress)
    result = train_keypoint_predictor(model, sequences, epochs=epochs, seed=seed, progress=progress)
    model.predictor = result.predictor
    return len(sequences), result
