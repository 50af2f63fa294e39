"""Subject detectors for real frames: faces (dlib's frontal face detector and 68-point shape predictor, the ``eval``
extra) and bodies (mediapipe Pose, the ``body-eval`` extra).

A detector maps an (H, W, 3) uint8 RGB frame to a list of :class:`Detection`: the rectangle of the subject's
landmarks (68 face landmarks, or the visible pose landmarks), a score and the landmarks themselves. Frames whose
longer side exceeds ``max_side`` are searched at a reduced size (as FOMM's crop-video.py does, at 640 px) and the
results scaled back. Each kind also has its square crop around the rectangle (:func:`subject_square`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from motiontransfer.errors import ArgumentError, Term, UserError
from motiontransfer.evaluation.bodies import MediapipePoseEvaluator
from motiontransfer.inference.landmarks import SHAPE_PREDICTOR_68, default_upsample, import_dlib
from motiontransfer.preprocess.boxes import square_around
from motiontransfer.pretrained import dlib_model_file
from motiontransfer.video.io import to_uint8_hwc

SubjectKind = Literal["face", "body"]
SUBJECT_KINDS: tuple[str, ...] = ("face", "body")
DEFAULT_MARGINS = {"face": 0.4, "body": 0.1}
"""Crop margin per kind, a fraction of the subject rectangle's longer side added on each side."""
FACE_LIFT = 0.15
"""Faces: the crop centre sits this fraction of the landmark box's height above its middle (forehead and hair)."""
MAX_DETECTION_SIDE = 640
_BODY_HINT = 'pip install -e ".[body-eval]" (mediapipe 0.10.21; it needs numpy < 2)'

__all__ = [
    "DEFAULT_MARGINS",
    "SUBJECT_KINDS",
    "BodyDetector",
    "Detection",
    "Detector",
    "FaceDetector",
    "check_kind",
    "import_mediapipe",
    "make_detector",
    "subject_square",
]


@dataclass(frozen=True)
class Detection:
    """One subject found in a frame.

    Attributes:
        rect: (4,) float64 ``(x0, y0, x1, y1)``: the bounding rectangle of ``points``, in frame pixels.
        score: the detector's confidence (dlib's detection score; mediapipe: the mean landmark visibility).
        points: (N, 2) float64 landmarks (x, y) in frame pixels (68 for faces, the visible ones of 33 for bodies).
    """

    rect: np.ndarray
    score: float
    points: np.ndarray

    @property
    def area(self) -> float:
        """Area of :attr:`rect` in square pixels."""
        return float((self.rect[2] - self.rect[0]) * (self.rect[3] - self.rect[1]))


class Detector(Protocol):
    """Frame (H, W, 3) uint8 RGB -> the subjects found in it."""

    kind: SubjectKind

    def __call__(self, image: np.ndarray) -> list[Detection]: ...


def check_kind(kind: str) -> SubjectKind:
    """Validate a subject kind (``face`` or ``body``)."""
    if kind not in SUBJECT_KINDS:
        raise UserError(f"unknown subject kind {kind!r}; use {' or '.join(SUBJECT_KINDS)}")
    return kind  # type: ignore[return-value]


def subject_square(detection: Detection | np.ndarray, kind: SubjectKind, margin: float | None = None) -> np.ndarray:
    """The square crop ``(cx, cy, side)`` (float64, frame pixels) around a detection or rectangle: ``margin``
    (default :data:`DEFAULT_MARGINS`) of the longer side on each side; faces are centred :data:`FACE_LIFT` higher."""
    rect = detection.rect if isinstance(detection, Detection) else np.asarray(detection, dtype=np.float64)
    margin = DEFAULT_MARGINS[kind] if margin is None else margin
    return square_around(rect, margin, FACE_LIFT if kind == "face" else 0.0)


