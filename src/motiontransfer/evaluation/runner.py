"""``motiontransfer evaluate``: run a protocol, score every frame, summarise, and write the report.

The report folder gets ``metrics.json`` (summary + per-frame records), ``curves.png`` (per-frame-index metric
means, model against the copy-the-source baseline) and ``contact-sheet.png`` (the best and worst frames by L1:
source | target | prediction).
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motiontransfer.data.synthetic import ProceduralSpec
from motiontransfer.data.synthetic.source import is_procedural
from motiontransfer.errors import UserError
from motiontransfer.evaluation.actions import load_action_classifier
from motiontransfer.evaluation.bodies import MediapipePoseEvaluator
from motiontransfer.evaluation.faces import DlibFaceEvaluator
from motiontransfer.evaluation.learned import (
    LPIPS,
    FeatureStatistics,
    FIDInception,
    I3DFeatures,
    fid_from_statistics,
    fvd,
    learned_metric_status,
)
from motiontransfer.evaluation.prediction import prediction_records
from motiontransfer.evaluation.protocols import (
    EVALUATOR_METRICS,
    SET_METRICS,
    EvalFrame,
    IdentityEvaluator,
    KeypointEvaluator,
    check_metrics,
    procedural_evaluators,
    protocol_frames,
    score_frames,
    summarize,
)
from motiontransfer.fileio import atomic_write_text
from motiontransfer.models.base import AnimationModel, check_predictor
from motiontransfer.pretrained import bundled_evaluator_path
from motiontransfer.video.io import write_image
from motiontransfer.visualize import image_grid, line_chart

Progress = Callable[[Iterable[Any], int | None], Iterable[Any]]


@dataclass
class EvaluationReport:
    """The outcome of :func:`evaluate`.

    Attributes:
        summary: metric -> mean over frames (model and ``copy_`` baseline), plus ``frames``.
        records: per-frame records.
        skipped: metric -> why it was not computed.
        paths: files written.
    """

    summary: dict[str, float]
    records: list[dict[str, Any]]
    skipped: dict[str, str] = field(default_factory=dict)
    paths: list[Path] = field(default_factory=list)


class _Extremes:
    """Keeps the ``count`` best and worst frames by L1 (small copies only) while frames stream past."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.best: list[tuple[float, int, EvalFrame]] = []
        self.worst: list[tuple[float, int, EvalFrame]] = []
        self.counter = itertools.count()

    def watch(self, frames: Iterable[EvalFrame]) -> Iterator[EvalFrame]:
        for frame in frames:
            error = float((frame.prediction - frame.target).abs().mean())
            entry = next(self.counter)
            heapq.heappush(self.worst, (error, entry, frame))
            heapq.heappush(self.best, (-error, entry, frame))
            if len(self.worst) > self.count:
                heapq.heappop(self.worst)
            if len(self.best) > self.count:
                heapq.heappop(self.best)
            yield frame

    def sheet(self) -> np.ndarray:
        rows = [[f.source, f.target, f.prediction] for _, _, f in sorted(self.best, key=lambda e: -e[0])]
        rows += [[f.source, f.target, f.prediction] for _, _, f in sorted(self.worst, key=lambda e: e[0])]
        return image_grid(rows)


FVD_CLIP_FRAMES = 16
"""Frames per clip for FVD (the I3D's usual clip length): the first 16 frames of each test video."""


FrameFeatures = Callable[[torch.Tensor], Any]
"""(B, 3, H, W) frames in [0, 1] -> (B, D) features (tensor or array; NaN rows are left out)."""


