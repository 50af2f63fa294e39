"""benchmarks/fomm_synthetic.py: its metrics on hand-made frames, the warp-only and generator-alone diagnostics on
the bundled model, and the results page."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from motiontransfer.api import load
from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from fomm_synthetic import markdown, reconstruction_triples, score, self_reconstruction_l1


def test_score_averages_each_metric_over_frames() -> None:
    target = torch.full((3, 4, 4), 0.5)
    items = [(torch.zeros(3, 4, 4), target, torch.full((3, 4, 4), 0.25), target.clone()),
             (torch.full((3, 4, 4), 0.4), target, torch.full((3, 4, 4), 0.75), torch.full((3, 4, 4), 0.3))]
    scores = score(iter(items))
    assert scores.frames == 2
    assert scores.l1 == pytest.approx((0.5 + 0.1) / 2)
    assert scores.copy_l1 == pytest.approx(0.25)
    assert scores.warp_l1 == pytest.approx((0.0 + 0.2) / 2)


def test_first_frame_warps_to_itself_and_the_generator_alone_is_measured() -> None:
    model = load("fomm-faces", device="cpu")
    test = ProceduralSource(ProceduralSpec("faces", size=model.size, videos=2, frames=3, split="test"))
    first_items = list(reconstruction_triples(model, test))[::3]
    for _prediction, frame, source, warped in first_items:
        torch.testing.assert_close(frame, source)
        torch.testing.assert_close(warped, source, atol=1e-4, rtol=0)  # identity motion: identity warp
    generator_alone = self_reconstruction_l1(model, test)
    expected = sum(float((p - f).abs().mean()) for p, f, _, _ in first_items) / len(first_items)
    assert generator_alone == pytest.approx(expected, abs=1e-6)
    assert generator_alone > 0  # the synthesis is not an exact copy


def test_results_page_lists_warp_only_l1_and_the_generator_alone() -> None:
    task = {"l1": 0.01, "psnr": 30.0, "copy_l1": 0.02, "copy_psnr": 28.0, "warp_l1": 0.012, "frames": 10}
    results = {"faces": {"steps": 10, "train_minutes": 1.0, "reconstruction": task, "transfer": task,
                         "keypoint_spread_px": 3.0, "self_reconstruction_l1": 0.004}}
    page = markdown(results, {"machine": "x", "eval_videos": 2, "frames": 5, "torch": "2"})
    assert "| faces | reconstruction | 0.0100 | 0.0200 | 50% | 0.0120 | 30.00 | 28.00 |" in page
    assert "L1 faces 0.0040" in page
    assert "Goals" not in page  # no evaluation-runner scores, no goal lines
    old = {**task}
    del old["warp_l1"]
    assert "| 50% | - |" in markdown({"faces": {**results["faces"], "reconstruction": old}},
                                      {"machine": "x", "eval_videos": 2, "frames": 5, "torch": "2"})
    assert set(asdict(score(iter([(torch.zeros(3, 2, 2),) * 4])))) >= {"warp_l1", "l1", "copy_l1"}


def test_machine_description_counts_threads_in_words() -> None:
    from machine import describe_machine

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert describe_machine().endswith(", 1 thread")
        torch.set_num_threads(2)
        assert describe_machine().endswith(", 2 threads")
    finally:
        torch.set_num_threads(before)


def test_copy_learning_curve_falls_and_the_warp_free_generator_keeps_shapes() -> None:
    from copy_learning import WarpFreeGenerator, learning_curve, two_layer_conv

    from motiontransfer.experiment import load_experiment

    torch.manual_seed(0)
    images = torch.rand(16, 3, 16, 16)
    curve = learning_curve(two_layer_conv(), images, images[:4], steps=60, every=20, lr=1e-3)
    assert [step for step, _ in curve] == [20, 40, 60]
    assert curve[-1][1] < 0.7 * curve[0][1]
    generator = WarpFreeGenerator(load_experiment("synthetic-faces-64")).eval()
    with torch.no_grad():
        out = generator(images[:2])
    assert out.shape == (2, 3, 16, 16)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_longer_schedule_keeps_the_official_milestone_proportions_and_the_page_says_so() -> None:
    from fomm_synthetic import page_settings_for_epochs, steps_per_epoch, with_epochs

    from motiontransfer.experiment import load_experiment

    bundled = load_experiment("synthetic-faces-64")
    bundled_epochs = bundled.train_params.num_epochs
    longer = with_epochs(bundled, 60)
    assert (longer.train_params.num_epochs, list(longer.train_params.epoch_milestones)) == (60, [36, 54])
    assert list(with_epochs(bundled, 100).train_params.epoch_milestones) == [60, 90]  # vox-256's schedule
    assert list(with_epochs(bundled, 1).train_params.epoch_milestones) == [1]
    assert longer.model_params == bundled.model_params
    assert bundled.train_params.num_epochs == bundled_epochs  # the bundled config itself is untouched
    assert steps_per_epoch(bundled) == 200 * 4 // 8  # 200 videos, 4 repeats, batch 8

    task = {"l1": 0.01, "psnr": 30.0, "copy_l1": 0.02, "copy_psnr": 28.0, "warp_l1": 0.012, "frames": 10}
    results = {"faces": {"steps": 6000, "epochs": 60, "epoch_milestones": [36, 54], "train_minutes": 190.0,
                         "reconstruction": task, "transfer": task}}
    settings = {"machine": "x", "eval_videos": 2, "frames": 5, "torch": "2",
                **page_settings_for_epochs(60, ["--epochs", "60"], Path("/elsewhere/r.json"))}
    page = markdown(results, settings)
    assert page.startswith("# FOMM on the procedural sets, 60 epochs\n")
    assert "`python benchmarks/fomm_synthetic.py --epochs 60`" in page
    assert "`/elsewhere/r.json`" in page
    assert "faces: 6000 steps (60 epochs, lr / 10 at epochs 36 and 54) in 190 min" in page
    assert "bundled models `fomm-faces`" not in page
    assert "images/fomm-faces.gif" not in page  # those GIFs show the bundled models
    default_page = markdown(results, {"machine": "x", "eval_videos": 2, "frames": 5, "torch": "2"})
    assert "bundled models `fomm-faces`" in default_page
    assert "`benchmarks/results/fomm_synthetic.json`" in default_page


def test_results_page_checks_every_goal_from_the_evaluation_scores() -> None:
    task = {"l1": 0.01, "psnr": 30.0, "copy_l1": 0.02, "copy_psnr": 28.0, "warp_l1": 0.012, "frames": 10}
    good = {"l1": 0.011, "copy_l1": 0.02, "psnr": 30.0, "copy_psnr": 28.0, "akd": 0.5, "copy_akd": 1.5}
    weak = {**good, "l1": 0.015, "akd": 2.0}
    results = {"puppets": {
        "steps": 1200, "schedule_steps": 8000, "train_minutes": 1.0, "reconstruction": task, "transfer": task,
        "keypoint_spread_px": 5.0, "ground_truth_spread_px": 11.0, "self_reconstruction_l1": 0.004,
        "parameters": {"kp_detector": 1_090_000, "generator": 1_500_000},
        "evaluate": {"default": {"reconstruction": {**good, "frame0_l1": 0.001}, "cross": weak},
                     "large": {"reconstruction": {**good, "frame0_l1": 0.001}, "cross": good}}}}
    page = markdown(results, {"machine": "x", "eval_videos": 2, "frames": 5, "torch": "2"})
    assert "(puppets 1.09M + 1.50M parameters" in page
    assert "| puppets | large | cross | 0.0110 | 0.0200 | 45% | 0.50 | 1.50 |" in page
    assert "* met: puppets reconstruction: L1 45% below copy-source (goal 40%)" in page
    assert "* **not met**: puppets cross: L1 25% below copy-source (goal 40%)" in page
    assert "* **not met**: puppets cross: AKD 2.00 vs copy-source 1.50" in page
    assert "* met: puppets: frame 0 L1 0.0010 (goal below 0.008)" in page
    assert "* **not met**: puppets: keypoint spread 5.0 px, 45% of the ground truth's 11.0 px (goal 50%)" in page
    assert "ground-truth keypoints: puppets 11.0 px" in page
    assert "puppets: 1200 of 8000 steps in 1 min" in page


def test_ground_truth_spread_is_the_mean_distance_from_the_centroid_of_visible_keypoints() -> None:
    from fomm_synthetic import ground_truth_spread

    test = ProceduralSource(ProceduralSpec("faces", size=64, videos=2, frames=1, split="test"))
    expected = []
    for index in range(2):
        frame = test.frame(index, 0)
        points = frame.keypoints[frame.visibility > 0].astype(float)
        expected.append(np.linalg.norm(points - points.mean(0), axis=1).mean())
    assert ground_truth_spread(test) == pytest.approx(float(np.mean(expected)), rel=1e-6)


@pytest.mark.slow
def test_evaluation_scores_are_the_evaluate_commands_with_frame_zero() -> None:
    from fomm_synthetic import evaluation_scores

    from motiontransfer.evaluation.runner import evaluate

    model = load("fomm-faces", device="cpu")
    scores = evaluation_scores(model, "faces", videos=2, frames=3, motion="large")
    report = evaluate(model.model, "procedural:faces:frames=3,motion=large", "cross", names=("l1", "psnr", "akd"),
                      num_videos=2, batch_size=16)
    assert scores["cross"]["l1"] == pytest.approx(report.summary["l1"])
    assert scores["cross"]["copy_akd"] == pytest.approx(report.summary["copy_akd"])
    assert set(scores["reconstruction"]) == {"l1", "copy_l1", "psnr", "copy_psnr", "akd", "copy_akd", "frame0_l1"}
    assert 0 <= scores["reconstruction"]["frame0_l1"] < scores["reconstruction"]["l1"] * 3


def test_the_page_names_each_family_s_keypoint_count() -> None:
    from fomm_synthetic import keypoint_counts

    assert keypoint_counts({"faces": {}, "puppets": {"num_kp": 10}}) == "10 keypoints"
    counts = keypoint_counts({"faces": {"num_kp": 10}, "puppets": {"num_kp": 15}})
    assert counts == "10 (faces) and 15 (puppets) keypoints"
