"""Real videos: detect, crop and track subjects, paste animated crops back, smooth motion over time.

* :func:`crop_video` (``motiontransfer crop``): square clips of each tracked face or body of a video, in FOMM's
  dataset layout, with the per-frame boxes (:mod:`~motiontransfer.preprocess.crop`).
* :func:`animate_cropped` / :func:`animate_video_cropped` (``animate --crop face|body``): animate the subject's crop
  of a photo with the tracked subject of a driving video and paste the result back into the photo
  (:mod:`~motiontransfer.preprocess.animate`).
* :mod:`~motiontransfer.preprocess.detect` (dlib faces, mediapipe bodies), :mod:`~motiontransfer.preprocess.track`
  (IoU tracking, smoothed boxes), :mod:`~motiontransfer.preprocess.boxes` (crop with padding, feathered paste-back),
  :mod:`~motiontransfer.preprocess.temporal` (centred Gaussian and One-Euro filters, jitter and lag measures).

The names below are imported on first use, so importing one submodule stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "crop_video": "crop",
    "track_video": "crop",
    "CropReport": "crop",
    "animate_cropped": "animate",
    "animate_video_cropped": "animate",
    "make_detector": "detect",
    "paste_back": "boxes",
    "crop_square": "boxes",
    "PixelBox": "boxes",
    "OneEuroFilter": "temporal",
    "gaussian_smooth": "temporal",
    "jitter": "temporal",
    "lag": "temporal",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"motiontransfer.preprocess.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'motiontransfer.preprocess' has no attribute {name!r}")
