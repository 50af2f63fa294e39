"""Animate the subject of a full photo and paste the animation back (``animate --crop face|body``).

1. The source photo's subject is detected (the largest one) and cut out as a square of the kind's margin
   (:func:`~motiontransfer.preprocess.detect.subject_square`), resized to the model's size.
2. The driving video is read once to detect and track its subject (the longest track), whose box is smoothed over
   time; frames before or after that track use its first or last box.
3. The driving video is read again, each frame cropped at its box, and the crops animate the source crop through
   the ordinary streaming pipeline (:func:`motiontransfer.inference.pipeline.animate`).
4. Each animated crop is resized to the source box and blended into the photo with a feathered mask
   (:func:`~motiontransfer.preprocess.boxes.paste_back`): the output has the photo's size and, outside the box, is the
   photo itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motiontransfer.errors import ArgumentError, Term, UserError
from motiontransfer.inference import pipeline
from motiontransfer.inference.landmarks import get_landmarker
from motiontransfer.inference.smoothing import MotionSmoother, as_motion_smoother
from motiontransfer.inference.video import write_animation
from motiontransfer.models.base import AnimationModel, TransferMode
from motiontransfer.preprocess.boxes import PixelBox, crop_square, paste_back
from motiontransfer.preprocess.crop import DEFAULT_FPS, Progress, TrackedVideo, track_frames
from motiontransfer.preprocess.detect import Detector, check_kind, make_detector, subject_square
from motiontransfer.preprocess.track import DEFAULT_BOX_SIGMA, track_boxes
from motiontransfer.video.frames import as_frames, as_image, to_hwc
from motiontransfer.video.io import VideoReader, read_image, to_uint8_hwc

CROP_CHOICES: tuple[str, ...] = ("none", "face", "body")
DEFAULT_FEATHER = 0.1
"""Width of the paste-back blend ramp, as a fraction of the source box's side."""

__all__ = ["CROP_CHOICES", "DEFAULT_FEATHER", "animate_cropped", "animate_cropped_items", "animate_video_cropped",
           "check_crop", "driving_boxes", "source_box"]


def check_crop(crop: str) -> str:
    """Validate a crop choice: ``none``, ``face`` or ``body``."""
    if crop not in CROP_CHOICES:
        raise UserError(f"unknown crop {crop!r}; use {', '.join(CROP_CHOICES)}")
    return crop


def source_box(image: torch.Tensor, kind: str, margin: float | None = None, detector: Detector | None = None,
               name: str | None = None) -> PixelBox:
    """The crop box of the largest subject of a photo.

    Args:
        image: (3, H, W) float in [0, 1].
        kind: ``face`` or ``body``.
        margin: see :func:`~motiontransfer.preprocess.detect.subject_square`.
        name: the photo's file, for the error message.

    Raises:
        UserError: no subject found (or a missing extra).
    """
    kind = check_kind(kind)
    found = (detector or make_detector(kind))(to_uint8_hwc(image))
    if not found:
        where = f"{name}: " if name else ""
        raise ArgumentError(f"{where}no {kind} found in the source image; use a photo with a clear, frontal {kind} "
                            "or ", Term("crop"), " none")
    largest = max(found, key=lambda detection: detection.area)
    return PixelBox.from_square(subject_square(largest, kind, margin))


def driving_boxes(tracked: TrackedVideo, kind: str, margin: float | None = None,
                  sigma: float = DEFAULT_BOX_SIGMA) -> list[PixelBox]:
    """One crop box per frame of a tracked driving video: its longest track's smoothed boxes, the first box
    before the track and the last after it.

    Raises:
        UserError: no subject in any frame.
    """
    track = tracked.longest()
    if track is None:
        raise UserError(f"{tracked.name}: no {kind} found in any of the driving video's {tracked.num_frames} frames")
    boxes = track_boxes(track, check_kind(kind), margin, sigma)
    return [boxes[0]] * track.start + boxes + [boxes[-1]] * (tracked.num_frames - track.end)


