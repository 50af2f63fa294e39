"""Streaming video and image I/O: read and write videos one frame at a time.

Frames are ``torch.float32`` tensors of shape (3, H, W) with values in [0, 1]. Nothing here holds a whole
video in memory: readers decode lazily, writers encode as frames arrive.

Reading
    * Video files (``.mp4 .avi .mov .webm .mkv .gif``) are decoded with PyAV. Frames with more than 8 bits per
      channel are converted through 16-bit RGB, all others through 8-bit RGB.
    * A folder of image files (``.png .jpg .jpeg .bmp .webp .tif .tiff``) is a video whose frames are the
      images in natural sort order (``frame2`` before ``frame10``); hidden files are ignored.
    * Image conversion: grayscale is replicated to RGB, palette images are expanded, 16-bit images (PIL modes
      ``I;16``/``I``) are divided by 65535, float images (``F``) are clipped to [0, 1]. Images and video
      frames with an alpha channel are **composited over black** (RGB multiplied by alpha). EXIF orientation
      is applied.
    * ``size`` gives square output frames of side ``size``: with ``crop=True`` the largest centred square is
      cut out first, with ``crop=False`` the whole frame is squashed to the square. Resizing is bilinear with
      antialiasing. ``size=None`` returns frames at their native size (``crop`` is then ignored).
    * A truncated video that still decodes some frames yields those frames and then warns; a video that yields
      no frame at all raises :class:`~motiontransfer.errors.InputFileError`.

Writing
    * ``.mp4 .mov .mkv .avi``: H.264 (libx264, yuv420p, constant quality ``crf``). ``.webm``: VP9 (libvpx-vp9,
      ``crf`` passed as is, range 0-63). yuv420p needs even sizes, so a frame with odd width or height is
      padded by one pixel at the right or bottom edge by repeating the last column or row: such a video reads
      back one pixel wider or taller than what was written.
    * ``.gif``: streamed through PyAV's GIF encoder, each frame quantised to its own 256-colour palette (no
      dithering). GIF delays are in 1/100 s, so frame times are rounded to that grid.
    * A path without suffix, or an existing folder: a folder of ``000000.png``, ``000001.png``, ... An
      existing folder is replaced only if it holds nothing but image files (so a wrong path cannot delete
      unrelated data).
    * Everything is written under a hidden temporary name next to the target and moved into place by
      ``close()`` (see :mod:`motiontransfer.fileio`); an error or ``abort()`` leaves the target untouched.
    * ``audio_from``: the audio of that video is copied into the output (packets are copied when the codec
      fits the container, otherwise re-encoded: AAC for mp4/mov/mkv, Opus for webm, MP3 for avi), cut at the
      end of the written video. A source without audio gives a silent output; GIFs and folders never carry
      audio.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.error
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from motiontransfer.errors import InputFileError, UserError
from motiontransfer.fileio import AtomicOutput, atomic_output, describe_kind, raise_output_fault

__all__ = [
    "DEFAULT_FPS",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "count_frames",
    "fit_frame",
    "is_video_path",
    "iter_frames",
    "probe",
    "read_frames",
    "read_image",
    "to_uint8_hwc",
    "write_image",
    "write_video",
]

DEFAULT_FPS = 25.0
"""Frame rate of videos that do not state one (frame folders), and of generated videos."""
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".webm", ".mkv", ".gif"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})

# Errors that PyAV raises for unreadable or corrupt media (FFmpegError covers av.error.*).
_AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError)
# Errors that PIL raises for unreadable, corrupt or truncated images.
_PIL_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    UnidentifiedImageError,
    Image.DecompressionBombError,
)

# Video encoder per output suffix (GIF and folders are handled separately).
_VIDEO_ENCODERS = {
    ".mp4": "libx264",
    ".mov": "libx264",
    ".mkv": "libx264",
    ".avi": "libx264",
    ".webm": "libvpx-vp9",
}
# Per output suffix: audio codecs that can be copied as they are, and the encoder used otherwise.
_AUDIO_COPYABLE = {
    ".mp4": frozenset({"aac", "mp3"}),
    ".mov": frozenset({"aac", "mp3"}),
    ".mkv": frozenset({"aac", "mp3", "opus", "vorbis", "flac"}),
    ".webm": frozenset({"opus", "vorbis"}),
    ".avi": frozenset({"mp3"}),
}
_AUDIO_ENCODERS = {".mp4": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus", ".avi": "libmp3lame"}
# Sample rates an Opus encoder accepts; other rates are resampled to 48 kHz.
_OPUS_RATES = frozenset({8000, 12000, 16000, 24000, 48000})
_IMAGE_SAVE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video without decoding it.

    Attributes:
        path: the video file or frame folder.
        width, height: frame size in pixels (for a folder: of its first image).
        fps: frames per second if the container knows it (GIF: frame count / total duration), else None.
            Always None for frame folders.
        num_frames: frame count if the container records it (exact for folders), else None.
        has_audio: whether the file has an audio stream (always False for folders).
    """

    path: Path
    width: int
    height: int
    fps: float | None
    num_frames: int | None
    has_audio: bool


