"""Prediction-protocol tools: sequence normalisation, diversity and error by hand, a classifier that learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from motiontransfer.errors import UserError
from motiontransfer.evaluation.actions import (
    ActionClassifier,
    ActionClassifierConfig,
    classification_accuracy,
    ground_truth_sequences,
    load_action_classifier,
    normalize_sequence,
    sample_diversity,
    save_action_classifier,
    sequence_error,
    train_action_classifier,
)


def test_normalisation_removes_position_and_scale() -> None:
    rng = np.random.default_rng(0)
    sequence = rng.normal(size=(5, 4, 2))
    moved = sequence * 3.0 + np.array([10.0, -4.0])
    assert torch.allclose(normalize_sequence(sequence), normalize_sequence(moved), atol=1e-5)
    first = normalize_sequence(sequence)[0]
    assert torch.allclose(first.mean(0), torch.zeros(2), atol=1e-5)
    assert float((first**2).sum(-1).mean()) == pytest.approx(1.0, abs=1e-5)


def test_diversity_and_error_by_hand() -> None:
    a = np.zeros((3, 2, 2))
    b = a.copy()
    b[..., 0] += 3.0
    b[..., 1] += 4.0  # every keypoint 5 px away
    assert sample_diversity(np.stack([a, a])) == 0.0
    assert sample_diversity(np.stack([a, b])) == pytest.approx(5.0)
    assert sample_diversity(np.stack([a, b, b])) == pytest.approx(5.0 * 4 / 6)
    assert sequence_error(a, b) == pytest.approx(5.0)
    with pytest.raises(UserError):
        sample_diversity(a[None])


@pytest.mark.slow
def test_classifier_learns_puppet_actions(tmp_path: Path) -> None:
    model, losses = train_action_classifier("puppets", videos=90, frames=16, epochs=12, lr=3e-3)
    assert losses[-1] < 0.7 * losses[0]
    sequences, labels, names = ground_truth_sequences("puppets", "train", 90, 16)
    assert sequences.shape == (90, 16, 15, 2)
    assert classification_accuracy(model, sequences, labels) > 1.5 / len(names)
    loaded = load_action_classifier(save_action_classifier(tmp_path / "c.mt", model, "puppets", 0.5))
    assert torch.allclose(loaded(sequences[:4]), model(sequences[:4]), atol=5e-2)


def test_classifier_shapes() -> None:
    model = ActionClassifier(ActionClassifierConfig(15, ("a", "b", "c")))
    assert model(torch.rand(2, 7, 15, 2) * 64).shape == (2, 3)
