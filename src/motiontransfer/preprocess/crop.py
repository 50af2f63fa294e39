"""Crop a real video into square clips of one subject each, in FOMM's dataset layout (``motiontransfer crop``).

Two streaming passes over the video: pass 1 detects the subject in every frame and tracks it
(:mod:`motiontransfer.preprocess.track`); pass 2 decodes the video again and writes, for every track of at least
``min_frames`` frames, the square crop of each of its frames (box smoothed over time) at ``size`` x ``size`` to
``OUT/<video stem>#<k>.mp4`` (``OUT/<split>/...`` with a split), with ``<video stem>#<k>.json`` next to it: the crop
box of every frame in the video's pixels and the raw detection. ``<video stem>`` is the clip's id, so a training
epoch with ``id_sampling`` visits each source video once. Only boxes are kept between the passes, never frames;
every file is written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from motiontransfer.errors import ArgumentError, Term, UserError
from motiontransfer.fileio import atomic_write_text
from motiontransfer.preprocess.boxes import PixelBox, crop_square
from motiontransfer.preprocess.detect import DEFAULT_MARGINS, Detector, check_kind, make_detector
from motiontransfer.preprocess.track import (
    DEFAULT_BOX_SIGMA,
    DEFAULT_IOU_THRESHOLD,
    DEFAULT_MAX_GAP,
    Track,
    Tracker,
    track_boxes,
)
from motiontransfer.video.io import DEFAULT_FPS, VideoReader, VideoWriter, to_uint8_hwc

DEFAULT_CLIP_SIZE = 256
DEFAULT_MIN_FRAMES = 30
SPLITS = ("train", "test")
Progress = Callable[[Iterable[Any], "int | None"], Iterable[Any]]
"""Wraps a frame stream, e.g. with a progress bar: (frames, total frame count or None) -> frames."""

__all__ = ["Clip", "CropReport", "TrackedVideo", "box_centre_motion", "crop_video", "track_frames", "track_video"]


@dataclass(frozen=True)
class TrackedVideo:
    """Pass 1 of a video: its tracks (detections without landmarks) and detection counts.

    Attributes:
        name: the video, for messages (its path).
        num_frames: frames decoded.
        detected_frames: frames in which at least one subject was found.
        fps: the video's frame rate (:data:`DEFAULT_FPS` when unknown).
        tracks: every track, ordered by first frame.
    """

    name: str
    num_frames: int
    detected_frames: int
    fps: float
    tracks: list[Track]

    @property
    def detection_rate(self) -> float:
        """Fraction of frames with a subject found."""
        return self.detected_frames / self.num_frames if self.num_frames else 0.0

    def longest(self) -> Track | None:
        """The track with the most frames (the first of equals), or None without any."""
        return max(self.tracks, key=len, default=None)


@dataclass(frozen=True)
class Clip:
    """One written clip: the video, its boxes file, its first frame in the source video, length, frames detected and
    the mean distance (pixels) its crop box centre moves from one frame to the next."""

    path: Path
    boxes_path: Path
    start: int
    num_frames: int
    num_detected: int
    box_motion: float


@dataclass(frozen=True)
class CropReport:
    """What :func:`crop_video` found and wrote: the pass-1 result, the clips, and the (start, length) of the tracks
    dropped for being shorter than ``min_frames``."""

    tracked: TrackedVideo
    clips: list[Clip]
    dropped: list[tuple[int, int]]


def track_frames(frames: Iterable[Any], detector: Detector, *, name: str = "the video", fps: float = DEFAULT_FPS,
                 iou_threshold: float = DEFAULT_IOU_THRESHOLD, max_gap: int = DEFAULT_MAX_GAP) -> TrackedVideo:
    """Detect and track the subjects of a stream of frames (pass 1), keeping only their rectangles.

    Args:
        frames: (3, H, W) float frames in [0, 1] (or (H, W, 3) uint8), consumed once.
        detector: e.g. :func:`~motiontransfer.preprocess.detect.make_detector` ``("face")``.
        name, fps: the video's name for messages and its frame rate, recorded in the result.
        iou_threshold, max_gap: see :class:`~motiontransfer.preprocess.track.Tracker`.

    Raises:
        UserError: no frames.
    """
    tracker = Tracker(iou_threshold, max_gap)
    count = detected = 0
    for index, frame in enumerate(frames):
        found = [replace(d, points=d.points[:0]) for d in detector(to_uint8_hwc(frame))]
        tracker.update(index, found)
        count, detected = count + 1, detected + bool(found)
    if count == 0:
        raise UserError(f"{name}: the video has no frames")
    return TrackedVideo(name, count, detected, fps, tracker.finish())


def track_video(video: str | Path, detector: Detector, *, iou_threshold: float = DEFAULT_IOU_THRESHOLD,
                max_gap: int = DEFAULT_MAX_GAP, progress: Progress | None = None) -> TrackedVideo:
    """:func:`track_frames` of a video file or frame folder, streamed; ``progress`` wraps the frame stream."""
    with VideoReader(video) as reader:
        frames: Iterable[Any] = reader if progress is None else progress(reader, reader.info.num_frames)
        return track_frames(frames, detector, name=str(video), fps=reader.info.fps or DEFAULT_FPS,
                            iou_threshold=iou_threshold, max_gap=max_gap)


def _check_crop_options(size: int, margin: float | None, min_frames: int, split: str | None) -> None:
    if size < 16:
        raise ArgumentError(Term("size"), f" must be at least 16, got {size}")
    if margin is not None and not margin >= 0:
        raise ArgumentError(Term("margin"), f" must be >= 0, got {margin}")
    if min_frames < 1:
        raise ArgumentError(Term("min_frames"), f" must be at least 1, got {min_frames}")
    if split is not None and split not in SPLITS:
        raise ArgumentError(Term("split"), f" must be train or test, got {split!r}")


def _kept_tracks(tracked: TrackedVideo, kind: str, min_frames: int) -> tuple[list[Track], list[tuple[int, int]]]:
    """The tracks of at least ``min_frames`` frames, and (start, length) of the others.

    Raises:
        UserError: no subject in any frame, or no track long enough.
    """
    if not tracked.tracks:
        raise UserError(f"{tracked.name}: no {kind} found in any of its {tracked.num_frames} frames")
    kept = [track for track in tracked.tracks if len(track) >= min_frames]
    if not kept:
        longest = len(tracked.longest() or [])
        raise ArgumentError(f"{tracked.name}: the longest {kind} track has {longest} frames, fewer than ",
                            Term("min_frames"), f" {min_frames}; nothing was written")
    return kept, [(track.start, len(track)) for track in tracked.tracks if len(track) < min_frames]


def _boxes_json(tracked: TrackedVideo, track: Track, boxes: list[PixelBox], name: str, kind: str, size: int,
                margin: float) -> str:
    """The JSON sidecar of one clip."""
    detections = [None if d is None else [round(float(v), 2) for v in d.rect] for d in track.detections]
    return json.dumps({
        "video": tracked.name, "clip": name, "kind": kind, "size": size, "margin": margin,
        "fps": tracked.fps, "start_frame": track.start, "num_frames": len(track),
        "boxes": [box.as_list() for box in boxes], "detections": detections,
        "box_format": "boxes: [left, top, side] of the square crop in the video's pixels (it may reach past the "
                      "frame; edge pixels repeat); detections: [x0, y0, x1, y1] of the landmarks or null",
    })


def crop_video(video: str | Path, out: str | Path, *, kind: str = "face", size: int = DEFAULT_CLIP_SIZE,
               margin: float | None = None, min_frames: int = DEFAULT_MIN_FRAMES, split: str | None = None,
               box_sigma: float = DEFAULT_BOX_SIGMA, iou_threshold: float = DEFAULT_IOU_THRESHOLD,
               max_gap: int = DEFAULT_MAX_GAP, detector: Detector | None = None,
               progress: Progress | None = None) -> CropReport:
    """Cut ``video`` into square clips of one tracked subject each (see the module docstring).

    Args:
        video: a video file or frame folder.
        out: the dataset folder; clips go to ``out`` or, with ``split``, to ``out/<split>``.
        kind: ``face`` (dlib, the ``eval`` extra) or ``body`` (mediapipe, the ``body-eval`` extra).
        size: side of the written clips in pixels.
        margin: around the subject, a fraction of its size on each side (default
            :data:`~motiontransfer.preprocess.detect.DEFAULT_MARGINS`).
        min_frames: tracks with fewer frames are dropped.
        split: ``train``, ``test`` or None.
        box_sigma: temporal smoothing of the boxes (frames).
        iou_threshold, max_gap: tracking (see :class:`~motiontransfer.preprocess.track.Tracker`).
        detector: a detector to use instead of the kind's default.
        progress: wraps each pass's frame stream (a progress bar).

    Returns:
        A :class:`CropReport`.

    Raises:
        UserError: bad options, a missing extra, an unreadable video, no subject in any frame, or no track of
            ``min_frames`` frames (nothing is written then).
    """
    kind = check_kind(kind)
    _check_crop_options(size, margin, min_frames, split)
    margin = DEFAULT_MARGINS[kind] if margin is None else float(margin)
    tracked = track_video(video, detector or make_detector(kind), iou_threshold=iou_threshold, max_gap=max_gap,
                          progress=progress)
    kept, dropped = _kept_tracks(tracked, kind, min_frames)
    folder = Path(out) / split if split is not None else Path(out)
    names = [f"{Path(video).stem}#{k:03d}" for k in range(len(kept))]
    plans = [track_boxes(track, kind, margin, box_sigma) for track in kept]
    _write_clips(Path(video), tracked, kept, plans, [folder / f"{name}.mp4" for name in names], size, progress)
    clips = []
    for name, track, boxes in zip(names, kept, plans, strict=True):
        boxes_path = atomic_write_text(folder / f"{name}.json",
                                       _boxes_json(tracked, track, boxes, name, kind, size, margin))
        clips.append(Clip(folder / f"{name}.mp4", boxes_path, track.start, len(track), track.num_detected,
                          box_centre_motion(boxes)))
    return CropReport(tracked, clips, dropped)


def _write_clips(video: Path, tracked: TrackedVideo, tracks: list[Track], plans: list[list[PixelBox]],
                 paths: list[Path], size: int, progress: Progress | None) -> None:
    """Pass 2: decode the video again and stream each track's crops into its clip (a clip's file appears when its
    last frame is written; on an error every unfinished clip is discarded)."""
    writers: dict[int, VideoWriter] = {}
    try:
        with VideoReader(video) as reader:
            frames: Iterable[Any] = reader if progress is None else progress(reader, tracked.num_frames)
            for index, frame in enumerate(frames):
                for k, track in enumerate(tracks):
                    if not track.start <= index < track.end:
                        continue
                    writer = writers.setdefault(k, VideoWriter(paths[k], fps=tracked.fps))
                    writer.write(crop_square(frame, plans[k][index - track.start], size))
                    if index == track.end - 1:
                        writers.pop(k).close()
        if writers:
            raise UserError(f"{video}: the video ended early on its second reading")
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise


def box_centre_motion(boxes: list[PixelBox]) -> float:
    """Mean distance (pixels) the crop box centre moves from one frame to the next; 0 for fewer than 2 boxes."""
    if len(boxes) < 2:
        return 0.0
    centres = np.array([box.centre for box in boxes])
    return float(np.linalg.norm(np.diff(centres, axis=0), axis=1).mean())
