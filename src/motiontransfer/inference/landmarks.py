"""Optional pose detectors for best-frame search (FOMM's ``--find_best_frame`` used face_alignment landmarks).

The default is the model's own keypoints (no extra dependency). For faces, dlib's 68-landmark shape predictor can
be used when ``dlib`` and the ``face_recognition_models`` data are installed (the ``eval`` extra:
``pip install -e ".[eval]"``); the .dat files are located without importing ``face_recognition_models`` (which needs
``pkg_resources``). :class:`DlibFaceLandmarker` is also the detector behind the real-face evaluator
(:mod:`motiontransfer.evaluation.faces`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import torch

from motiontransfer.errors import UserError
from motiontransfer.inference.pipeline import Landmarker
from motiontransfer.pretrained import EVAL_EXTRA_HINT, dlib_model_file
from motiontransfer.video.io import to_uint8_hwc

LANDMARKERS = ("model", "dlib")
SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
FACE_RECOGNITION_RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def get_landmarker(name: str) -> Landmarker | None:
    """The pose detector called ``name``: ``model`` (None: the pipeline uses the model's keypoints) or ``dlib``."""
    if name == "model":
        return None
    if name == "dlib":
        return dlib_face_landmarker()
    raise UserError(f"unknown landmark detector {name!r}; use {' or '.join(LANDMARKERS)}")


def import_dlib() -> ModuleType:
    """Import and return the ``dlib`` module.

    Raises:
        UserError: dlib is not installed (names the extra to install).
    """
    try:
        import dlib
    except ImportError:
        raise UserError(f"the dlib face models need dlib; {EVAL_EXTRA_HINT}") from None
    return dlib


def default_upsample(height: int, width: int) -> int:
    """Times dlib's detector upsamples a frame of ``height`` x ``width`` pixels before searching it: 1 when the
    shorter side is under 512 px, else 0.

    dlib's HOG frontal-face detector only finds faces of about 80 x 80 px or more; one upsampling (2x) brings that
    down to about 40 px, which covers the faces of 64-256 px animation frames and of small real clips (the
    176 x 144 carphone clip is not detected at all without it).
    """
    return 1 if min(height, width) < 512 else 0


class DlibFaceLandmarker:
    """dlib's frontal face detector + 68-point shape predictor.

    Calling it with a frame gives the 68 landmarks of the face dlib scores highest (its first detection), or None.

    Args:
        upsample: how many times the detector upsamples the frame (each time 2x) to find small faces; None picks
            :func:`default_upsample` from the frame size.

    Raises:
        UserError: dlib or the face_recognition_models data are not installed.
    """

    def __init__(self, upsample: int | None = None) -> None:
        self.dlib = import_dlib()
        self.upsample = upsample
        self.detector = self.dlib.get_frontal_face_detector()
        self.predictor = self.dlib.shape_predictor(str(dlib_model_file(SHAPE_PREDICTOR_68)))

    def find_face(self, image: np.ndarray) -> Any | None:
        """The 68-point ``dlib.full_object_detection`` of the best-scoring face in an (H, W, 3) uint8 image, or
        None when no face is found."""
        upsample = self.upsample if self.upsample is not None else default_upsample(*image.shape[:2])
        faces = self.detector(image, upsample)
        if len(faces) == 0:
            return None
        return self.predictor(image, faces[0])

    def __call__(self, frame: torch.Tensor | np.ndarray) -> np.ndarray | None:
        """Landmarks of a frame: (3, H, W) float in [0, 1] or (H, W, 3) uint8 -> (68, 2) float64 (x, y) pixel
        coordinates, or None when no face is found."""
        shape = self.find_face(to_uint8_hwc(frame))
        return None if shape is None else shape_to_array(shape)


def shape_to_array(shape: Any) -> np.ndarray:
    """A ``dlib.full_object_detection`` -> (N, 2) float64 array of (x, y) pixel coordinates."""
    return np.asarray([[point.x, point.y] for point in shape.parts()], dtype=np.float64)


def dlib_face_landmarker() -> Landmarker:
    """dlib's frontal face detector + 68-point shape predictor: frame (3, H, W) -> (68, 2) pixel points of the
    first face found, or None. The detector upsamples every frame once (finds faces down to about 40 px).

    Raises:
        UserError: dlib or the face_recognition_models data are not installed.
    """
    return DlibFaceLandmarker(upsample=1)
