"""Temporal filters for sequences of boxes, keypoints and motion codes, and the measures of their effect.

Every filter works on a sequence whose first dimension is time, ``(T, ...)``, numpy array or torch tensor alike
(only ``+``, ``*`` and ``abs`` are used, so a frame may hold keypoints (K, 2), a box (3,), a flattened motion code
(D,) ...). Two families:

* **Centred Gaussian** (:func:`gaussian_smooth`, streaming: :class:`CentredStream`): a weighted average over
  ``t - r .. t + r`` (``r = ceil(3 sigma)``). Symmetric, so it does not delay the motion (zero lag); it needs ``r``
  frames of look-ahead, which a streaming pipeline provides by holding ``r`` frames back. At the ends of the
  sequence the window is either *shrunk* symmetrically (``ends="shrink"``: the first and last frames are kept as
  they are and a straight-line motion is reproduced exactly) or *truncated* and renormalised
  (``ends="truncate"``: smoother ends, biased towards the interior).
* **One-Euro** (:class:`OneEuroFilter`; Casiez, Roussel and Vogel, CHI 2012): a causal first-order low-pass whose
  cutoff rises with the speed of the signal, ``fc = min_cutoff + beta * |dx/dt|``. It needs no look-ahead (live
  use), at the price of some lag during slow motion; ``beta`` is in the signal's units, so it depends on them.

Measures (both on (T, K, D) point sequences):

* :func:`jitter`: the mean norm of the second difference ``x[t+1] - 2 x[t] + x[t-1]`` (per point, per frame);
  detection noise is white, so it dominates the second difference of a real trajectory.
* :func:`lag`: the shift in frames (sub-frame by a parabola through the peak) that maximises the
  cross-correlation between the raw and the smoothed trajectory; positive when the smoothed one comes later.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from motiontransfer.errors import UserError

Ends = Literal["shrink", "truncate"]
ENDS: tuple[str, ...] = ("shrink", "truncate")

__all__ = [
    "CentredStream",
    "OneEuroFilter",
    "gaussian_radius",
    "gaussian_smooth",
    "gaussian_weights",
    "jitter",
    "lag",
    "one_euro_alpha",
    "one_euro_smooth",
    "smooth_stream",
]


def _check_positive(name: str, value: float, allow_zero: bool = False) -> float:
    """``value`` as a float, or UserError when it is not a finite number > 0 (>= 0 with ``allow_zero``)."""
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UserError(f"{name} must be a number {bound}, got {value!r}")
    return number


def gaussian_radius(sigma: float) -> int:
    """Half-width ``r = ceil(3 sigma)`` of the centred window (frames); 0 for ``sigma == 0`` (no smoothing)."""
    return math.ceil(3.0 * _check_positive("sigma", sigma, allow_zero=True))


def gaussian_weights(sigma: float) -> np.ndarray:
    """The (2r + 1,) float64 weights ``exp(-k^2 / (2 sigma^2))`` for offsets ``k = -r .. r`` (not normalised)."""
    radius = gaussian_radius(sigma)
    if radius == 0:
        return np.ones(1)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-0.5 * (offsets / sigma) ** 2)


def _check_ends(ends: str) -> Ends:
    if ends not in ENDS:
        raise UserError(f"unknown end handling {ends!r}; use {' or '.join(ENDS)}")
    return ends  # type: ignore[return-value]


def _window(t: int, length: int, radius: int, ends: Ends) -> tuple[int, int]:
    """First and last (inclusive) offsets from ``t`` that the window of frame ``t`` of ``length`` frames uses."""
    before, after = min(radius, t), min(radius, length - 1 - t)
    if ends == "shrink":
        before = after = min(before, after)
    return -before, after


def _weighted_mean(items: Sequence[Any], weights: np.ndarray) -> Any:
    """``sum(w_i x_i) / sum(w_i)`` over arrays or tensors of one shape (weights as Python floats)."""
    total = float(weights.sum())
    result = items[0] * float(weights[0] / total)
    for item, weight in zip(items[1:], weights[1:], strict=True):
        result = result + item * float(weight / total)
    return result


def gaussian_smooth(sequence: Sequence[Any], sigma: float, ends: Ends = "shrink") -> list[Any]:
    """Centred Gaussian smoothing of a whole sequence (see the module docstring).

    Args:
        sequence: T frames, each an array or tensor of one shape (...), e.g. (K, 2) keypoints; or a (T, ...) array.
        sigma: standard deviation in frames (0: the frames unchanged).
        ends: ``shrink`` (the end frames kept, no lag anywhere) or ``truncate`` (renormalised one-sided windows).

    Returns:
        T smoothed frames (a list; ``np.stack`` it for an array).
    """
    ends = _check_ends(ends)
    weights, radius = gaussian_weights(sigma), gaussian_radius(sigma)
    length = len(sequence)
    out = []
    for t in range(length):
        first, last = _window(t, length, radius, ends)
        out.append(_weighted_mean([sequence[t + k] for k in range(first, last + 1)],
                                  weights[radius + first: radius + last + 1]))
    return out


class CentredStream:
    """Streaming :func:`gaussian_smooth`: push frames one at a time, get each smoothed frame as soon as the ``r``
    frames after it are in; :meth:`finish` returns the last ones. The results equal :func:`gaussian_smooth` of the
    whole sequence; at most ``2 r + 1`` frames are held.

    Usage::

        stream = CentredStream(sigma=1.0)
        for x in frames:
            for y in stream.push(x):
                ...
        for y in stream.finish():
            ...
    """

    def __init__(self, sigma: float, ends: Ends = "shrink") -> None:
        self.ends = _check_ends(ends)
        self.weights = gaussian_weights(sigma)
        self.radius = gaussian_radius(sigma)
        self._held: deque[Any] = deque()  # frames first_held .. newest
        self._next = 0  # index of the next frame to emit
        self._first_held = 0
        self._count = 0

    @property
    def delay(self) -> int:
        """Frames held back before the first output (``r``)."""
        return self.radius

    def push(self, frame: Any) -> list[Any]:
        """Add frame ``t``; returns the smoothed frames that became ready (0 or 1 of them)."""
        self._held.append(frame)
        self._count += 1
        ready = []
        while self._next + self.radius < self._count:
            ready.append(self._emit(None))
        return ready

    def finish(self) -> list[Any]:
        """The remaining smoothed frames, now that the sequence is known to end."""
        ready = []
        while self._next < self._count:
            ready.append(self._emit(self._count))
        return ready

    def _emit(self, length: int | None) -> Any:
        """Smooth frame ``_next`` knowing the sequence has ``length`` frames (None: at least ``r`` more)."""
        t = self._next
        if length is None:  # the end is not known yet, but it is more than r frames after t
            length = t + 2 * self.radius + 1
        first, last = _window(t, length, self.radius, self.ends)
        items = [self._held[t + k - self._first_held] for k in range(first, last + 1)]
        result = _weighted_mean(items, self.weights[self.radius + first: self.radius + last + 1])
        self._next += 1
        while self._first_held < self._next - self.radius:
            self._held.popleft()
            self._first_held += 1
        return result


def smooth_stream(frames: Iterable[Any], sigma: float, ends: Ends = "shrink") -> Iterator[Any]:
    """Lazily smooth a stream of frames with a :class:`CentredStream` (outputs ``r`` frames behind the input)."""
    stream = CentredStream(sigma, ends)
    for frame in frames:
        yield from stream.push(frame)
    yield from stream.finish()


def one_euro_alpha(cutoff: Any, rate: float) -> Any:
    """Smoothing factor of a first-order low-pass with cutoff ``cutoff`` Hz sampled at ``rate`` Hz:
    ``1 / (1 + tau / T_e)`` with ``tau = 1 / (2 pi cutoff)`` and ``T_e = 1 / rate`` (array cutoffs give arrays)."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * rate)