class _SetFeatures:
    """Streams frames past while accumulating what the set metrics need, for the predictions, the targets and the
    copied sources (the baseline): per-frame features for the Fréchet distances over frames (FID: Inception
    features; ``fd_identity``: identity embeddings), and the I3D features of each video's first
    :data:`FVD_CLIP_FRAMES` frames for FVD.

    Args:
        frame_features: set metric name -> feature extractor over frames.
        i3d: the FVD detector, or None.
        batch_size: frames per extractor call.
    """

    ROLES = ("prediction", "target", "source")

    def __init__(self, frame_features: dict[str, FrameFeatures], i3d: I3DFeatures | None, batch_size: int) -> None:
        self.frame_features, self.i3d, self.batch_size = frame_features, i3d, batch_size
        self.statistics = {name: {role: FeatureStatistics() for role in self.ROLES} for name in frame_features}
        self.pending: list[EvalFrame] = []
        self.clips: dict[str, list[np.ndarray]] = {role: [] for role in self.ROLES}
        self.current: list[EvalFrame] = []

    def watch(self, frames: Iterable[EvalFrame]) -> Iterator[EvalFrame]:
        for frame in frames:
            if self.frame_features:
                self.pending.append(frame)
                if len(self.pending) == self.batch_size:
                    self._flush_frames()
            if self.i3d is not None:
                if self.current and self.current[0].video != frame.video:
                    self._flush_clip()
                self.current.append(frame)
            yield frame
        self._flush_frames()
        self._flush_clip()

    def _flush_frames(self) -> None:
        if not self.pending:
            return
        with torch.no_grad():
            for role in self.ROLES:
                images = torch.stack([getattr(f, role) for f in self.pending])
                for name, extract in self.frame_features.items():
                    features = extract(images)
                    features = features.detach().cpu().double().numpy() if isinstance(features, torch.Tensor) \
                        else np.asarray(features, dtype=np.float64)
                    self.statistics[name][role].update(features[np.isfinite(features).all(axis=1)])
        self.pending = []

    def _flush_clip(self) -> None:
        if self.i3d is not None and len(self.current) >= FVD_CLIP_FRAMES:
            clip = self.current[:FVD_CLIP_FRAMES]
            for role in self.ROLES:
                self.clips[role].append(self.i3d(torch.stack([getattr(f, role) for f in clip])[None])[0])
        self.current = []

    def scores(self) -> tuple[dict[str, float], dict[str, str]]:
        """(summary entries ``NAME`` and ``copy_NAME`` per set metric, reasons for the ones not computed)."""
        summary: dict[str, float] = {}
        skipped: dict[str, str] = {}
        for name, statistics in self.statistics.items():
            try:
                summary[name] = fid_from_statistics(statistics["prediction"], statistics["target"])
                summary["copy_" + name] = fid_from_statistics(statistics["source"], statistics["target"])
            except (ArithmeticError, UserError) as exc:
                summary.pop(name, None)
                skipped[name] = f"undefined on these {statistics['target'].count} frames ({exc})"
        if self.i3d is not None:
            try:
                features = {role: np.stack(clips) for role, clips in self.clips.items() if clips}
                if len(features.get("target", ())) < 2:
                    raise UserError(f"needs at least 2 test videos of {FVD_CLIP_FRAMES} frames or more")
                summary["fvd"] = fvd(features["prediction"], features["target"])
                summary["copy_fvd"] = fvd(features["source"], features["target"])
            except (ArithmeticError, UserError) as exc:
                summary.pop("fvd", None)
                skipped["fvd"] = f"undefined on these {len(self.clips['target'])} clips ({exc})"
        return summary, skipped


EVALUATOR_KINDS = ("auto", "face", "body")
"""Which real-data evaluator to use for a dataset folder: ``face`` (dlib), ``body`` (mediapipe Pose); ``auto`` is
the procedural evaluators for ``procedural:`` data and ``face`` for folders."""


def default_evaluators(data: str | Path, names: Sequence[str], kind: str = "auto"
                       ) -> tuple[KeypointEvaluator | None, IdentityEvaluator | None, dict[str, str]]:
    """The evaluators for ``data`` and ``kind`` (see :data:`EVALUATOR_KINDS`): the bundled procedural ones for
    ``procedural:faces|puppets``; for folders of real faces dlib (``eval`` extra), of real bodies mediapipe Pose
    (``body-eval`` extra, keypoints only: no identity embedding for bodies). Returns them and the reasons for
    metrics left out.

    Raises:
        UserError: an unknown ``kind``.
    """
    if kind not in EVALUATOR_KINDS:
        raise UserError(f"unknown evaluator {kind!r}; choose one of {', '.join(EVALUATOR_KINDS)}")
    keypoints: KeypointEvaluator | None = None
    identity: IdentityEvaluator | None = None
    identity_reason = ""
    if kind == "auto" and is_procedural(str(data)):
        keypoints, identity = procedural_evaluators(ProceduralSpec.parse(str(data)).family)
        reason = "no procedural evaluator for this family"
    elif kind in ("auto", "face"):
        try:
            face = DlibFaceEvaluator()
            keypoints, identity = face, face  # type: ignore[assignment]
            reason = ""
        except (ImportError, UserError) as exc:
            reason = f"the dlib face evaluator is not available ({exc}); pip install -e \".[eval]\""
    else:
        try:
            keypoints = MediapipePoseEvaluator()
            reason = ""
        except UserError as exc:
            reason = str(exc)
        identity_reason = "there is no identity embedding for bodies"
    skipped: dict[str, str] = {}
    for name in names:
        if name in ("akd", "mkr") and keypoints is None:
            skipped[name] = reason
        elif name in ("aed", "fd_identity") and identity is None:
            skipped[name] = identity_reason or reason
    return keypoints, identity, skipped


