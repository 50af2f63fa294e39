"""Tracking detections across frames and turning a track into a smooth sequence of square crop boxes.

Association is by overlap: each open track is continued by the detection of the next frame that overlaps its last
detection most (intersection over union at least ``iou_threshold``; greedy, best pairs first, each detection used
once). A detection that continues no track starts a new one. A track ends when it has gone unmatched for more than
``max_gap`` frames; a subject that jumps (a cut, another person in another place) overlaps too little and so starts
a new track. Missed frames inside a track (at most ``max_gap`` in a row) get boxes interpolated linearly between
their neighbours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from motiontransfer.errors import UserError
from motiontransfer.ops.temporal import gaussian_smooth
from motiontransfer.preprocess.boxes import PixelBox, iou
from motiontransfer.preprocess.detect import Detection, SubjectKind, subject_square

DEFAULT_IOU_THRESHOLD = 0.3
DEFAULT_MAX_GAP = 5
DEFAULT_BOX_SIGMA = 3.0
"""Standard deviation (frames) of the centred Gaussian that smooths crop boxes over time."""

__all__ = [
    "DEFAULT_BOX_SIGMA",
    "DEFAULT_IOU_THRESHOLD",
    "DEFAULT_MAX_GAP",
    "Track",
    "Tracker",
    "track_boxes",
    "track_detections",
]


@dataclass
class Track:
    """One subject followed over consecutive frames.

    Attributes:
        start: index of its first frame (a detected one).
        detections: one entry per frame ``start .. end - 1``: the detection, or None where the subject was missed
            (never the first or the last entry).
        misses: frames since the last detection (while the track is open).
    """

    start: int
    detections: list[Detection | None] = field(default_factory=list)
    misses: int = 0

    @property
    def end(self) -> int:
        """One past the index of its last frame (its last detection)."""
        return self.start + len(self.detections)

    def __len__(self) -> int:
        return len(self.detections)

    @property
    def num_detected(self) -> int:
        """Frames in which the subject was detected."""
        return sum(detection is not None for detection in self.detections)

    @property
    def last(self) -> Detection:
        """Its latest detection."""
        return next(d for d in reversed(self.detections) if d is not None)

    def rects(self) -> np.ndarray:
        """(len, 4) float64 rectangles ``(x0, y0, x1, y1)`` of every frame, missed frames interpolated linearly."""
        known = [i for i, d in enumerate(self.detections) if d is not None]
        values = np.stack([self.detections[i].rect for i in known])  # type: ignore[union-attr]
        steps = np.arange(len(self.detections))
        return np.stack([np.interp(steps, known, values[:, j]) for j in range(4)], axis=1)


class Tracker:
    """Streaming association of per-frame detections into tracks (see the module docstring).

    Usage::

        tracker = Tracker()
        for index, detections in enumerate(per_frame):
            tracker.update(index, detections)
        tracks = tracker.finish()
    """

    def __init__(self, iou_threshold: float = DEFAULT_IOU_THRESHOLD, max_gap: int = DEFAULT_MAX_GAP) -> None:
        if not 0 < iou_threshold <= 1:
            raise UserError(f"the IoU threshold must be in (0, 1], got {iou_threshold}")
        if max_gap < 0:
            raise UserError(f"the largest gap must be >= 0 frames, got {max_gap}")
        self.iou_threshold = iou_threshold
        self.max_gap = max_gap
        self.open: list[Track] = []
        self.closed: list[Track] = []

    def update(self, index: int, detections: list[Detection]) -> None:
        """Take the detections of frame ``index`` (frames in order, one call each)."""
        pairs = sorted(((iou(track.last.rect, detection.rect), t, d) for t, track in enumerate(self.open)
                        for d, detection in enumerate(detections)), key=lambda pair: -pair[0])
        matched_tracks: set[int] = set()
        matched_detections: set[int] = set()
        for overlap, t, d in pairs:
            if overlap < self.iou_threshold:
                break
            if t in matched_tracks or d in matched_detections:
                continue
            track = self.open[t]
            track.detections.extend([None] * track.misses + [detections[d]])
            track.misses = 0
            matched_tracks.add(t)
            matched_detections.add(d)
        still_open = []
        for t, track in enumerate(self.open):
            if t not in matched_tracks:
                track.misses += 1
            (self.closed if track.misses > self.max_gap else still_open).append(track)
        self.open = still_open
        self.open += [Track(index, [detection]) for d, detection in enumerate(detections)
                      if d not in matched_detections]

    def finish(self) -> list[Track]:
        """All tracks, ordered by first frame (then by length, longest first)."""
        tracks, self.open, self.closed = self.closed + self.open, [], []
        return sorted(tracks, key=lambda track: (track.start, -len(track)))


def track_detections(per_frame: Iterable[list[Detection]], iou_threshold: float = DEFAULT_IOU_THRESHOLD,
                     max_gap: int = DEFAULT_MAX_GAP) -> list[Track]:
    """Tracks of a whole video's detections (one list per frame, in order); see :class:`Tracker`."""
    tracker = Tracker(iou_threshold, max_gap)
    for index, detections in enumerate(per_frame):
        tracker.update(index, detections)
    return tracker.finish()


def track_boxes(track: Track, kind: SubjectKind, margin: float | None = None,
                sigma: float = DEFAULT_BOX_SIGMA) -> list[PixelBox]:
    """The crop box of every frame of ``track``: the square around each (interpolated) rectangle
    (:func:`~motiontransfer.preprocess.detect.subject_square`), its centre and side smoothed over time by a
    centred Gaussian of ``sigma`` frames (no lag; truncated windows at the ends), rounded to whole pixels.

    Returns:
        ``len(track)`` boxes, for frames ``track.start .. track.end - 1``.
    """
    squares = [subject_square(rect, kind, margin) for rect in track.rects()]
    return [PixelBox.from_square(square) for square in gaussian_smooth(squares, sigma, ends="truncate")]