# ----------------------------------------------------------------------------------------------------------
# Paths and folders
# ----------------------------------------------------------------------------------------------------------


def _natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers by value: ``frame2`` < ``frame10``; ties broken by the name."""
    parts = re.split(r"(\d+)", name)
    # re.split with a capture group alternates text (even positions) and digits (odd positions), so the key
    # never compares an int with a str.
    key = tuple(int(part) if position % 2 else part.lower() for position, part in enumerate(parts))
    return (*key, name)


def _is_image_name(name: str) -> bool:
    """True for a visible file name with an image suffix (case-insensitive)."""
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def _list_frame_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` in natural sort order; hidden files are skipped."""
    with os.scandir(folder) as entries:
        names = [entry.name for entry in entries if _is_image_name(entry.name) and entry.is_file()]
    return [folder / name for name in sorted(names, key=_natural_key)]


def _require_frame_files(folder: Path) -> list[Path]:
    """Like :func:`_list_frame_files` but raises InputFileError for an unreadable or image-less folder."""
    try:
        files = _list_frame_files(folder)
    except OSError as exc:
        raise InputFileError(folder, f"cannot list folder ({exc.strerror or exc})") from exc
    if not files:
        suffixes = " ".join(sorted(IMAGE_SUFFIXES))
        raise InputFileError(folder, f"folder holds no image files (expected frames with suffix {suffixes})")
    return files


def _require_exists(path: Path) -> None:
    """Raise InputFileError if nothing exists at ``path``."""
    if not path.exists():
        raise InputFileError(path, "no such file or folder")


def _require_nonempty_file(path: Path) -> None:
    """Raise InputFileError if ``path`` is a zero-byte file."""
    if path.stat().st_size == 0:
        raise InputFileError(path, "file is empty")


def _video_source_kind(path: Path) -> str:
    """Classify a video input: ``"folder"`` (frames) or ``"file"`` (decoded by PyAV).

    Raises:
        InputFileError: the path is missing, empty, an image, or has an unknown suffix.
    """
    _require_exists(path)
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        raise InputFileError(
            path, "is a single image, not a video (expected a video file or a folder of frames)"
        )
    if suffix not in VIDEO_SUFFIXES:
        known = " ".join(sorted(VIDEO_SUFFIXES))
        raise InputFileError(
            path, f"unknown video format '{suffix or path.name}' (expected {known} or a folder)"
        )
    _require_nonempty_file(path)
    return "file"


def is_video_path(path: str | Path) -> bool:
    """Whether ``path`` denotes a video: a file with a video suffix, or a folder holding at least one image.

    Only the name is checked for files (the file need not exist); folders are listed.
    """
    path = Path(path)
    if path.is_dir():
        try:
            with os.scandir(path) as entries:
                return any(_is_image_name(entry.name) and entry.is_file() for entry in entries)
        except OSError:
            return False
    return path.suffix.lower() in VIDEO_SUFFIXES


# ----------------------------------------------------------------------------------------------------------
# Pixel conversion
# ----------------------------------------------------------------------------------------------------------


