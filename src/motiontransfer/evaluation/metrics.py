"""Evaluation metrics, as the papers report them.

* Image metrics on [0, 1] images (torch tensors): :func:`l1_error`, :func:`psnr`, :func:`ssim`.
* Motion metrics on detected keypoints (numpy): :func:`average_keypoint_distance` (AKD) and
  :func:`missing_keypoint_rate` (MKR), from Monkey-Net / FOMM.
* Identity metric on embeddings (numpy): :func:`average_euclidean_distance` (AED).
* Distribution metric on features (numpy): :func:`frechet_distance` (the distance behind FID / FVD).

Missing detections. Keypoints are (T, K, 2) pixel coordinates with an optional (T, K) bool visibility. A keypoint
counts as detected when its visibility is True (or no visibility is given) *and* both coordinates are finite, so a
frame where the detector finds nothing can be given either as an all-False visibility row or as NaN coordinates.
A missing embedding is a row containing NaN.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from motiontransfer.errors import UserError


class MetricInputError(UserError, ValueError):
    """Inputs of a metric have wrong shapes or sizes (a :class:`UserError` that is also a ``ValueError``)."""


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape:
        raise MetricInputError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")


def l1_error(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute pixel difference (FOMM's L1), [0, 1] scale.

    Args:
        prediction, target: images of the same shape, e.g. (3, H, W), values in [0, 1].

    Returns:
        The mean of |prediction - target| over all elements.
    """
    _check_pair(prediction, target)
    return float((prediction.float() - target.float()).abs().mean())


def psnr(prediction: torch.Tensor, target: torch.Tensor, max_psnr: float = 100.0) -> float:
    """Peak signal-to-noise ratio in dB for [0, 1] images: ``10 log10(1 / MSE)``.

    Args:
        prediction, target: images of the same shape, values in [0, 1].
        max_psnr: returned for identical images (where the ratio is infinite).
    """
    _check_pair(prediction, target)
    mse = float(((prediction.float() - target.float()) ** 2).mean())
    return max_psnr if mse <= 10 ** (-max_psnr / 10) else -10.0 * math.log10(mse)


# ----------------------------------------------------------------------------------------------------------- SSIM

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """Normalised (size, size) float64 Gaussian window (outer product of the 1-D window)."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-0.5 * (offsets / sigma) ** 2)
    line = line / line.sum()
    return line[:, None] * line[None, :]


def ssim(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Structural similarity (Wang et al. 2004) of [0, 1] images, mean over channels and images.

    Gaussian window 11 x 11 with sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1, population (not sample) variances,
    averaged over the positions where the window fits inside the image; equal to scikit-image's
    ``structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)``
    per channel, averaged over channels.

    Args:
        prediction, target: (3, H, W) or (B, 3, H, W) (any channel count works) with H, W >= 11.

    Returns:
        Mean SSIM in [-1, 1]; 1 for identical images.
    """
    _check_pair(prediction, target)
    if prediction.dim() not in (3, 4):
        raise MetricInputError(f"ssim needs (C, H, W) or (B, C, H, W) images, got {tuple(prediction.shape)}")
    if min(prediction.shape[-2:]) < SSIM_WINDOW:
        raise MetricInputError(f"ssim needs images of at least {SSIM_WINDOW} x {SSIM_WINDOW} pixels, got "
                               f"{tuple(prediction.shape[-2:])}")
    x = prediction.detach().to("cpu", torch.float64)
    y = target.detach().to("cpu", torch.float64)
    if x.dim() == 3:
        x, y = x[None], y[None]
    channels = x.shape[1]
    window = _gaussian_window(SSIM_WINDOW, SSIM_SIGMA).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW)

    def local_mean(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, window, groups=channels)

    mean_x, mean_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mean_x**2
    var_y = local_mean(y * y) - mean_y**2
    cov_xy = local_mean(x * y) - mean_x * mean_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


# ------------------------------------------------------------------------------------------------ keypoints: AKD

