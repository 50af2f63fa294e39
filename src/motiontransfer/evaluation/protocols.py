"""Evaluation protocols: which frames are compared with which, and the per-frame scores.

* ``reconstruction`` (the papers'): the first frame of each test video is the source and every frame of the same
  video drives it (absolute motion); the prediction is compared with that frame.
* ``cross`` (ours, procedural data only): identity A (test video 2i) is animated by the clip of identity B (test
  video 2i + 1) with relative motion and compared with the ground-truth render of A performing B's motion.

Every protocol yields :class:`EvalFrame` items (prediction, target and source), streamed; :func:`score_frames`
turns them into per-frame metric records, computing keypoints and identity embeddings of predictions and targets
in batches with the given evaluators. The "copy the source frame" baseline is scored on the same frames
(metrics prefixed ``copy_``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from motiontransfer.data.splits import split_test_videos
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.data.synthetic.source import is_procedural
from motiontransfer.errors import UserError
from motiontransfer.evaluation import metrics
from motiontransfer.evaluation.procedural import load_evaluator
from motiontransfer.inference import pipeline
from motiontransfer.models.base import AnimationModel
from motiontransfer.ops.coordinates import normalized_to_pixels
from motiontransfer.pretrained import bundled_evaluator_path

ProtocolName = Literal["reconstruction", "cross"]
IMAGE_METRICS = ("l1", "psnr", "ssim")
KEYPOINT_METRICS = ("akd", "mkr")
IDENTITY_METRICS = ("aed",)
LEARNED_FRAME_METRICS = ("lpips",)
SET_METRICS = ("fid", "fvd", "fd_identity")
"""Metrics of a whole set of frames (FID; ``fd_identity``, the Fréchet distance between identity embeddings, e.g.
dlib's for real faces: an offline stand-in, not FID) or clips (FVD); computed by the runner, not per frame."""
EVALUATOR_METRICS = KEYPOINT_METRICS + IDENTITY_METRICS + ("fd_identity",)
"""Metrics that need a keypoint or identity evaluator."""
ALL_METRICS = IMAGE_METRICS + KEYPOINT_METRICS + IDENTITY_METRICS + LEARNED_FRAME_METRICS + SET_METRICS
_IMAGE_METRIC_FUNCTIONS = {"l1": "l1_error", "psnr": "psnr", "ssim": "ssim"}


@dataclass(frozen=True)
class EvalFrame:
    """One compared frame: ``prediction``, ``target`` and ``source`` are (3, H, W) float tensors in [0, 1]."""

    video: str
    index: int
    prediction: torch.Tensor
    target: torch.Tensor
    source: torch.Tensor


class KeypointEvaluator(Protocol):
    """A keypoint detector for AKD / MKR: frames (B, 3, H, W) in [0, 1] -> (pixel coordinates (B, K, 2),
    detected (B, K) bool)."""

    name: str

    def detect(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]: ...


class IdentityEvaluator(Protocol):
    """An identity embedding for AED: frames (B, 3, H, W) in [0, 1] -> (B, D), NaN rows where none is found."""

    name: str

    def embed(self, frames: torch.Tensor) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------------- protocols


def protocol_frames(protocol: str, model: AnimationModel, data: str | Path, *, num_videos: int | None = None,
                    batch_size: int | None = None) -> Iterator[EvalFrame]:
    """The frames of ``protocol`` (``reconstruction`` or ``cross``) on the test split of ``data``.

    Raises:
        UserError: an unknown protocol, or ``cross`` on data without ground truth (not ``procedural:``).
    """
    if protocol == "reconstruction":
        return reconstruction_frames(model, data, num_videos=num_videos, batch_size=batch_size)
    if protocol == "cross":
        return cross_frames(model, data, num_videos=num_videos, batch_size=batch_size)
    raise UserError(f"unknown protocol {protocol!r}; choose reconstruction or cross")


def reconstruction_frames(model: AnimationModel, data: str | Path, *, num_videos: int | None = None,
                          batch_size: int | None = None) -> Iterator[EvalFrame]:
    """Reconstruction protocol over the test videos of ``data`` (a folder or a ``procedural:`` spec)."""
    for video in split_test_videos(data, model.size, num_videos):
        for item in pipeline.reconstruct(model, video.frames(), batch_size=batch_size):
            yield EvalFrame(video.name, int(item["index"]), item["prediction"], item["driving"], item["source"])


def cross_frames(model: AnimationModel, data: str | Path, *, num_videos: int | None = None,
                 batch_size: int | None = None) -> Iterator[EvalFrame]:
    """Cross-identity protocol: test video 2i's identity driven by test video 2i + 1 (relative motion), against
    the ground truth; ``num_videos`` counts videos used (two per pair)."""
    if not is_procedural(str(data)):
        raise UserError(f"the cross protocol needs procedural data with ground truth (procedural:faces, ...), "
                        f"not {data}")
    spec = ProceduralSpec.test_split(str(data), model.size)
    source_data = ProceduralSource(spec)
    count = len(source_data) if num_videos is None else min(num_videos, len(source_data))
    for a in range(0, count - 1, 2):
        source = source_data.frame(a, 0).tensor()
        driving = (f.tensor() for f in source_data.frames(a + 1))
        truth = (f.tensor() for f in source_data.transfer_frames(a, a + 1))
        name = f"{source_data.video(a).name}<-{source_data.video(a + 1).name}"
        items = pipeline.animate(model, source, driving, mode="relative", batch_size=batch_size)
        for item, target in zip(items, truth, strict=True):
            yield EvalFrame(name, int(item["index"]), item["prediction"], target, item["source"])


# --------------------------------------------------------------------------------------------------- scoring


def check_metrics(names: Sequence[str]) -> tuple[str, ...]:
    """Validate metric names (see :data:`ALL_METRICS`)."""
    unknown = [name for name in names if name not in ALL_METRICS]
    if unknown:
        raise UserError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(ALL_METRICS)}")
    return tuple(dict.fromkeys(names))


