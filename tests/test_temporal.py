"""Temporal filters and their measures (motiontransfer.ops.temporal), checked against hand-computed values
and on a noisy sine whose clean form is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from motiontransfer.errors import UserError
from motiontransfer.ops import temporal


def noisy_sine(frames: int = 240, noise: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) (T, 3, 2) trajectories: three points on sines of amplitude 10 and period 60 frames (different
    phases), plus white Gaussian noise of standard deviation ``noise``."""
    t = np.arange(frames)[:, None, None]
    phase = np.array([0.0, 1.0, 2.0])[None, :, None]
    axis = np.array([0.0, 0.5])[None, None, :]
    clean = 10.0 * np.sin(2 * math.pi * t / 60 + phase + axis)
    rng = np.random.default_rng(seed)
    return clean, clean + rng.normal(0.0, noise, clean.shape)


def test_gaussian_weights_and_radius() -> None:
    assert temporal.gaussian_radius(1.0) == 3
    assert temporal.gaussian_radius(0.5) == 2
    assert temporal.gaussian_radius(0) == 0
    weights = temporal.gaussian_weights(1.0)
    assert weights.shape == (7,)
    assert np.allclose(weights, np.exp(-0.5 * np.arange(-3, 4) ** 2))
    with pytest.raises(UserError, match="sigma must be a number >= 0"):
        temporal.gaussian_radius(-1)


def test_gaussian_smooth_by_hand() -> None:
    x = np.array([0.0, 0.0, 3.0, 0.0, 0.0, 6.0])
    w = np.exp(-0.5 * np.array([1.0, 0.0, 1.0]) / 0.25)  # sigma 0.5: radius 2, weights of offsets -1, 0, 1
    w2 = math.exp(-0.5 * 4 / 0.25)
    shrink = np.array(temporal.gaussian_smooth(x, 0.5, ends="shrink"))
    # frame 0 and 5 keep their values; frame 1 uses offsets -1..1; frame 2 uses -2..2
    assert shrink[0] == 0.0 and shrink[5] == 6.0
    assert shrink[1] == pytest.approx(3.0 * w[2] / w.sum())
    assert shrink[2] == pytest.approx(3.0 / (w.sum() + 2 * w2))
    assert shrink[4] == pytest.approx(6.0 * w[2] / w.sum())
    truncate = np.array(temporal.gaussian_smooth(x, 0.5, ends="truncate"))
    assert truncate[0] == pytest.approx(3.0 * w2 / (w[1] + w[2] + w2))  # offsets 0, 1, 2 of frame 0
    assert truncate[5] == pytest.approx((6.0 * w[1]) / (w[1] + w[0] + w2))
    assert np.array_equal(np.array(temporal.gaussian_smooth(x, 0)), x)


def test_shrinking_ends_keep_a_straight_line() -> None:
    line = np.arange(20, dtype=np.float64)[:, None] * np.array([[0.5, -2.0]])
    assert np.allclose(np.stack(temporal.gaussian_smooth(line, 2.0, ends="shrink")), line)
    truncated = np.stack(temporal.gaussian_smooth(line, 2.0, ends="truncate"))
    assert not np.allclose(truncated[0], line[0]), "one-sided windows pull the ends inwards"


@pytest.mark.parametrize("ends", ["shrink", "truncate"])
@pytest.mark.parametrize("length", [1, 2, 5, 13])
def test_streaming_equals_offline(ends: str, length: int) -> None:
    rng = np.random.default_rng(length)
    x = [rng.normal(size=(4, 2)) for _ in range(length)]
    stream = temporal.CentredStream(1.0, ends=ends)  # type: ignore[arg-type]
    out: list[np.ndarray] = []
    for pushed, frame in enumerate(x, start=1):
        out += stream.push(frame)
        assert pushed - len(out) == min(pushed, stream.delay), "outputs come r frames behind the input"
    out += stream.finish()
    expected = temporal.gaussian_smooth(x, 1.0, ends=ends)  # type: ignore[arg-type]
    assert len(out) == length
    assert all(np.allclose(a, b) for a, b in zip(out, expected, strict=True))
    assert len(stream._held) <= 2 * stream.radius + 1


def test_filters_take_torch_tensors() -> None:
    x = [torch.full((2,), float(i * i)) for i in range(6)]
    smoothed = temporal.gaussian_smooth(x, 1.0)
    assert isinstance(smoothed[0], torch.Tensor)
    assert torch.allclose(torch.stack(smoothed), torch.as_tensor(np.stack(temporal.gaussian_smooth(
        [v.numpy() for v in x], 1.0))).float())
    assert isinstance(temporal.one_euro_smooth(x, rate=30)[3], torch.Tensor)


