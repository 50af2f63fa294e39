"""The Python API's inputs as frames: image paths, arrays and tensors (HWC or CHW, float in [0, 1] or uint8) become
(3, H, W) float32 CPU tensors in [0, 1]; videos (paths, T-first arrays, iterables of frames) become lazily converted
frame streams."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motiontransfer.errors import UserError
from motiontransfer.video.io import VideoReader, read_image


def as_image(image: Any, size: int | None = None) -> torch.Tensor:
    """One image as a (3, H, W) float32 CPU tensor in [0, 1].

    Args:
        image: an image path (read at ``size``), or an array / tensor (H, W, 3), (3, H, W), (H, W), (1, H, W),
            (H, W, 1) or with a leading batch dimension of 1; float in [0, 1] or uint8.
        size: for paths: the side to read at (centre crop + resize); arrays keep their size.

    Raises:
        UserError: an unrecognised shape, or float values outside [0, 1].
    """
    if isinstance(image, (str, Path)):
        return read_image(image, size=size)
    tensor = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image).detach().cpu()
    if tensor.dim() == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() == 2:
        tensor = tensor[None]
    if tensor.dim() != 3:
        raise UserError(f"expected an image of shape (H, W, 3) or (3, H, W), got shape {tuple(tensor.shape)}")
    if tensor.shape[-1] in (1, 3) and tensor.shape[0] not in (1, 3):
        tensor = tensor.permute(2, 0, 1)
    if tensor.shape[0] not in (1, 3):
        raise UserError(f"expected an image of shape (H, W, 3) or (3, H, W), got shape {tuple(tensor.shape)}")
    return _to_unit_float(tensor).expand(3, -1, -1).contiguous()


def as_frames(video: Any, size: int | None = None) -> Iterable[torch.Tensor]:
    """Driving frames as an iterable of (3, H, W) float32 tensors, converted lazily.

    Args:
        video: a video file or frame folder path (a :class:`~motiontransfer.video.io.VideoReader` at
            ``size``), a T-first array / tensor, a list of frames, or any iterable of frames.

    Returns:
        Re-iterable when ``video`` is (a path, an array, a list, ...); a one-shot iterator when ``video`` is one.
    """
    if isinstance(video, (str, Path)):
        return VideoReader(video, size=size)
    if isinstance(video, (np.ndarray, torch.Tensor)):
        if video.ndim != 4:
            raise UserError(f"expected driving frames as a T-first array (T, H, W, 3) or (T, 3, H, W), got shape "
                            f"{tuple(video.shape)}")
        return _ConvertedFrames(video)
    if isinstance(video, Iterable):
        if iter(video) is video:  # one-shot: stay one-shot so the pipeline can tell
            return (as_image(frame) for frame in video)
        return _ConvertedFrames(video)
    raise UserError(f"expected driving frames (a path, an array or an iterable of frames), got {type(video).__name__}")


def to_hwc(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) tensor -> (H, W, 3) float32 numpy array."""
    return frame.detach().to("cpu", torch.float32).permute(1, 2, 0).contiguous().numpy()


class _ConvertedFrames:
    """A re-iterable view converting each frame of a re-iterable source with :func:`as_image`."""

    def __init__(self, frames: Iterable[Any]) -> None:
        self.frames = frames

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (as_image(frame) for frame in self.frames)


def _to_unit_float(tensor: torch.Tensor) -> torch.Tensor:
    """uint8 -> float / 255; floats must already lie in [0, 1] (a small rounding excess is clipped)."""
    if tensor.dtype == torch.uint8:
        return tensor.float() / 255.0
    if not tensor.is_floating_point():
        raise UserError(f"expected float images in [0, 1] or uint8, got dtype {tensor.dtype}")
    tensor = tensor.float()
    low, high = float(tensor.min()), float(tensor.max())
    if low < -1e-3 or high > 1 + 1e-3:
        raise UserError(f"expected image values in [0, 1], got values from {low:.3g} to {high:.3g} "
                        "(divide 0-255 images by 255)")
    return tensor.clamp(0.0, 1.0)