class OneEuroFilter:
    """The One-Euro filter (Casiez et al., CHI 2012), causal and streaming, elementwise over frames of one shape.

    ``dx_t = (x_t - y_{t-1}) * rate``, low-passed at ``d_cutoff`` Hz; ``fc = min_cutoff + beta * |dx_t|``;
    ``y_t = y_{t-1} + alpha(fc) (x_t - y_{t-1})``; the first frame passes unchanged.

    Args:
        rate: frames per second of the sequence.
        min_cutoff: cutoff in Hz when the signal is still (lower: smoother, more lag while slow).
        beta: how fast the cutoff rises with speed, in 1 / (signal unit) (higher: less lag while fast).
        d_cutoff: cutoff in Hz of the speed estimate.
    """

    def __init__(self, rate: float, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.rate = _check_positive("rate", rate)
        self.min_cutoff = _check_positive("min_cutoff", min_cutoff)
        self.beta = _check_positive("beta", beta, allow_zero=True)
        self.d_cutoff = _check_positive("d_cutoff", d_cutoff)
        self._value: Any = None
        self._speed: Any = None

    def __call__(self, frame: Any) -> Any:
        """Filter one frame (an array or tensor of the sequence's frame shape); returns the smoothed frame."""
        if self._value is None:
            self._value, self._speed = frame, frame * 0.0
            return frame
        speed = (frame - self._value) * self.rate
        self._speed = self._speed + (speed - self._speed) * one_euro_alpha(self.d_cutoff, self.rate)
        alpha = one_euro_alpha(self.min_cutoff + self.beta * abs(self._speed), self.rate)
        self._value = self._value + (frame - self._value) * alpha
        return self._value

    def reset(self) -> None:
        """Forget the past: the next frame starts a new sequence."""
        self._value = self._speed = None


def one_euro_smooth(sequence: Iterable[Any], rate: float, min_cutoff: float = 1.0, beta: float = 0.0,
                    d_cutoff: float = 1.0) -> list[Any]:
    """A whole sequence through a fresh :class:`OneEuroFilter`; returns the T smoothed frames."""
    smoother = OneEuroFilter(rate, min_cutoff, beta, d_cutoff)
    return [smoother(frame) for frame in sequence]


# ---------------------------------------------------------------------------------------------------- measures


def _as_points(sequence: Any) -> np.ndarray:
    """(T, K, D) float64 array of a sequence of (K, D) frames (a (T, D) sequence becomes (T, 1, D))."""
    array = np.asarray(np.stack([np.asarray(frame, dtype=np.float64) for frame in sequence]))
    if array.ndim == 2:
        array = array[:, None]
    if array.ndim != 3:
        raise ValueError(f"expected a (T, K, D) point sequence, got shape {array.shape}")
    return array


def jitter(sequence: Any) -> float:
    """Mean norm of the second difference of a point sequence.

    Args:
        sequence: (T, K, D) points (or T frames of (K, D)), T >= 3; frames with NaNs are skipped.

    Returns:
        ``mean over t, k of || x[t+1, k] - 2 x[t, k] + x[t-1, k] ||`` in the points' unit (e.g. pixels per frame^2).
    """
    points = _as_points(sequence)
    if len(points) < 3:
        raise ValueError(f"jitter needs at least 3 frames, got {len(points)}")
    second = points[2:] - 2.0 * points[1:-1] + points[:-2]
    norms = np.linalg.norm(second, axis=-1)
    return float(np.nanmean(norms))


def lag(raw: Any, smoothed: Any, max_shift: int = 10) -> float:
    """The delay of ``smoothed`` behind ``raw`` in frames: the shift ``s`` maximising the cross-correlation
    ``sum_t <raw[t], smoothed[t + s]>`` (mean-removed, averaged over the overlap), refined by a parabola
    through the peak.

    Args:
        raw, smoothed: (T, K, D) point sequences of the same shape (or T frames of (K, D)).
        max_shift: shifts ``-max_shift .. max_shift`` are tried (fewer than T).

    Returns:
        The lag in frames: positive when ``smoothed`` comes later than ``raw``, 0 for a centred filter.
    """
    a, b = _as_points(raw), _as_points(smoothed)
    if a.shape != b.shape:
        raise ValueError(f"raw and smoothed must have one shape, got {a.shape} and {b.shape}")
    max_shift = min(max_shift, len(a) - 2)
    a = (a - a.mean(axis=0)).reshape(len(a), -1)
    b = (b - b.mean(axis=0)).reshape(len(b), -1)
    shifts = range(-max_shift, max_shift + 1)
    scores = np.array([_correlation(a, b, shift) for shift in shifts])
    peak = int(np.argmax(scores))
    offset = 0.0
    if 0 < peak < len(scores) - 1:
        left, centre, right = scores[peak - 1: peak + 2]
        curvature = left - 2.0 * centre + right
        offset = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return float(shifts[peak] + offset)


def _correlation(a: np.ndarray, b: np.ndarray, shift: int) -> float:
    """Mean of ``<a[t], b[t + shift]>`` over the frames where both exist."""
    if shift >= 0:
        return float((a[: len(a) - shift] * b[shift:]).sum() / (len(a) - shift))
    return float((a[-shift:] * b[: len(b) + shift]).sum() / (len(a) + shift))
