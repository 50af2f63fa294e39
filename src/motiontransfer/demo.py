"""The embedded default job behind ``motiontransfer demo``: needs no data and no download.

A bundled model (:mod:`motiontransfer.pretrained`) animates a procedural test identity A (never seen in
training) with the driving clip of another test identity B, by relative motion transfer. Because the data is
procedural, the answer is known: the ground-truth render of "A performing B's motion" is shown next to the
prediction, and the mean L1 between the two is reported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from motiontransfer.api import load
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.errors import ArgumentError, Term, UserError
from motiontransfer.evaluation.metrics import l1_error
from motiontransfer.inference import pipeline
from motiontransfer.pretrained import BUNDLED_MODELS, bundled_family
from motiontransfer.video.io import VideoWriter
from motiontransfer.visualize import animation_grid, image_grid

DEMO_FPS = 25.0
Progress = Callable[[Iterable[dict[str, Any]], int], Iterable[dict[str, Any]]]


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` wrote and measured.

    Attributes:
        video: the animation (A driven by B), ``out/demo.mp4``.
        visualization: ``out/demo-viz.mp4``: source | driving | occlusion | prediction | ground truth.
        l1: mean absolute difference between prediction and ground truth, [0, 1] scale.
        copy_l1: the same for the "copy the source frame" baseline.
    """

    video: Path
    visualization: Path
    l1: float
    copy_l1: float


def run_demo(out: str | Path = "out", model: str = "fomm-faces", frames: int = 64, seed: int = 0,
             device: str | None = None, display_scale: int = 4, progress: Progress | None = None) -> DemoResult:
    """Animate procedural test identity A with the motion of identity B using a bundled model.

    Args:
        out: output folder (created).
        model: a bundled model name (``fomm-faces``, ``fomm-puppets``).
        frames: length of the driving clip.
        seed: picks the two test identities and the motion.
        device: as :func:`motiontransfer.load`.
        display_scale: the videos are written at ``display_scale`` times the model's frame size (nearest
            neighbour), so that 64-pixel frames are visible; 1 keeps the model's size.
        progress: optional wrapper of the frame stream (e.g. a progress bar).

    Returns:
        A :class:`DemoResult`.

    Raises:
        UserError: unknown model name, or non-positive ``frames`` / ``display_scale``.
    """
    if model not in BUNDLED_MODELS:
        raise UserError(f"unknown demo model {model!r}; choose one of {', '.join(BUNDLED_MODELS)}")
    if frames < 1 or display_scale < 1:
        raise ArgumentError(Term("frames"), f" and the display scale must be positive, got {frames} and "
                            f"{display_scale}")
    animator = load(model, device=device)
    spec = ProceduralSpec(family=bundled_family(model), size=animator.size, videos=2, frames=frames, seed=seed,
                          split="test")
    data = ProceduralSource(spec)
    source_image = data.frame(0, 0).tensor()
    driving = (frame.tensor() for frame in data.frames(1))
    truth = (frame.tensor() for frame in data.transfer_frames(0, 1))
    items: Iterable[dict[str, Any]] = pipeline.animate(animator.model, source_image, driving, mode="relative")
    if progress is not None:
        items = progress(items, frames)
    out = Path(out)
    errors, copy_errors = [], []
    with contextlib.ExitStack() as stack:
        video = stack.enter_context(VideoWriter(out / "demo.mp4", fps=DEMO_FPS))
        viz = stack.enter_context(VideoWriter(out / "demo-viz.mp4", fps=DEMO_FPS))
        for item, target in zip(items, truth, strict=True):
            errors.append(l1_error(item["prediction"], target))
            copy_errors.append(l1_error(source_image, target))
            video.write(_enlarge(item["prediction"], display_scale))
            viz.write(_enlarge(_viz_frame(item, target), display_scale))
    return DemoResult(video.path, viz.path, float(np.mean(errors)), float(np.mean(copy_errors)))


def _viz_frame(item: dict[str, Any], truth: torch.Tensor) -> torch.Tensor:
    """source | driving | occlusion | prediction | ground truth, as a (3, H', W') float tensor."""
    grid = animation_grid(item, padding=2)
    panel = image_grid([[truth]], padding=2)
    joined = np.concatenate([grid[:, :-2], panel], axis=1)
    return torch.from_numpy(joined).permute(2, 0, 1).float() / 255.0


def _enlarge(frame: torch.Tensor, scale: int) -> torch.Tensor:
    """(3, H, W) -> (3, scale H, scale W) by pixel repetition."""
    if scale == 1:
        return frame
    return F.interpolate(frame[None].float(), scale_factor=scale, mode="nearest")[0]

