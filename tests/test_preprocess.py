"""Boxes, crops, paste-back, tracking and body detection without its extra: the parts of motiontransfer.preprocess
that need no detector model (stand-in detectors where one is needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fomm_helpers import small_animator
from motiontransfer.errors import UserError
from motiontransfer.evaluation.bodies import NUM_POSE_LANDMARKS
from motiontransfer.preprocess import detect
from motiontransfer.preprocess.animate import animate_cropped_items, check_crop, driving_boxes
from motiontransfer.preprocess.boxes import PixelBox, crop_square, feather_mask, iou, paste_back, square_around
from motiontransfer.preprocess.crop import box_centre_motion, crop_video, track_frames
from motiontransfer.preprocess.detect import Detection
from motiontransfer.preprocess.track import Tracker, track_boxes, track_detections
from motiontransfer.video.io import VideoReader, write_video

torch.set_num_threads(1)


def det(x0: float, y0: float, x1: float, y1: float, score: float = 1.0) -> Detection:
    return Detection(np.array([x0, y0, x1, y1], dtype=np.float64), score, np.zeros((0, 2)))


# ---------------------------------------------------------------------------------------------------------- boxes


def test_iou_and_square_around() -> None:
    assert iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10])) == pytest.approx(50 / 150)
    assert iou(np.array([0, 0, 1, 1]), np.array([2, 2, 3, 3])) == 0.0
    assert np.allclose(square_around(np.array([10, 20, 30, 60]), margin=0.5), [20, 40, 80])
    assert np.allclose(square_around(np.array([10, 20, 30, 60]), margin=0.0, lift=0.25), [20, 30, 40])


def test_pixel_box_from_square_is_centred() -> None:
    box = PixelBox.from_square((10.0, 20.0, 5.0))
    assert box == PixelBox(8, 18, 5) and box.centre == (10.0, 20.0)
    assert PixelBox.from_square((0.0, 0.0, 0.2)).side == 1


def test_crop_inside_equals_slicing_and_outside_repeats_the_edge() -> None:
    image = torch.rand(3, 20, 30)
    assert torch.equal(crop_square(image, PixelBox(5, 4, 10)), image[:, 4:14, 5:15])
    crop = crop_square(image, PixelBox(-3, -2, 8))
    assert torch.equal(crop[:, 2:, 3:], image[:, :6, :5])
    assert torch.equal(crop[:, 0, 0], image[:, 0, 0]) and torch.equal(crop[:, 5, 1], image[:, 3, 0])
    assert crop_square(image, PixelBox(25, 15, 10), size=16).shape == (3, 16, 16)


def test_feather_mask() -> None:
    mask = feather_mask(10, 2.0)
    assert mask.shape == (10, 10)
    assert torch.equal(mask, mask.T) and torch.equal(mask, mask.flip(0))
    assert mask[4:6, 4:6].eq(1).all() and mask[2:8, 2:8].eq(1).all()
    ramp = 0.25 * 0.25 * (3 - 2 * 0.25)  # the border pixel's centre is 0.5 px in: smoothstep(0.5 / 2)
    assert mask[0, 5].item() == pytest.approx(ramp)
    assert torch.equal(feather_mask(6, 0), torch.ones(6, 6))


@pytest.mark.parametrize("box", [PixelBox(10, 8, 24), PixelBox(-6, 30, 20)])
def test_paste_back_leaves_the_photo_outside_the_box(box: PixelBox) -> None:
    photo = torch.rand(3, 40, 50)
    crop = torch.rand(3, 16, 16)
    out = paste_back(photo, box, crop, feather=4.0)
    inside = torch.zeros(40, 50, dtype=torch.bool)
    inside[max(box.top, 0): box.top + box.side, max(box.left, 0): box.left + box.side] = True
    assert torch.equal(out[:, ~inside], photo[:, ~inside])
    assert not torch.equal(out[:, inside], photo[:, inside])
    hard = paste_back(photo, PixelBox(10, 8, 16), crop, feather=0.0)
    assert torch.allclose(hard[:, 8:24, 10:26], crop, atol=1e-6), "no feather, same size: the crop itself"


def test_paste_back_of_its_own_crop_gives_the_photo() -> None:
    photo = torch.rand(3, 40, 50)
    box = PixelBox(12, 6, 20)
    assert torch.allclose(paste_back(photo, box, crop_square(photo, box), feather=5.0), photo, atol=1e-6)


# ------------------------------------------------------------------------------------------------------- tracking


def test_tracker_bridges_short_gaps_and_cuts_at_jumps() -> None:
    frames: list[list[Detection]] = []
    for t in range(12):  # a subject drifting right, missed at frames 3-4, jumping far away at frame 8
        x = 10 + t if t < 8 else 80 + t
        frames.append([] if t in (3, 4) else [det(x, 10, x + 20, 30)])
    tracks = track_detections(frames, iou_threshold=0.3, max_gap=2)
    assert [(track.start, len(track), track.num_detected) for track in tracks] == [(0, 8, 6), (8, 4, 4)]
    rects = tracks[0].rects()
    assert np.allclose(rects[3], [13, 10, 33, 30]) and np.allclose(rects[4], [14, 10, 34, 30]), "interpolated"


def test_tracker_ends_a_track_after_too_long_a_gap() -> None:
    frames = [[det(0, 0, 10, 10)]] * 3 + [[]] * 3 + [[det(0, 0, 10, 10)]] * 2
    assert [len(track) for track in track_detections(frames, max_gap=2)] == [3, 2]
    assert [len(track) for track in track_detections(frames, max_gap=3)] == [8]


def test_tracker_follows_two_subjects() -> None:
    frames = [[det(0 + t, 0, 20 + t, 20), det(50 - t, 0, 70 - t, 20)] for t in range(6)]
    frames[2] = frames[2][::-1]  # detection order does not matter
    tracks = track_detections(frames)
    assert len(tracks) == 2 and all(len(track) == 6 for track in tracks)
    assert {round(track.rects()[5][0]) for track in tracks} == {5, 45}
    with pytest.raises(UserError, match="IoU threshold"):
        Tracker(iou_threshold=0)


def test_track_boxes_are_smooth_squares() -> None:
    rng = np.random.default_rng(0)
    frames = [[det(40 + t + rng.normal(0, 1.5), 30, 80 + t + rng.normal(0, 1.5), 70)] for t in range(40)]
    track = track_detections(frames)[0]
    raw = [PixelBox.from_square(detect.subject_square(rect, "face", 0.4)) for rect in track.rects()]
    boxes = track_boxes(track, "face", 0.4, sigma=3.0)
    assert len(boxes) == 40 and all(70 <= box.side <= 74 for box in boxes)
    assert box_centre_motion(raw) > 1.5 and box_centre_motion(boxes) < 1.1, "the true motion is 1 px a frame"
    assert boxes[20].centre[0] == pytest.approx(80, abs=1.5)


# ------------------------------------------------------------------------------------ stand-in detector, crop


class BrightSpotDetector:
    """Finds the one bright square in a dark frame (a stand-in for dlib), or nothing in a frame without one."""

    kind = "face"

    def __call__(self, image: np.ndarray) -> list[Detection]:
        mask = image.mean(axis=2) > 128
        if not mask.any():
            return []
        rows, cols = np.nonzero(mask)
        return [det(cols.min(), rows.min(), cols.max(), rows.max())]


def spot_frames(count: int, size: int = 48, present: range | None = None) -> list[torch.Tensor]:
    """Dark (3, size, size) frames with a 12-px bright square moving right one pixel a frame (in ``present``)."""
    frames = []
    for t in range(count):
        frame = torch.full((3, size, size), 0.1)
        if present is None or t in present:
            frame[:, 16:28, 8 + t: 20 + t] = 0.9
        frames.append(frame)
    return frames


def test_crop_video_writes_clips_and_boxes(tmp_path: Path) -> None:
    video = write_video(tmp_path / "spot.mp4", spot_frames(20), fps=10)
    report = crop_video(video, tmp_path / "data", size=32, min_frames=5, split="train",
                        detector=BrightSpotDetector())
    assert report.tracked.detection_rate == 1.0 and report.dropped == []
    [clip] = report.clips
    assert clip.path == tmp_path / "data" / "train" / "spot#000.mp4" and clip.num_frames == 20
    with VideoReader(clip.path) as reader:
        assert (reader.info.width, reader.info.height, reader.info.num_frames) == (32, 32, 20)
        assert reader.info.fps == pytest.approx(10)
    boxes = json.loads(clip.boxes_path.read_text())
    assert boxes["start_frame"] == 0 and len(boxes["boxes"]) == 20 and boxes["kind"] == "face"
    assert all(len(box) == 3 for box in boxes["boxes"]) and boxes["detections"][0] == [8.0, 16.0, 19.0, 27.0]
    assert sorted(p.name for p in (tmp_path / "data" / "train").iterdir()) == ["spot#000.json", "spot#000.mp4"]


def test_crop_video_errors(tmp_path: Path) -> None:
    video = write_video(tmp_path / "spot.mp4", spot_frames(12, present=range(3, 7)), fps=10)
    with pytest.raises(UserError, match=r"the longest face track has 4 frames, fewer than min_frames 5"):
        crop_video(video, tmp_path / "out", min_frames=5, detector=BrightSpotDetector())
    assert not (tmp_path / "out").exists()
    empty = write_video(tmp_path / "dark.mp4", spot_frames(6, present=range(0)), fps=10)
    with pytest.raises(UserError, match=r"dark.mp4: no face found in any of its 6 frames"):
        crop_video(empty, tmp_path / "out", detector=BrightSpotDetector())
    for options, message in [({"size": 8}, "^size must"), ({"margin": -1.0}, "^margin must"),
                             ({"min_frames": 0}, "^min_frames must"), ({"split": "val"}, "^split must"),
                             ({"kind": "cat"}, "unknown subject kind 'cat'")]:
        with pytest.raises(UserError, match=message):
            crop_video(video, tmp_path / "out", detector=BrightSpotDetector(), **options)  # type: ignore[arg-type]


def test_driving_boxes_hold_the_track_ends() -> None:
    tracked = track_frames(spot_frames(10, present=range(2, 8)), BrightSpotDetector(), name="clip")
    boxes = driving_boxes(tracked, "face", 0.4, sigma=0)
    assert len(boxes) == 10 and boxes[0] == boxes[2] and boxes[9] == boxes[7] and boxes[2] != boxes[7]
    none = track_frames(spot_frames(3, present=range(0)), BrightSpotDetector(), name="clip")
    with pytest.raises(UserError, match="clip: no face found in any of the driving video's 3 frames"):
        driving_boxes(none, "face")


def test_animate_cropped_pastes_into_the_photo() -> None:
    model = small_animator()
    photo = torch.full((3, 60, 80), 0.2)
    photo[:, 20:32, 30:42] = 0.9
    items = list(animate_cropped_items(model, photo, spot_frames(6), detector=BrightSpotDetector(), feather=0.1,
                                       batch_size=4))
    assert len(items) == 6 and all(item["frame"].shape == (3, 60, 80) for item in items)
    box = items[0]["source_box"]
    outside = torch.ones(60, 80, dtype=torch.bool)
    outside[max(box.top, 0): box.top + box.side, max(box.left, 0): box.left + box.side] = False
    assert all(torch.equal(item["frame"][:, outside], photo[:, outside]) for item in items)
    assert items[0]["prediction"].shape == (3, 64, 64)
    with pytest.raises(UserError, match="no face found in the source image"):
        next(animate_cropped_items(model, torch.full((3, 60, 80), 0.2), spot_frames(3),
                                   detector=BrightSpotDetector()))
    with pytest.raises(UserError, match="read twice"):
        next(animate_cropped_items(model, photo, iter(spot_frames(3)), detector=BrightSpotDetector()))
    with pytest.raises(UserError, match="unknown crop 'head'"):
        check_crop("head")


# ------------------------------------------------------------------------------------------- bodies, no extra


def test_body_detection_without_mediapipe_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` raise ImportError
    with pytest.raises(UserError, match=r'needs mediapipe; pip install -e "\.\[body-eval\]"'):
        detect.make_detector("body")


def test_body_detector_with_a_stand_in_mediapipe(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakePose:
        def __init__(self, **options: object) -> None:
            pass

        def process(self, image: np.ndarray) -> SimpleNamespace:
            if image.max() == 0:
                return SimpleNamespace(pose_landmarks=None)
            marks = [SimpleNamespace(x=0.25 + 0.5 * (i % 2), y=0.1 + 0.8 * i / NUM_POSE_LANDMARKS,
                                     visibility=0.9 if i < 20 else 0.1) for i in range(NUM_POSE_LANDMARKS)]
            return SimpleNamespace(pose_landmarks=SimpleNamespace(landmark=marks))

    monkeypatch.setitem(sys.modules, "mediapipe", SimpleNamespace(solutions=SimpleNamespace(
        pose=SimpleNamespace(Pose=FakePose))))
    detector = detect.make_detector("body")
    [found] = detector(np.full((100, 1000, 3), 50, dtype=np.uint8))  # searched at 640 px, reported at 1000
    assert found.points.shape == (20, 2)
    assert found.rect[0] == pytest.approx(250, abs=1) and found.rect[2] == pytest.approx(750, abs=1)
    assert detector(np.zeros((40, 40, 3), dtype=np.uint8)) == []
