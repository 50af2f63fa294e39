"""The procedural evaluator networks: coordinates, shapes, a short run learns, files round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.errors import UserError
from motiontransfer.evaluation.procedural import (
    EVALUATOR_SEED,
    IdentityEmbedder,
    IdentityEmbedderConfig,
    KeypointRegressor,
    KeypointRegressorConfig,
    evaluator_source,
    keypoint_accuracy,
    load_evaluator,
    save_evaluator,
    train_identity_embedder,
    train_keypoint_regressor,
    verification_accuracy,
)
from motiontransfer.ops.coordinates import normalized_to_pixels, pixels_to_normalized

TINY_KP = KeypointRegressorConfig(num_keypoints=14, size=32, block_expansion=8, num_blocks=3, max_features=32)
TINY_ID = IdentityEmbedderConfig(size=32, block_expansion=8, num_blocks=3, max_features=32, embedding_dim=16)


def test_pixel_centres_map_to_the_grid_ends() -> None:
    points = pixels_to_normalized(torch.tensor([[0.0, 0.0], [31.0, 15.5]]), 32)
    assert torch.allclose(points, torch.tensor([[-1.0, -1.0], [1.0, 0.0]]))
    assert torch.allclose(normalized_to_pixels(points, 32), torch.tensor([[0.0, 0.0], [31.0, 15.5]]))
    assert np.allclose(normalized_to_pixels(np.array([[-1.0, -1.0], [1.0, 0.0]]), 16, 32), [[0.0, 0.0], [31.0, 7.5]])
    assert normalized_to_pixels([[0.0, 0.0]], 32).dtype == np.float32


def test_evaluator_identities_are_deterministic_and_not_the_animation_data() -> None:
    ours = evaluator_source("faces", "train", size=32, videos=2)
    again = evaluator_source("faces", "train", size=32, videos=2)
    animation = ProceduralSource(ProceduralSpec("faces", size=32, videos=2, seed=0))
    assert ours.spec.seed == EVALUATOR_SEED != 0
    assert np.array_equal(ours.frame(0, 0).image, again.frame(0, 0).image)
    assert ours.video(0).identity != animation.video(0).identity


def test_shapes_and_ranges() -> None:
    keypoints, logits = KeypointRegressor(TINY_KP)(torch.rand(3, 3, 32, 32))
    assert keypoints.shape == (3, 14, 2) and logits.shape == (3, 14)
    assert keypoints.abs().max() <= 1.0
    embeddings = IdentityEmbedder(TINY_ID)(torch.rand(3, 3, 32, 32))
    assert embeddings.shape == (3, 16)
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.slow
def test_keypoint_regressor_learns() -> None:
    _, log = train_keypoint_regressor("faces", steps=80, batch_size=8, lr=3e-3, config=TINY_KP, log_every=20)
    assert len(log.losses) == 4 and log.losses[-1] < 0.8 * log.losses[0]


@pytest.mark.slow
def test_identity_embedder_learns() -> None:
    _, log = train_identity_embedder("faces", steps=80, batch_size=16, identities=8, clips_per_identity=2,
                                     lr=3e-3, config=TINY_ID, log_every=20)
    assert len(log.losses) == 4 and log.losses[-1] < 0.9 * log.losses[0]


def test_wrong_keypoint_count_is_refused() -> None:
    with pytest.raises(UserError, match="keypoints"):
        train_keypoint_regressor("puppets", steps=1, config=TINY_KP)


def test_accuracy_reports_and_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    regressor, embedder = KeypointRegressor(TINY_KP).eval(), IdentityEmbedder(TINY_ID).eval()
    accuracy = keypoint_accuracy(regressor, "faces", frames=16)
    assert accuracy["pixel_error"] > 0 and 0 <= accuracy["visibility_accuracy"] <= 1
    verification = verification_accuracy(embedder, "faces", identities=6, pairs=40)
    assert 0 <= verification["accuracy"] <= 1
    frames = torch.rand(2, 3, 32, 32)
    for model in (regressor, embedder):
        loaded = load_evaluator(save_evaluator(tmp_path / "e.mt", model, "faces", {"score": 1.0}))
        assert type(loaded) is type(model)
        expected, got = model(frames), loaded(frames)
        for a, b in zip(expected if isinstance(expected, tuple) else (expected,),
                        got if isinstance(got, tuple) else (got,), strict=True):
            assert torch.allclose(a, b, atol=2e-2)  # float16 storage
