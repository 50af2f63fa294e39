"""benchmarks/fomm_synthetic.py: its metrics on hand-made frames, the warp-only and generator-alone diagnostics on
the bundled model, and the results page."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

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
    assert ": met." in page
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