def _fit(frame: torch.Tensor, size: int | None, crop: bool) -> torch.Tensor:
    """Bring a (3, H, W) frame to (3, size, size): centre crop to a square if ``crop``, then resize.

    ``size=None`` returns the frame unchanged.
    """
    if size is None:
        return frame
    height, width = frame.shape[-2:]
    if crop and height != width:
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        frame = frame[:, top : top + side, left : left + side]
    if frame.shape[-2:] != (size, size):
        frame = F.interpolate(
            frame[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )[0].clamp_(0.0, 1.0)
    return frame.contiguous()


def fit_frame(frame: torch.Tensor, size: int | None, crop: bool = True) -> torch.Tensor:
    """Bring a frame to the square size the readers produce (the same resizing as ``read_image(path, size)``).

    Args:
        frame: (3, H, W) float in [0, 1].
        size: output side, or None to return the frame unchanged.
        crop: centre-crop to a square before resizing (else squash).

    Returns:
        (3, size, size); the input itself when it already has that size.
    """
    return _fit(frame, _check_size(size), crop)


def _check_size(size: int | None) -> int | None:
    """Validate the ``size`` argument (None or a positive int)."""
    if size is None:
        return None
    if isinstance(size, bool) or int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer or None, got {size!r}")
    return int(size)


def _hwc_to_tensor(array: np.ndarray, scale: float) -> torch.Tensor:
    """(H, W, C) integers -> (3, H, W) float32 in [0, 1]; a 4th channel (alpha) is composited over black."""
    if array.dtype != np.uint8:
        array = array.astype(np.float32)
    elif not array.flags.writeable:
        array = array.copy()  # e.g. np.asarray(PIL image); torch cannot wrap read-only memory
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()
    tensor = tensor.to(torch.float32).div_(scale)
    if tensor.shape[0] == 4:
        tensor = tensor[:3] * tensor[3:4]
    return tensor.contiguous()


def _av_frame_to_array(frame: av.VideoFrame) -> np.ndarray:
    """Decoded PyAV frame (any pixel format) -> (H, W, 3 or 4) uint8, or uint16 for deeper formats (numpy only)."""
    components = frame.format.components
    alpha = any(component.is_alpha for component in components)
    deep = max((component.bits for component in components), default=8) > 8
    if deep:
        return frame.to_ndarray(format="rgba64le" if alpha else "rgb48le")
    return frame.to_ndarray(format="rgba" if alpha else "rgb24")


def _array_to_tensor(array: np.ndarray) -> torch.Tensor:
    """An array of :func:`_av_frame_to_array` -> (3, H, W) float32 in [0, 1]."""
    return _hwc_to_tensor(array, 65535.0 if array.dtype == np.uint16 else 255.0)


def _av_frame_to_tensor(frame: av.VideoFrame) -> torch.Tensor:
    """Decoded PyAV frame (any pixel format) -> (3, H, W) float32 in [0, 1]."""
    return _array_to_tensor(_av_frame_to_array(frame))


def _pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image of any mode -> (3, H, W) float32 in [0, 1] (alpha composited over black)."""
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        gray = np.asarray(image).astype(np.float32) / 65535.0
        return torch.from_numpy(np.clip(gray, 0.0, 1.0)).expand(3, -1, -1).contiguous()
    if mode == "F":
        gray = np.asarray(image, dtype=np.float32)
        return torch.from_numpy(np.clip(gray, 0.0, 1.0)).expand(3, -1, -1).contiguous()
    if mode == "RGB":
        return _hwc_to_tensor(np.asarray(image), 255.0)
    has_alpha = "A" in mode or "a" in mode or (mode in ("P", "L", "RGB") and "transparency" in image.info)
    if has_alpha:
        return _hwc_to_tensor(np.asarray(image.convert("RGBA")), 255.0)
    return _hwc_to_tensor(np.asarray(image.convert("RGB")), 255.0)


def _exif_oriented(image: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag if there is one (returns the image itself otherwise)."""
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    if orientation in (1, None):
        return image
    return ImageOps.exif_transpose(image)


def read_image(path: str | Path, size: int | None = None, crop: bool = True) -> torch.Tensor:
    """Read one image file.

    Args:
        path: an image file (``.png .jpg .jpeg .bmp .webp .tif .tiff``).
        size: output side of a square image, or None for the native size.
        crop: with ``size``, centre-crop to a square before resizing (else squash the whole image).

    Returns:
        (3, H, W) float32 in [0, 1] (H = W = size when given). See the module docstring for mode conversions.

    Raises:
        InputFileError: missing, empty, unknown suffix, or not decodable.
    """
    size = _check_size(size)
    return _fit(_pil_to_tensor(_load_image(path)), size, crop)


def _load_image(path: str | Path) -> Image.Image:
    """Decode one image file into a PIL image (EXIF orientation applied), with :func:`read_image`'s checks."""
    path = Path(path)
    _require_exists(path)
    if path.is_dir():
        raise InputFileError(path, "is a folder, expected an image file")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        known = " ".join(sorted(IMAGE_SUFFIXES))
        raise InputFileError(path, f"unknown image format '{suffix or path.name}' (expected {known})")
    _require_nonempty_file(path)
    try:
        with Image.open(path) as image:
            oriented = _exif_oriented(image)
            oriented.load()
            return oriented if oriented is not image else image.copy()
    except _PIL_ERRORS as exc:
        raise InputFileError(path, f"cannot be read as an image ({exc})") from exc


# ----------------------------------------------------------------------------------------------------------
# Probing and decoding
# ----------------------------------------------------------------------------------------------------------


def _av_reason(exc: BaseException) -> str:
    """Short description of a PyAV/OS error without the repeated file name."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text)


def _open_input(path: Path) -> Any:
    """Open a media file with PyAV for reading; errors become InputFileError naming the file."""
    try:
        return av.open(str(path), mode="r")
    except _AV_ERRORS as exc:
        raise InputFileError(path, f"cannot be read as a video ({_av_reason(exc)})") from exc


def _video_stream(container: Any, path: Path) -> Any:
    """The first video stream of an open container, or InputFileError if there is none or it has no decoder."""
    if not container.streams.video:
        raise InputFileError(path, "contains no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise InputFileError(path, "video stream has no decoder (unknown codec, or the file is corrupt)")
    return stream


def _stream_fps(stream: Any, is_gif: bool) -> float | None:
    """Frame rate of a video stream; for GIFs frames / total duration (GIF delays vary per frame)."""
    if is_gif and stream.frames and stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return stream.frames / seconds
    rate = stream.average_rate or stream.guessed_rate
    if rate:
        return float(rate)
    return None


def _probe_file(path: Path) -> VideoInfo:
    """Read the header of a video file (no decoding)."""
    container = _open_input(path)
    try:
        stream = _video_stream(container, path)
        context = stream.codec_context
        width, height = int(context.width or 0), int(context.height or 0)
        if width <= 0 or height <= 0:
            raise InputFileError(path, "video stream has no frame size (unsupported or corrupt)")
        return VideoInfo(
            path=path,
            width=width,
            height=height,
            fps=_stream_fps(stream, path.suffix.lower() == ".gif"),
            num_frames=int(stream.frames) if stream.frames else None,
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file after EXIF orientation, read from its header."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):
                width, height = height, width
    except _PIL_ERRORS as exc:
        raise InputFileError(path, f"cannot be read as an image ({exc})") from exc
    return width, height


def _probe_folder(folder: Path, files: list[Path]) -> VideoInfo:
    """VideoInfo of a frame folder: image count and the size of the first image."""
    width, height = _image_size(files[0])
    return VideoInfo(
        path=folder, width=width, height=height, fps=None, num_frames=len(files), has_audio=False
    )


def probe(path: str | Path) -> VideoInfo:
    """Cheaply describe a video file or frame folder (header only; nothing is decoded).

    Args:
        path: a video file or a folder of frames.

    Returns:
        :class:`VideoInfo`; for a folder ``num_frames`` is the number of images, ``fps`` None, the size that
        of the first image.

    Raises:
        InputFileError: missing, empty, unknown format, unreadable header, no video stream, no images.
    """
    path = Path(path)
    if _video_source_kind(path) == "folder":
        return _probe_folder(path, _require_frame_files(path))
    return _probe_file(path)


def _decoded_frames(container: Any, stream: Any, path: Path, stop: list[bool] | None = None) -> Iterator[Any]:
    """Decode the video stream packet by packet, yielding PyAV frames.

    A packet that fails to decode is skipped; a demuxing error ends the stream (truncated file). If the stream
    ends, for whatever reason, without any frame, InputFileError is raised; if it ends early after some frames
    a warning is issued. ``stop`` is a one-element flag checked between packets (set when a reader is closed).
    """
    produced = 0
    problem: BaseException | None = None
    packets = container.demux(stream)
    while stop is None or not stop[0]:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except _AV_ERRORS as exc:
            problem = exc
            break
        try:
            frames = packet.decode()
        except _AV_ERRORS as exc:
            problem = exc
            continue
        for frame in frames:
            produced += 1
            yield frame
    if stop is not None and stop[0]:
        return
    if produced == 0:
        detail = f" ({_av_reason(problem)})" if problem is not None else ""
        raise InputFileError(path, f"contains no decodable video frames{detail}")
    if problem is not None:
        warnings.warn(
            f"{path}: video is damaged; read {produced} frames, the rest could not be decoded "
            f"({_av_reason(problem)})",
            stacklevel=3,
        )


@contextlib.contextmanager
def _open_video_frames(path: Path) -> Iterator[Iterator[Any]]:
    """Context manager giving an iterator of decoded PyAV frames of ``path``; closes the file on exit."""
    container = _open_input(path)
    try:
        yield _decoded_frames(container, _video_stream(container, path), path)
    finally:
        container.close()


DecodedFrame = np.ndarray | Image.Image
"""A decoded, not yet converted frame: (H, W, 3 or 4) uint8 or uint16 array (video files) or a PIL image (frame
folders)."""


class VideoReader:
    """Lazy frame stream over a video file or a folder of frames.

    Usage::

        with VideoReader("clip.mp4", size=256) as reader:
            print(reader.info.fps)
            for frame in reader:      # (3, 256, 256) float32 in [0, 1], decoded one at a time
                ...

    Args:
        path: video file or frame folder.
        size: side of square output frames, or None for native size.
        crop: with ``size``, centre-crop to a square before resizing (else squash).

    The constructor reads only the header (:func:`probe`), raising InputFileError for unusable inputs. Each
    ``iter()`` starts from the first frame. ``close()`` releases open files; iterating afterwards is an error.
    """

    def __init__(self, path: str | Path, size: int | None = None, crop: bool = True) -> None:
        self.path = Path(path)
        self.size = _check_size(size)
        self.crop = crop
        self._folder = _video_source_kind(self.path) == "folder"
        self._files: list[Path] = _require_frame_files(self.path) if self._folder else []
        self.info: VideoInfo = (
            _probe_folder(self.path, self._files) if self._folder else _probe_file(self.path)
        )
        self._containers: list[Any] = []
        self._stop = [False]

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Yield frames (3, H, W) float32 in [0, 1] one at a time, from the first frame on."""
        return map(self.convert, self.decoded())

    def decoded(self) -> Iterable[DecodedFrame]:
        """The frames decoded but not yet converted (see :data:`DecodedFrame`), as a re-iterable view: each
        ``iter()`` starts from the first frame. Decoding does no torch work, so it can run on another thread next
        to a model (:class:`~motiontransfer.video.threads.Prefetching`), while :meth:`convert`, which does, runs
        on the model's thread."""
        self._require_open()
        return _Decoded(self)

    def convert(self, decoded: DecodedFrame) -> torch.Tensor:
        """A frame of :meth:`decoded` as iteration yields it: (3, size, size) float32 in [0, 1]."""
        tensor = _pil_to_tensor(decoded) if isinstance(decoded, Image.Image) else _array_to_tensor(decoded)
        return _fit(tensor, self.size, self.crop)

    def _require_open(self) -> None:
        if self._stop[0]:
            raise ValueError(f"VideoReader for {self.path} is closed")

    def _iter_decoded(self) -> Iterator[DecodedFrame]:
        self._require_open()
        return self._iter_folder() if self._folder else self._iter_file()

    def _iter_folder(self) -> Iterator[Image.Image]:
        """Images of a folder, one file at a time."""
        for file in self._files:
            if self._stop[0]:
                return
            yield _load_image(file)

    def _iter_file(self) -> Iterator[np.ndarray]:
        """Frames of a video file as arrays, decoded one at a time."""
        container = _open_input(self.path)
        self._containers.append(container)
        try:
            stream = _video_stream(container, self.path)
            for frame in _decoded_frames(container, stream, self.path, self._stop):
                yield _av_frame_to_array(frame)
        finally:
            with contextlib.suppress(ValueError):
                self._containers.remove(container)
            container.close()

    def close(self) -> None:
        """Stop all iterations and close open files. Safe to call more than once."""
        self._stop[0] = True
        while self._containers:
            self._containers.pop().close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Decoded:
    """Re-iterable view of a reader's decoded frames (:meth:`VideoReader.decoded`)."""

    def __init__(self, reader: VideoReader) -> None:
        self.reader = reader

    def __iter__(self) -> Iterator[DecodedFrame]:
        return self.reader._iter_decoded()


def _iterate_then_close(reader: VideoReader) -> Iterator[torch.Tensor]:
    """Yield the frames of ``reader`` and close it when done or when the generator is closed."""
    try:
        yield from reader
    finally:
        reader.close()


def iter_frames(path: str | Path, size: int | None = None, crop: bool = True) -> Iterator[torch.Tensor]:
    """Stream the frames of a video file or frame folder.

    The path is checked immediately (InputFileError on problems); decoding happens lazily as the returned
    iterator is consumed, one frame at a time.

    Returns:
        Iterator of (3, H, W) float32 tensors in [0, 1] (H = W = size when given).
    """
    return _iterate_then_close(VideoReader(path, size=size, crop=crop))


def _check_indices(indices: Sequence[int]) -> list[int]:
    """Validate frame indices (non-negative integers) and return them as a list of ints."""
    wanted = [int(index) for index in indices]
    if any(index < 0 for index in wanted):
        raise ValueError(f"frame indices must be non-negative, got {list(indices)}")
    return wanted


def _in_requested_order(found: dict[int, torch.Tensor], wanted: list[int]) -> list[torch.Tensor]:
    """Arrange decoded frames in the order of ``wanted``; repeated indices get independent copies."""
    result: list[torch.Tensor] = []
    seen: set[int] = set()
    for index in wanted:
        result.append(found[index].clone() if index in seen else found[index])
        seen.add(index)
    return result


def read_frames(
    path: str | Path, indices: Sequence[int], size: int | None = None, crop: bool = True
) -> list[torch.Tensor]:
    """Read selected frames of a video file or frame folder.

    Video files are decoded from the start up to ``max(indices)`` only, keeping just the wanted frames; frame
    folders open only the wanted images.

    Args:
        path: video file or frame folder.
        indices: 0-based frame indices, any order, duplicates allowed.
        size, crop: as in :func:`read_image`.

    Returns:
        List of (3, H, W) float32 tensors in [0, 1], in the order of ``indices``.

    Raises:
        InputFileError: unusable input, or an index beyond the last decodable frame.
        ValueError: a negative index.
    """
    path = Path(path)
    size = _check_size(size)
    wanted = _check_indices(indices)
    if _video_source_kind(path) == "folder":
        files = _require_frame_files(path)
        if wanted and max(wanted) >= len(files):
            raise InputFileError(path, f"has {len(files)} frames; frame {max(wanted)} was requested")
        found = {index: read_image(files[index], size, crop) for index in set(wanted)}
        return _in_requested_order(found, wanted)
    if not wanted:
        _probe_file(path)
        return []
    targets, last = set(wanted), max(wanted)
    found = {}
    decoded = 0
    with _open_video_frames(path) as frames:
        for index, frame in enumerate(frames):
            decoded = index + 1
            if index in targets:
                found[index] = _fit(_av_frame_to_tensor(frame), size, crop)
            if index == last:
                break
    if last not in found:
        raise InputFileError(path, f"has {decoded} decodable frames; frame {last} was requested")
    return _in_requested_order(found, wanted)


def count_frames(path: str | Path) -> int:
    """Exact number of frames of a video file or frame folder.

    Uses the count recorded in the container when there is one; otherwise decodes the whole video (without
    converting frames to RGB). For folders: the number of image files.
    """
    path = Path(path)
    if _video_source_kind(path) == "folder":
        return len(_require_frame_files(path))
    info = _probe_file(path)
    if info.num_frames:
        return info.num_frames
    with _open_video_frames(path) as frames:
        return sum(1 for _ in frames)


# ----------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------


def to_uint8_hwc(frame: Any) -> np.ndarray:
    """Convert a frame to a contiguous (H, W, 3) uint8 array.

    Accepts torch tensors and numpy arrays shaped (3, H, W) or (H, W, 3) (also 1 channel or (H, W) gray),
    float in [0, 1] (clipped; NaN -> 0) or uint8. When both layouts fit (a 3-pixel-wide image) tensors are
    read as (C, H, W) and arrays as (H, W, C).
    """
    channels_first_preferred = isinstance(frame, torch.Tensor)
    if isinstance(frame, torch.Tensor):
        tensor = frame.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.float()
        array = tensor.numpy()
    else:
        array = np.asarray(frame)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"a frame must be (3, H, W) or (H, W, 3), got shape {tuple(array.shape)}")
    first, last = array.shape[0] in (1, 3), array.shape[-1] in (1, 3)
    if first and (channels_first_preferred or not last):
        array = np.moveaxis(array, 0, -1)
    elif not last:
        raise ValueError(f"a frame must be (3, H, W) or (H, W, 3), got shape {tuple(array.shape)}")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"frames must be float in [0, 1] or uint8, got dtype {array.dtype}")
    scaled = np.nan_to_num(array.astype(np.float32), nan=0.0).clip(0.0, 1.0) * 255.0
    return np.ascontiguousarray(np.rint(scaled).astype(np.uint8))