def test_one_euro_alpha_and_a_step_by_hand() -> None:
    # alpha = 1 / (1 + tau * rate), tau = 1 / (2 pi fc)
    assert temporal.one_euro_alpha(1.0, 30.0) == pytest.approx(1 / (1 + 30 / (2 * math.pi)))
    rate, fc = 30.0, 2.0
    alpha = 1 / (1 + rate / (2 * math.pi * fc))
    out = temporal.one_euro_smooth([0.0, 1.0, 1.0, 1.0], rate=rate, min_cutoff=fc, beta=0.0)
    # beta 0: an exponential average with factor alpha; the first frame passes unchanged
    assert out == pytest.approx([0.0, alpha, alpha + (1 - alpha) * alpha, 1 - (1 - alpha) ** 3])


def test_one_euro_speed_raises_the_cutoff_by_hand() -> None:
    rate, fc, beta, dc = 10.0, 1.0, 0.5, 1.0
    filt = temporal.OneEuroFilter(rate, min_cutoff=fc, beta=beta, d_cutoff=dc)
    assert filt(2.0) == 2.0
    speed = temporal.one_euro_alpha(dc, rate) * (4.0 - 2.0) * rate  # filtered speed of the 2nd frame
    alpha = temporal.one_euro_alpha(fc + beta * speed, rate)
    assert filt(4.0) == pytest.approx(2.0 + alpha * 2.0)
    filt.reset()
    assert filt(7.0) == 7.0
    with pytest.raises(UserError, match="rate must be a number > 0"):
        temporal.OneEuroFilter(0.0)


def test_jitter_and_lag_by_hand() -> None:
    x = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [3.0, 4.0]])[:, None]
    # second differences: (1 - 2 + 0, 0) -> 1 ; (3 - 2 + 1, 4) -> (2, 4) -> sqrt(20)
    assert temporal.jitter(x) == pytest.approx((1 + math.sqrt(20)) / 2)
    clean, _ = noisy_sine(noise=0.0)
    delayed = np.concatenate([clean[:2], clean[:-2]])  # 2 frames late
    assert temporal.lag(clean, delayed) == pytest.approx(2.0, abs=0.05)
    assert temporal.lag(delayed, clean) == pytest.approx(-2.0, abs=0.05)
    assert temporal.lag(clean, clean) == 0.0


def test_noisy_sine_centred_gaussian() -> None:
    """sigma 1.5 frames: the noise's jitter falls by more than 5x, the sine keeps 96% of its amplitude (the
    Gaussian's gain at 1/60 cycles per frame, exp(-2 pi^2 sigma^2 / 60^2) = 0.988), and there is no lag."""
    clean, noisy = noisy_sine()
    smoothed = np.stack(temporal.gaussian_smooth(noisy, 1.5))
    raw_jitter, smooth_jitter = temporal.jitter(noisy), temporal.jitter(smoothed)
    # noise-dominated: the mean norm of a 2-D Gaussian second difference, sqrt(6) * 0.5 * sqrt(pi / 2) = 1.53
    assert raw_jitter == pytest.approx(1.53, abs=0.05)
    assert smooth_jitter < raw_jitter / 5
    assert smooth_jitter > temporal.jitter(clean)  # the sine's own curvature stays
    assert abs(temporal.lag(noisy, smoothed)) < 0.05
    error = np.abs(smoothed - clean)[10:-10].mean()
    assert error < np.abs(noisy - clean).mean() / 2, "closer to the clean sine than the raw samples are"
    gain = np.abs(np.stack(temporal.gaussian_smooth(clean, 1.5)))[10:-10].max() / 10.0
    assert gain == pytest.approx(math.exp(-2 * math.pi**2 * 1.5**2 / 60**2), abs=0.01)


def test_noisy_sine_one_euro_lags_a_little() -> None:
    _, noisy = noisy_sine()
    smoothed = np.stack(temporal.one_euro_smooth(noisy, rate=30.0, min_cutoff=1.5, beta=0.05))
    assert temporal.jitter(smoothed) < temporal.jitter(noisy) / 2
    delay = temporal.lag(noisy, smoothed)
    assert 0.3 < delay < 3.0, "a causal filter comes later than its input"
