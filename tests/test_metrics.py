"""Evaluation metrics against hand-computed values (and scikit-image's SSIM when it is installed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from motiontransfer.errors import UserError
from motiontransfer.evaluation.metrics import (
    average_euclidean_distance,
    average_keypoint_distance,
    detected_keypoints,
    frechet_distance,
    frechet_distance_from_stats,
    l1_error,
    missing_keypoint_rate,
    psnr,
    ssim,
)

torch.set_num_threads(1)


def test_l1_of_a_constant_offset_is_the_offset() -> None:
    image = torch.rand(3, 8, 8) * 0.5
    assert l1_error(image + 0.25, image) == pytest.approx(0.25, abs=1e-6)
    assert l1_error(image, image) == 0.0


def test_psnr_hand_computed() -> None:
    target = torch.zeros(3, 4, 4)
    prediction = target.clone()
    prediction[0, 0, 0] = 1.0  # MSE = 1 / 48
    assert psnr(prediction, target) == pytest.approx(10 * math.log10(48), abs=1e-5)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-4)
    assert psnr(target, target) == 100.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        l1_error(torch.zeros(3, 4, 4), torch.zeros(3, 4, 5))


# ----------------------------------------------------------------------------------------------------------- SSIM


def test_ssim_of_identical_images_is_one() -> None:
    image = torch.rand(3, 24, 20, generator=torch.Generator().manual_seed(0))
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert ssim(image[None].repeat(2, 1, 1, 1), image[None].repeat(2, 1, 1, 1)) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_constant_images_hand_computed() -> None:
    """Flat images have zero variances, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = 0.01^2."""
    a, b, c1 = 0.3, 0.5, 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    for shape in ((3, 11, 11), (2, 3, 16, 12)):
        flat_a, flat_b = torch.full(shape, a, dtype=torch.float64), torch.full(shape, b, dtype=torch.float64)
        assert ssim(flat_a, flat_b) == pytest.approx(expected, rel=1e-9)


def test_ssim_matches_scikit_image() -> None:
    metrics_module = pytest.importorskip("skimage.metrics")
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(3, 40, 33, generator=generator)
    prediction = (target + 0.15 * torch.randn(3, 40, 33, generator=generator)).clamp(0, 1)
    expected = metrics_module.structural_similarity(
        prediction.numpy().astype(np.float64), target.numpy().astype(np.float64), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, channel_axis=0)
    assert ssim(prediction, target) == pytest.approx(expected, abs=1e-6)
    batch = torch.stack([prediction, target])
    assert ssim(batch, batch.flip(0)) == pytest.approx(expected, abs=1e-6)


def test_ssim_rejects_tiny_images() -> None:
    with pytest.raises(UserError, match="at least 11"):
        ssim(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))


# ------------------------------------------------------------------------------------------------------ AKD / MKR


def _keypoints(frames: int = 4, count: int = 5) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 100, size=(frames, count, 2))


def test_akd_of_a_known_shift() -> None:
    true = _keypoints()
    assert average_keypoint_distance(true, true) == 0.0
    assert average_keypoint_distance(true + np.array([3.0, 4.0]), true) == pytest.approx(5.0)
    assert average_keypoint_distance(true + np.array([0.0, 2.5]), true) == pytest.approx(2.5)


def test_akd_skips_frames_missing_in_either_video() -> None:
    true = _keypoints()
    pred = true + np.array([2.0, 0.0])
    pred[1] = np.nan  # no face found in generated frame 1 (NaN representation)
    pred[2] += 100.0
    true_visible = np.ones(true.shape[:2], dtype=bool)
    true_visible[2] = False  # no face found in ground-truth frame 2 (visibility representation)
    assert average_keypoint_distance(pred, true, true_visible=true_visible) == pytest.approx(2.0)
    pred_visible = np.zeros(true.shape[:2], dtype=bool)
    assert math.isnan(average_keypoint_distance(true, true, pred_visible=pred_visible))


def test_mkr_counts_keypoints_lost_in_the_generated_frames() -> None:
    true = np.ones((4, 5), dtype=bool)
    true[0, 0] = False  # not in the ground truth: never counted
    pred = true.copy()
    assert missing_keypoint_rate(pred, true) == 0.0
    pred[1, 2] = False  # one keypoint lost
    assert missing_keypoint_rate(pred, true) == pytest.approx(1 / 19)
    pred[3] = False  # a whole face lost
    assert missing_keypoint_rate(pred, true) == pytest.approx(6 / 19)
    pred[0, 0] = True  # extra detections are not penalised
    assert missing_keypoint_rate(pred, true) == pytest.approx(6 / 19)
    assert math.isnan(missing_keypoint_rate(pred, np.zeros_like(true)))


def test_detected_keypoints_combines_nan_and_visibility() -> None:
    points = _keypoints(2, 3)
    points[0, 1] = [np.nan, 5.0]
    visible = np.array([[True, True, False], [True, True, True]])
    assert detected_keypoints(points).tolist() == [[True, False, True], [True, True, True]]
    assert detected_keypoints(points, visible).tolist() == [[True, False, False], [True, True, True]]


def test_keypoint_metrics_reject_bad_shapes() -> None:
    with pytest.raises(UserError, match=r"\(T, K, 2\)"):
        average_keypoint_distance(np.zeros((4, 5)), np.zeros((4, 5)))
    with pytest.raises(UserError, match="differ in shape"):
        average_keypoint_distance(np.zeros((4, 5, 2)), np.zeros((4, 6, 2)))
    with pytest.raises(UserError, match="booleans"):
        missing_keypoint_rate(np.ones((4, 5)), np.ones((4, 5)))


# ------------------------------------------------------------------------------------------------------------ AED


def test_aed_of_identical_and_offset_embeddings() -> None:
    embeddings = np.random.default_rng(1).normal(size=(6, 8))
    offset = np.arange(8, dtype=np.float64)
    assert average_euclidean_distance(embeddings, embeddings) == 0.0
    assert average_euclidean_distance(embeddings + offset, embeddings) == pytest.approx(np.linalg.norm(offset))


def test_aed_skips_missing_embeddings() -> None:
    embeddings = np.zeros((3, 4))
    pred = embeddings + np.array([1.0, 0.0, 0.0, 0.0])
    pred[1] = np.nan + 100
    true = embeddings.copy()
    true[2, 0] = 50.0
    true[2, 1] = np.nan
    assert average_euclidean_distance(pred, true) == pytest.approx(1.0)
    assert math.isnan(average_euclidean_distance(np.full((2, 4), np.nan), np.zeros((2, 4))))


# ------------------------------------------------------------------------------------------------------- Fréchet


def test_frechet_distance_of_identical_sets_is_zero() -> None:
    features = np.random.default_rng(2).normal(size=(50, 6))
    assert frechet_distance(features, features) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_closed_form() -> None:
    """Samples whitened to exact means / covariances; FD = |m1 - m2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2). For
    S1 = diag(a), S2 = diag(b) the trace term is sum (sqrt a - sqrt b)^2."""
    rng = np.random.default_rng(3)

    def samples_with(mean: np.ndarray, cov: np.ndarray, count: int = 200) -> np.ndarray:
        raw = rng.normal(size=(count, mean.size))
        raw -= raw.mean(axis=0)
        whitened = raw @ np.linalg.inv(np.linalg.cholesky(np.cov(raw, rowvar=False))).T
        return whitened @ np.linalg.cholesky(cov).T + mean

    mean_a, mean_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = 1 + 4 + 0 + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()  # 5 + (1 + 1 + 4)
    features_a = samples_with(mean_a, np.diag(var_a))
    features_b = samples_with(mean_b, np.diag(var_b))
    assert frechet_distance(features_a, features_b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance_from_stats(mean_a, np.diag(var_a), mean_b, np.diag(var_b)) == pytest.approx(expected)
    # Non-diagonal case: rotating both Gaussians by the same orthogonal matrix keeps the distance.
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = frechet_distance_from_stats(rotation @ mean_a, rotation @ np.diag(var_a) @ rotation.T,
                                          rotation @ mean_b, rotation @ np.diag(var_b) @ rotation.T)
    assert rotated == pytest.approx(expected, rel=1e-7)
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance_from_stats(np.array([0.0]), np.array([[4.0]]), np.array([3.0]),
                                       np.array([[1.0]])) == pytest.approx(9 + 1)


def test_frechet_distance_needs_two_samples() -> None:
    with pytest.raises(UserError, match="at least 2 samples"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(UserError, match=r"\(N, D\)"):
        frechet_distance(np.zeros(5), np.zeros(5))
    with pytest.raises(UserError, match="D = 3"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