def _pad_to_even(array: np.ndarray) -> np.ndarray:
    """Pad an (H, W, 3) array by one edge-replicated row/column at the bottom/right where H/W is odd."""
    pad_h, pad_w = array.shape[0] % 2, array.shape[1] % 2
    if not pad_h and not pad_w:
        return array
    return np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _frame_rate(fps: float) -> Fraction:
    """fps as an exact fraction; NTSC-style rates (29.97, 23.976, 59.94) become n * 1000 / 1001."""
    ntsc = fps * 1.001
    if abs(ntsc - round(ntsc)) < 1e-3 and abs(fps - round(fps)) > 1e-3:
        return Fraction(round(ntsc) * 1000, 1001)
    return Fraction(fps).limit_denominator(1000)


class _AudioCopier:
    """Copies (or re-encodes) the audio of a source file into an output container as the video grows."""

    def __init__(self, source: Path, output: Any, suffix: str) -> None:
        self.source = source
        self.output = output
        self.input = _open_input(source)
        try:
            in_stream = self.input.streams.audio[0]
            self.copy = in_stream.codec_context.name in _AUDIO_COPYABLE[suffix]
            if self.copy:
                self.out_stream = output.add_stream_from_template(in_stream)
            else:
                self.out_stream = self._add_encoder(in_stream, _AUDIO_ENCODERS[suffix])
            self.packets = self.input.demux(in_stream)
        except BaseException:
            self.input.close()
            raise
        self.pending: Any = None
        self.exhausted = False

    def _add_encoder(self, in_stream: Any, encoder: str) -> Any:
        """Add an audio encoder stream matching the source's sample rate and channel layout."""
        rate = int(in_stream.codec_context.sample_rate)
        if encoder == "libopus" and rate not in _OPUS_RATES:
            rate = 48000
        stream = self.output.add_stream(encoder, rate=rate)
        channels = in_stream.codec_context.layout.nb_channels
        stream.layout = in_stream.codec_context.layout if channels <= 2 else "stereo"
        return stream

    def feed_until(self, seconds: float) -> None:
        """Write all source audio that starts before ``seconds`` (output time).

        Reading the source fails with InputFileError naming it; a failure to write the output is left as it is
        (the writer reports it against the output).
        """
        while not self.exhausted:
            if self.pending is None:
                self.pending = self._read(lambda: next(self.packets, None))
                if self.pending is None:
                    self.exhausted = True
                    return
            packet = self.pending
            if packet.dts is None or packet.pts is None:
                self.pending = None
                continue
            if float(packet.pts * packet.time_base) >= seconds:
                return
            self.pending = None
            self._write(packet)

    def _read(self, action: Any) -> Any:
        """``action()``, a read from the source; its PyAV/OS errors become InputFileError naming the source."""
        try:
            return action()
        except _AV_ERRORS as exc:
            raise InputFileError(self.source, f"cannot copy its audio ({_av_reason(exc)})") from exc

    def _write(self, packet: Any) -> None:
        """Copy one packet, or decode and re-encode it."""
        if self.copy:
            packet.stream = self.out_stream
            self.output.mux(packet)
            return
        for frame in self._read(packet.decode):
            frame.pts = None
            self.output.mux(self.out_stream.encode(frame))

    def finish(self, seconds: float) -> None:
        """Write the audio up to ``seconds``, flush the encoder and close the source."""
        try:
            self.feed_until(seconds)
            if not self.copy:
                self.output.mux(self.out_stream.encode(None))
        finally:
            self.close()

    def close(self) -> None:
        """Close the source file."""
        self.input.close()


