"""Helpers shared by the procedural-family tests."""

from __future__ import annotations

import numpy as np


def nearest_centroid_predictions(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                                 num_classes: int) -> np.ndarray:
    """Standardise features on the training set, then label each test row with the nearest class centroid."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    centroids = np.stack([((train_x - mean) / std)[train_y == a].mean(0) for a in range(num_classes)])
    return ((((test_x - mean) / std)[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