class _CroppedFrames:
    """A re-iterable stream of the driving frames cut at their boxes and resized to ``size``."""

    def __init__(self, frames: Iterable[torch.Tensor], boxes: list[PixelBox], size: int) -> None:
        self.frames, self.boxes, self.size = frames, boxes, size

    def __iter__(self) -> Iterator[torch.Tensor]:
        for frame, box in zip(self.frames, self.boxes, strict=False):
            yield crop_square(torch.as_tensor(frame), box, self.size)


def animate_cropped_items(model: AnimationModel, source_image: torch.Tensor, driving_frames: Iterable[torch.Tensor],
                          *, kind: str = "face", margin: float | None = None, feather: float = DEFAULT_FEATHER,
                          box_sigma: float = DEFAULT_BOX_SIGMA, mode: TransferMode = "relative",
                          adapt_scale: bool = False, best_frame: pipeline.BestFrame = None,
                          batch_size: int | None = None, landmarks: pipeline.Landmarker | None = None,
                          smooth: MotionSmoother | None = None,
                          detector: Detector | None = None, source_name: str | None = None,
                          driving_name: str = "the driving video", fps: float = DEFAULT_FPS,
                          progress: Progress | None = None) -> Iterator[dict[str, Any]]:
    """Crop, animate and paste back, streaming (see the module docstring).

    Args:
        model: any family's model.
        source_image: the full photo, (3, H, W) float in [0, 1].
        driving_frames: the full driving frames (3, H', W') in [0, 1]; read twice, so re-iterable (a
            :class:`~motiontransfer.video.io.VideoReader`, a list, ...).
        kind: ``face`` or ``body``.
        margin: crop margin (see :func:`~motiontransfer.preprocess.detect.subject_square`).
        feather: width of the blend ramp as a fraction of the source box's side.
        box_sigma: temporal smoothing of the driving boxes (frames).
        mode, adapt_scale, best_frame, batch_size, landmarks, smooth: as in
            :func:`motiontransfer.inference.pipeline.animate` (they apply to the crops).
        detector: instead of the kind's default detector.
        source_name, driving_name: for messages.
        fps: recorded for the driving video.
        progress: wraps the detection pass over the driving frames (a progress bar).

    Yields:
        The pipeline's items (crop-level: ``prediction``, ``source``, ``driving`` ... at the model's size) plus
        ``frame``: (3, H, W) the prediction pasted into the photo, ``source_box`` and ``driving_box``
        (:class:`~motiontransfer.preprocess.boxes.PixelBox`).

    Raises:
        UserError: no subject in the photo or in the driving video, a one-shot driving stream, bad options.
    """
    kind = check_kind(kind)
    if not feather >= 0:
        raise UserError(f"feather must be >= 0, got {feather}")
    if iter(driving_frames) is driving_frames:
        raise UserError("cropping needs a driving video that can be read twice (a path, a list or an array), not a "
                        "one-shot iterator")
    detector = detector or make_detector(kind)
    box = source_box(source_image, kind, margin, detector, source_name)
    frames: Iterable[Any] = driving_frames if progress is None else progress(driving_frames, None)
    tracked = track_frames(frames, detector, name=driving_name, fps=fps)
    boxes = driving_boxes(tracked, kind, margin, box_sigma)
    items = pipeline.animate(model, crop_square(source_image, box, model.size),
                             _CroppedFrames(driving_frames, boxes, model.size), mode=mode, adapt_scale=adapt_scale,
                             best_frame=best_frame, batch_size=batch_size, landmarks=landmarks, smooth=smooth)
    for item in items:
        frame = paste_back(source_image, box, item["prediction"], feather * box.side)
        yield {**item, "frame": frame, "source_box": box, "driving_box": boxes[item["index"]]}


