"""Evaluation protocols and reports: hand-made frames give known scores; a run writes its report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fomm_helpers import small_animator
from motiontransfer.errors import UserError
from motiontransfer.evaluation.metrics import frechet_distance
from motiontransfer.evaluation.protocols import (
    EvalFrame,
    check_metrics,
    cross_frames,
    reconstruction_frames,
    score_frames,
    summarize,
)
from motiontransfer.evaluation.runner import evaluate, format_table


class ShiftedKeypoints:
    """A fake detector: a fixed keypoint pattern, moved right by the frame's mean brightness * 10 pixels;
    no keypoints at all in an all-black frame."""

    name = "fake"

    def detect(self, frames: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        base = np.array([[10.0, 10.0], [20.0, 12.0], [15.0, 25.0]])
        shift = frames.mean(dim=(1, 2, 3)).numpy() * 10
        points = base[None] + np.stack([shift, np.zeros_like(shift)], -1)[:, None]
        found = np.repeat((frames.amax(dim=(1, 2, 3)) > 0).numpy()[:, None], 3, axis=1)
        return points, found


class MeanColour:
    name = "colour"

    def embed(self, frames: torch.Tensor) -> np.ndarray:
        return frames.mean(dim=(2, 3)).numpy()


def frame(prediction: float, target: float, source: float, index: int = 0) -> EvalFrame:
    return EvalFrame("v", index, torch.full((3, 8, 8), prediction), torch.full((3, 8, 8), target),
                     torch.full((3, 8, 8), source))


def test_scores_of_hand_made_frames() -> None:
    records = list(score_frames([frame(0.5, 0.3, 0.3), frame(0.0, 0.3, 0.3, 1)],
                                ["l1", "psnr", "akd", "mkr", "aed"], ShiftedKeypoints(), MeanColour()))
    first, second = records
    assert first["l1"] == pytest.approx(0.2) and first["copy_l1"] == 0.0
    assert first["psnr"] == pytest.approx(-10 * math.log10(0.04), abs=1e-4)
    assert first["akd"] == pytest.approx(2.0, abs=1e-5) and first["copy_akd"] == pytest.approx(0.0)
    assert first["mkr"] == 0.0 and second["mkr"] == 1.0  # the black prediction loses every keypoint
    assert math.isnan(second["akd"])  # nothing detected in the prediction: no distance
    assert first["aed"] == pytest.approx(math.sqrt(3) * 0.2, abs=1e-6)
    summary = summarize(records)
    assert summary["akd"] == pytest.approx(2.0, abs=1e-5) and summary["mkr"] == 0.5 and summary["frames"] == 2


def test_unknown_metric_and_cross_without_ground_truth(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown metric"):
        check_metrics(["l1", "fid2"])
    with pytest.raises(UserError, match="procedural"):
        next(cross_frames(small_animator(), tmp_path))


def test_evaluate_writes_a_report(tmp_path: Path) -> None:
    model = small_animator()
    report = evaluate(model, "procedural:shapes:videos=2,frames=4", "reconstruction", ["l1", "psnr"], tmp_path,
                      batch_size=4, sheet_size=2)
    assert report.summary["frames"] == 8 and 0 < report.summary["l1"] < 1
    assert report.summary["copy_l1"] >= 0
    document = json.loads((tmp_path / "metrics.json").read_text())
    assert document["protocol"] == "reconstruction" and len(document["records"]) == 8
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "contact-sheet.png").is_file()
    assert "l1" in format_table(report.summary, ["l1", "psnr"])


def test_cross_protocol_compares_with_the_ground_truth() -> None:
    model = small_animator()
    report = evaluate(model, "procedural:faces:videos=2,frames=3", "cross", ["l1"], batch_size=4)
    assert report.summary["frames"] == 3
    assert report.summary["copy_l1"] > 0  # the source differs from A performing B's motion


def test_identity_frechet_distance_over_the_set() -> None:
    model = small_animator()
    data = f"procedural:faces:videos=2,frames=4,size={model.size}"
    report = evaluate(model, data, "reconstruction", ["l1", "fd_identity"], identity=MeanColour(), batch_size=4)
    assert not report.skipped
    # recompute by hand from the same frames: the mean colours of predictions, targets and sources
    frames = list(reconstruction_frames(model, data, batch_size=4))
    colours = {role: np.stack([getattr(f, role).mean(dim=(1, 2)).numpy() for f in frames])
               for role in ("prediction", "target", "source")}
    assert report.summary["fd_identity"] == pytest.approx(frechet_distance(colours["prediction"],
                                                                           colours["target"]), rel=1e-6, abs=1e-9)
    assert report.summary["copy_fd_identity"] == pytest.approx(frechet_distance(colours["source"],
                                                                                colours["target"]), rel=1e-6,
                                                               abs=1e-9)
    assert report.summary["copy_fd_identity"] > 0
