"""Real-face evaluator for AKD, MKR and AED: dlib's 68 landmarks and its 128-d face recognition embedding.

Needs the ``eval`` extra (``pip install -e ".[eval]"``: dlib-bin + face_recognition_models). The face is found by
dlib's HOG frontal-face detector; frames whose shorter side is under 512 px are upsampled once for detection (see
:func:`motiontransfer.inference.landmarks.default_upsample`), so faces down to about 40 px are found. When several
faces are found, the best-scoring one is used.

A frame where no face is found gives NaN landmarks / embedding and an all-False ``detected`` row, the convention of
:mod:`motiontransfer.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from motiontransfer.evaluation import metrics
from motiontransfer.inference.landmarks import (
    FACE_RECOGNITION_RESNET,
    DlibFaceLandmarker,
    shape_to_array,
)
from motiontransfer.pretrained import dlib_model_file
from motiontransfer.video.io import to_uint8_hwc

NUM_LANDMARKS = 68
EMBEDDING_SIZE = 128

Frame = torch.Tensor | np.ndarray


@dataclass(frozen=True)
class FaceTrack:
    """Per-frame face measurements of a video of T frames.

    Attributes:
        landmarks: (T, 68, 2) float64 (x, y) pixels, NaN where no face was found.
        detected: (T, 68) bool, all False where no face was found.
        embeddings: (T, 128) float64, NaN rows where no face was found.
    """

    landmarks: np.ndarray
    detected: np.ndarray
    embeddings: np.ndarray


class DlibFaceEvaluator:
    """dlib face landmarks (AKD / MKR) and identity embeddings (AED).

    Frames are (3, H, W) float tensors in [0, 1] or (H, W, 3) uint8 arrays; batches are (B, 3, H, W) tensors.
    It also fits the ``KeypointEvaluator`` / ``IdentityEvaluator`` protocols of
    :mod:`motiontransfer.evaluation.protocols` (``detect`` / ``embed`` on batches).

    Args:
        upsample: detector upsampling (each time 2x); None: once for frames under 512 px, else not.
        num_jitters: dlib's embedding jitters (0: one pass, deterministic; more is slower and slightly more robust).

    Raises:
        UserError: dlib or the face_recognition_models data are not installed.
    """

    name = "dlib 68 landmarks + face recognition resnet v1"

    def __init__(self, upsample: int | None = None, num_jitters: int = 0) -> None:
        self.landmarker = DlibFaceLandmarker(upsample=upsample)
        self.recognizer = self.landmarker.dlib.face_recognition_model_v1(str(dlib_model_file(FACE_RECOGNITION_RESNET)))
        self.num_jitters = num_jitters

    def analyse(self, frame: Frame) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Landmarks and embedding of one frame from a single detection.

        Returns:
            ((68, 2) float64 pixel (x, y) landmarks, (128,) float64 embedding), or (None, None) when no face is found.
        """
        image = to_uint8_hwc(frame)
        shape = self.landmarker.find_face(image)
        if shape is None:
            return None, None
        descriptor = self.recognizer.compute_face_descriptor(image, shape, self.num_jitters)
        return shape_to_array(shape), np.asarray(descriptor, dtype=np.float64)

    def landmarks(self, frame: Frame) -> np.ndarray | None:
        """(68, 2) float64 (x, y) pixel landmarks of the face in ``frame``, or None when no face is found."""
        return self.landmarker(frame)

    def embedding(self, frame: Frame) -> np.ndarray | None:
        """(128,) float64 identity embedding of the face in ``frame``, or None when no face is found. Embeddings of
        the same person are typically closer than 0.6 (Euclidean), of different people farther."""
        return self.analyse(frame)[1]

    def track(self, frames: Iterable[Frame]) -> FaceTrack:
        """Landmarks and embeddings of every frame of a video (see :class:`FaceTrack`)."""
        points, embeddings = [], []
        for frame in frames:
            landmarks, embedding = self.analyse(frame)
            points.append(np.full((NUM_LANDMARKS, 2), np.nan) if landmarks is None else landmarks)
            embeddings.append(np.full(EMBEDDING_SIZE, np.nan) if embedding is None else embedding)
        landmarks_array = np.stack(points) if points else np.zeros((0, NUM_LANDMARKS, 2))
        embeddings_array = np.stack(embeddings) if embeddings else np.zeros((0, EMBEDDING_SIZE))
        detected = np.isfinite(landmarks_array).all(axis=-1)
        return FaceTrack(landmarks_array, detected, embeddings_array)

    def detect(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Batch landmarks: (B, 3, H, W) in [0, 1] -> ((B, 68, 2) pixels, NaN where no face; (B, 68) bool)."""
        points = [self.landmarks(frame) for frame in frames]
        array = np.stack([np.full((NUM_LANDMARKS, 2), np.nan) if p is None else p for p in points]) if points \
            else np.zeros((0, NUM_LANDMARKS, 2))
        return array, np.isfinite(array).all(axis=-1)

    def embed(self, frames: torch.Tensor) -> np.ndarray:
        """Batch embeddings: (B, 3, H, W) in [0, 1] -> (B, 128), NaN rows where no face is found."""
        rows = [self.embedding(frame) for frame in frames]
        return np.stack([np.full(EMBEDDING_SIZE, np.nan) if r is None else r for r in rows]) if rows \
            else np.zeros((0, EMBEDDING_SIZE))


def face_video_metrics(generated: Iterable[Frame], ground_truth: Iterable[Frame],
                       evaluator: DlibFaceEvaluator | None = None) -> dict[str, float]:
    """AKD, MKR and AED of a generated video against its ground truth, frame by frame.

    Args:
        generated, ground_truth: frames of the same length T ((3, H, W) float in [0, 1] or (H, W, 3) uint8).
        evaluator: a :class:`DlibFaceEvaluator` (created when None; loading the models takes about a second).

    Returns:
        ``{"akd": pixels, "mkr": fraction, "aed": embedding distance}``; AKD / AED are NaN when no frame has a face in
        both videos, MKR is NaN when the ground truth has no face at all.

    Raises:
        ValueError: the videos differ in length.
    """
    evaluator = evaluator or DlibFaceEvaluator()
    predicted, true = evaluator.track(generated), evaluator.track(ground_truth)
    if len(predicted.detected) != len(true.detected):
        raise ValueError(f"generated ({len(predicted.detected)}) and ground-truth ({len(true.detected)}) videos "
                         "differ in length")
    akd = metrics.average_keypoint_distance(predicted.landmarks, true.landmarks, predicted.detected, true.detected)
    return {
        "akd": akd,
        "mkr": metrics.missing_keypoint_rate(predicted.detected, true.detected),
        "aed": metrics.average_euclidean_distance(predicted.embeddings, true.embeddings),
    }
