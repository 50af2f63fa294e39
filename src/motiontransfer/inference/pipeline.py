"""The animation pipeline: streaming, batched, family-agnostic image animation and video reconstruction.

Both jobs run any :class:`~motiontransfer.models.base.AnimationModel`:

* The source-side work (its motion and encoder features) is done once, by ``model.encode_source``.
* The driving frames are consumed lazily, ``batch_size`` at a time, and each output frame is yielded as soon as
  its batch is rendered, so memory stays constant however long the video is.
* Frames of another size are centre-cropped and resized to ``model.size`` on the way in
  (:func:`~motiontransfer.video.io.fit_frame`).

Best frame. FOMM's ``--find_best_frame`` animates forward from the driving frame whose pose best matches the
source and backward from it to frame 0. Every output frame depends only on (source, driving frame, initial
driving frame), so that equals rendering frames 0..T-1 in order with the best frame as the initial one, which is
what :func:`animate` does, in two streaming passes: pass 1 computes poses only, pass 2 renders. The output is
identical to the official forward + backward concatenation, without holding the video in memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import numpy as np
import torch

from motiontransfer.errors import CapabilityError, Term, UserError
from motiontransfer.inference.runtime import default_batch_size
from motiontransfer.models.base import AnimationModel, SourceState, TransferMode, check_mode
from motiontransfer.ops.keypoints import normalize_pose, pose_distance
from motiontransfer.video.io import fit_frame

Landmarker = Callable[[torch.Tensor], "np.ndarray | None"]
"""A pose detector for best-frame search: frame (3, H, W) in [0, 1] -> (N, 2) points, or None if not found."""

BestFrame = Literal["auto"] | int | None

MotionSmoother = Callable[[Iterator[tuple[torch.Tensor, Any]]], Iterator[tuple[torch.Tensor, Any]]]
"""A temporal filter of the driving motion: a stream of (frames (B, 3, H, W), Motion of batch B) -> the same frames
with filtered motion, in order (see :mod:`motiontransfer.inference.smoothing`)."""


def animate(model: AnimationModel, source_image: torch.Tensor, driving_frames: Iterable[torch.Tensor], *,
            mode: TransferMode = "relative", adapt_scale: bool = False, best_frame: BestFrame = None,
            batch_size: int | None = None, landmarks: Landmarker | None = None,
            smooth: MotionSmoother | None = None) -> Iterator[dict[str, Any]]:
    """Animate ``source_image`` with the motion of ``driving_frames``, streaming.

    Args:
        model: any family's model (in eval mode).
        source_image: (3, H, W) or (1, 3, H, W) float in [0, 1].
        driving_frames: (3, H, W) float frames in [0, 1], consumed lazily. ``best_frame`` other than None / 0
            needs a source that can be iterated twice (a list, a :class:`~motiontransfer.video.io.VideoReader`
            ...), not a one-shot iterator.
        mode: ``relative`` (driving motion since the initial driving frame, applied to the source; Eqs. 14-15)
            or ``absolute`` (the driving motion as is; ``best_frame`` is then irrelevant and ignored).
        adapt_scale: scale relative movements by the ratio of the keypoints' convex-hull sizes.
        best_frame: the initial driving frame: None for frame 0, an index, or ``"auto"`` for the frame whose
            normalised pose best matches the source's (see the module docstring).
        batch_size: driving frames rendered per forward pass; None: the device's default
            (:func:`~motiontransfer.inference.runtime.default_batch_size`: on the CPU 1 at 256 px, up to 8 for
            smaller frames; 8 on GPUs).
        landmarks: pose detector for ``best_frame="auto"`` (e.g.
            :func:`~motiontransfer.inference.landmarks.dlib_face_landmarker`); default: the model's own keypoints.
        smooth: a temporal filter applied to the driving motion before transfer (e.g.
            :class:`~motiontransfer.inference.smoothing.CentredMotionSmoother`); the initial frame's motion is
            taken unfiltered. None: no smoothing.

    Yields:
        One dict per driving frame, in order, with CPU tensors: ``index``, ``prediction`` (3, H, W), ``source``
        and ``driving`` (3, H, W), ``source_keypoints``, ``driving_keypoints`` and ``keypoints`` (the
        transferred ones), each (K, 2) in [-1, 1], ``initial_index`` (the initial driving frame, None in
        absolute mode), plus the model's render extras (e.g. ``occlusion_map`` (1, h, w), ``deformed``).

    Raises:
        UserError: unknown mode, bad ``best_frame`` or ``batch_size``, ``best_frame`` beyond the video, an empty
            driving video, or a one-shot iterator where two passes are needed.
    """
    mode = check_mode(mode)
    batch_size = _resolve_batch_size(batch_size, model)
    _check_best_frame(best_frame)
    state = _encode(model, source_image)
    frames = _fitted(driving_frames, model.size)
    initial, initial_index = None, None
    if mode == "relative":
        initial_index, initial = _initial_motion(model, state, driving_frames, best_frame, batch_size, landmarks)
        if initial is None:  # frame 0 of a single pass: peek at it, then put it back
            first = _first_frame(frames)
            initial = _extract(model, first[None])
            frames = itertools.chain([first], frames)

    def target(motion: Any) -> Any:
        return model.transfer(state.motion, motion, initial, mode, adapt_scale)

    for item in _render_stream(model, state, frames, target, batch_size, smooth):
        yield {**item, "initial_index": initial_index}


def reconstruct(model: AnimationModel, video_frames: Iterable[torch.Tensor], *,
                batch_size: int | None = None) -> Iterator[dict[str, Any]]:
    """The papers' video-reconstruction proxy task: the first frame is the source and every frame of the same
    video drives it with its own, absolute motion (FOMM Sec. 4, as the official ``reconstruction.py``).

    Args:
        model: any family's model (in eval mode).
        video_frames: (3, H, W) float frames in [0, 1], consumed lazily.
        batch_size: frames rendered per forward pass.

    Yields:
        The items of :func:`animate` (absolute mode), plus ``l1``: the mean absolute difference between the
        prediction and the frame (a float).
    """
    batch_size = _resolve_batch_size(batch_size, model)
    frames = _fitted(video_frames, model.size)
    first = _first_frame(frames)
    state = _encode(model, first)

    def target(motion: Any) -> Any:
        return model.transfer(state.motion, motion, None, "absolute")

    for item in _render_stream(model, state, itertools.chain([first], frames), target, batch_size):
        item["l1"] = float((item["prediction"] - item["driving"]).abs().mean())
        yield item


def find_best_frame(model: AnimationModel, source_image: torch.Tensor, driving_frames: Iterable[torch.Tensor], *,
                    batch_size: int | None = None, landmarks: Landmarker | None = None) -> int:
    """Index of the driving frame whose pose best matches the source's (FOMM's ``find_best_frame``: poses
    centred and divided by the square root of their convex-hull area, smallest squared difference, first on ties).

    Args:
        model: the model whose keypoints define poses (unless ``landmarks`` is given).
        source_image: (3, H, W) or (1, 3, H, W) float in [0, 1].
        driving_frames: (3, H, W) frames, consumed once.
        batch_size, landmarks: as in :func:`animate`.
    """
    batch_size = _resolve_batch_size(batch_size, model)
    state = _encode(model, source_image)
    index, _ = _search_best_frame(model, state, _fitted(driving_frames, model.size), batch_size, landmarks)
    return index


# ------------------------------------------------------------------------------------------------- internals


def _resolve_batch_size(batch_size: int | None, model: AnimationModel) -> int:
    """``batch_size``, or the device's default (:func:`~motiontransfer.inference.runtime.default_batch_size`) for
    None; UserError for anything but a positive integer."""
    if batch_size is None:
        return default_batch_size(model.device, model.size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch size must be a positive integer, got {batch_size!r}")
    return batch_size


def _check_best_frame(best_frame: BestFrame) -> None:
    if best_frame is None or best_frame == "auto":
        return
    if isinstance(best_frame, bool) or not isinstance(best_frame, int) or best_frame < 0:
        raise UserError(f"best frame must be 'auto' or a frame number >= 0, got {best_frame!r}")


def _fitted(frames: Iterable[torch.Tensor], size: int) -> Iterator[torch.Tensor]:
    """Lazily bring each (3, H, W) frame to (3, size, size)."""
    return (fit_frame(torch.as_tensor(frame), size) for frame in frames)


def _first_frame(frames: Iterator[torch.Tensor]) -> torch.Tensor:
    try:
        return next(frames)
    except StopIteration:
        raise UserError("the driving video has no frames") from None


def _encode(model: AnimationModel, source_image: torch.Tensor) -> SourceState:
    """The source's state on the model's device, computed once."""
    source = source_image if source_image.dim() == 4 else source_image[None]
    source = fit_frame(source[0], model.size)[None].to(model.device)
    with torch.no_grad():
        return model.encode_source(source)


def _extract(model: AnimationModel, frames: torch.Tensor) -> Any:
    with torch.no_grad():
        return model.extract_motion(frames.to(model.device))


def stack_batches(frames: Iterator[torch.Tensor], batch_size: int) -> Iterator[torch.Tensor]:
    """Stack up to ``batch_size`` (C, H, W) frames at a time into (<= batch_size, C, H, W), pulling no more frames
    than one batch needs."""
    while batch := list(itertools.islice(frames, batch_size)):
        yield torch.stack(batch)


def _driving_motion(model: AnimationModel, frames: Iterator[torch.Tensor], batch_size: int,
                    smooth: MotionSmoother | None) -> Iterator[tuple[torch.Tensor, Any]]:
    """(frames (B, 3, H, W), their Motion) batch by batch, filtered by ``smooth`` when given."""
    stream = ((batch, _extract(model, batch)) for batch in stack_batches(frames, batch_size))
    return stream if smooth is None else smooth(stream)


def _render_stream(model: AnimationModel, state: SourceState, frames: Iterator[torch.Tensor],
                   target: Callable[[Any], Any], batch_size: int,
                   smooth: MotionSmoother | None = None) -> Iterator[dict[str, Any]]:
    """Render ``frames`` batch by batch with motion ``target(driving_motion)``, yielding per-frame CPU items.

    Gradients are disabled per batch, never across a ``yield``, so the caller's code is not affected (and the
    items are ordinary tensors, unlike ``inference_mode`` ones, so callers may modify them in place).
    """
    source = state.image[0].cpu()
    source_keypoints = model.motion_keypoints(state.motion)[0].cpu()
    index = 0
    for batch, motion in _driving_motion(model, frames, batch_size, smooth):
        with torch.no_grad():
            target_motion = target(motion)
            out = model.render(state, target_motion)
            out = {key: value.cpu() for key, value in out.items()}
            driving_keypoints = model.motion_keypoints(motion).cpu()
            keypoints = model.motion_keypoints(target_motion).cpu()
        for i in range(len(batch)):
            yield {"index": index, "source": source, "driving": batch[i], "source_keypoints": source_keypoints,
                   "driving_keypoints": driving_keypoints[i], "keypoints": keypoints[i],
                   **{key: value[i] for key, value in out.items()}}
            index += 1


def _is_reiterable(frames: Iterable[torch.Tensor]) -> bool:
    return iter(frames) is not frames


def _initial_motion(model: AnimationModel, state: SourceState, driving_frames: Iterable[torch.Tensor],
                    best_frame: BestFrame, batch_size: int, landmarks: Landmarker | None) -> tuple[int, Any]:
    """(index, motion) of the initial driving frame (``best_frame`` already checked); motion None means
    "frame 0, take it from the stream"."""
    if best_frame is None or best_frame == 0:
        return 0, None
    if not _is_reiterable(driving_frames):
        raise UserError("a best frame other than 0 needs a driving video that can be read twice (a path, a list "
                        "or an array), not a one-shot iterator")
    frames = _fitted(driving_frames, model.size)
    if best_frame == "auto":
        return _search_best_frame(model, state, frames, batch_size, landmarks)
    assert isinstance(best_frame, int)
    frame = next(itertools.islice(frames, best_frame, None), None)
    if frame is None:
        raise UserError(f"best frame {best_frame} is beyond the end of the driving video")
    return best_frame, _extract(model, frame[None])


def _search_best_frame(model: AnimationModel, state: SourceState, frames: Iterator[torch.Tensor], batch_size: int,
                       landmarks: Landmarker | None) -> tuple[int, Any]:
    """Pass 1 of best-frame animation: (index, motion) of the driving frame closest in normalised pose."""
    if landmarks is None:
        points = model.motion_keypoints(state.motion)[0]
        if len(points) < 3:
            raise CapabilityError(f"best frame: a {model.family} model has no keypoints to compare poses with; use a "
                                  "landmark detector (", Term("landmarks"), " dlib for faces)")
        reference = normalize_pose(points)
    else:
        points = landmarks(state.image[0].cpu())
        if points is None:
            raise UserError("best frame: no landmarks were found in the source image")
        reference = normalize_pose(points)
    best_index, best_motion, best_distance, start = 0, None, float("inf"), 0
    for batch in stack_batches(frames, batch_size):
        motion = _extract(model, batch)
        for i, pose in enumerate(_poses(model, motion, batch, landmarks)):
            distance = pose_distance(reference, pose)
            if distance < best_distance or best_motion is None:
                best_index, best_distance, best_motion = start + i, distance, motion.select(slice(i, i + 1))
        start += len(batch)
    if best_motion is None:
        raise UserError("the driving video has no frames")
    return best_index, best_motion


def _poses(model: AnimationModel, motion: Any, batch: torch.Tensor, landmarks: Landmarker | None) -> list[np.ndarray]:
    """Normalised poses of a batch: the model's keypoints, or the landmarks (NaN where none were found)."""
    if landmarks is None:
        return [normalize_pose(points) for points in model.motion_keypoints(motion).cpu()]
    found = [landmarks(frame) for frame in batch]
    return [np.full((1, 2), np.nan) if points is None else normalize_pose(points) for points in found]
