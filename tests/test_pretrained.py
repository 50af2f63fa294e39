"""The bundled models and evaluators: present, small, float16 on disk, loadable by name, and measurably trained."""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from motiontransfer.api import load
from motiontransfer.errors import UserError
from motiontransfer.pretrained import BUNDLED_MODELS, bundled_family, bundled_model_path

MAX_BUNDLE_BYTES = 15 * 1024 * 1024


def test_bundled_models_fit_the_size_budget_and_store_float16() -> None:
    paths = [bundled_model_path(name) for name in BUNDLED_MODELS]
    assert sum(path.stat().st_size for path in paths) <= MAX_BUNDLE_BYTES
    for path in paths:
        with safe_open(str(path), framework="pt") as handle:
            names = handle.keys()  # a safetensors handle, not a dict
            floats = [handle.get_slice(name).get_dtype() for name in names]
            metadata = json.loads(handle.metadata()["metadata"])
        assert "F16" in floats and "F32" not in floats
        assert metadata["config"]["model_params"]["common_params"]["num_kp"] >= 10


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUNDLED_MODELS))
def test_bundled_model_moves_the_keypoints_of_held_out_identities(name: str) -> None:
    from motiontransfer.evaluation.runner import evaluate

    animator = load(name, device="cpu")
    assert animator.family == "fomm" and animator.size == 64
    data = f"procedural:{bundled_family(name)}:videos=4,frames=32"
    report = evaluate(animator.model, data, "reconstruction", ["l1", "akd"], batch_size=16)
    # Motion: the bundled evaluator finds the prediction's keypoints closer to the driving frame's than the
    # source's are (docs/fomm-synthetic.md: faces 0.46 vs 1.55 px, puppets 0.94 vs 2.14 px on 24 videos).
    assert report.summary["akd"] < 0.7 * report.summary["copy_akd"]
    # Appearance: well below copying the source (docs/fomm-synthetic.md: L1 52% below it on faces, 50% on puppets,
    # 24 videos); an untrained network is near 0.15.
    assert report.summary["l1"] < 0.7 * report.summary["copy_l1"]


def test_unknown_bundled_name_is_a_user_error() -> None:
    with pytest.raises(UserError, match="unknown bundled model"):
        bundled_model_path("fomm-dragons")


@pytest.mark.slow
@pytest.mark.parametrize("family", ["faces", "puppets"])
def test_bundled_evaluators_are_accurate_on_held_out_identities(family: str) -> None:
    from motiontransfer.evaluation.actions import (
        classification_accuracy,
        ground_truth_sequences,
        load_action_classifier,
    )
    from motiontransfer.evaluation.procedural import keypoint_accuracy, load_evaluator, verification_accuracy
    from motiontransfer.pretrained import bundled_evaluator_path

    regressor = load_evaluator(bundled_evaluator_path("keypoints", family))
    keypoints = keypoint_accuracy(regressor, family, frames=64, seed=7)
    assert keypoints["pixel_error_median"] < 1.5 and keypoints["pixel_error"] < 3.0
    assert keypoints["visibility_accuracy"] > 0.95
    embedder = load_evaluator(bundled_evaluator_path("identity", family))
    assert verification_accuracy(embedder, family, identities=20, pairs=200, seed=7)["accuracy"] > 0.85
    classifier = load_action_classifier(bundled_evaluator_path("actions", family))
    sequences, labels, _ = ground_truth_sequences(family, "test", videos=36, frames=32)
    assert classification_accuracy(classifier, sequences, labels) > 0.7
