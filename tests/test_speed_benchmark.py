"""benchmarks/speed.py and benchmarks/reference_loop.py (issue 19): the reference loop against the streaming
pipeline, the per-child peak RSS and wall time, the alternating runs, the model-only figures with their FLOPs, the
contract checks, the done-when computed from the numbers, and the results page with its chart; on tiny configs
with random weights. No timing is asserted."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from motiontransfer.data.synthetic import ProceduralSource, ProceduralSpec
from motiontransfer.experiment import load_experiment
from motiontransfer.inference import pipeline
from motiontransfer.registry import family
from motiontransfer.video.io import count_frames, read_image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import reference_loop
import speed

TINY = {"fomm": "synthetic-faces-64", "lia": "lia-synthetic-faces-64"}


def tiny_model(config: str):
    experiment = load_experiment(config)
    torch.manual_seed(0)
    return family(experiment.family).model(experiment).eval()


def tiny_clip(frames: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    data = ProceduralSource(ProceduralSpec("faces", size=64, videos=2, frames=frames, split="test"))
    return data.frame(0, 0).tensor(), torch.stack([frame.tensor() for frame in data.frames(1)])


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# ------------------------------------------------------------------------------------------- the reference loop


@pytest.mark.parametrize("config", TINY.values())
def test_reference_loop_is_the_pipeline_with_the_source_encoded_again_every_frame(config: str,
                                                                                   monkeypatch) -> None:
    model = tiny_model(config)
    source, frames = tiny_clip(4)
    adapt = model.family == "fomm"
    encoder = model.generator.encode_source if model.family == "fomm" else model.generator.enc.appearance
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return encoder(*args, **kwargs)

    monkeypatch.setattr(model.generator if model.family == "fomm" else model.generator.enc,
                        "encode_source" if model.family == "fomm" else "appearance", counted)
    reference = speed.reference_run(model, source, frames, adapt_scale=adapt)
    assert len(calls) == len(frames)  # the full generator forward, source encoded every frame
    monkeypatch.undo()
    ours = np.stack([item["prediction"].permute(1, 2, 0).numpy() for item in pipeline.animate(
        model, source, frames, mode="relative", adapt_scale=adapt, batch_size=1)])
    assert reference.shape == (4, 64, 64, 3) and reference.dtype == np.float32
    assert speed.max_abs_diff(reference, ours) < 1e-5


def test_reference_loop_reads_the_whole_video_as_float_frames(tmp_path: Path) -> None:
    inputs = speed.make_inputs(tmp_path, [5], {}, size=64)
    frames, fps = reference_loop.read_whole_video(inputs.driving[5], 64)
    assert len(frames) == 5 and fps == pytest.approx(25.0)
    assert frames[0].shape == (64, 64, 3) and frames[0].dtype == np.float64
    video, _ = reference_loop.read_video_tensor(inputs.driving[5], 64)
    assert video.shape == (5, 3, 64, 64) and video.dtype == torch.float32
    np.testing.assert_allclose(video[2].permute(1, 2, 0).numpy(), frames[2], atol=1e-7)


def test_normalize_keypoints_is_the_official_normalize_kp() -> None:
    kp_source = {"value": torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]]),
                 "jacobian": 2 * torch.eye(2).expand(1, 3, 2, 2)}
    kp_initial = {"value": torch.tensor([[[0.0, 0.0], [0.5, 0.0], [0.0, 0.5]]]),
                  "jacobian": torch.eye(2).expand(1, 3, 2, 2)}
    kp_driving = {"value": kp_initial["value"] + 0.1, "jacobian": 3 * torch.eye(2).expand(1, 3, 2, 2)}
    out = reference_loop.normalize_keypoints(kp_source, kp_driving, kp_initial, relative=True,
                                             relative_jacobian=True, adapt_scale=True)
    # hull areas 0.5 and 0.125: scale sqrt(0.5) / sqrt(0.125) = 2
    torch.testing.assert_close(out["value"], kp_source["value"] + 0.2)
    torch.testing.assert_close(out["jacobian"], 6 * torch.eye(2).expand(1, 3, 2, 2))
    absolute = reference_loop.normalize_keypoints(kp_source, kp_driving, kp_initial, relative=False,
                                                  relative_jacobian=False, adapt_scale=False)
    assert absolute["value"] is kp_driving["value"]


# ------------------------------------------------------------------------------------------------ the measures


def test_max_abs_diff_and_psnr_over_all_frames() -> None:
    target = np.zeros((2, 4, 4, 3), dtype=np.float32)
    prediction = target.copy()
    prediction[0] = 0.1
    assert speed.max_abs_diff(prediction, target) == pytest.approx(0.1)
    # MSE over both frames: 0.01 / 2 -> 10 log10(200)
    assert speed.psnr_db(prediction, target) == pytest.approx(10 * math.log10(200), abs=1e-4)
    assert speed.psnr_db(target, target) == 100.0
    assert speed.max_abs_diff(target, target) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        speed.max_abs_diff(target, target[:1])


def test_the_childs_own_peak_rss_and_wall_time() -> None:
    baseline = speed.run_process(python("pass"))
    allocated = speed.run_process(python("x = b'x' * (200 << 20)"))  # 200 MiB written
    assert baseline.seconds > 0 and allocated.seconds > 0
    assert 190 <= allocated.peak_rss_mib - baseline.peak_rss_mib <= 230
    assert baseline.peak_rss_mib < 50  # the child's own, not the test process's (which holds torch)


def test_a_failing_child_stops_the_benchmark_with_its_output() -> None:
    with pytest.raises(speed.ProcessFailed, match=r"exit status 3(.|\n)*boom"):
        speed.run_process(python("import sys; print('boom'); sys.exit(3)"))


def test_runs_alternate_and_medians_are_taken(tmp_path: Path) -> None:
    log = tmp_path / "order.txt"
    jobs = {name: speed.Job(python(f"open({str(log)!r}, 'a').write({name!r})")) for name in ("A", "B")}
    seen = []
    results = speed.whole_process(jobs, 3, report=lambda name, run: seen.append(name))
    assert log.read_text() == "ABABAB" and seen == list("ABABAB")
    for entry in results.values():
        assert len(entry["seconds"]) == len(entry["peak_rss_mib"]) == 3
        assert entry["median_seconds"] == statistics.median(entry["seconds"])
        assert entry["median_peak_rss_mib"] == statistics.median(entry["peak_rss_mib"])
    silent = {"quiet": speed.Job(python("pass"), tmp_path / "never.mp4", 4)}
    with pytest.raises(speed.ProcessFailed, match="quiet wrote 0 frames"):
        speed.whole_process(silent, 1)


def test_each_path_runs_its_command_of_the_contract(tmp_path: Path) -> None:
    inputs = speed.Inputs({"fomm": Path("f.mt"), "lia": Path("l.mt")}, Path("s.png"), {48: Path("d.mp4")}, 256)
    jobs = speed.jobs_for(inputs, "fomm", 48, tmp_path, speed.PATHS)
    assert list(jobs) == list(speed.PATHS)
    reference = jobs["reference"].command
    assert reference[:2] == [sys.executable, str(speed.REFERENCE_SCRIPT)]
    for name, job in jobs.items():
        assert job.frames == 48 and job.out == tmp_path / f"fomm-48-{name}.mp4"
        assert job.command[job.command.index("--mode"):][:3] == ["--mode", "relative", "--adapt-scale"]
    assert jobs["eager"].command[:4] == [sys.executable, "-m", "motiontransfer", "animate"]
    assert jobs["eager"].command[-1] == "--eager"
    assert jobs["fast-fp32"].command[-2:] == ["--out", str(tmp_path / "fomm-48-fast-fp32.mp4")]
    assert jobs["fast-bf16"].command[-2:] == ["--precision", "bf16"]
    lia = speed.jobs_for(inputs, "lia", 48, tmp_path, speed.PATHS)
    assert all("--adapt-scale" not in job.command for job in lia.values())


def test_a_missing_flag_or_argument_of_the_contract_is_named() -> None:
    assert speed.missing_cli_flags("  --precision <fp32|bf16>\n  --eager   Today's path.", speed.PATHS) == []
    assert speed.missing_cli_flags("  --eager-mode\n  --precision-x", speed.PATHS) == ["--eager", "--precision"]
    assert speed.missing_cli_flags("", ["reference", "fast-fp32"]) == []

    def today(checkpoint, config=None, device=None, family=None):
        return None

    def landed(checkpoint, config=None, device=None, family=None, *, precision="fp32", accelerate=None):
        return None

    assert speed.missing_load_arguments(today, speed.PATHS) == ["accelerate", "precision"]
    assert speed.missing_load_arguments(today, ["reference"]) == []
    assert speed.missing_load_arguments(landed, speed.PATHS) == []
    assert speed.missing_load_arguments(lambda path, **options: None, speed.PATHS) == []


def test_machine_rates_and_description() -> None:
    rates = speed.machine_rates(matmul_size=32, channels=4, conv_size=8, repeats=1)
    for key in ("matmul_fp32", "matmul_bf16", "conv_fp32", "conv_bf16"):
        assert rates[key] > 0
    assert (rates["matmul_size"], rates["conv_channels"], rates["conv_size"]) == (32, 4, 8)
    machine = speed.machine_description(2)
    assert machine["threads"] == 2 and machine["torch"] == torch.__version__
    assert set(machine) >= {"cpu", "cores", "flags", "memory_gib", "onednn_bf16", "summary"}


def test_count_flops_of_a_known_convolution() -> None:
    conv = torch.nn.Conv2d(4, 6, 3, padding=1, bias=False)
    x = torch.rand(1, 4, 5, 5)
    assert speed.count_flops(lambda: conv(x), conv) == 2 * 4 * 6 * 9 * 25
    assert all(p.requires_grad for p in conv.parameters())  # restored after counting


def test_inputs_are_made_once_and_reused(tmp_path: Path) -> None:
    inputs = speed.make_inputs(tmp_path, [3, 5], {"fomm": TINY["fomm"]}, size=64)
    assert inputs.models["fomm"].name == "fomm-synthetic-faces-64-seed0.mt"
    assert {n: count_frames(p) for n, p in inputs.driving.items()} == {3: 3, 5: 5}
    assert read_image(inputs.source).shape == (3, 64, 64)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = speed.make_inputs(tmp_path, [5, 3], {"fomm": TINY["fomm"]}, size=64)
    assert again == inputs
    assert {p: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps
    reloaded = speed.model_from_file(speed.load_model_file(inputs.models["fomm"]))
    for name, value in tiny_model(TINY["fomm"]).state_dict().items():  # torch.manual_seed(0) weights
        torch.testing.assert_close(reloaded.state_dict()[name], value)


@pytest.mark.slow
def test_model_only_figures_of_every_path(tmp_path: Path) -> None:
    inputs = speed.make_inputs(tmp_path, [4], {"fomm": TINY["fomm"]}, size=64)
    source = read_image(inputs.source, size=64)
    frames = speed.read_frames_tensor(inputs.driving[4], 64, 3)
    calls = []

    def load(path, device=None, **arguments):  # the contract's arguments, today's eager model
        calls.append(arguments)
        return speed.api.load(path, device=device)

    result = speed.per_frame(inputs.models["fomm"], source, frames, speed.PATHS, adapt_scale=True, repeats=1,
                             load=load)
    assert calls == [speed.LOAD_ARGUMENTS[name] for name in speed.PATHS[1:]]
    assert result["frames"] == 3 and list(result["paths"]) == list(speed.PATHS)
    flops = result["flops"]
    assert flops["reference"] > flops["cached"] > 0  # the reference encodes the source every frame
    for name, figures in result["paths"].items():
        assert figures["gflop_per_frame"] == flops["reference" if name == "reference" else "cached"] / 1e9
        assert figures["gflops"] == pytest.approx(figures["gflop_per_frame"] / figures["ms_per_frame"] * 1000)
        assert figures["speedup"] == pytest.approx(result["paths"]["reference"]["ms_per_frame"]
                                                   / figures["ms_per_frame"])
    assert result["paths"]["eager"]["max_abs_diff"] == 0.0 and result["paths"]["eager"]["psnr_db"] == 100.0
    assert result["paths"]["reference"]["max_abs_diff"] < 1e-5
    lia = speed.make_inputs(tmp_path, [4], {"lia": TINY["lia"]}, size=64)
    only = speed.per_frame(lia.models["lia"], source, frames, ["reference"], adapt_scale=False, repeats=1)
    assert "max_abs_diff" not in only["paths"]["reference"]  # no eager path measured, nothing to compare with
    assert only["flops"]["reference"] > only["flops"]["cached"] > 0


@pytest.mark.slow
def test_whole_processes_of_the_reference_and_the_cli_on_tiny_inputs(tmp_path: Path) -> None:
    inputs = speed.make_inputs(tmp_path, [5], TINY, size=64)
    for name in TINY:
        jobs = speed.jobs_for(inputs, name, 5, tmp_path, ["reference", "cli"], flags={"cli": []})
        results = speed.whole_process(jobs, 1, speed.child_environment(1))
        for path, entry in results.items():
            assert count_frames(jobs[path].out) == 5
            assert entry["median_peak_rss_mib"] > 100  # python with torch and a model


# ----------------------------------------------------------------------------------------- done-when and page


def entry(seconds: float, rss: float) -> dict:
    return {"seconds": [seconds, seconds + 1, seconds - 1], "peak_rss_mib": [rss] * 3, "median_seconds": seconds,
            "median_peak_rss_mib": rss}


def hand_made_results() -> dict:
    figures = {"ms_per_frame": 100.0, "gflop_per_frame": 20.0, "gflops": 200.0}
    return {
        "settings": {"frames": [48, 100], "long_frames": 2000, "threads": 2, "runs": 3, "long_runs": 1,
                     "per_frame_frames": 16, "repeats": 3, "size": 256, "date": "2026-12-05 12:00 UTC",
                     "inputs": {"fomm": "vox-256", "lia": "lia-vox-256"}, "work": "w", "json": "r.json",
                     "command": "python benchmarks/speed.py --markdown docs/performance.md"},
        "machine": {"cpu": "AMD EPYC", "cores": 2, "flags": ["avx512_bf16"], "memory_gib": 23.5, "threads": 2,
                    "torch": "2.13", "python": "3.11", "onednn_bf16": True, "summary": "x"},
        "machine_rates": {"matmul_size": 2048, "conv_channels": 256, "conv_size": 64, "matmul_fp32": 150.0,
                          "matmul_bf16": 400.0, "conv_fp32": 100.0, "conv_bf16": 250.0},
        "whole_process": {
            "fomm": {"48": {"reference": entry(25.0, 900), "eager": entry(20.0, 700), "fast-fp32": entry(10.0, 600),
                            "fast-bf16": entry(9.0, 650)},
                     "100": {"reference": entry(50.0, 1000), "eager": entry(40.0, 700),
                             "fast-fp32": entry(20.0, 600), "fast-bf16": entry(12.5, 650)},
                     "2000": {"reference": entry(1000.0, 5000), "eager": entry(800.0, 720),
                              "fast-fp32": entry(400.0, 750), "fast-bf16": entry(300.0, 660)}},
            "lia": {"48": {"reference": entry(15.0, 800), "fast-fp32": entry(12.0, 600)}}},
        "per_frame": {"fomm": {"frames": 16, "flops": {"reference": 120e9, "cached": 60e9}, "paths": {
            "reference": {**figures, "ms_per_frame": 600.0, "speedup": 1.0, "max_abs_diff": 4e-6, "psnr_db": 100.0},
            "eager": {**figures, "ms_per_frame": 300.0, "speedup": 2.0, "max_abs_diff": 0.0, "psnr_db": 100.0},
            "fast-fp32": {**figures, "speedup": 6.0, "max_abs_diff": 3e-5, "psnr_db": 100.0},
            "fast-bf16": {**figures, "ms_per_frame": 80.0, "speedup": 7.5, "max_abs_diff": 0.02,
                          "psnr_db": 38.25}}}},
    }


def test_done_when_is_computed_from_the_numbers() -> None:
    lines = speed.target_lines(hand_made_results())
    expected = [
        "* met: FOMM fp32 end to end, 48 frames: fast-fp32 2.50x the reference loop (10.0 s vs 25.0 s; goal 2x)",
        "* met: FOMM fp32 end to end, 100 frames: fast-fp32 2.50x the reference loop (20.0 s vs 50.0 s; goal 2x)",
        "* met: FOMM fp32: max |diff| vs eager fp32 3e-05 (goal <= 0.0001)",
        "* **not met**: FOMM bf16 end to end, 48 frames: fast-bf16 2.78x the reference loop (9.0 s vs 25.0 s; "
        "goal 3x)",
        "* met: FOMM bf16 end to end, 100 frames: fast-bf16 4.00x the reference loop (12.5 s vs 50.0 s; goal 3x)",
        "* **not met**: FOMM bf16: PSNR vs eager fp32 38.2 dB (goal >= 40 dB)",
        "* met: FOMM peak RSS, 100 frames: fast-fp32 600 MiB vs the reference loop's 1000 MiB (goal: at most the "
        "reference's)",
        "* **not met**: FOMM peak RSS from 100 to 2000 frames: fast-fp32 +150 MiB (600 -> 750; goal < +100 MiB)",
        "* met: FOMM peak RSS from 100 to 2000 frames: fast-bf16 +10 MiB (650 -> 660; goal < +100 MiB)",
        "* met: FOMM peak RSS, 2000 frames: eager 720 MiB vs the reference loop's 5000 MiB (goal: at most the "
        "reference's)",
        "* **not met**: LIA-256 fp32 end to end, 48 frames: fast-fp32 1.25x the reference loop (12.0 s vs 15.0 s; "
        "goal 1.5x)",
    ]
    for line in expected:
        assert line in lines
    assert any(line.startswith("* not measured here: ONNX export") for line in lines)


def test_done_when_without_the_long_runs_says_not_measured() -> None:
    results = hand_made_results()
    del results["whole_process"]["fomm"]["2000"]
    results["settings"]["long_frames"] = None
    checks = speed.targets(results)
    flat = [(text, met) for text, met in checks if "flat from 100 to 2000" in text]
    assert len(flat) == 3 and all(met is None for _, met in flat)
    assert all(met is None for text, met in checks if "2000" in text)
    assert speed.targets({}) and all(met is None for _, met in speed.targets({}))


def test_results_page_and_chart(tmp_path: Path) -> None:
    results = hand_made_results()
    page, chart = speed.write_page(results, tmp_path / "docs" / "performance.md",
                                   tmp_path / "docs" / "images" / "performance.png")
    text = page.read_text()
    assert text.startswith("# Animation speed on the CPU\n")
    assert "![Whole-process seconds, model-only ms/frame and peak RSS per path](images/performance.png)" in text
    assert "| FOMM vox-256 | 48 | fast-fp32 | 10.0 | 2.50x | 600 | 10.0, 11.0, 9.0 |" in text
    assert "| FOMM vox-256 | 2000 | reference | 1000.0 | 1.00x | 5000 | 1000.0, 1001.0, 999.0 |" in text
    assert "| FOMM vox-256 | fast-bf16 | 80 | 7.50x | 20.0 | 200 | 80% | 0.02 | 38.2 |" in text  # 200 of 250
    assert "| FOMM vox-256 | fast-fp32 | 100 | 6.00x | 20.0 | 200 | 200% | 3e-05 | 100.0 |" in text
    assert "| 3x3 conv 256 -> 256 channels, 64 x 64, channels-last | 100 | 250 |" in text
    assert "Machine: AMD EPYC, 2 logical cores (avx512_bf16), 24 GiB; oneDNN bf16 supported" in text
    assert "120.0 GFLOP per frame for the reference's full forward, 60.0 with the source encoded once" in text
    assert "python benchmarks/speed.py --markdown docs/performance.md" in text
    assert "--precision bf16" in text and "--eager" in text
    assert "* **not met**: FOMM bf16: PSNR vs eager fp32 38.2 dB (goal >= 40 dB)" in text
    image = Image.open(chart)
    assert image.format == "PNG" and image.mode == "RGB" and image.width == speed.WIDTH
    # panels: whole process FOMM at 100 frames (4 paths) and LIA at 48 (2), model only (4), FOMM RSS (3 x 4)
    rows = 4 + 2 + 4 + 12
    assert image.height == 4 * (26 + 6) + (speed.ROW + speed.GAP) * rows
    assert json.loads(json.dumps(results)) == results  # the results are plain JSON


def test_page_before_any_measurement_says_so(tmp_path: Path) -> None:
    page = speed.markdown({})
    assert "**Not measured yet.**" in page and "## Reproduce" in page
    assert "* not measured: FOMM fp32: max |diff| vs eager fp32 <= 0.0001" in page
    assert "* not measured: FOMM peak RSS of fast-bf16: at most the reference loop's, and flat from 100 to 2000 " \
           "frames (< +100 MiB)" in page
    image = speed.plot({})
    assert image.shape[1] == speed.WIDTH and image.dtype == np.uint8


@pytest.mark.slow
def test_the_script_end_to_end_on_tiny_configs(tmp_path: Path, monkeypatch) -> None:
    tiny_rates = speed.machine_rates(matmul_size=16, channels=4, conv_size=8, repeats=1)
    monkeypatch.setattr(speed, "machine_rates", lambda: tiny_rates)
    torch_threads = torch.get_num_threads()
    try:
        speed.main(["--paths", "reference", "--threads", "1", "--runs", "1", "--frames", "3", "4", "--skip-long",
                    "--per-frame-frames", "3", "--repeats", "1", "--fomm-config", TINY["fomm"], "--lia-config",
                    TINY["lia"], "--size", "64", "--work", str(tmp_path / "work"), "--json",
                    str(tmp_path / "speed.json"), "--markdown", str(tmp_path / "performance.md"), "--plot",
                    str(tmp_path / "images" / "performance.png")])
    finally:
        torch.set_num_threads(torch_threads)
    results = json.loads((tmp_path / "speed.json").read_text())
    assert set(results["whole_process"]) == {"fomm", "lia"}
    assert set(results["whole_process"]["fomm"]) == {"3", "4"}
    assert results["settings"]["long_frames"] is None and results["settings"]["threads"] == 1
    assert set(results["per_frame"]["lia"]["paths"]) == {"reference"}
    assert (tmp_path / "images" / "performance.png").is_file()
    page = (tmp_path / "performance.md").read_text()
    assert "| FOMM synthetic-faces-64 | 4 | reference |" in page
    assert "| LIA synthetic-faces-64 | reference |" in page
    assert "FOMM video" not in page and "None" not in page  # no long video was run


def test_the_page_names_the_long_videos_runs_and_paths() -> None:
    settings = {"long_frames": 2000, "long_runs": 1, "paths": ["reference", "fast-fp32", "fast-bf16"],
                "long_paths": ["fast-fp32", "fast-bf16"]}
    assert speed.long_runs_text(settings) == (" (the 2000-frame FOMM video: 1 per path, paths fast-fp32, "
                                              "fast-bf16)")
    del settings["long_paths"]  # results of a run before --long-paths: every path
    assert speed.long_runs_text(settings).endswith("paths reference, fast-fp32, fast-bf16)")
    assert speed.long_runs_text({"long_frames": None, "long_runs": 1}) == ""


def test_long_paths_must_be_known_paths() -> None:
    with pytest.raises(SystemExit):
        speed.parse_arguments(["--long-paths", "fastest"])


def test_lia_is_not_run_in_bf16_which_it_refuses():
    assert speed.family_paths("lia", speed.PATHS) == ["reference", "eager", "fast-fp32"]
    assert speed.family_paths("fomm", speed.PATHS) == list(speed.PATHS)
