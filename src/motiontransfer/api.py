"""The Python API: load a model and animate images with it.

Usage::

    import motiontransfer as mt

    animator = mt.load("vox.mt")                                   # our model file
    animator = mt.load("vox-cpk.pth.tar", config="vox-256")        # an official checkpoint + its config
    for frame in animator.animate("face.png", "talk.mp4"):         # (H, W, 3) float32 in [0, 1], streamed
        ...

Inputs are float arrays or tensors in [0, 1] (uint8 is accepted too), HWC or CHW, or file paths; they are
centre-cropped and resized to the model's frame size. Everything runs on one device: CUDA when available, else the
CPU, unless ``device`` says otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motiontransfer.checkpoint import ModelFile, is_model_file, load_model_file, save_model_file
from motiontransfer.convert.official import convert_official
from motiontransfer.errors import InputFileError, UserError
from motiontransfer.experiment import load_experiment, model_from_file
from motiontransfer.inference import pipeline
from motiontransfer.inference.landmarks import get_landmarker
from motiontransfer.inference.runtime import check_precision, default_accelerate, prepare_model
from motiontransfer.inference.smoothing import as_motion_smoother
from motiontransfer.models.base import AnimationModel, TransferMode
from motiontransfer.preprocess.animate import animate_cropped, check_crop
from motiontransfer.pretrained import bundled_model_path, is_bundled_name
from motiontransfer.video.frames import as_frames, as_image, to_hwc

MODEL_FILE_SUFFIX = ".mt"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; otherwise the named device, which must be usable.

    Raises:
        UserError: an unknown device name, or CUDA requested where it is not available.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UserError(f"unknown device {device!r} ({exc})") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested, but CUDA is not available here; use cpu")
    return resolved


def load(checkpoint: str | Path, config: Any = None, device: str | torch.device | None = None,
         family: str | None = None, *, precision: str = "fp32", accelerate: bool | None = None) -> Animator:
    """Load a model for inference.

    Args:
        checkpoint: a motiontransfer model file (``.mt``; it carries its config), the name of a bundled model
            (``fomm-faces``, ``fomm-puppets``; see :mod:`motiontransfer.pretrained`), or an official checkpoint
            (e.g. FOMM's ``vox-cpk.pth.tar``, read with ``torch.load(weights_only=True)``).
        config: for official checkpoints: a bundled config name (``vox-256``), a path to an official-style YAML
            file, or an experiment object. Required for FOMM and Monkey-Net; LIA's checkpoints (vox.pt, taichi.pt,
            ted.pt) share one architecture and default to ``lia-vox-256``. Not allowed with model files.
        device: ``cpu``, ``cuda``, ``cuda:1``, ...; None picks CUDA when available, else the CPU.
        family: the official checkpoint's family when no config is given (default: detected from the file).
        precision: ``fp32``, or ``bf16`` to run the family's decoder stacks in bfloat16 (where the device supports
            it natively; keypoints, Jacobians and motion heads stay float32). See
            :mod:`motiontransfer.inference.runtime`.
        accelerate: the fast inference path (exact rewrites of the networks, channels-last); None: on the CPU
            only. ``False`` (with ``fp32``) keeps the networks as trained, e.g. to train or save them.

    Returns:
        An :class:`Animator` in eval mode on the device.

    Raises:
        UserError / InputFileError: missing or unreadable file, missing config for an official checkpoint, a config
            that does not match the weights (the message names the first mismatching keys), another family's
            checkpoint, or an unusable device.
        CapabilityError: ``bf16`` on a device without native bfloat16.
    """
    path = Path(checkpoint)
    target = resolve_device(device)
    checked = check_precision(precision, target)  # before the weights are read
    if not path.exists() and is_bundled_name(checkpoint):
        path = bundled_model_path(str(checkpoint))
    if not path.exists():
        raise InputFileError(path, "checkpoint not found")
    if path.suffix == MODEL_FILE_SUFFIX or is_model_file(path):
        if config is not None or family is not None:
            raise UserError(f"{path} is a motiontransfer model file, which carries its own config; "
                            f"do not pass a config or family ({config or family})")

        def read() -> ModelFile:
            return load_model_file(path)
    else:
        experiment, name = _experiment(config) if config is not None else (None, None)

        def read() -> ModelFile:
            return convert_official(path, experiment, name, family)
    model = model_from_file(read(), device=target)
    fast = default_accelerate(target) if accelerate is None else accelerate
    return Animator(prepare_model(model, checked, fast), origin=read)


class Animator:
    """A loaded model with a frames-in, frames-out interface (see :func:`load`).

    Attributes:
        model: the family's :class:`~motiontransfer.models.base.AnimationModel` (for the pipeline primitives),
            possibly prepared for fast inference (:mod:`motiontransfer.inference.runtime`).
        origin: re-reads the weights as trained (used by :meth:`save` when ``model`` was prepared for inference),
            or None.
    """

    def __init__(self, model: AnimationModel, origin: Callable[[], ModelFile] | None = None) -> None:
        self.model = model
        self.origin = origin

    @property
    def family(self) -> str:
        """Model family name (``fomm``, ...)."""
        return self.model.family

    @property
    def size(self) -> int:
        """Side of the square frames the model works on."""
        return self.model.size

    @property
    def device(self) -> torch.device:
        """Device the model runs on."""
        return self.model.device

    def animate(self, source: Any, driving: Any, mode: TransferMode = "relative", adapt_scale: bool = False,
                best_frame: pipeline.BestFrame = None, *, batch_size: int | None = None,
                landmarks: str | pipeline.Landmarker = "model", smooth: bool | pipeline.MotionSmoother = False,
                crop: str = "none") -> Iterator[np.ndarray]:
        """Animate ``source`` with the motion of ``driving``, streaming one output frame per driving frame.

        Args:
            source: image path, or an array / tensor (H, W, 3) or (3, H, W) (also (H, W) or one channel).
            driving: video path (file or frame folder), a T-first array / tensor (T, H, W, 3) or (T, 3, H, W),
                or an iterable of frames (read lazily; a one-shot iterator cannot be used with ``best_frame``).
            mode, adapt_scale, best_frame, batch_size: see :func:`motiontransfer.inference.pipeline.animate`.
            landmarks: pose detector for ``best_frame="auto"``: ``model`` (its keypoints), ``dlib`` (faces; needs
                the ``eval`` extra) or a callable frame (3, H, W) -> (N, 2) points.
            smooth: filter the driving motion over time before transfer: True for the default
                :class:`~motiontransfer.inference.smoothing.CentredMotionSmoother`, or a motion smoother.
            crop: ``none``, or ``face`` / ``body``: animate the subject's crop of the full-size source with the
                tracked subject of the driving video and paste it back
                (:func:`motiontransfer.preprocess.animate.animate_cropped`, which has more options).

        Yields:
            (size, size, 3) float32 numpy frames in [0, 1]; with ``crop``, frames of the source's size.
        """
        if check_crop(crop) != "none":
            yield from animate_cropped(self, source, driving, crop=crop, mode=mode, adapt_scale=adapt_scale,
                                       best_frame=best_frame, batch_size=batch_size, landmarks=landmarks,
                                       smooth=smooth)
            return
        items = pipeline.animate(self.model, as_image(source, self.size), as_frames(driving, self.size), mode=mode,
                                 adapt_scale=adapt_scale, best_frame=best_frame, batch_size=batch_size,
                                 landmarks=get_landmarker(landmarks) if isinstance(landmarks, str) else landmarks,
                                 smooth=as_motion_smoother(smooth))
        for item in items:
            yield to_hwc(item["prediction"])

    def reconstruct(self, video: Any, *, batch_size: int | None = None) -> Iterator[np.ndarray]:
        """Reconstruct ``video`` (any ``driving`` form of :meth:`animate`) from its first frame and the motion of
        each frame (absolute). Yields (size, size, 3) float32 numpy frames in [0, 1]."""
        for item in pipeline.reconstruct(self.model, as_frames(video, self.size), batch_size=batch_size):
            yield to_hwc(item["prediction"])

    def save(self, path: str | Path) -> Path:
        """Write the model as a motiontransfer model file (atomically); returns the path. A model prepared for fast
        inference is saved from the weights it was loaded from (re-read, so they are not held twice in memory)."""
        if self.model.inference_only is not None and self.origin is not None:
            return save_model_file(path, self.origin())
        return save_model_file(path, self.model.to_model_file())


def _experiment(config: Any) -> tuple[Any, str]:
    """(experiment, name for messages) from a config name, a path or an experiment object."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return config, "(given experiment)"
    return load_experiment(config), str(config)
