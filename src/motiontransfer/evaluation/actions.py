"""The ``prediction`` protocol's tools: an action classifier over keypoint sequences (as Kim et al. Table 2 score
generated sequences by the accuracy of a classifier trained on real ones), diversity across samples, and the
error against ground-truth sequences.

Keypoint sequences are (T, K, 2) pixel coordinates. Before classification each sequence is normalised
(:func:`normalize_sequence`): centred on the first frame's mean keypoint and divided by the first frame's spread,
so that the classifier sees motion, not position or body size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.checkpoint import ModelFile, load_model_file, save_model_file
from motiontransfer.errors import UserError
from motiontransfer.evaluation.procedural import EVALUATOR_SEED, evaluator_source

CLASSIFIER_FAMILY = "action-classifier"


def normalize_sequence(sequence: np.ndarray | torch.Tensor) -> torch.Tensor:
    """(T, K, 2) or (B, T, K, 2) pixel keypoints -> the same shape, centred on the first frame's centroid and
    divided by its RMS distance to that centroid."""
    points = torch.as_tensor(np.asarray(sequence) if not isinstance(sequence, torch.Tensor) else sequence).float()
    single = points.dim() == 3
    if single:
        points = points[None]
    centre = points[:, :1].mean(dim=2, keepdim=True)
    spread = ((points[:, :1] - centre) ** 2).sum(-1).mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-6)
    normalized = (points - centre) / spread[..., None]
    return normalized[0] if single else normalized


@dataclass(frozen=True)
class ActionClassifierConfig:
    """num_keypoints K, num_actions, hidden GRU width, and the action names (in logit order)."""

    num_keypoints: int
    action_names: tuple[str, ...]
    hidden: int = 128


class ActionClassifier(nn.Module):
    """GRU over normalised keypoint sequences: (B, T, K, 2) pixels -> (B, num_actions) logits."""

    def __init__(self, config: ActionClassifierConfig) -> None:
        super().__init__()
        self.config = config
        self.gru = nn.GRU(2 * config.num_keypoints, config.hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(config.hidden, len(config.action_names))

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """(B, T, K, 2) pixel keypoints -> (B, A) logits."""
        normalized = normalize_sequence(sequences)
        outputs, _ = self.gru(normalized.flatten(2))
        return self.head(outputs.mean(dim=1))


def ground_truth_sequences(family: str, split: str, videos: int, frames: int, size: int = 64
                           ) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """GT keypoint sequences of evaluator videos: (N, T, K, 2) pixels, (N,) action indices, action names."""
    source = evaluator_source(family, split, size=size, videos=videos, frames=frames)
    names = tuple(source.family.action_names)
    sequences = [np.stack([f.keypoints for f in source.frames(i)]) for i in range(len(source))]
    labels = [names.index(source.video(i).action) for i in range(len(source))]
    return torch.from_numpy(np.stack(sequences)).float(), torch.tensor(labels), names


def train_action_classifier(family: str = "puppets", videos: int = 900, frames: int = 32, epochs: int = 30,
                            lr: float = 2e-3, seed: int = 0) -> tuple[ActionClassifier, list[float]]:
    """Train an :class:`ActionClassifier` on GT sequences of ``videos`` evaluator videos; returns it (eval mode)
    and the per-epoch mean losses."""
    sequences, labels, names = ground_truth_sequences(family, "train", videos, frames)
    torch.manual_seed(seed)
    model = ActionClassifier(ActionClassifierConfig(sequences.shape[2], names))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        epoch_losses = []
        for start in range(0, len(order), 32):
            batch = order[start:start + 32]
            loss = F.cross_entropy(model(sequences[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
        losses.append(float(np.mean(epoch_losses)))
    return model.eval(), losses


@torch.no_grad()
def classification_accuracy(model: ActionClassifier, sequences: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of (N, T, K, 2) sequences whose predicted action equals ``labels`` (N,)."""
    return float((model(sequences).argmax(dim=1) == labels).float().mean())


def sample_diversity(samples: np.ndarray | torch.Tensor) -> float:
    """Mean pairwise distance between S sampled futures of one input: ``samples`` (S, T, K, 2); the mean over
    sample pairs, frames and keypoints of the Euclidean distance (pixels). 0 for identical samples."""
    points = torch.as_tensor(np.asarray(samples) if not isinstance(samples, torch.Tensor) else samples).float()
    if points.shape[0] < 2:
        raise UserError("diversity needs at least two samples")
    distances = (points[:, None] - points[None]).norm(dim=-1).mean(dim=(2, 3))
    count = points.shape[0]
    return float(distances.sum() / (count * (count - 1)))


def sequence_error(prediction: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor) -> float:
    """Mean Euclidean keypoint distance (pixels) between (T, K, 2) predicted and ground-truth sequences."""
    a, b = (torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
            for x in (prediction, truth))
    if a.shape != b.shape:
        raise ValueError(f"sequence shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    return float((a - b).norm(dim=-1).mean())


def save_action_classifier(path: str | Path, model: ActionClassifier, family: str, accuracy: float) -> Path:
    """Write the classifier (float16) with its config, data family and held-out accuracy."""
    metadata = {"config": {**asdict(model.config), "action_names": list(model.config.action_names)},
                "data_family": family, "accuracy": accuracy, "seed": EVALUATOR_SEED}
    return save_model_file(path, ModelFile(CLASSIFIER_FAMILY, {"classifier": model.state_dict()}, metadata),
                           float_dtype=torch.float16)


def load_action_classifier(path: str | Path) -> ActionClassifier:
    """Read a file written by :func:`save_action_classifier` (eval mode, float32)."""
    model_file = load_model_file(path)
    if model_file.family != CLASSIFIER_FAMILY:
        raise UserError(f"{path} is not an action classifier file")
    config = model_file.metadata["config"]
    model = ActionClassifier(ActionClassifierConfig(config["num_keypoints"], tuple(config["action_names"]),
                                                    config["hidden"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in model_file.networks["classifier"].items()})
    return model.eval()