def animate_cropped(animator: Any, source: Any, driving: Any, *, crop: str = "face", margin: float | None = None,
                    feather: float = DEFAULT_FEATHER, mode: TransferMode = "relative", adapt_scale: bool = False,
                    best_frame: pipeline.BestFrame = None, batch_size: int | None = None,
                    landmarks: str | pipeline.Landmarker = "model",
                    smooth: bool | MotionSmoother = False) -> Iterator[np.ndarray]:
    """The Python API of ``animate --crop``: animate the subject of a full photo and paste it back.

    Args:
        animator: an :class:`~motiontransfer.api.Animator` (``mt.load(...)``) or an
            :class:`~motiontransfer.models.base.AnimationModel`.
        source: the photo: a path or an array / tensor (H, W, 3) or (3, H, W), kept at its size.
        driving: a video path, a T-first array / tensor or a re-iterable of frames, at their size.
        crop: ``face`` or ``body``.
        margin, feather: see :func:`animate_cropped_items`.
        mode, adapt_scale, best_frame, batch_size: see :func:`motiontransfer.inference.pipeline.animate`.
        landmarks: pose detector for ``best_frame="auto"`` (``model``, ``dlib`` or a callable).
        smooth: True for the default temporal smoothing of the driving motion
            (:class:`~motiontransfer.inference.smoothing.CentredMotionSmoother`), or a motion smoother.

    Yields:
        (H, W, 3) float32 numpy frames in [0, 1], the photo's size, one per driving frame.
    """
    model = getattr(animator, "model", animator)
    items = animate_cropped_items(
        model, as_image(source), as_frames(driving), kind=crop, margin=margin, feather=feather, mode=mode,
        adapt_scale=adapt_scale, best_frame=best_frame, batch_size=batch_size,
        landmarks=get_landmarker(landmarks) if isinstance(landmarks, str) else landmarks,
        smooth=as_motion_smoother(smooth), source_name=str(source) if isinstance(source, (str, Path)) else None,
        driving_name=str(driving) if isinstance(driving, (str, Path)) else "the driving video")
    for item in items:
        yield to_hwc(item["frame"])


def animate_video_cropped(model: AnimationModel, source: str | Path, driving: str | Path, out: str | Path, *,
                          crop: str = "face", margin: float | None = None, feather: float = DEFAULT_FEATHER,
                          mode: TransferMode = "relative", adapt_scale: bool = False,
                          best_frame: pipeline.BestFrame = None, batch_size: int | None = None,
                          landmarks: pipeline.Landmarker | None = None, smooth: MotionSmoother | None = None,
                          visualize: bool = False, progress: Progress | None = None) -> list[Path]:
    """``animate --crop``: animate the photo file ``source`` with the video ``driving`` and write ``out`` at the
    photo's size, with the driving video's frame rate (25 fps for frame folders) and audio.

    With ``visualize`` also writes ``<out stem>-viz<suffix>``: the crop-level grid (source crop | driving crop |
    occlusion | animated crop) of :func:`motiontransfer.visualize.animation_grid`.

    ``progress`` wraps the detection pass and then the rendering (progress bars).

    Returns:
        The paths written.
    """
    photo = read_image(source)
    with VideoReader(driving) as reader:
        fps = reader.info.fps or DEFAULT_FPS
        audio = Path(driving) if reader.info.has_audio else None
        items: Iterable[dict[str, Any]] = animate_cropped_items(
            model, photo, reader, kind=crop, margin=margin, feather=feather, mode=mode, adapt_scale=adapt_scale,
            best_frame=best_frame, batch_size=batch_size, landmarks=landmarks, smooth=smooth,
            source_name=str(source), driving_name=str(driving), fps=fps, progress=progress)
        if progress is not None:
            items = progress(items, reader.info.num_frames)
        return write_animation(items, out, fps=fps, audio=audio, visualize=visualize, frame_key="frame")
