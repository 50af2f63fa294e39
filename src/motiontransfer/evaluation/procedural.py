"""Evaluator networks for the procedural sets: the "third-party" keypoint detector behind AKD / MKR and the
identity embedding behind AED, in the roles the papers give to pretrained detectors and face-recognition nets.

Both are trained with supervision from the procedural ground truth, on identities drawn with
:data:`EVALUATOR_SEED`, so they never see an identity that an animation model trains or is tested on (those
use the spec seeds 0, 1, ...). They are small, trained here on the CPU, and ship in the package
(:func:`bundled_evaluator`); ``benchmarks/evaluators.py`` trains them and reports their accuracy.

* :class:`KeypointRegressor`: an hourglass predicting one heatmap per ground-truth keypoint (coordinates by
  soft-argmax, as FOMM's detector) and one visibility logit per keypoint.
* :class:`IdentityEmbedder`: a convolutional encoder giving an L2-normalised embedding, trained as a cosine
  classifier over the training identities (normalised softmax), so that frames of one identity in different
  poses lie close together.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from motiontransfer.checkpoint import ModelFile, load_model_file, save_model_file
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.errors import UserError
from motiontransfer.nn.blocks import DownBlock2d, Hourglass, SameBlock2d
from motiontransfer.ops.coordinates import normalized_to_pixels, pixels_to_normalized
from motiontransfer.ops.heatmaps import soft_argmax

EVALUATOR_SEED = 90210
"""Spec seed of the evaluators' training and validation identities (disjoint from the animation data's seeds)."""

FAMILY_NAME = "evaluator"


# ----------------------------------------------------------------------------------------------------- networks


@dataclass(frozen=True)
class KeypointRegressorConfig:
    """Size of a :class:`KeypointRegressor`.

    Attributes:
        num_keypoints: K, the ground-truth keypoints of the family (faces 14, puppets 15).
        size: input frame side in pixels.
        block_expansion, num_blocks, max_features: hourglass width, depth and channel cap.
        temperature: soft-argmax temperature.
    """

    num_keypoints: int
    size: int = 64
    block_expansion: int = 32
    num_blocks: int = 4
    max_features: int = 256
    temperature: float = 0.1


class KeypointRegressor(nn.Module):
    """Supervised keypoint detector: (B, 3, S, S) frames in [0, 1] -> keypoints (B, K, 2) in [-1, 1] (x first) and
    visibility logits (B, K)."""

    def __init__(self, config: KeypointRegressorConfig) -> None:
        super().__init__()
        self.config = config
        self.hourglass = Hourglass(config.block_expansion, 3, config.num_blocks, config.max_features)
        self.heatmaps = nn.Conv2d(self.hourglass.out_filters, config.num_keypoints, kernel_size=7, padding=3)
        self.visibility = nn.Linear(self.hourglass.out_filters, config.num_keypoints)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) -> (keypoints (B, K, 2), visibility logits (B, K))."""
        features = self.hourglass(frames)
        probabilities, keypoints = soft_argmax(self.heatmaps(features), self.config.temperature)
        # Each keypoint's visibility is read from the features under its own heatmap.
        pooled = torch.einsum("bkhw,bchw->bkc", probabilities, features)
        logits = (pooled * self.visibility.weight[None]).sum(-1) + self.visibility.bias
        return keypoints, logits


@dataclass(frozen=True)
class IdentityEmbedderConfig:
    """Size of an :class:`IdentityEmbedder`.

    Attributes:
        size: input frame side; block_expansion, num_blocks, max_features: encoder width, depth and cap;
        embedding_dim: D.
    """

    size: int = 64
    block_expansion: int = 32
    num_blocks: int = 4
    max_features: int = 256
    embedding_dim: int = 64


class IdentityEmbedder(nn.Module):
    """(B, 3, S, S) frames in [0, 1] -> (B, D) L2-normalised identity embeddings."""

    def __init__(self, config: IdentityEmbedderConfig) -> None:
        super().__init__()
        self.config = config
        channels = [config.block_expansion * 2**i for i in range(config.num_blocks + 1)]
        channels = [min(c, config.max_features) for c in channels]
        self.first = SameBlock2d(3, channels[0], kernel_size=7, padding=3)
        self.down = nn.Sequential(*[DownBlock2d(channels[i], channels[i + 1]) for i in range(config.num_blocks)])
        self.project = nn.Linear(channels[-1], config.embedding_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, D) unit vectors."""
        features = self.down(self.first(frames)).mean(dim=(2, 3))
        return F.normalize(self.project(features), dim=1)


# --------------------------------------------------------------------------------------------------- data


def evaluator_source(family: str, split: str, size: int = 64, videos: int = 400, frames: int = 48,
                     clips_per_identity: int = 1) -> ProceduralSource:
    """The evaluators' own procedural data (seed :data:`EVALUATOR_SEED`)."""
    return ProceduralSource(ProceduralSpec(family, size=size, videos=videos, frames=frames, seed=EVALUATOR_SEED,
                                           clips_per_identity=clips_per_identity, split=split))  # type: ignore[arg-type]