def evaluate(model: AnimationModel, data: str | Path, protocol: str = "reconstruction",
             names: Sequence[str] = ("l1", "psnr", "ssim", "akd", "mkr", "aed"), out_dir: str | Path | None = None,
             *, num_videos: int | None = None, batch_size: int | None = None,
             keypoints: KeypointEvaluator | None = None, identity: IdentityEvaluator | None = None,
             progress: Progress | None = None,
             sheet_size: int = 4, metrics_dir: str | Path | None = None, evaluator: str = "auto"
             ) -> EvaluationReport:
    """Run ``protocol`` of ``model`` on ``data`` and score it with ``names``.

    Args:
        model: any family's model.
        data: a dataset folder (its test split) or a ``procedural:`` spec.
        protocol: ``reconstruction`` or ``cross``.
        names: metrics (see :data:`motiontransfer.evaluation.protocols.ALL_METRICS`).
        out_dir: report folder (``metrics.json``, ``curves.png``, ``contact-sheet.png``); None writes nothing.
        num_videos: only the first N test videos.
        batch_size: frames per forward pass and per evaluator call.
        keypoints, identity: evaluators; default: :func:`default_evaluators` of ``evaluator``.
        progress: wraps the frame stream (e.g. a progress bar).
        sheet_size: best and worst frames on the contact sheet.
        metrics_dir: folder of the LPIPS / FID / FVD weight files (default:
            :func:`motiontransfer.evaluation.learned.metrics_weights_dir`); those metrics are skipped, with the
            reason, when their files are absent.
        evaluator: ``auto``, ``face`` or ``body`` (see :data:`EVALUATOR_KINDS`), when ``keypoints`` and
            ``identity`` are not given.

    Returns:
        An :class:`EvaluationReport`.
    """
    names = check_metrics(names)
    skipped: dict[str, str] = {}
    if keypoints is None and identity is None and any(n in EVALUATOR_METRICS for n in names):
        keypoints, identity, skipped = default_evaluators(data, names, evaluator)
    skipped.update(learned_metric_status(names, metrics_dir))
    names = tuple(n for n in names if n not in skipped)
    lpips = LPIPS.from_files(metrics_dir) if "lpips" in names else None
    frame_features: dict[str, FrameFeatures] = {}
    if "fid" in names:
        frame_features["fid"] = FIDInception.from_file(metrics_dir)
    if "fd_identity" in names and identity is not None:
        frame_features["fd_identity"] = identity.embed
    set_features = _SetFeatures(frame_features, I3DFeatures.from_file(metrics_dir) if "fvd" in names else None,
                                max(batch_size or 1, 8))
    extremes = _Extremes(sheet_size)
    frames: Iterable[EvalFrame] = set_features.watch(extremes.watch(
        protocol_frames(protocol, model, data, num_videos=num_videos, batch_size=batch_size)))
    if progress is not None:
        frames = progress(frames, None)
    frame_names = tuple(n for n in names if n not in SET_METRICS)
    records = list(score_frames(frames, frame_names, keypoints, identity, batch_size=max(batch_size or 1, 8),
                                lpips=lpips))
    set_summary, set_skipped = set_features.scores()
    skipped.update(set_skipped)
    report = EvaluationReport({**summarize(records), **set_summary}, records, skipped)
    if out_dir is not None:
        report.paths = write_report(report, Path(out_dir), protocol, names, extremes.sheet())
    return report


