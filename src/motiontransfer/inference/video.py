"""File-level jobs on top of the streaming pipeline: animate a video file into a video file (with the driving
video's audio and frame rate, and an optional visualisation video), and reconstruct a dataset's test videos.

Outputs are written atomically (:class:`~motiontransfer.video.io.VideoWriter`): an error or Ctrl-C leaves no
partial file and keeps an older file at the target.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from motiontransfer.data.splits import split_test_videos
from motiontransfer.errors import ArgumentError, Term
from motiontransfer.fileio import atomic_output
from motiontransfer.inference import pipeline
from motiontransfer.models.base import AnimationModel, TransferMode, check_predictor, predict_from_motion
from motiontransfer.ops.coordinates import normalized_to_pixels
from motiontransfer.video.io import DEFAULT_FPS, VideoReader, VideoWriter, read_image, write_image
from motiontransfer.video.threads import BackgroundWriter, Prefetching, prefetch
from motiontransfer.visualize import animation_grid, draw_keypoints, image_grid

Progress = Callable[[Iterable[dict[str, Any]], "int | None"], Iterable[dict[str, Any]]]
"""Wraps the item stream, e.g. with a progress bar: (items, total frame count or None) -> items."""


def visualization_path(out: str | Path) -> Path:
    """``<out stem>-viz<suffix>`` next to ``out``."""
    out = Path(out)
    return out.with_name(f"{out.stem}-viz{out.suffix}")


def animate_video(model: AnimationModel, source: str | Path, driving: str | Path, out: str | Path, *,
                  mode: TransferMode = "relative", adapt_scale: bool = False, best_frame: pipeline.BestFrame = None,
                  batch_size: int | None = None, landmarks: pipeline.Landmarker | None = None, visualize: bool = False,
                  progress: Progress | None = None, smooth: pipeline.MotionSmoother | None = None) -> list[Path]:
    """Animate the image file ``source`` with the video ``driving`` and write ``out``.

    ``out`` gets the driving video's frame rate (25 fps for frame folders) and its audio, if any; with
    ``visualize`` also :func:`visualization_path` (source | driving with keypoints | occlusion | prediction).
    The other arguments are those of :func:`motiontransfer.inference.pipeline.animate`.

    Returns:
        The paths written.
    """
    source_image = read_image(source, size=model.size)
    with VideoReader(driving, size=model.size) as reader:
        info = reader.info
        fps = info.fps or DEFAULT_FPS
        audio = Path(driving) if info.has_audio else None
        # Decoding runs ahead on its own thread; the frames become tensors on this one (see Prefetching).
        frames = Prefetching(reader.decoded(), convert=reader.convert)
        items: Iterable[dict[str, Any]] = pipeline.animate(
            model, source_image, frames, mode=mode, adapt_scale=adapt_scale, best_frame=best_frame,
            batch_size=batch_size, landmarks=landmarks, smooth=smooth)
        if progress is not None:
            items = progress(items, info.num_frames)
        return write_animation(items, out, fps=fps, audio=audio, visualize=visualize)


def write_animation(items: Iterable[dict[str, Any]], out: str | Path, *, fps: float, audio: Path | None,
                    visualize: bool, frame_key: str = "prediction") -> list[Path]:
    """Write a stream of animation items: their ``frame_key`` frames ((3, H, W) in [0, 1]) to ``out`` and, with
    ``visualize``, their :func:`~motiontransfer.visualize.animation_grid` to :func:`visualization_path`, both at
    ``fps`` and with the audio of the file ``audio`` (None: silent). Both files are written atomically.

    Returns:
        The paths written.
    """
    with contextlib.ExitStack() as outputs:
        writer = outputs.enter_context(VideoWriter(out, fps=fps, audio_from=audio))
        viz = (outputs.enter_context(VideoWriter(visualization_path(out), fps=fps, audio_from=audio))
               if visualize else None)

        def write(frames: tuple[Any, Any]) -> None:
            writer.write(frames[0])
            if viz is not None:
                viz.write(frames[1])

        # Encoding runs on its own thread, next to the model (entered last, so it stops before the files close);
        # the torch work (the visualisation grid) stays on this thread, see video.threads.Prefetching.
        background = outputs.enter_context(BackgroundWriter(write))
        for item in items:
            background.put((item[frame_key], animation_grid(item) if viz is not None else None))
    return [writer.path] + ([viz.path] if viz is not None else [])


@dataclass(frozen=True)
class ReconstructionResult:
    """One reconstructed video: its name, mean L1 over its frames, frame count and the written file (or None)."""

    name: str
    l1: float
    num_frames: int
    path: Path | None


def reconstruct_dataset(model: AnimationModel, data: str | Path, out_dir: str | Path | None = None, *,
                        num_videos: int | None = None, batch_size: int | None = None) -> Iterator[ReconstructionResult]:
    """The video-reconstruction proxy task over a dataset's test split (FOMM Sec. 4; official
    ``reconstruction.py``): each video is rebuilt from its first frame and the motion of every frame.

    Args:
        model: any family's model.
        data: a FOMM-layout dataset folder (its ``test`` split, or the 80/20 split) or a ``procedural:`` spec
            (its test split, rendered at the model's size unless the spec sets ``size``).
        out_dir: where to write ``<video name>.mp4`` per video; None writes nothing.
        num_videos: only the first N test videos.
        batch_size: frames per forward pass.

    Yields:
        One :class:`ReconstructionResult` per video, as each finishes. The official summary number is the mean
        L1 over all frames of all videos (weighting videos by length).
    """
    for video in split_test_videos(data, model.size, num_videos):
        writer = (VideoWriter(Path(out_dir) / f"{video.name}.mp4", fps=video.fps) if out_dir is not None
                  else None)
        total, count = 0.0, 0
        with writer if writer is not None else contextlib.nullcontext():
            for item in pipeline.reconstruct(model, prefetch(video.frames()), batch_size=batch_size):
                total, count = total + item["l1"], count + 1
                if writer is not None:
                    writer.write(item["prediction"])
        yield ReconstructionResult(video.name, total / count, count, writer.path if writer is not None else None)


def predict_video_file(model: AnimationModel, source: str | Path, out: str | Path, *, num_frames: int = 32,
                       action: str | None = None, seed: int = 0, fps: float = DEFAULT_FPS,
                       visualize: bool = False) -> list[Path]:
    """Image-to-video: generate ``num_frames`` frames from the image file ``source`` and write ``out``.

    Args:
        model: an image-to-video model (one with ``predict_video``: Monkey-Net with its keypoint predictor, KPVP
            with its motion generator).
        action: the action of class-conditional models (ignored by unconditional ones).
        seed: picks the sample of stochastic models.
        visualize: also write :func:`visualization_path`: the frames with the predicted keypoints drawn (for
            models that expose them, else the frames alone) next to the source.

    Returns:
        The paths written.

    Raises:
        UserError: a model that animates from a driving video only, or a bad ``num_frames``.
    """
    image = _predictor_source(model, source, num_frames)
    frames, points = _generate(model, image, num_frames, action, seed)
    with contextlib.ExitStack() as outputs:
        writer = outputs.enter_context(VideoWriter(out, fps=fps))
        viz = outputs.enter_context(VideoWriter(visualization_path(out), fps=fps)) if visualize else None
        for index, frame in enumerate(frames):
            writer.write(frame)
            if viz is not None:
                drawn = frame if points is None else draw_keypoints(frame, points[index])
                viz.write(image_grid([[image, drawn]]))
    return [writer.path] + ([viz.path] if viz is not None else [])


def predict_samples(model: AnimationModel, source: str | Path, out_dir: str | Path, *, samples: int,
                    num_frames: int = 32, action: str | None = None, seed: int = 0, fps: float = DEFAULT_FPS,
                    sheet_columns: int = 8) -> list[Path]:
    """Several futures of one image: ``OUT/sample-<i>.mp4`` for seeds ``seed .. seed + samples - 1`` and
    ``OUT/contact-sheet.png`` (one row per sample: the source, then ``sheet_columns`` evenly spaced frames with the
    predicted keypoints drawn). The folder is written atomically: an earlier samples folder is replaced only when the
    new one is complete; a folder holding anything else is refused.

    Returns:
        The folder and the files in it.

    Raises:
        UserError: a model without image-to-video generation, or bad counts.
    """
    if samples < 1:
        raise ArgumentError(Term("samples"), f" must be at least 1, got {samples}")
    _check_samples_folder(Path(out_dir))
    image = _predictor_source(model, source, num_frames)
    columns = torch.linspace(0, num_frames - 1, min(sheet_columns, num_frames)).round().long().tolist()
    rows = []
    with atomic_output(out_dir, directory=True) as temp:
        for index in range(samples):
            frames, points = _generate(model, image, num_frames, action, seed + index)
            with VideoWriter(temp / f"sample-{index}.mp4", fps=fps) as writer:
                for frame in frames:
                    writer.write(frame)
            rows.append([image] + [frames[i] if points is None else draw_keypoints(frames[i], points[i])
                                   for i in columns])
        write_image(temp / "contact-sheet.png", image_grid(rows))
    folder = Path(out_dir)
    return [folder, *sorted(folder.iterdir())]


def _check_samples_folder(folder: Path) -> None:
    """Refuse an output folder that would replace anything but an earlier :func:`predict_samples` output."""
    if folder.exists() and not folder.is_dir():
        raise ArgumentError(Term("out_dir"), f" {folder} is a file; give a folder for the samples")
    if folder.is_dir():
        foreign = [p.name for p in folder.iterdir()
                   if not (p.name == "contact-sheet.png" or re.fullmatch(r"sample-\d+\.mp4", p.name))]
        if foreign:
            listed = ", ".join(sorted(foreign)[:3])
            raise ArgumentError(Term("out_dir"), f" {folder} already holds other files ({listed}); the samples folder "
                                "is replaced as a whole, so choose a new or an earlier samples folder")


def _predictor_source(model: AnimationModel, source: str | Path, num_frames: int) -> torch.Tensor:
    """The source image (3, S, S) at the model's size, after checking that the model generates videos.

    Raises:
        UserError: a model that animates from a driving video only, a bad ``num_frames`` or an unreadable image.
    """
    check_predictor(model)
    if num_frames < 1:
        raise ArgumentError(Term("num_frames"), f" must be at least 1, got {num_frames}")
    return read_image(source, size=model.size)


def _generate(model: AnimationModel, image: torch.Tensor, num_frames: int, action: str | None, seed: int
              ) -> tuple[torch.Tensor, list[Any] | None]:
    """(generated frames (T, 3, S, S), pixel keypoints per frame or None). Models that predict motion
    (``predict_motion``) give their keypoints from the same prediction; others only frames."""
    if not isinstance(model, AnimationModel):
        return model.predict_video(image, num_frames, action, seed=seed), None
    frames, motion = predict_from_motion(model, image, num_frames, action, seed)
    keypoints = model.motion_keypoints(motion).cpu()
    return frames, [normalized_to_pixels(points, model.size, model.size) for points in keypoints]
