"""Temporal smoothing of the driving motion before transfer (``animate --smooth``).

Detected keypoints tremble from frame to frame even when the subject holds still, and the animation trembles with
them. A motion smoother is a separate step of the pipeline
(:func:`motiontransfer.inference.pipeline.animate`'s ``smooth``): it receives the stream of
``(frames (B, 3, H, W), motion of batch B)`` pairs as the driving video is read and returns the same frames with
filtered motion, batch by batch. It works for every family: a motion is a dataclass of batch-first tensors
(FOMM keypoints and Jacobians, Monkey-Net means and covariances, LIA magnitudes, ...), each filtered elementwise
over time (:mod:`motiontransfer.ops.temporal`).

* :class:`CentredMotionSmoother` (the default of ``--smooth``): a centred Gaussian over time. It does not delay the
  motion; it holds ``r = ceil(3 sigma)`` frames back to see ahead. The first and last frames keep their own motion
  (shrinking windows), so relative transfer from frame 0 still starts exactly at the source's pose.
* :class:`OneEuroMotionSmoother`: the causal One-Euro filter, for live use without look-ahead; it lags while the
  motion is slow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import torch

from motiontransfer.errors import UserError
from motiontransfer.ops.temporal import CentredStream, OneEuroFilter

MotionStream = Iterator[tuple[torch.Tensor, Any]]
"""``(frames (B, 3, H, W), Motion of batch B)`` pairs in video order."""
MotionSmoother = Callable[[MotionStream], MotionStream]
DEFAULT_SIGMA = 1.0

__all__ = ["DEFAULT_SIGMA", "CentredMotionSmoother", "OneEuroMotionSmoother", "as_motion_smoother",
           "flatten_motion", "unflatten_motion"]


def _tensor_fields(motion: Any) -> list[str]:
    """Names of a motion's tensor fields (None fields are left out)."""
    if not dataclasses.is_dataclass(motion):
        raise UserError(f"motion smoothing needs a dataclass motion, got {type(motion).__name__}")
    return [f.name for f in dataclasses.fields(motion) if isinstance(getattr(motion, f.name), torch.Tensor)]


def flatten_motion(motion: Any) -> torch.Tensor:
    """A Motion of batch B -> (B, D) float tensor: all its tensor fields flattened per frame and concatenated."""
    parts = [getattr(motion, name) for name in _tensor_fields(motion)]
    return torch.cat([part.reshape(part.shape[0], -1).float() for part in parts], dim=1)


def unflatten_motion(flat: torch.Tensor, like: Any) -> Any:
    """Inverse of :func:`flatten_motion`: (B', D) -> a Motion of batch B' with the fields, shapes and dtypes of
    ``like`` (any batch size); its None fields stay None."""
    values, offset = {}, 0
    for name in _tensor_fields(like):
        template = getattr(like, name)
        width = template[0].numel()
        part = flat[:, offset: offset + width].reshape(flat.shape[0], *template.shape[1:])
        values[name] = part.to(template.dtype)
        offset += width
    return dataclasses.replace(like, **values)


def _rebatch(frames: list[torch.Tensor], flats: list[torch.Tensor], like: Any) -> tuple[torch.Tensor, Any]:
    """Per-frame frames (3, H, W) and flat motions (D,) -> one batch pair."""
    return torch.stack(frames), unflatten_motion(torch.stack(flats), like)


class CentredMotionSmoother:
    """A centred Gaussian over time on the driving motion (no lag; see the module docstring).

    Args:
        sigma: standard deviation in frames (1.0: halves to quarters the frame-to-frame tremble of detected
            landmarks while keeping blinks and quick mouth movements; see docs/real-videos.md).

    Calling it on a :data:`MotionStream` returns a stream of the same frames, in batches of the input's size,
    ``ceil(3 sigma)`` frames behind the input.
    """

    def __init__(self, sigma: float = DEFAULT_SIGMA) -> None:
        self.sigma = sigma
        CentredStream(sigma)  # validates sigma now

    def __call__(self, stream: MotionStream) -> MotionStream:
        filt = CentredStream(self.sigma, ends="shrink")
        held: list[torch.Tensor] = []  # frames whose smoothed motion is not out yet
        ready_frames: list[torch.Tensor] = []
        ready: list[torch.Tensor] = []
        like, batch_size = None, 1
        for frames, motion in stream:
            like, batch_size = motion, max(batch_size, len(frames))
            flat = flatten_motion(motion)
            for frame, row in zip(frames, flat, strict=True):
                held.append(frame)
                for smoothed in filt.push(row):
                    ready_frames.append(held.pop(0))
                    ready.append(smoothed)
            while len(ready) >= batch_size:
                yield _rebatch(ready_frames[:batch_size], ready[:batch_size], like)
                del ready_frames[:batch_size], ready[:batch_size]
        for smoothed in filt.finish():
            ready_frames.append(held.pop(0))
            ready.append(smoothed)
        for start in range(0, len(ready), batch_size):
            yield _rebatch(ready_frames[start: start + batch_size], ready[start: start + batch_size], like)


class OneEuroMotionSmoother:
    """The causal One-Euro filter on the driving motion (no look-ahead; lags during slow motion).

    Args:
        rate: the driving video's frames per second.
        min_cutoff, beta, d_cutoff: see :class:`~motiontransfer.ops.temporal.OneEuroFilter`; ``beta`` is in
            1 / motion unit (keypoints span [-1, 1] across the frame).
    """

    def __init__(self, rate: float, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        self.options = {"rate": rate, "min_cutoff": min_cutoff, "beta": beta, "d_cutoff": d_cutoff}
        OneEuroFilter(**self.options)  # validates the options now

    def __call__(self, stream: MotionStream) -> MotionStream:
        filt = OneEuroFilter(**self.options)
        for frames, motion in stream:
            flat = flatten_motion(motion)
            yield frames, unflatten_motion(torch.stack([filt(row) for row in flat]), motion)


def as_motion_smoother(smooth: bool | MotionSmoother | None) -> MotionSmoother | None:
    """``True`` -> a default :class:`CentredMotionSmoother`; ``False`` / None -> None; a smoother as it is."""
    if smooth is True:
        return CentredMotionSmoother()
    if smooth is False or smooth is None:
        return None
    if not callable(smooth):
        raise UserError(f"smooth must be True, False or a motion smoother, got {smooth!r}")
    return smooth
