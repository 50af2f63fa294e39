"""Optional pose detectors for best-frame search (FOMM's ``--find_best_frame`` used face_alignment landmarks).

The default is the model's own keypoints (no extra dependency). For faces, dlib's 68-landmark shape predictor can
be used when ``dlib`` and the ``face_recognition_models`` data are installed (``pip install motiontransfer[eval]``);
the .dat file is located without importing ``face_recognition_models`` (which needs ``pkg_resources``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from motiontransfer.data.video_io import to_uint8_hwc
from motiontransfer.errors import UserError
from motiontransfer.inference.pipeline import Landmarker

LANDMARKERS = ("model", "dlib")
_DLIB_MODEL = "models/shape_predictor_68_face_landmarks.dat"


def get_landmarker(name: str) -> Landmarker | None:
    """The pose detector called ``name``: ``model`` (None: the pipeline uses the model's keypoints) or ``dlib``."""
    if name == "model":
        return None
    if name == "dlib":
        return dlib_face_landmarker()
    raise UserError(f"unknown landmark detector {name!r}; use {' or '.join(LANDMARKERS)}")


def dlib_face_landmarker() -> Landmarker:
    """dlib's frontal face detector + 68-point shape predictor: frame (3, H, W) -> (68, 2) pixel points of the
    first face found, or None.

    Raises:
        UserError: dlib or the face_recognition_models data are not installed.
    """
    try:
        import dlib
    except ImportError:
        raise UserError("dlib landmarks need dlib: pip install 'motiontransfer[eval]'") from None
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    model_path = next((Path(p) / _DLIB_MODEL for p in locations if (Path(p) / _DLIB_MODEL).is_file()), None)
    if model_path is None:
        raise UserError("dlib landmarks need the face_recognition_models data: pip install 'motiontransfer[eval]'")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path))

    def landmarks(frame: torch.Tensor) -> np.ndarray | None:
        image = to_uint8_hwc(frame)
        faces = detector(image, 1)
        if len(faces) == 0:
            return None
        shape = predictor(image, faces[0])
        return np.asarray([[point.x, point.y] for point in shape.parts()], dtype=np.float64)

    return landmarks