def _as_keypoints(keypoints: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(keypoints, dtype=np.float64)
    if array.ndim != 3 or array.shape[-1] != 2:
        raise MetricInputError(f"{name} must be (T, K, 2) keypoints, got shape {array.shape}")
    return array


def _as_visibility(visible: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(visible)
    if array.shape != shape:
        raise MetricInputError(f"{name} must be (T, K) = {shape} booleans, got shape {array.shape}")
    if array.dtype != np.bool_:
        raise MetricInputError(f"{name} must be booleans, got dtype {array.dtype}")
    return array


def detected_keypoints(keypoints: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """Which keypoints count as detected: ``visible`` (all True when None) and finite coordinates.

    Args:
        keypoints: (T, K, 2) pixel coordinates, NaN for undetected ones.
        visible: optional (T, K) bool.

    Returns:
        (T, K) bool.
    """
    points = _as_keypoints(keypoints, "keypoints")
    finite = np.isfinite(points).all(axis=-1)
    return finite if visible is None else finite & _as_visibility(visible, finite.shape, "visible")


def average_keypoint_distance(pred_kp: np.ndarray, true_kp: np.ndarray, pred_visible: np.ndarray | None = None,
                              true_visible: np.ndarray | None = None) -> float:
    """Average keypoint distance (AKD, Monkey-Net / FOMM): mean Euclidean distance in pixels between
    corresponding keypoints of the generated and the ground-truth video.

    Only keypoints detected in both are compared (see :func:`detected_keypoints`), so frames where the detector
    finds nothing in either video are skipped; every compared keypoint weighs the same (for face landmarks, which
    are found all or none, that is the mean over frames of the per-frame mean distance). Missing detections are
    measured by :func:`missing_keypoint_rate`.

    Args:
        pred_kp, true_kp: (T, K, 2) pixel coordinates of the generated and ground-truth frames.
        pred_visible, true_visible: optional (T, K) bool detection masks.

    Returns:
        AKD in pixels; NaN when no keypoint is detected in both.
    """
    pred, true = _as_keypoints(pred_kp, "pred_kp"), _as_keypoints(true_kp, "true_kp")
    if pred.shape != true.shape:
        raise MetricInputError(f"pred_kp {pred.shape} and true_kp {true.shape} differ in shape")
    both = detected_keypoints(pred, pred_visible) & detected_keypoints(true, true_visible)
    if not both.any():
        return float("nan")
    return float(np.linalg.norm(pred[both] - true[both], axis=-1).mean())


def missing_keypoint_rate(pred_visible: np.ndarray, true_visible: np.ndarray) -> float:
    """Missing keypoint rate (MKR, FOMM): the fraction of keypoints detected in the ground truth that are not
    detected in the generated frame.

    Args:
        pred_visible, true_visible: (T, K) bool detection masks (a frame without any detection is an all-False row;
            use :func:`detected_keypoints` to derive them from NaN coordinates).

    Returns:
        MKR in [0, 1]; NaN when the ground truth has no detected keypoint.
    """
    true = _as_visibility(true_visible, np.shape(true_visible), "true_visible")
    if true.ndim != 2:
        raise MetricInputError(f"true_visible must be (T, K) booleans, got shape {true.shape}")
    pred = _as_visibility(pred_visible, true.shape, "pred_visible")
    found = int(true.sum())
    if found == 0:
        return float("nan")
    return float((true & ~pred).sum() / found)


# ------------------------------------------------------------------------------------------------- identity: AED

def average_euclidean_distance(pred_emb: np.ndarray, true_emb: np.ndarray) -> float:
    """Average Euclidean distance (AED, Monkey-Net / FOMM) between the identity embeddings of generated and
    ground-truth frames.

    Args:
        pred_emb, true_emb: (T, D) embeddings; a row with NaN means no embedding (e.g. no face found) and that frame
            is skipped.

    Returns:
        Mean L2 distance over frames with both embeddings; NaN when there is none.
    """
    pred, true = np.asarray(pred_emb, dtype=np.float64), np.asarray(true_emb, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != true.shape:
        raise MetricInputError(f"pred_emb {pred.shape} and true_emb {true.shape} must both be (T, D)")
    both = np.isfinite(pred).all(axis=1) & np.isfinite(true).all(axis=1)
    if not both.any():
        return float("nan")
    return float(np.linalg.norm(pred[both] - true[both], axis=1).mean())


# ------------------------------------------------------------------------------------------ distributions: FD

def _gaussian_fit(features: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise MetricInputError(f"{name} must be (N, D) features, got shape {array.shape}")
    if array.shape[0] < 2:
        raise MetricInputError(f"{name}: the Fréchet distance needs at least 2 samples to fit a covariance, "
                               f"got {array.shape[0]}")
    if not np.isfinite(array).all():
        raise MetricInputError(f"{name} contains NaN or infinite values")
    return array.mean(axis=0), np.atleast_2d(np.cov(array, rowvar=False))


def frechet_distance_from_stats(mean_a: np.ndarray, cov_a: np.ndarray, mean_b: np.ndarray,
                                cov_b: np.ndarray) -> float:
    """Fréchet (2-Wasserstein) distance between the Gaussians N(mean_a, cov_a) and N(mean_b, cov_b):
    ``|mean_a - mean_b|^2 + tr(cov_a + cov_b - 2 (cov_a cov_b)^(1/2))``.

    Args:
        mean_a, mean_b: (D,) means; cov_a, cov_b: (D, D) covariances.

    Returns:
        The squared-distance value (as FID reports it), >= 0 up to rounding.
    """
    mean_a, mean_b = np.atleast_1d(np.asarray(mean_a, np.float64)), np.atleast_1d(np.asarray(mean_b, np.float64))
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    dim = mean_a.shape[0]
    if mean_b.shape != (dim,) or cov_a.shape != (dim, dim) or cov_b.shape != (dim, dim):
        raise MetricInputError(f"means {mean_a.shape}, {mean_b.shape} and covariances {cov_a.shape}, "
                               f"{cov_b.shape} do not fit one dimension")
    import scipy.linalg  # here, not at the top: a 0.15 s import that every animate would pay

    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        # Singular product (e.g. fewer samples than dimensions): regularise both covariances slightly.
        offset = np.eye(dim) * 1e-6
        root = scipy.linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(root):
        scale = max(1.0, float(np.abs(root).max()))
        if np.abs(root.imag).max() > 1e-3 * scale:
            raise ArithmeticError(f"the covariance square root has a large imaginary part "
                                  f"({np.abs(root.imag).max():.3g}); the features are numerically degenerate")
        root = root.real
    difference = mean_a - mean_b
    return float(difference @ difference + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the statistic behind FID and FVD).

    Means and unbiased covariances (N - 1) are fitted to each set, then :func:`frechet_distance_from_stats`.

    Args:
        features_a, features_b: (N_a, D) and (N_b, D) features (N >= 2 each; the same D).

    Returns:
        The distance (0 for identical sets, up to rounding).

    Raises:
        UserError: fewer than 2 samples, non-finite values, or shapes that do not fit.
    """
    mean_a, cov_a = _gaussian_fit(features_a, "features_a")
    mean_b, cov_b = _gaussian_fit(features_b, "features_b")
    if mean_a.shape != mean_b.shape:
        raise MetricInputError(f"features_a has D = {mean_a.shape[0]} and features_b has D = {mean_b.shape[0]}")
    return frechet_distance_from_stats(mean_a, cov_a, mean_b, cov_b)