def score_frames(frames: Iterable[EvalFrame], names: Sequence[str] = IMAGE_METRICS,
                 keypoints: KeypointEvaluator | None = None, identity: IdentityEvaluator | None = None,
                 batch_size: int = 16, lpips: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
                 ) -> Iterator[dict[str, float | str | int]]:
    """Per-frame metric records for the model and for the copy-the-source baseline.

    Args:
        frames: :class:`EvalFrame` items of a protocol.
        names: metrics to compute (subset of :data:`ALL_METRICS`); keypoint metrics need ``keypoints``, AED needs
            ``identity`` (otherwise they are left out).
        keypoints, identity: evaluators for AKD / MKR and AED.
        batch_size: frames per evaluator call.
        lpips: (B, 3, H, W) predictions, targets -> (B,) distances (a loaded
            :class:`~motiontransfer.evaluation.learned.LPIPS`); LPIPS is left out without it. FID and FVD are
            set metrics, computed by :func:`motiontransfer.evaluation.runner.evaluate`, not here.

    Yields:
        ``{"video", "index", "l1", ..., "copy_l1", ...}`` per frame, in order. AKD is NaN for a frame where the
        target has no detected keypoint; AED is NaN where either embedding is missing.
    """
    names = check_metrics(names)
    frames = iter(frames)
    while batch := list(itertools.islice(frames, batch_size)):
        predictions = torch.stack([f.prediction for f in batch]).float()
        targets = torch.stack([f.target for f in batch]).float()
        sources = torch.stack([f.source for f in batch]).float()
        records: list[dict[str, float | str | int]] = [{"video": f.video, "index": f.index} for f in batch]
        for prefix, images in (("", predictions), ("copy_", sources)):
            for name in (n for n in names if n in IMAGE_METRICS):
                function = getattr(metrics, _IMAGE_METRIC_FUNCTIONS[name])
                for record, image, target in zip(records, images, targets, strict=True):
                    record[prefix + name] = function(image, target)
        if keypoints is not None and any(n in names for n in KEYPOINT_METRICS):
            _keypoint_scores(records, names, keypoints, predictions, targets, sources)
        if lpips is not None and "lpips" in names:
            with torch.no_grad():
                for prefix, images in (("", predictions), ("copy_", sources)):
                    for record, distance in zip(records, lpips(images, targets).tolist(), strict=True):
                        record[prefix + "lpips"] = float(distance)
        if identity is not None and "aed" in names:
            target_embeddings = identity.embed(targets)
            for prefix, images in (("", predictions), ("copy_", sources)):
                distances = np.linalg.norm(identity.embed(images) - target_embeddings, axis=1)
                for record, distance in zip(records, distances, strict=True):
                    record[prefix + "aed"] = float(distance)
        yield from records