def _has_audio(source: Path) -> bool:
    """Whether ``source`` is a readable media file with an audio stream (InputFileError if unreadable)."""
    _require_exists(source)
    if source.is_dir():
        raise InputFileError(source, "is a folder; audio must come from a video file")
    _require_nonempty_file(source)
    container = _open_input(source)
    try:
        return bool(container.streams.audio)
    finally:
        container.close()


class _AVSink:
    """Encodes frames into an mp4/mov/mkv/avi/webm/gif file with PyAV."""

    def __init__(
        self, temp: Path, suffix: str, fps: float, crf: int, size: tuple[int, int], audio: Path | None
    ) -> None:
        self.suffix = suffix
        self.rate = _frame_rate(fps)
        self.gif = suffix == ".gif"
        options = {"movflags": "+faststart"} if suffix in (".mp4", ".mov") else {}
        self.container = av.open(str(temp), mode="w", options=options)
        self.audio: _AudioCopier | None = None
        try:
            self.stream = self._add_video_stream(crf, size)
            if audio is not None:
                self.audio = _AudioCopier(audio, self.container, suffix)
        except BaseException:
            self.discard()
            raise
        self.count = 0

    def _add_video_stream(self, crf: int, size: tuple[int, int]) -> Any:
        """Add and configure the video encoder."""
        height, width = size
        if self.gif:
            stream = self.container.add_stream("gif", rate=self.rate)
            stream.pix_fmt = "pal8"
        else:
            stream = self.container.add_stream(_VIDEO_ENCODERS[self.suffix], rate=self.rate)
            stream.pix_fmt = "yuv420p"
            height, width = height + height % 2, width + width % 2
            if self.suffix == ".webm":
                stream.bit_rate = 0
                stream.options = {"crf": str(crf), "row-mt": "1", "cpu-used": "4"}
            else:
                stream.options = {"crf": str(crf)}
        stream.width, stream.height = width, height
        return stream

    def _make_frame(self, array: np.ndarray) -> av.VideoFrame:
        """Wrap an (H, W, 3) uint8 array as a PyAV frame in the encoder's input format."""
        if not self.gif:
            return av.VideoFrame.from_ndarray(_pad_to_even(array), format="rgb24")
        image = Image.fromarray(array).quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        rgb = np.asarray(image.getpalette() or [], dtype=np.uint8).reshape(-1, 3)[:256]
        palette = np.zeros((256, 4), dtype=np.uint8)
        palette[:, 0] = 255
        palette[: len(rgb), 1:] = rgb
        return av.VideoFrame.from_ndarray((np.asarray(image), palette), format="pal8")

    def write(self, array: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 frame (and the audio that belongs before its end)."""
        frame = self._make_frame(array)
        frame.pts = self.count
        frame.time_base = 1 / self.rate
        self.container.mux(self.stream.encode(frame))
        self.count += 1
        if self.audio is not None:
            self.audio.feed_until(float(self.count / self.rate))

    def finish(self) -> None:
        """Flush the encoders and close the file."""
        self.container.mux(self.stream.encode(None))
        if self.audio is not None:
            self.audio.finish(float(self.count / self.rate))
        self.container.close()

    def discard(self) -> None:
        """Close everything, ignoring errors (the file is deleted by the caller)."""
        if self.audio is not None:
            with contextlib.suppress(*_AV_ERRORS):
                self.audio.close()
        with contextlib.suppress(*_AV_ERRORS):
            self.container.close()


class _FolderSink:
    """Writes frames as ``%06d.png`` files into a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def write(self, array: np.ndarray) -> None:
        """Save one (H, W, 3) uint8 frame as the next PNG."""
        Image.fromarray(array).save(self.folder / f"{self.count:06d}.png", format="PNG")
        self.count += 1

    def finish(self) -> None:
        """Nothing to flush."""

    def discard(self) -> None:
        """Nothing to release (the folder is deleted by the caller)."""


def _output_kind(path: Path) -> str:
    """``"folder"`` for an existing folder or a path without suffix, else the lower-case suffix.

    Raises:
        InputFileError: unknown suffix.
    """
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if not suffix:
        return "folder"
    if suffix in _VIDEO_ENCODERS or suffix == ".gif":
        return suffix
    known = " ".join(sorted({*_VIDEO_ENCODERS, ".gif"}))
    raise InputFileError(
        path, f"unknown output format '{suffix}' (use {known}, or a folder path without suffix)"
    )


def _check_replaceable_folder(path: Path) -> None:
    """Refuse to replace an existing file, or a folder that holds anything besides image files."""
    if not path.exists():
        return
    if not path.is_dir():
        raise InputFileError(path, f"exists and is {describe_kind(path)}; cannot write a folder of frames there")
    with os.scandir(path) as entries:
        foreign = [entry.name for entry in entries if not (_is_image_name(entry.name) and entry.is_file())]
    if foreign:
        raise InputFileError(
            path, f"folder holds files other than frames (e.g. {sorted(foreign)[0]}); refusing to replace it"
        )


class VideoWriter:
    """Write a video frame by frame; the file appears at ``path`` only when :meth:`close` succeeds.

    Usage::

        with VideoWriter("out.mp4", fps=25, audio_from="driving.mp4") as writer:
            for frame in frames:          # (3, H, W) float in [0, 1] or (H, W, 3) uint8, all the same size
                writer.write(frame)
        # out.mp4 is complete here; an exception inside the block leaves no file (and an old out.mp4 intact)

    Args:
        path: target: ``.mp4 .mov .mkv .avi .webm .gif``, or a folder (no suffix / existing folder) of PNGs.
        fps: frames per second (> 0).
        audio_from: a video whose audio is copied into the output (ignored for GIF and folders); a file
            without audio gives a silent output.
        crf: constant-quality factor of the video encoder (x264: 0-51, lower is better; VP9: 0-63).

    Raises:
        InputFileError: unknown suffix, ``audio_from`` missing or unreadable, or a folder target that holds
            other files; raised before anything is written.
        OutputFileError: (from ``write`` or ``close``) the output cannot be written: no space left, a read-only
            or permission-denied folder, a parent that is a file (the temporary output is deleted).
    """

    def __init__(
        self,
        path: str | Path,
        fps: float = 25.0,
        audio_from: str | Path | None = None,
        crf: int = 18,
    ) -> None:
        self.path = Path(path)
        if not (math.isfinite(float(fps)) and fps > 0):
            raise UserError(f"{self.path}: fps must be a positive number, got {fps!r}")
        if not 0 <= int(crf) <= 63:
            raise UserError(f"{self.path}: crf must be between 0 and 63, got {crf!r}")
        self.fps = float(fps)
        self.crf = int(crf)
        self._kind = _output_kind(self.path)
        if self._kind == "folder":
            _check_replaceable_folder(self.path)
        self._audio: Path | None = None
        if audio_from is not None:
            source = Path(audio_from)
            if _has_audio(source) and self._kind not in ("folder", ".gif"):
                self._audio = source
        self._atomic = AtomicOutput(self.path, directory=self._kind == "folder")
        self._sink: _AVSink | _FolderSink | None = None
        self._size: tuple[int, int] | None = None
        self._state = "open"
        self.frames_written = 0

    def _start(self, size: tuple[int, int]) -> None:
        """Create the temporary output and the encoder for frames of ``size`` (H, W)."""
        temp = self._atomic.open()
        try:
            if self._kind == "folder":
                self._sink = _FolderSink(temp)
            else:
                self._sink = _AVSink(temp, self._kind, self.fps, self.crf, size, self._audio)
        except BaseException as exc:
            self._atomic.discard()
            raise_output_fault(self.path, exc)
            raise
        self._size = size

    def write(self, frame: Any) -> None:
        """Append one frame: tensor or array, (3, H, W) or (H, W, 3), float in [0, 1] or uint8.

        Raises:
            ValueError: bad shape or dtype, or a size different from the first frame (the writer stays
            usable).
        """
        if self._state != "open":
            raise ValueError(f"VideoWriter for {self.path} is {self._state}")
        array = to_uint8_hwc(frame)
        size = (int(array.shape[0]), int(array.shape[1]))
        if self._size is None:
            self._start(size)
        elif size != self._size:
            raise ValueError(
                f"{self.path}: all frames must be {self._size[0]}x{self._size[1]} (H x W), got {size}"
            )
        assert self._sink is not None
        try:
            self._sink.write(array)
        except BaseException as exc:
            self.abort()
            raise_output_fault(self.path, exc)
            raise
        self.frames_written += 1

    def close(self) -> Path:
        """Finish encoding (and audio), move the file into place and return its path.

        Raises:
            UserError: no frame was written (nothing is left at the target).
        """
        if self._state == "closed":
            return self.path
        if self._state != "open":
            raise ValueError(f"VideoWriter for {self.path} is {self._state}")
        if self._sink is None:
            self.abort()
            raise UserError(f"{self.path}: no frames were written; nothing was saved")
        try:
            self._sink.finish()
            self._atomic.commit()
        except BaseException as exc:
            self.abort()
            raise_output_fault(self.path, exc)
            raise
        self._state = "closed"
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; the target path is left as it was. Safe to call repeatedly."""
        if self._state != "open":
            return
        self._state = "aborted"
        if self._sink is not None:
            self._sink.discard()
        self._atomic.discard()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(
    path: str | Path, frames: Iterable[Any], fps: float = 25.0, audio_from: str | Path | None = None
) -> Path:
    """Write all ``frames`` (consumed lazily) to ``path`` with :class:`VideoWriter`; return the path."""
    writer = VideoWriter(path, fps=fps, audio_from=audio_from)
    with writer:
        for frame in frames:
            writer.write(frame)
    return writer.path


def write_image(path: str | Path, image: Any) -> Path:
    """Atomically save one image; the format follows the suffix (``.png``, ``.jpg`` at quality 95, ...).

    Args:
        path: target image file.
        image: tensor or array, (3, H, W) or (H, W, 3), float in [0, 1] or uint8.

    Returns:
        The path written.

    Raises:
        InputFileError: unknown suffix (nothing is written).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _IMAGE_SAVE_FORMATS:
        known = " ".join(sorted(_IMAGE_SAVE_FORMATS))
        raise InputFileError(path, f"unknown image format '{suffix or path.name}' (use {known})")
    array = to_uint8_hwc(image)
    save_format = _IMAGE_SAVE_FORMATS[suffix]
    options: dict[str, Any] = {"quality": 95} if save_format in ("JPEG", "WEBP") else {}
    with atomic_output(path) as temp:
        Image.fromarray(array).save(temp, format=save_format, **options)
    return path