def sample_frames(source: ProceduralSource, count: int, rng: np.random.Generator
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` random frames: images (N, 3, S, S), keypoints (N, K, 2) in [-1, 1], visibility (N, K) bool,
    identity indices (N,)."""
    images, points, visible, identities = [], [], [], []
    for _ in range(count):
        index = int(rng.integers(len(source)))
        rendered = source.frame(index, int(rng.integers(source.spec.frames)))
        images.append(rendered.tensor())
        points.append(torch.as_tensor(pixels_to_normalized(rendered.keypoints, source.size)))
        visible.append(torch.from_numpy(np.asarray(rendered.visibility, dtype=bool)))
        identities.append(source.video(index).identity_index)
    return torch.stack(images), torch.stack(points), torch.stack(visible), torch.tensor(identities)


# ----------------------------------------------------------------------------------------------- training


@dataclass
class TrainLog:
    """Losses of a training run: ``losses[i]`` is the mean loss of log interval i."""

    losses: list[float]


def _batches(source: ProceduralSource, steps: int, batch_size: int, seed: int
             ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield sample_frames(source, batch_size, rng)


def train_keypoint_regressor(family: str, steps: int = 1500, batch_size: int = 16, lr: float = 1e-3, seed: int = 0,
                             config: KeypointRegressorConfig | None = None, progress: Any = None,
                             log_every: int = 50) -> tuple[KeypointRegressor, TrainLog]:
    """Train a :class:`KeypointRegressor` on the evaluator identities of ``family``.

    Loss: L1 between predicted and ground-truth coordinates (all keypoints: hidden ones have a defined position)
    plus the binary cross-entropy of the visibility logits.

    Args:
        config: network size (default: :class:`KeypointRegressorConfig` at 64 px with the family's K).

    Returns:
        The network (eval mode) and the loss log (one mean per ``log_every`` steps).
    """
    size = config.size if config is not None else 64
    source = evaluator_source(family, "train", size=size)
    config = config or KeypointRegressorConfig(num_keypoints=len(source.keypoint_names), size=size)
    if config.num_keypoints != len(source.keypoint_names):
        raise UserError(f"{family} has {len(source.keypoint_names)} keypoints, the config says {config.num_keypoints}")
    torch.manual_seed(seed)
    model = KeypointRegressor(config)
    batches = _batches(source, steps, batch_size, seed)
    return model, _fit(model, batches, lr, steps, _keypoint_loss, progress, log_every=log_every)


def _keypoint_loss(model: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    images, points, visible, _ = batch
    predicted, logits = model(images)
    return (predicted - points).abs().mean() + F.binary_cross_entropy_with_logits(logits, visible.float())


def train_identity_embedder(family: str, steps: int = 1500, batch_size: int = 32, identities: int = 200,
                            clips_per_identity: int = 4, lr: float = 1e-3, seed: int = 0,
                            config: IdentityEmbedderConfig | None = None, progress: Any = None,
                            log_every: int = 50) -> tuple[IdentityEmbedder, TrainLog]:
    """Train an :class:`IdentityEmbedder` on ``identities`` evaluator identities of ``family``, each seen in
    ``clips_per_identity`` clips (different motions), as a cosine classifier with scale 16 (normalised softmax).

    Returns:
        The network (eval mode, without the classifier) and the loss log (one mean per ``log_every`` steps).
    """
    config = config or IdentityEmbedderConfig()
    source = evaluator_source(family, "train", size=config.size, videos=identities * clips_per_identity,
                              clips_per_identity=clips_per_identity)
    torch.manual_seed(seed)
    model = IdentityEmbedder(config)
    classifier = nn.Parameter(torch.randn(identities, model.config.embedding_dim) * 0.1)

    def loss_fn(network: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        images, _, _, labels = batch
        cosines = network(images) @ F.normalize(classifier, dim=1).t()
        return F.cross_entropy(16.0 * cosines, labels)

    batches = _batches(source, steps, batch_size, seed)
    return model, _fit(model, batches, lr, steps, loss_fn, progress, extra=[classifier], log_every=log_every)


def _fit(model: nn.Module, batches: Iterator[tuple[torch.Tensor, ...]], lr: float, steps: int, loss_fn: Any,
         progress: Any, extra: list[nn.Parameter] | None = None, log_every: int = 50) -> TrainLog:
    """Adam with a cosine learning-rate decay over ``steps``; returns the loss log (means over ``log_every``)."""
    optimizer = torch.optim.Adam([*model.parameters(), *(extra or [])], lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    model.train()
    losses, window = [], []
    for batch in progress(batches, steps) if progress is not None else batches:
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        window.append(float(loss.detach()))
        if len(window) == log_every:
            losses.append(float(np.mean(window)))
            window = []
    model.eval()
    return TrainLog(losses)


# ----------------------------------------------------------------------------------------------- accuracy


@torch.no_grad()
def keypoint_accuracy(model: KeypointRegressor, family: str, frames: int = 512, seed: int = 1) -> dict[str, float]:
    """Accuracy on held-out evaluator identities (the test split): mean pixel error over visible keypoints and
    visibility accuracy."""
    source = evaluator_source(family, "test", size=model.config.size)
    images, points, visible, _ = sample_frames(source, frames, np.random.default_rng(seed))
    predicted, logits = model(images)
    size = model.config.size
    error = (normalized_to_pixels(predicted, size) - normalized_to_pixels(points, size)).norm(dim=-1)
    return {"pixel_error": float(error[visible].mean()),
            "pixel_error_median": float(error[visible].median()),
            "visibility_accuracy": float(((logits > 0) == visible).float().mean()),
            "frames": frames}


@torch.no_grad()
def verification_accuracy(model: IdentityEmbedder, family: str, identities: int = 100, pairs: int = 2000,
                          seed: int = 1) -> dict[str, float]:
    """Face-verification-style accuracy on held-out identities: pairs of frames (half same identity in another
    clip and pose, half different identities); the threshold is fitted on the first half of the pairs and the
    accuracy reported on the second half."""
    source = evaluator_source(family, "test", size=model.config.size, videos=identities * 2, clips_per_identity=2)
    rng = np.random.default_rng(seed)
    same = rng.random(pairs) < 0.5
    first_ids = rng.integers(identities, size=pairs)
    other = (first_ids + rng.integers(1, identities, size=pairs)) % identities
    second_ids = np.where(same, first_ids, other)

    def embed(identity: np.ndarray, clip: int) -> torch.Tensor:
        images = [source.frame(int(i) * 2 + clip, int(rng.integers(source.spec.frames))).tensor()
                  for i in identity]
        return torch.cat([model(torch.stack(images[k:k + 64])) for k in range(0, len(images), 64)])

    distance = (embed(first_ids, 0) - embed(second_ids, 1)).norm(dim=1).numpy()
    half = pairs // 2
    candidates = np.sort(distance[:half])
    accuracies = [((distance[:half] < t) == same[:half]).mean() for t in candidates]
    threshold = float(candidates[int(np.argmax(accuracies))])
    return {"accuracy": float(((distance[half:] < threshold) == same[half:]).mean()), "threshold": threshold,
            "same_distance": float(distance[same].mean()), "different_distance": float(distance[~same].mean()),
            "pairs": pairs}


# ----------------------------------------------------------------------------------------------- files


def save_evaluator(path: str | Path, model: KeypointRegressor | IdentityEmbedder, family: str,
                   accuracy: dict[str, float]) -> Path:
    """Write an evaluator as a float16 model file with its config, data family and measured accuracy."""
    kind = "keypoints" if isinstance(model, KeypointRegressor) else "identity"
    metadata = {"config": asdict(model.config), "kind": kind, "data_family": family, "accuracy": accuracy,
                "seed": EVALUATOR_SEED}
    return save_model_file(path, ModelFile(FAMILY_NAME, {kind: model.state_dict()}, metadata),
                           float_dtype=torch.float16)


def load_evaluator(path: str | Path) -> KeypointRegressor | IdentityEmbedder:
    """Read a file written by :func:`save_evaluator` (eval mode, float32, CPU)."""
    model_file = load_model_file(path)
    kind = model_file.metadata.get("kind")
    if model_file.family != FAMILY_NAME or kind not in ("keypoints", "identity"):
        raise UserError(f"{path} is not a procedural evaluator file")
    if kind == "keypoints":
        model: nn.Module = KeypointRegressor(KeypointRegressorConfig(**model_file.metadata["config"]))
    else:
        model = IdentityEmbedder(IdentityEmbedderConfig(**model_file.metadata["config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in model_file.networks[kind].items()})
    return model.eval()  # type: ignore[return-value]