def _keypoint_scores(records: list[dict[str, float | str | int]], names: Sequence[str],
                     evaluator: KeypointEvaluator, predictions: torch.Tensor, targets: torch.Tensor,
                     sources: torch.Tensor) -> None:
    target_points, target_found = evaluator.detect(targets)
    for prefix, images in (("", predictions), ("copy_", sources)):
        points, found = evaluator.detect(images)
        for i, record in enumerate(records):
            if "akd" in names:
                both = found[i] & target_found[i]
                distances = np.linalg.norm(points[i][both] - target_points[i][both], axis=-1)
                record[prefix + "akd"] = float(distances.mean()) if both.any() else float("nan")
            if "mkr" in names:
                record[prefix + "mkr"] = metrics.missing_keypoint_rate(found[i][None], target_found[i][None])


def summarize(records: Iterable[dict[str, float | str | int]]) -> dict[str, float]:
    """Mean of every numeric metric over records (NaNs ignored; text fields and ``index`` are not metrics), plus
    ``frames``, the number of records."""
    columns: dict[str, list[float]] = {}
    count = 0
    for record in records:
        count += 1
        for key, value in record.items():
            if key != "index" and not isinstance(value, str):
                columns.setdefault(key, []).append(float(value))
    summary = {key: float(np.nanmean(values)) if not np.all(np.isnan(values)) else float("nan")
               for key, values in columns.items()}
    return {**summary, "frames": float(count)}


# ------------------------------------------------------------------------------------------------- evaluators


class RegressorKeypoints:
    """:class:`KeypointEvaluator` from a procedural :class:`~motiontransfer.evaluation.procedural.KeypointRegressor`
    (frames of another size are resized to its size; coordinates are returned in the input's pixels)."""

    def __init__(self, model: torch.nn.Module, name: str = "procedural keypoint regressor") -> None:
        self.model = model.eval()
        self.name = name

    @torch.no_grad()
    def detect(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, H, W) -> ((B, K, 2) pixels, (B, K) visible)."""
        size = self.model.config.size
        height, width = frames.shape[-2:]
        resized = frames if (height, width) == (size, size) else F.interpolate(
            frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        normalized, logits = self.model(resized.float())
        return normalized_to_pixels(normalized, height, width).numpy(), (logits > 0).numpy()


class EmbedderIdentity:
    """:class:`IdentityEvaluator` from a procedural :class:`~motiontransfer.evaluation.procedural.IdentityEmbedder`."""

    def __init__(self, model: torch.nn.Module, name: str = "procedural identity embedder") -> None:
        self.model = model.eval()
        self.name = name

    @torch.no_grad()
    def embed(self, frames: torch.Tensor) -> np.ndarray:
        """(B, 3, H, W) -> (B, D)."""
        size = self.model.config.size
        if frames.shape[-2:] != (size, size):
            frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return self.model(frames.float()).numpy()


def procedural_evaluators(family: str) -> tuple[RegressorKeypoints | None, EmbedderIdentity | None]:
    """The bundled evaluators of a procedural family (None for families without them, e.g. ``shapes``)."""
    if family not in ("faces", "puppets"):
        return None, None
    return (RegressorKeypoints(load_evaluator(bundled_evaluator_path("keypoints", family))),
            EmbedderIdentity(load_evaluator(bundled_evaluator_path("identity", family))))