def _reduced(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk so that its longer side is at most ``max_side`` (antialiased), and the factor from the
    reduced image's pixels back to the original's (1.0 when unchanged)."""
    height, width = image.shape[:2]
    longer = max(height, width)
    if longer <= max_side:
        return image, 1.0
    scale = longer / max_side
    size = (max(1, round(height / scale)), max(1, round(width / scale)))
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    small = F.interpolate(tensor, size=size, mode="bilinear", antialias=True, align_corners=False)
    array = small[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    return np.ascontiguousarray(array), width / size[1]


def _from_points(points: np.ndarray, score: float) -> Detection:
    """A detection whose rectangle bounds ``points`` (N, 2)."""
    rect = np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float64)
    return Detection(rect, float(score), points.astype(np.float64))


class FaceDetector:
    """Faces: dlib's HOG frontal face detector, then the 68-point shape predictor on each face found.

    Args:
        max_side: frames with a longer side are searched at this size (results in full-frame pixels).
        upsample: dlib's upsampling count (None: :func:`~motiontransfer.inference.landmarks.default_upsample` of
            the searched size, 1 below 512 px, which finds faces down to about 40 px).

    Raises:
        UserError: dlib or the face_recognition_models data are not installed (names the ``eval`` extra).
    """

    kind: SubjectKind = "face"

    def __init__(self, max_side: int = MAX_DETECTION_SIDE, upsample: int | None = None) -> None:
        dlib = import_dlib()
        self.max_side = max_side
        self.upsample = upsample
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(dlib_model_file(SHAPE_PREDICTOR_68)))

    def __call__(self, image: np.ndarray) -> list[Detection]:
        """(H, W, 3) uint8 RGB frame -> one detection per face (68 landmarks each), best score first."""
        small, scale = _reduced(image, self.max_side)
        upsample = self.upsample if self.upsample is not None else default_upsample(*small.shape[:2])
        rects, scores, _ = self.detector.run(small, upsample, 0.0)
        found = []
        for rect, score in sorted(zip(rects, scores, strict=True), key=lambda pair: -pair[1]):
            shape = self.predictor(small, rect)
            points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            found.append(_from_points((points + 0.5) * scale - 0.5, score))
        return found


def import_mediapipe() -> Any:
    """Import mediapipe for body detection.

    Raises:
        UserError: mediapipe is not installed (names the ``body-eval`` extra).
    """
    try:
        return importlib.import_module("mediapipe")
    except ImportError:
        raise ArgumentError("body detection (", Term("kind"), " body, ", Term("crop"), f" body) needs mediapipe; "
                            f"{_BODY_HINT}") from None


class BodyDetector:
    """Bodies: mediapipe Pose (one person per frame; the ``body-eval`` extra), the rectangle of its landmarks that
    are visible (visibility above ``visibility_threshold``; at least 4 of them, else no body).

    Raises:
        UserError: mediapipe is not installed (names the ``body-eval`` extra).
    """

    kind: SubjectKind = "body"

    def __init__(self, max_side: int = MAX_DETECTION_SIDE, visibility_threshold: float = 0.5) -> None:
        import_mediapipe()
        self.max_side = max_side
        self.pose = MediapipePoseEvaluator(visibility_threshold=visibility_threshold)

    def __call__(self, image: np.ndarray) -> list[Detection]:
        """(H, W, 3) uint8 RGB frame -> [the body] or []."""
        small, scale = _reduced(image, self.max_side)
        points, found = self.pose.landmarks(small)
        if found.sum() < 4:
            return []
        return [_from_points((points[found] + 0.5) * scale - 0.5, float(found.mean()))]


def make_detector(kind: str) -> Detector:
    """The detector of a subject kind: :class:`FaceDetector` or :class:`BodyDetector`.

    Raises:
        UserError: an unknown kind, or the extra it needs is not installed.
    """
    return FaceDetector() if check_kind(kind) == "face" else BodyDetector()


def detect_frame(detector: Detector, frame: torch.Tensor | np.ndarray) -> list[Detection]:
    """Run ``detector`` on a (3, H, W) float frame in [0, 1] or an (H, W, 3) uint8 image."""
    return detector(to_uint8_hwc(frame))