def evaluate_prediction(model: AnimationModel, data: str, out_dir: str | Path | None = None, *, samples: int = 4,
                        num_frames: int = 32, num_videos: int | None = None, batch_size: int = 16,
                        progress: Progress | None = None) -> EvaluationReport:
    """Run the ``prediction`` protocol (:mod:`motiontransfer.evaluation.prediction`) of an image-to-video ``model``
    on procedural ``data`` with the family's bundled keypoint regressor and action classifier.

    Returns:
        An :class:`EvaluationReport` whose records are per test video and whose summary holds the model's
        ``action_accuracy``, ``diversity``, ``error_best``, ``error_mean`` and the ``truth_`` / ``still_`` references;
        with ``out_dir``, ``metrics.json`` is written there.

    Raises:
        UserError: a model that does not generate videos, or data that is not procedural faces / puppets.
    """
    predictor = check_predictor(model)
    if not is_procedural(str(data)):
        raise UserError(f"the prediction protocol needs procedural data with actions (procedural:puppets, ...), "
                        f"not {data}")
    family = ProceduralSpec.parse(str(data)).family
    keypoints, _ = procedural_evaluators(family)
    if keypoints is None:
        raise UserError(f"no keypoint evaluator and action classifier for procedural {family}; use faces or puppets")
    classifier = load_action_classifier(bundled_evaluator_path("actions", family))
    records = list(prediction_records(predictor, str(data), keypoints, classifier, samples=samples,
                                      num_frames=num_frames, num_videos=num_videos, batch_size=batch_size,
                                      progress=progress))
    summary = summarize(records)
    summary["videos"] = summary.pop("frames")
    report = EvaluationReport(summary, records)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        document = {"protocol": "prediction", "samples": samples, "frames": num_frames, "summary": summary,
                    "records": records}
        atomic_write_text(out / "metrics.json", json.dumps(document, indent=1, allow_nan=True) + "\n")
        report.paths = [out / "metrics.json"]
    return report


def format_prediction_table(summary: dict[str, float]) -> str:
    """The prediction summary as a text table: model, ground truth and still-frame columns."""
    lines = [f"{'metric':<16}{'model':>10}{'truth':>10}{'still':>10}"]
    for name in ("action_accuracy", "diversity", "error_best", "error_mean"):
        cells = [summary.get(prefix + name, float("nan")) for prefix in ("", "truth_", "still_")]
        lines.append(f"{name:<16}" + "".join(f"{value:>10.4f}" if value == value else f"{'-':>10}"
                                             for value in cells))
    lines.append(f"{int(summary.get('videos', 0))} videos")
    return "\n".join(lines)


def write_report(report: EvaluationReport, out_dir: Path, protocol: str, names: Sequence[str],
                 sheet: np.ndarray) -> list[Path]:
    """Write ``metrics.json``, ``curves.png`` and ``contact-sheet.png`` into ``out_dir`` (atomically each)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"protocol": protocol, "summary": report.summary, "skipped": report.skipped,
                "records": report.records}
    json_path = out_dir / "metrics.json"
    atomic_write_text(json_path, json.dumps(document, indent=1, allow_nan=True) + "\n")
    charts = [line_chart({"model": _curve(report.records, name), "copy source": _curve(report.records,
                                                                                       "copy_" + name)},
                         f"{protocol}: {name} by frame") for name in names if name not in SET_METRICS]
    paths = [json_path]
    if charts:
        paths.append(write_image(out_dir / "curves.png", image_grid([charts[i:i + 3]
                                                                     for i in range(0, len(charts), 3)])))
    paths.append(write_image(out_dir / "contact-sheet.png", sheet))
    return paths


def _curve(records: Sequence[dict[str, Any]], key: str) -> list[float]:
    """Mean of ``key`` per frame index over videos."""
    by_index: dict[int, list[float]] = {}
    for record in records:
        if key in record:
            by_index.setdefault(int(record["index"]), []).append(float(record[key]))
    return [float(np.nanmean(by_index[i])) if by_index[i] and not np.all(np.isnan(by_index[i])) else float("nan")
            for i in sorted(by_index)]


def format_table(summary: dict[str, float], names: Sequence[str]) -> str:
    """The summary as an aligned text table: one row per metric, model and copy-source columns."""
    lines = [f"{'metric':<8}{'model':>12}{'copy source':>14}"]
    for name in names:
        if name in summary:
            lines.append(f"{name:<8}{summary[name]:>12.4f}{summary.get('copy_' + name, float('nan')):>14.4f}")
    lines.append(f"{int(summary.get('frames', 0))} frames")
    return "\n".join(lines)
