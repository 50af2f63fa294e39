"""What one job of the web page does, without gradio: check the uploads against the server's limits, pick the
models on offer, and animate (the library call behind ``motiontransfer animate``).

Every function here raises :class:`~motiontransfer.errors.UserError` for a bad input; the page turns it into a
one-line message (:mod:`motiontransfer.web.app`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from motiontransfer.errors import UserError
from motiontransfer.pretrained import BUNDLED_MODELS
from motiontransfer.video.io import count_frames, probe, read_image

MODES = ("relative", "absolute")
CROPS = ("none", "face", "body")
LANDMARKS = ("model", "dlib")
FIRST_FRAME = "first"
AUTO_FRAME = "auto"
DEFAULT_FPS = 25.0
MEGABYTE = 1024 * 1024
Progress = Callable[[Iterable[dict[str, Any]], "int | None"], Iterable[dict[str, Any]]]
"""Wraps the item stream with a progress bar: (items, total frame count or None) -> items."""


@dataclass(frozen=True)
class Limits:
    """What the server accepts: uploads of at most ``max_upload_mb`` megabytes each and driving videos of at most
    ``max_seconds`` seconds."""

    max_upload_mb: float = 50.0
    max_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name, value in (("--max-upload-mb", self.max_upload_mb), ("--max-seconds", self.max_seconds)):
            if not (math.isfinite(value) and value > 0):
                raise UserError(f"{name} must be a positive number, got {value}")

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes."""
        return int(self.max_upload_mb * MEGABYTE)


@dataclass(frozen=True)
class JobRequest:
    """One animation job, as the page's inputs give it (the arguments of ``motiontransfer animate``; ``model`` is
    the name the page shows for the model)."""

    source: Path
    driving: Path
    model: str
    mode: str = "relative"
    adapt_scale: bool = False
    best_frame: int | str | None = None
    crop: str = "none"
    smooth: bool = False
    landmarks: str = "model"


@dataclass(frozen=True)
class DrivingInfo:
    """A checked driving video: its frame count and frame rate (25 when the file does not say)."""

    num_frames: int
    fps: float

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.num_frames / self.fps


def model_choices(models_dir: Path | None) -> dict[str, str]:
    """The models the page offers: display name -> checkpoint (a bundled name or a ``.mt`` path).

    The bundled models come first, then every ``.mt`` file directly in ``models_dir`` by name.

    Raises:
        UserError: ``models_dir`` is given but is not a folder.
    """
    choices = {name: name for name in BUNDLED_MODELS}
    if models_dir is None:
        return choices
    if not models_dir.is_dir():
        raise UserError(f"--models {models_dir}: not a folder; give the folder that holds your .mt model files")
    for path in sorted(models_dir.glob("*.mt")):
        if path.is_file():
            choices[path.name] = str(path.resolve())
    return choices


def parse_best_frame(text: str | None) -> int | str | None:
    """The page's best-frame field: empty or ``first`` -> None (frame 0), ``auto``, or a frame number >= 0.

    Raises:
        UserError: anything else.
    """
    value = (text or "").strip().lower()
    if value in ("", FIRST_FRAME):
        return None
    if value == AUTO_FRAME:
        return AUTO_FRAME
    if value.isdigit():
        return int(value)
    raise UserError(f"best frame must be 'first', 'auto' or a frame number >= 0, got {text!r}")


def check_choice(name: str, value: str, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``.

    Raises:
        UserError: naming the field and the allowed values.
    """
    options = list(allowed)
    if value not in options:
        raise UserError(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


def check_upload_size(path: Path, limits: Limits) -> None:
    """Refuse a file larger than the upload limit.

    Raises:
        UserError: naming the file, its size and the limit.
    """
    size = path.stat().st_size
    if size > limits.max_upload_bytes:
        raise UserError(f"{path.name} is {size / MEGABYTE:.1f} MB; the limit is {limits.max_upload_mb:g} MB "
                        "(serve --max-upload-mb)")


def check_source(path: Path, limits: Limits) -> None:
    """Check a source image: within the size limit and decodable as an image.

    Raises:
        UserError: too large, not an image file, or unreadable.
    """
    check_upload_size(path, limits)
    read_image(path)


def check_driving(path: Path, limits: Limits) -> DrivingInfo:
    """Check a driving video: within the size limit, decodable as a video and not longer than the time limit.

    Returns:
        Its frame count and frame rate.

    Raises:
        UserError: too large, not a video, or too long.
    """
    check_upload_size(path, limits)
    info = probe(path)
    fps = info.fps if info.fps and math.isfinite(info.fps) and info.fps > 0 else DEFAULT_FPS
    driving = DrivingInfo(count_frames(path), fps)  # the recorded count, else counted (bounded by the size limit)
    if driving.num_frames < 1:
        raise UserError(f"{path.name} has no frames")
    if driving.seconds > limits.max_seconds:
        raise UserError(f"{path.name} is {driving.seconds:.1f} s long; the limit is {limits.max_seconds:g} s "
                        "(serve --max-seconds)")
    return driving


def render(animator: Any, request: JobRequest, out: Path, progress: Progress | None = None) -> list[Path]:
    """Animate as ``motiontransfer animate --visualize`` does: write ``out`` (with the driving video's audio and
    frame rate) and ``<out stem>-viz<suffix>``; with ``crop`` face or body, the crop pasted back into the photo.

    Args:
        animator: a loaded :class:`motiontransfer.api.Animator`.
        request: the job.
        out: the output video; its folder must exist.
        progress: wraps the frame stream (and, with ``crop``, first the detection pass).

    Returns:
        The paths written: the animation, then the visualisation.
    """
    from motiontransfer.inference.landmarks import get_landmarker
    from motiontransfer.inference.smoothing import as_motion_smoother
    from motiontransfer.inference.video import animate_video
    from motiontransfer.preprocess.animate import animate_video_cropped

    options: dict[str, Any] = {
        "mode": check_choice("mode", request.mode, MODES), "adapt_scale": request.adapt_scale,
        "best_frame": request.best_frame, "landmarks": get_landmarker(check_choice("pose", request.landmarks,
                                                                                   LANDMARKS)),
        "visualize": True, "progress": progress, "smooth": as_motion_smoother(request.smooth)}
    crop = check_choice("crop", request.crop, CROPS)
    if crop == "none":
        return animate_video(animator.model, request.source, request.driving, out, **options)
    return animate_video_cropped(animator.model, request.source, request.driving, out, crop=crop, **options)
